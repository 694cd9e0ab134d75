// The worker bundles this file: workflow code only (no I/O, no clocks, no Node built-ins).
// Clients start workflows by these typed references; signals, queries, search attributes and
// failure types are in ./contract.
export { PaymentWorkflowV7 } from './payment';
export { NightlyReconciliationWorkflow, ReconciliationWorkflow } from './reconciliation';
export { RefundWorkflow } from './refund';
export { PayoutRunWorkflow, PayoutWorkflow } from './payout';
export { DisputeWorkflow } from './dispute';
// Kept for payments started before v7 (one child workflow per order): their histories name these
// types, and they finish on this code. Never changed; new payments never start them.
export { PaymentWorkflow, PaymentOrderWorkflow } from './legacy';
export * from './contract';
