// Workflow ids are business keys: Temporal itself refuses a second run for the same payment.
// Pure functions, imported by workflow code too (no Node built-ins here).
export const paymentWorkflowId = (payment_id: string): string => `payment-${payment_id}`;
export const orderWorkflowId = (order_id: string): string => `order-${order_id}`;
/** One reconciliation per settlement day and deployment (its task queue: tests share a namespace). */
export const reconciliationWorkflowId = (task_queue: string, settlement_date: string): string => `recon-${task_queue}-${settlement_date}`;
export const refundWorkflowId = (refund_id: string): string => `refund-${refund_id}`;
