// Plain JSON shapes that cross the workflow boundary. Amounts are strings, never number/bigint.
import type { OrderStatus, PaymentStatus } from '../domain/status';

export interface ChargeOutcome {
  order_id: string;
  status: Extract<OrderStatus, 'succeeded' | 'failed'>;
  psp_reference: string | null;
  failure_code: string | null;
  failure_message: string | null;
}

export type RiskOutcome = { approved: true } | { approved: false; code: string; reason: string };

export interface PaymentSummary {
  payment_id: string;
  status: PaymentStatus;
}
