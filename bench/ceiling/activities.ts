/** No-op activities with the real ones' names: each returns at once (the ceiling measures Temporal + worker only). */
export function createCeilingActivities() {
  return {
    async riskCheck(_payment_id: string): Promise<void> {},
    async chargeOrder(_order_id: string): Promise<string> {
      return 'succeeded';
    },
    async recordCapture(_order_id: string): Promise<void> {},
    async completePayment(_payment_id: string): Promise<string> {
      return 'succeeded';
    },
  };
}

export type CeilingActivities = ReturnType<typeof createCeilingActivities>;
