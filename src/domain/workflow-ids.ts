// Workflow ids are business keys: Temporal itself refuses a second run for the same payment.
// Pure functions, imported by workflow code too (no Node built-ins here).
export const paymentWorkflowId = (payment_id: string): string => `payment-${payment_id}`;
export const orderWorkflowId = (order_id: string): string => `order-${order_id}`;
