import { ActivityFailure, ApplicationFailure, TimeoutFailure, condition, continueAsNew, proxyLocalActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities, ChargeOutcome, OperatorCommand, PspChargeUpdate } from '../activities';
import type { PaymentStatus } from '../domain/status';
import {
  SA,
  operatorCommandSignal,
  paymentMethodAttachedSignal,
  paymentStatusQuery,
  pspUpdateSignal,
  type OrderResume,
  type OrderStep,
  type PaymentInput,
  type PaymentState,
} from './contract';
import { LOCAL_DATABASE_STEP, localPspCallWith } from './retry-policies';
import { historyTooLong, waitForDecision, type WaitPlan } from './wait';

type BookSteps = Pick<
  Activities,
  'riskCheck' | 'rejectPayment' | 'completePayment' | 'cancelPayment' | 'attachPaymentMethod' | 'applyChargeUpdate' | 'parkOrder' | 'resumeOrder' | 'recordAuthorization'
>;
type PspSteps = Pick<Activities, 'chargeOrder' | 'pollCharge' | 'cancelOrder' | 'lookupCheckout' | 'captureOrder' | 'voidOrder'>;
const books = proxyLocalActivities<BookSteps>(LOCAL_DATABASE_STEP);

// Inputs without timings get the production defaults (src/config.ts).
const DEFAULT_WAIT: WaitPlan = { initial_ms: 60_000, max_ms: 3_600_000, history_events_max: 2_000 };
const REASON_CHARS_MAX = 500;
const WAITING: ReadonlySet<ChargeOutcome['status']> = new Set(['pending', 'requires_action']);
const CHECKOUT_EXPIRED = { code: 'checkout_expired', reason: 'the buyer did not complete the hosted checkout in time' } as const;
const SIBLING_FAILED = 'another order of this all-or-nothing payment was not authorized';

/** One order's part of the payment: what the signal handlers and the continue-as-new check see. */
interface OrderTrack {
  id: string;
  step: OrderStep;
  outcome: ChargeOutcome | null;
  news: PspChargeUpdate | null;
  command: OperatorCommand | null;
  /** Set while the order sleeps in a wait (its resume point); null while a step runs. */
  idle: OrderResume | null;
  /** A park carried over a continue-as-new: the next PSP step starts parked, with this reason. */
  parked_reason: string | null;
  /** A wait carried over a continue-as-new: the backoff it slept on. */
  wait_from_ms: number | null;
}

interface Run {
  input: PaymentInput;
  state: PaymentState;
  psp: PspSteps;
  plan: WaitPlan;
}

/**
 * One checkout (payment event), one workflow execution (v7). Risk check, then every order in
 * parallel: the PSP charge, whose outcome and books commit in one transaction, then the final
 * status — all local activities, so a payment whose PSP answers at once costs one workflow task
 * and ten history events. An order that must wait (a PSP
 * review, 3-D Secure, an operator) waits inside this workflow on signals addressed to it by order
 * id (`pspUpdate` by the charge's order reference, `operatorCommand` by `order_id`); a long wait
 * continues the whole payment as new once every waiting order is idle (docs/PERFORMANCE.md says
 * why this beats a child workflow per waiting order). Payments started on the earlier shape run
 * on src/workflows/legacy/ until they finish.
 */
export async function PaymentWorkflowV7(input: PaymentInput): Promise<PaymentState> {
  const state: PaymentState = {
    payment_id: input.payment_id,
    status: 'processing',
    stage: input.resume === undefined ? 'risk_check' : 'orders',
    orders: Object.fromEntries(input.order_ids.map((id) => [id, input.resume?.[id]?.outcome?.status ?? ('processing' as const)])),
    failure_code: null,
  };
  const run: Run = { input, state, psp: proxyLocalActivities<PspSteps>(localPspCallWith(input.psp_attempts_max)), plan: { ...DEFAULT_WAIT, ...input.psp_poll } };
  const tracks = new Map(input.order_ids.map((id) => [id, newTrack(id, input.resume?.[id])]));
  setHandler(paymentStatusQuery, () => state);
  let payment_method: string | null = null;
  setHandler(paymentMethodAttachedSignal, (attached) => {
    payment_method ??= attached.payment_method; // the first token wins; a duplicate is a no-op
  });
  // Only the newest news is kept: an older or duplicate event never moves an order back.
  setHandler(pspUpdateSignal, (update) => {
    const track = tracks.get(update.charge.order_reference);
    if (track !== undefined && (track.news === null || update.charge.version > track.news.charge.version)) track.news = update;
  });
  // Operators act on parked orders only; a command at any other time is ignored.
  setHandler(operatorCommandSignal, (command) => {
    const track = command.order_id === undefined ? undefined : tracks.get(command.order_id);
    if (track?.step === 'needs_attention' && track.command === null) track.command = command;
  });

  if (input.resume === undefined) {
    const ended = await checkoutAndRisk(run, () => payment_method);
    if (ended !== null) return ended;
  }
  state.stage = 'orders';
  await runOrders(run, [...tracks.values()]);
  if (input.capture_method === 'all_or_nothing') await captureAllOrNothing(run);
  const summary = await books.completePayment(input.payment_id);
  return finish(state, summary.status, null);
}

