// The ceiling workflows: no-op copies of the payment workflow's shape (the same retry options,
// search-attribute upserts and, for the old shape, child options), with activities that do
// nothing. What is left is the cost of Temporal and the worker alone. Three shapes, so a report
// can say how far each shape's orchestration could go on the same box:
// - lean (default, the payment workflow's shape): ONE workflow; risk check, every order's charge and
//   capture, and completePayment all local activities; orders in parallel; one final upsert.
// - mixed: the same, but chargeOrder a regular activity (the PSP call through the server).
// - children: the legacy shape (src/workflows/legacy/): a child workflow per order running chargeOrder (regular)
//   then recordCapture (local), each child upserting its status.
// Workflow code only: bundled by the worker.
import {
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  executeChild,
  proxyActivities,
  proxyLocalActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { SA } from '../../src/workflows/contract';
import { LOCAL_DATABASE_STEP, PSP_CALL, localPspCallWith } from '../../src/workflows/retry-policies';
import type { CeilingActivities } from './activities';

const psp = proxyActivities<Pick<CeilingActivities, 'chargeOrder'>>(PSP_CALL);
// The lean shape's PSP call: the real payment workflow's local-activity options, default attempts.
const localPsp = proxyLocalActivities<Pick<CeilingActivities, 'chargeOrder'>>(localPspCallWith(undefined));
const steps = proxyLocalActivities<Omit<CeilingActivities, 'chargeOrder'>>(LOCAL_DATABASE_STEP);

export interface CeilingInput {
  payment_id: string;
  order_ids: string[];
}

async function finish(payment_id: string): Promise<string> {
  const status = await steps.completePayment(payment_id);
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: status }]);
  return status;
}

export async function CeilingLeanWorkflow(input: CeilingInput): Promise<string> {
  await steps.riskCheck(input.payment_id);
  await Promise.allSettled(input.order_ids.map(async (order_id) => {
    await localPsp.chargeOrder(order_id);
    await steps.recordCapture(order_id);
  }));
  return await finish(input.payment_id);
}

export async function CeilingMixedWorkflow(input: CeilingInput): Promise<string> {
  await steps.riskCheck(input.payment_id);
  await Promise.allSettled(input.order_ids.map(async (order_id) => {
    await psp.chargeOrder(order_id);
    await steps.recordCapture(order_id);
  }));
  return await finish(input.payment_id);
}

/** The legacy shape's parent (its name is the one docs/PERFORMANCE.md's older tables use). */
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
  return await finish(input.payment_id);
}

export async function CeilingOrderWorkflow(order_id: string): Promise<string> {
  const status = await psp.chargeOrder(order_id);
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: status }]);
  await steps.recordCapture(order_id);
  return status;
}
