// The worker bundles this file: workflow code only (no I/O, no clocks, no Node built-ins).
export { PaymentWorkflow } from './payment';
export { PaymentOrderWorkflow } from './payment-order';
export { NightlyReconciliationWorkflow, ReconciliationWorkflow } from './reconciliation';
export { RefundWorkflow } from './refund';
export { PayoutRunWorkflow, PayoutWorkflow } from './payout';
export { DisputeWorkflow } from './dispute';
