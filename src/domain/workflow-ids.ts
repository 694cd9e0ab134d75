// Workflow ids are business keys: Temporal itself refuses a second run for the same payment.
// Pure functions, imported by workflow code too (no Node built-ins here).
export const paymentWorkflowId = (payment_id: string): string => `payment-${payment_id}`;
export const orderWorkflowId = (order_id: string): string => `order-${order_id}`;
/** One reconciliation per settlement day and deployment (its task queue: tests share a namespace). */
export const reconciliationWorkflowId = (task_queue: string, settlement_date: string): string => `recon-${task_queue}-${settlement_date}`;
export const refundWorkflowId = (refund_id: string): string => `refund-${refund_id}`;
/** A scheduled payout's id names seller, currency and the run's nominal day (a rerun of the day is refused by Temporal); an on-demand one its payout. */
export const payoutWorkflowId = (k: { payout_id: string } | { merchant_id: string; seller_id: string; currency: string; run_date: string }): string =>
  'payout_id' in k ? `payout-${k.payout_id}` : `payout-${k.merchant_id}-${k.seller_id}-${k.currency}-${k.run_date}`;
export const disputeWorkflowId = (dispute_id: string): string => `dispute-${dispute_id}`;

/** The type name legacy payments (one child workflow per order, v1–v6) were started with. */
export const LEGACY_PAYMENT_WORKFLOW_TYPE = 'PaymentWorkflow';

/**
 * Where an order's signals (PSP news, operator commands) go: its payment's workflow, or for a
 * payment started on the legacy shape (`payment_event.workflow_type`) the order's own workflow.
 */
export function orderSignalWorkflowId(o: { order_id: string; payment_id: string; workflow_type: string | null }): string {
  return o.workflow_type === LEGACY_PAYMENT_WORKFLOW_TYPE ? orderWorkflowId(o.order_id) : paymentWorkflowId(o.payment_id);
}