function newTrack(id: string, from: OrderResume | undefined): OrderTrack {
  const outcome = from?.outcome ?? null;
  const parked_reason = from?.phase === 'parked' ? from.reason : null;
  const wait_from_ms = from?.phase === 'waiting' ? from.wait_ms : null;
  return { id, step: from?.phase === 'done' ? 'done' : 'charging', outcome, news: null, command: null, idle: null, parked_reason, wait_from_ms };
}

/** The hosted-checkout wait (when there is one) and the risk check; the ended state if the payment stops here. */
async function checkoutAndRisk(run: Run, attached: () => string | null): Promise<PaymentState | null> {
  const { input, state } = run;
  if (input.checkout !== undefined) {
    state.status = 'requires_payment_method';
    state.stage = 'checkout';
    let payment_method = (await condition(() => attached() !== null, input.checkout.timeout_ms)) ? attached() : null;
    // Before giving up, ask the PSP once more: the webhook may be lost or late.
    payment_method ??= await run.psp.lookupCheckout(input.payment_id);
    if (payment_method === null) {
      const summary = await books.cancelPayment(input.payment_id, CHECKOUT_EXPIRED.code, CHECKOUT_EXPIRED.reason);
      for (const id of input.order_ids) state.orders[id] = 'canceled';
      return finish(state, summary.status, CHECKOUT_EXPIRED.code);
    }
    await books.attachPaymentMethod(input.payment_id, payment_method);
    state.status = 'processing';
    state.stage = 'risk_check';
    upsertSearchAttributes([{ key: SA.PaymentStatus, value: 'processing' }]);
  }
  const risk = await books.riskCheck(input.payment_id);
  if (risk.approved) return null;
  const summary = await books.rejectPayment(input.payment_id, risk.code, risk.reason);
  for (const id of input.order_ids) state.orders[id] = 'failed';
  return finish(state, summary.status, risk.code);
}

/**
 * Runs every order at once. When the history outgrows the plan while every unfinished order sits
 * idle in a wait, the payment continues as new with each order's resume point.
 */
async function runOrders(run: Run, tracks: OrderTrack[]): Promise<void> {
  let finished = 0;
  const all = Promise.allSettled(
    tracks.map(async (track) => {
      try {
        await runOrder(run, track);
      } finally {
        finished += 1;
      }
    }),
  );
  const idle = () => tracks.every((t) => t.step === 'done' || t.idle !== null);
  await condition(() => finished === tracks.length || (idle() && historyTooLong(run.plan)));
  if (finished < tracks.length) {
    const resume = Object.fromEntries(tracks.map((t): [string, OrderResume] => [t.id, t.step === 'done' && t.outcome !== null ? { phase: 'done', outcome: t.outcome } : (t.idle as OrderResume)]));
    await continueAsNew<typeof PaymentWorkflowV7>({ ...run.input, checkout: undefined, resume });
  }
  // Order steps retry until they park, so an order only throws on a bug: fail the workflow
  // visibly (the payment shows as failed in the UI), never silently stuck.
  const broken = (await all).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (broken !== undefined) throw broken.reason;
}

/** One seller's part: PSP charge → (wait for the PSP's decision) → books. Each step is idempotent. */
async function runOrder(run: Run, track: OrderTrack): Promise<void> {
  if (track.step === 'done') return;
  let outcome = track.outcome;
  if (outcome === null) {
    outcome = await withOperator(run, track, () => run.psp.chargeOrder(track.id), 'charge');
    noteOutcome(run, track, outcome);
  }
  if (WAITING.has(outcome.status)) outcome = await awaitDecision(run, track, outcome);
  // A capture was booked with the outcome (same transaction). All-or-nothing: the order ends
  // authorized, its hold booked here; the payment captures or voids every order at once.
  track.step = 'booking';
  if (outcome.status === 'authorized') await books.recordAuthorization(track.id);
  track.step = 'done';
}

function noteOutcome(run: Run, track: OrderTrack, outcome: ChargeOutcome): void {
  const before = track.outcome?.status ?? null;
  track.outcome = outcome;
  run.state.orders[track.id] = outcome.status;
  // The UI filter shows a wait while it lasts; the happy path writes the status once, at the end.
  if (outcome.status !== before && WAITING.has(outcome.status)) upsertSearchAttributes([{ key: SA.PaymentStatus, value: outcome.status }]);
}

/**
 * Sits out a `pending` / `requires_action` charge: a webhook signal wakes it at once, else it
 * polls the PSP with backoff. Only news newer than what the order has seen counts.
 */
