import {
  ActivityFailure,
  condition,
  continueAsNew,
  defineQuery,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, ChargeOutcome, OperatorCommand, PspChargeUpdate } from '../../activities';
import { DATABASE_STEP, LOCAL_DATABASE_STEP, pspCallWith } from '../retry-policies';
import { SA, operatorCommandSignal, pspUpdateSignal, type PollTimings } from '../contract';

type PspSteps = Pick<Activities, 'chargeOrder' | 'pollCharge' | 'cancelOrder'>;
const books = proxyActivities<Pick<Activities, 'recordCapture' | 'creditWallet' | 'postLedger'>>(DATABASE_STEP);
const localBooks = proxyLocalActivities<Pick<Activities, 'recordCapture' | 'applyChargeUpdate' | 'parkOrder' | 'resumeOrder' | 'recordAuthorization'>>(LOCAL_DATABASE_STEP);
const REASON_CHARS_MAX = 500;

// Inputs without timings get the production defaults (src/config.ts).
const DEFAULT_POLL: Required<PollTimings> = { initial_ms: 60_000, max_ms: 3_600_000, history_events_max: 2_000 };

export interface PaymentOrderInput {
  order_id: string;
  payment_id: string;
  psp_poll?: PollTimings;
  /** Attempts per PSP call before the order is parked as `needs_attention` (default PSP_CALL's). */
  psp_attempts_max?: number;
}

export type OrderStep = 'charging' | 'awaiting_psp' | 'needs_attention' | 'recording_capture' | 'crediting_wallet' | 'posting_ledger' | 'done';
export const orderStepQuery = defineQuery<{ order_id: string; step: OrderStep; outcome: ChargeOutcome | null }>('status');

const WAITING: ReadonlySet<ChargeOutcome['status']> = new Set(['pending', 'requires_action']);

/**
 * One seller's part of a checkout: PSP charge → (wait for the PSP's decision) → wallet credit and
 * ledger post. Each activity re-reads the order and is idempotent (the charge by the PSP
 * idempotency key, the books by the posting's unique reference, news by the charge version), so
 * a crash anywhere repeats nothing and skips nothing.
 */
export async function PaymentOrderWorkflow(input: PaymentOrderInput): Promise<ChargeOutcome> {
  const psp = proxyActivities<PspSteps>(pspCallWith(input.psp_attempts_max));
  let step: OrderStep = 'charging';
  let outcome: ChargeOutcome | null = null;
  let news: PspChargeUpdate | null = null;
  let command: OperatorCommand | null = null;
  setHandler(orderStepQuery, () => ({ order_id: input.order_id, step, outcome }));
  // Only the newest news is kept: an older or duplicate event never moves the order back.
  setHandler(pspUpdateSignal, (update) => {
    if (news === null || update.charge.version > news.charge.version) news = update;
  });
  // Operators act on parked orders only; a command at any other time is ignored.
  setHandler(operatorCommandSignal, (c) => {
    if (step === 'needs_attention' && command === null) command = c;
  });

  const desk: OperatorDesk = {
    order_id: input.order_id,
    psp,
    async nextCommand() {
      await condition(() => command !== null);
      const decision = command as OperatorCommand | null;
      command = null;
      return decision;
    },
  };

  /**
   * Runs a PSP step; if its retries run out, parks the order until an operator retries or
   * cancels (unless the database shows the step did its work after all).
   */
  async function withOperator(call: () => Promise<ChargeOutcome>, for_step: 'charge' | 'decision'): Promise<ChargeOutcome> {
    for (;;) {
      let reason: string;
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof ActivityFailure)) throw err;
        reason = reasonOf(err);
      }
      const before = step;
      step = 'needs_attention';
      const decided = await parkUntilOperator(desk, reason, for_step);
      if (decided !== null) return decided;
      step = before;
    }
  }

  outcome = await withOperator(() => psp.chargeOrder(input.order_id), 'charge');
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: outcome.status }]);
  if (WAITING.has(outcome.status)) {
    step = 'awaiting_psp';
    outcome = await awaitDecision(input, outcome, () => news, () => withOperator(() => psp.pollCharge(input.order_id), 'decision'));
  }
  // All-or-nothing: the order ends authorized; its payment captures or voids every order at once.
  if (outcome.status === 'authorized') await localBooks.recordAuthorization(input.order_id);
  if (outcome.status === 'succeeded') {
    await bookCapture(input.order_id, (s) => {
      step = s;
    });
  }
  step = 'done';
  return outcome;
}

