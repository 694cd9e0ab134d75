// The ceiling workflows: the same shape as PaymentWorkflow / PaymentOrderWorkflow (risk check,
// one child per order running charge + recordCapture, then completePayment; the same retry
// options, search-attribute upserts and child options), with activities that do nothing. What is
// left is the cost of Temporal and the worker alone. Workflow code only: bundled by the worker.
import { ParentClosePolicy, WorkflowIdReusePolicy, executeChild, proxyActivities, proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { LOCAL_DATABASE_STEP, PSP_CALL } from '../../src/workflows/retry-policies';
import { SA } from '../../src/workflows/search-attributes';
import type { CeilingActivities } from './activities';

const psp = proxyActivities<Pick<CeilingActivities, 'chargeOrder'>>(PSP_CALL);
// As in workflow v3: the database steps are local activities, the PSP call a regular one.
const steps = proxyLocalActivities<Omit<CeilingActivities, 'chargeOrder'>>(LOCAL_DATABASE_STEP);

export interface CeilingInput {
  payment_id: string;
  order_ids: string[];
}

export async function CeilingPaymentWorkflow(input: CeilingInput): Promise<string> {
  await steps.riskCheck(input.payment_id);
  await Promise.allSettled(input.order_ids.map((order_id) =>
    executeChild(CeilingOrderWorkflow, {
      workflowId: `ceiling-order-${order_id}`,
      args: [order_id],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      parentClosePolicy: ParentClosePolicy.TERMINATE,
      typedSearchAttributes: [{ key: SA.PaymentId, value: input.payment_id }, { key: SA.PaymentStatus, value: 'processing' }],
    }),
  ));
  const status = await steps.completePayment(input.payment_id);
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: status }]);
  return status;
}

export async function CeilingOrderWorkflow(order_id: string): Promise<string> {
  const status = await psp.chargeOrder(order_id);
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: status }]);
  await steps.recordCapture(order_id);
  return status;
}