async function awaitDecision(run: Run, track: OrderTrack, first: ChargeOutcome): Promise<ChargeOutcome> {
  let outcome = first;
  let seen_version = outcome.psp_version ?? 0;
  const take = (next: ChargeOutcome) => {
    outcome = next;
    seen_version = Math.max(seen_version, next.psp_version ?? 0);
    noteOutcome(run, track, next);
  };
  const poll = async () => take(await withOperator(run, track, () => run.psp.pollCharge(track.id), 'decision'));
  track.step = 'awaiting_psp';
  // Parked while polling when the payment continued as new: park again before any wait.
  if (track.parked_reason !== null) await poll();
  await waitForDecision(
    {
      decided: () => !WAITING.has(outcome.status),
      woken: () => (track.news?.charge.version ?? 0) > seen_version,
      onWoken: async () => {
        const update = track.news as PspChargeUpdate;
        seen_version = Math.max(seen_version, update.charge.version);
        take(await books.applyChargeUpdate(track.id, update.charge));
      },
      poll,
      idle: (wait_ms) => {
        track.idle = wait_ms === null ? null : { phase: 'waiting', outcome, wait_ms };
      },
    },
    run.plan,
    { from_ms: track.wait_from_ms ?? undefined, own_history: false },
  );
  return outcome;
}

/**
 * Runs a PSP step; when its retries run out the order is parked (a dead letter) until an operator
 * retries or cancels — unless the database shows the step did its work after all.
 */
async function withOperator(run: Run, track: OrderTrack, call: () => Promise<ChargeOutcome>, for_step: 'charge' | 'decision'): Promise<ChargeOutcome> {
  for (;;) {
    let reason = track.parked_reason;
    track.parked_reason = null;
    if (reason === null) {
      try {
        return await call();
      } catch (err) {
        if (!isStepFailure(err)) throw err;
        reason = reasonOf(err);
      }
    }
    const before = track.step;
    track.step = 'needs_attention';
    const decided = await parkUntilOperator(run, track, reason, for_step);
    if (decided !== null) return decided;
    track.step = before;
  }
}

/** Null after an operator's retry; the outcome if there was one after all, or after a cancel. */
async function parkUntilOperator(run: Run, track: OrderTrack, first_reason: string, for_step: 'charge' | 'decision'): Promise<ChargeOutcome | null> {
  let reason = first_reason;
  for (;;) {
    const already = await books.parkOrder(track.id, reason, for_step);
    if (already !== null) return already;
    upsertSearchAttributes([{ key: SA.PaymentStatus, value: 'needs_attention' }]);
    track.idle = { phase: 'parked', for_step, reason, outcome: track.outcome };
    await condition(() => track.command !== null);
    track.idle = null;
    const decision = track.command as OperatorCommand | null;
    track.command = null;
    if (decision === null) continue;
    if (decision.action === 'retry') {
      await books.resumeOrder(track.id);
      upsertSearchAttributes([{ key: SA.PaymentStatus, value: 'processing' }]);
      return null;
    }
    try {
      return await run.psp.cancelOrder(track.id, decision.reason);
    } catch (err) {
      if (!isStepFailure(err)) throw err;
      reason = reasonOf(err); // e.g. the charge is still undecided: stay parked, say why
    }
  }
}

/**
 * A step that ran out of attempts. A local activity's failure reaches the workflow as the
 * activity's own error (an ApplicationFailure, or a TimeoutFailure), not wrapped in an
 * ActivityFailure as a regular activity's is.
 */
function isStepFailure(err: unknown): err is ActivityFailure | ApplicationFailure | TimeoutFailure {
  return err instanceof ActivityFailure || err instanceof ApplicationFailure || err instanceof TimeoutFailure;
}

function reasonOf(err: ActivityFailure | ApplicationFailure | TimeoutFailure): string {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  return `${cause?.message ?? err.message}`.slice(0, REASON_CHARS_MAX);
}

/**
 * The saga's second step: every order authorized → capture them all; otherwise void the
 * authorized ones (the compensation) and the payment fails with nothing taken.
 */
async function captureAllOrNothing(run: Run): Promise<void> {
  const { state, psp } = run;
  const ids = Object.keys(state.orders);
  const authorized = ids.filter((id) => state.orders[id] === 'authorized');
  const all_authorized = authorized.length === ids.length;
  const outcomes = await Promise.all(authorized.map((id) => (all_authorized ? psp.captureOrder(id) : psp.voidOrder(id, SIBLING_FAILED))));
  for (const o of outcomes) state.orders[o.order_id] = o.status;
}

function finish(state: PaymentState, status: PaymentStatus, failure_code: string | null): PaymentState {
  state.status = status;
  state.stage = 'done';
  state.failure_code = failure_code;
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: status }]);
  return state;
}
