// Payment workflows of v1–v6 (a parent plus one child workflow per order). Payments started on
// them finish on them, and their recorded histories replay in CI (test/histories/v1–v6). Frozen:
// a change here must keep those histories replaying. New payments run PaymentWorkflowV7.
export { PaymentWorkflow } from './payment-v6';
export { PaymentOrderWorkflow } from './payment-order-v6';
