import {
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  condition,
  executeChild,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, ChargeOutcome } from '../../activities';
import type { PaymentStatus } from '../../domain/status';
import { orderWorkflowId } from '../../domain/workflow-ids';
import { DATABASE_STEP, LOCAL_DATABASE_STEP, PSP_CALL } from '../retry-policies';
import { PaymentOrderWorkflow } from './payment-order-v6';
import { SA, paymentMethodAttachedSignal, paymentStatusQuery, type PaymentInput as CurrentPaymentInput, type PaymentState } from '../contract';

type PaymentSteps = Pick<Activities, 'riskCheck' | 'rejectPayment' | 'completePayment' | 'cancelPayment' | 'attachPaymentMethod'>;
const remoteSteps = proxyActivities<PaymentSteps>(DATABASE_STEP);
const localSteps = proxyLocalActivities<PaymentSteps>(LOCAL_DATABASE_STEP);
const pspSteps = proxyActivities<Pick<Activities, 'lookupCheckout' | 'captureOrder' | 'voidOrder'>>(PSP_CALL);

/** The current input without what v7 added (checkout from v4, all-or-nothing from v6). */
export type PaymentInput = Omit<CurrentPaymentInput, 'resume'>;

const CHECKOUT_EXPIRED = { code: 'checkout_expired', reason: 'the buyer did not complete the hosted checkout in time' } as const;

/**
 * v1–v6, kept for payments started before v7 (see ./index.ts). One checkout (payment event). Risk check first; only an approved payment fans out.
 *
 * One child workflow per order (not one activity chain per order) because each order later waits
 * on its own signals — delayed PSP webhooks, operator retry/cancel — and gets its own history,
 * id (`order-<id>`) and place in the UI. This parent never continues-as-new while children run.
 */
export async function PaymentWorkflow(input: PaymentInput): Promise<PaymentState> {
  const state: PaymentState = {
    payment_id: input.payment_id,
    status: 'processing',
    stage: 'risk_check',
    orders: Object.fromEntries(input.order_ids.map((id) => [id, 'processing' as const])),
    failure_code: null,
  };
  setHandler(paymentStatusQuery, () => state);
  let payment_method: string | null = null;
  setHandler(paymentMethodAttachedSignal, (attached) => {
    payment_method ??= attached.payment_method; // the first token wins; a duplicate is a no-op
  });
  // Database steps as local activities where the patch is recorded; histories without it keep the remote ones.
  const steps = patched('local-database-steps') ? localSteps : remoteSteps;

  if (input.checkout !== undefined) {
    state.status = 'requires_payment_method';
    state.stage = 'checkout';
    const attached = await condition(() => payment_method !== null, input.checkout.timeout_ms);
    // Before giving up, ask the PSP once more: the webhook may be lost or late.
    if (!attached) payment_method = await pspSteps.lookupCheckout(input.payment_id);
    if (payment_method === null) {
      const summary = await steps.cancelPayment(input.payment_id, CHECKOUT_EXPIRED.code, CHECKOUT_EXPIRED.reason);
      for (const id of input.order_ids) state.orders[id] = 'canceled';
      return finish(state, summary.status, CHECKOUT_EXPIRED.code);
    }
    await steps.attachPaymentMethod(input.payment_id, payment_method);
    state.status = 'processing';
    state.stage = 'risk_check';
    upsertSearchAttributes([{ key: SA.PaymentStatus, value: 'processing' }]);
  }

  const risk = await steps.riskCheck(input.payment_id);
  if (!risk.approved) {
    const summary = await steps.rejectPayment(input.payment_id, risk.code, risk.reason);
    for (const id of input.order_ids) state.orders[id] = 'failed';
    return finish(state, summary.status, risk.code);
  }

  state.stage = 'orders';
  const results = await Promise.allSettled(input.order_ids.map(async (order_id) => {
    const outcome = await runOrder(input, order_id);
    state.orders[order_id] = outcome.status;
  }));
  if (input.capture_method === 'all_or_nothing') await captureAllOrNothing(state);
  const summary = await steps.completePayment(input.payment_id);
  finish(state, summary.status, null);
  // Order activities retry without limit, so a child only fails when it was terminated or hit a
  // bug; fail this workflow too so the payment shows as failed in the UI, never silently stuck.
  const broken = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (broken !== undefined) throw broken.reason;
  return state;
}

const SIBLING_FAILED = 'another order of this all-or-nothing payment was not authorized';

/**
 * The saga's second step: every order authorized → capture them all; otherwise void the
 * authorized ones (the compensation) and the payment fails with nothing taken.
 */
async function captureAllOrNothing(state: PaymentState): Promise<void> {
  const ids = Object.keys(state.orders);
  const all_authorized = ids.every((id) => state.orders[id] === 'authorized');
  const authorized = ids.filter((id) => state.orders[id] === 'authorized');
  const outcomes = await Promise.all(authorized.map((id) => (all_authorized ? pspSteps.captureOrder(id) : pspSteps.voidOrder(id, SIBLING_FAILED))));
  for (const o of outcomes) state.orders[o.order_id] = o.status;
}

async function runOrder(input: PaymentInput, order_id: string): Promise<ChargeOutcome> {
  return await executeChild(PaymentOrderWorkflow, {
    workflowId: orderWorkflowId(order_id),
    args: [{ order_id, payment_id: input.payment_id, psp_poll: input.psp_poll, psp_attempts_max: input.psp_attempts_max }],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    parentClosePolicy: ParentClosePolicy.TERMINATE,
    typedSearchAttributes: [
      { key: SA.PaymentId, value: input.payment_id },
      { key: SA.MerchantId, value: input.merchant_id },
      { key: SA.PaymentStatus, value: 'processing' },
    ],
    memo: { parent_workflow_id: workflowInfo().workflowId },
  });
}

function finish(state: PaymentState, status: PaymentStatus, failure_code: string | null): PaymentState {
  state.status = status;
  state.stage = 'done';
  state.failure_code = failure_code;
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: status }]);
  return state;
}