/** What parking needs of its order workflow: the order, its PSP steps, and the operator's next command. */
interface OperatorDesk {
  order_id: string;
  psp: ReturnType<typeof proxyActivities<PspSteps>>;
  nextCommand(): Promise<OperatorCommand | null>;
}

/** Null after a retry; the outcome if there was one after all, or after a cancel. */
async function parkUntilOperator(desk: OperatorDesk, first_reason: string, for_step: 'charge' | 'decision'): Promise<ChargeOutcome | null> {
  let reason = first_reason;
  for (;;) {
    // Histories from before this check recorded no result (undefined): they did park.
    const already = (await localBooks.parkOrder(desk.order_id, reason, for_step)) ?? null;
    if (already !== null) return already;
    upsertSearchAttributes([{ key: SA.PaymentStatus, value: 'needs_attention' }]);
    const decision = await desk.nextCommand();
    if (decision === null) continue;
    if (decision.action === 'retry') {
      await localBooks.resumeOrder(desk.order_id);
      upsertSearchAttributes([{ key: SA.PaymentStatus, value: 'executing' }]);
      return null;
    }
    try {
      return await desk.psp.cancelOrder(desk.order_id, decision.reason);
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      reason = reasonOf(err); // e.g. the charge is still undecided: stay parked, say why
    }
  }
}

/**
 * Books a captured order. The wallet is the seller-payable balance, so crediting it and posting
 * the ledger are one balanced posting; histories recorded before that patch keep replaying the
 * two-step path. The posting is a local activity (see LOCAL_DATABASE_STEP) where the history has
 * that patch; the PSP call stays a regular activity, with heartbeats and a server-side timeout,
 * since it talks to the outside world.
 */
async function bookCapture(order_id: string, setStep: (step: OrderStep) => void): Promise<void> {
  if (patched('books-in-one-posting')) {
    setStep('recording_capture');
    await (patched('local-database-steps') ? localBooks : books).recordCapture(order_id);
    return;
  }
  setStep('crediting_wallet');
  await books.creditWallet(order_id);
  setStep('posting_ledger');
  await books.postLedger(order_id);
}

function reasonOf(err: ActivityFailure): string {
  const cause = err.cause?.message ?? err.message;
  return `${cause}`.slice(0, REASON_CHARS_MAX);
}

/**
 * Sits out a `pending` / `requires_action` charge on durable timers: a webhook signal wakes it
 * at once; without one it polls the PSP, backing off from `initial_ms` to `max_ms`. Histories
 * recorded before v4 never reach this (their charges were always decided at once).
 */
async function awaitDecision(input: PaymentOrderInput, first: ChargeOutcome, latest: () => PspChargeUpdate | null, poll_once: () => Promise<ChargeOutcome>): Promise<ChargeOutcome> {
  const poll = { ...DEFAULT_POLL, ...input.psp_poll };
  let outcome = first;
  let seen_version = outcome.psp_version ?? 0;
  let wait_ms = poll.initial_ms;
  while (WAITING.has(outcome.status)) {
    const before = outcome.status;
    const woken = await condition(() => (latest()?.charge.version ?? 0) > seen_version, wait_ms);
    const update = latest();
    if (woken && update !== null) {
      outcome = await localBooks.applyChargeUpdate(input.order_id, update.charge);
      seen_version = Math.max(seen_version, update.charge.version, outcome.psp_version ?? 0);
    } else {
      outcome = await poll_once();
      seen_version = Math.max(seen_version, outcome.psp_version ?? 0);
      wait_ms = Math.min(wait_ms * 2, poll.max_ms);
    }
    if (outcome.status !== before) upsertSearchAttributes([{ key: SA.PaymentStatus, value: outcome.status }]);
    if (WAITING.has(outcome.status) && (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > poll.history_events_max)) {
      await continueAsNew<typeof PaymentOrderWorkflow>(input);
    }
  }
  return outcome;
}
