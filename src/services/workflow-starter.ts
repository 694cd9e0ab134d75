import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { LIMITS, type WaitTimings } from '../config';
import { runPeriodically, type Periodic } from './periodic';
import { markWorkflowStarted, type UnstartedPayment } from '../aggregates/payment';
import type { PaymentMethodAttached } from '../workflows/contract';
import { PaymentWorkflowV7, PayoutWorkflow, RefundWorkflow, SA, paymentMethodAttachedSignal, type PaymentInput } from '../workflows';

export interface StarterDeps {
  db: Knex;
  temporal: Client;
  task_queue: string;
  log: Logger;
  timings: WaitTimings;
}

const START_DEADLINE_MS = 3_000;
const PAYMENT_WORKFLOW_TASK_TIMEOUT = '3s' as const;

/**
 * The AmountMinor search attribute, for searching only (the amount of record lives in
 * PostgreSQL). Temporal's Int attribute travels as a JS number, exact only up to 2^53 − 1 minor
 * units: beyond that the attribute is left out rather than set to a rounded value.
 */
function amountAttribute(amount_minor: string): { key: typeof SA.AmountMinor; value: number }[] {
  const minor = BigInt(amount_minor);
  return minor <= BigInt(Number.MAX_SAFE_INTEGER) ? [{ key: SA.AmountMinor, value: Number(minor) }] : [];
}

function inputOf(payment: UnstartedPayment, order_ids: string[], timings: WaitTimings): PaymentInput {
  const psp_poll = { initial_ms: timings.poll_initial_ms, max_ms: timings.poll_max_ms, history_events_max: timings.history_events_max };
  const input: PaymentInput = { payment_id: payment.id, merchant_id: payment.merchant_id, order_ids, psp_poll, psp_attempts_max: timings.psp_attempts_max };
  // No token at creation: the buyer pays on the PSP's hosted page and the workflow waits.
  if (payment.payment_method === null) input.checkout = { timeout_ms: timings.checkout_timeout_ms };
  if (payment.capture_method === 'all_or_nothing') input.capture_method = 'all_or_nothing';
  return input;
}

/**
 * Starts a payment's workflow and records that it started. Idempotent by workflow id: Temporal
 * refuses a second run (REJECT_DUPLICATE), which we treat as "already started". With `signal`
 * it is signal-with-start: a checkout webhook that beats the start still reaches the workflow.
 */
export async function startPaymentWorkflow(deps: StarterDeps, payment: UnstartedPayment, conn: Knex = deps.db, signal?: PaymentMethodAttached): Promise<void> {
  const input = inputOf(payment, payment.order_ids, deps.timings);
  const options = {
    workflowId: payment.workflow_id,
    taskQueue: deps.task_queue,
    args: [input] as [PaymentInput],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    // Every step runs as a local activity inside the workflow task, so a worker that dies mid-payment
    // is noticed when the task times out: 3 s instead of the default 10 s. A slower task is kept
    // alive by the SDK's task heartbeat (at 80 % of this), so a slow PSP never times it out.
    workflowTaskTimeout: PAYMENT_WORKFLOW_TASK_TIMEOUT,
    typedSearchAttributes: [
      { key: SA.PaymentId, value: payment.id },
      { key: SA.MerchantId, value: payment.merchant_id },
      { key: SA.PaymentStatus, value: input.checkout === undefined ? 'processing' : 'requires_payment_method' },
      { key: SA.Currency, value: payment.currency },
      ...amountAttribute(payment.amount_minor),
    ],
  };
  try {
    // A deadline bounds the gRPC client's own retries: with Temporal down, the dispatcher's pass
    // ends in seconds and the row stays unstarted for a later pass.
    await deps.temporal.connection.withDeadline(Date.now() + START_DEADLINE_MS, async () => {
      if (signal === undefined) await deps.temporal.workflow.start(PaymentWorkflowV7, options);
      else await deps.temporal.workflow.signalWithStart(PaymentWorkflowV7, { ...options, signal: paymentMethodAttachedSignal, signalArgs: [signal] });
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  await markWorkflowStarted(conn, payment.id, PaymentWorkflowV7.name);
  // Debug: 'payment accepted' already says the payment exists, the workflow's history when it ran.
  deps.log.debug({ payment_id: payment.id, workflow_id: payment.workflow_id, signal: signal === undefined ? null : 'paymentMethodAttached' }, 'payment workflow started');
}

/**
 * Workflows started for one row after its transaction commits (a refund, an on-demand payout):
 * the row's `workflow_started_at` is the start marker, as for payments, and the relay starts any
 * a crash or a Temporal outage left unstarted.
 */
export type RowWorkflowKind = 'refund' | 'payout';

async function startRowWorkflow(deps: StarterDeps, kind: RowWorkflowKind, row: { id: string; workflow_id: string }, conn: Knex = deps.db): Promise<void> {
  const options = { workflowId: row.workflow_id, taskQueue: deps.task_queue, workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE };
  const poll = { initial_ms: deps.timings.poll_initial_ms, max_ms: deps.timings.poll_max_ms };
  try {
    await deps.temporal.connection.withDeadline(Date.now() + START_DEADLINE_MS, async (): Promise<void> => {
      if (kind === 'refund') await deps.temporal.workflow.start(RefundWorkflow, { ...options, args: [{ refund_id: row.id }] });
      else await deps.temporal.workflow.start(PayoutWorkflow, { ...options, args: [{ payout_id: row.id, poll }] });
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  await conn(kind).where({ id: row.id }).whereNull('workflow_started_at').update({ workflow_started_at: conn.fn.now() });
  deps.log.info({ [`${kind}_id`]: row.id, workflow_id: row.workflow_id }, `${kind} workflow started`);
}

/** Starts now if it can; a failure is logged and left to the relay, never failing the API call. */
export async function tryStartRowWorkflow(deps: StarterDeps, kind: RowWorkflowKind, id: string): Promise<void> {
  const row = (await deps.db(kind).where({ id }).whereNull('workflow_started_at').first('id', 'workflow_id')) as { id: string; workflow_id: string } | undefined;
  if (row === undefined) return;
  try {
    await startRowWorkflow(deps, kind, row);
  } catch (err) {
    deps.log.warn({ err, kind, id }, 'workflow start failed; the relay will retry');
  }
}

async function relayRowsOnce(deps: StarterDeps, kind: RowWorkflowKind, grace_ms: number): Promise<number> {
  return await deps.db.transaction(async (trx) => {
    const due = (await trx(kind)
      .select('id', 'workflow_id')
      .whereNull('workflow_started_at')
      .where('created_at', '<', trx.raw(`now() - (? * interval '1 millisecond')`, [grace_ms]))
      .orderBy('created_at')
      .limit(LIMITS.relay_batch_max)
      .forUpdate()
      .skipLocked()) as { id: string; workflow_id: string }[];
    for (const row of due) await startRowWorkflow(deps, kind, row, trx);
    return due.length;
  });
}

/**
 * The outbox relay for refunds and payouts: a row commits with `workflow_started_at` null (the
 * start marker), and this loop starts any workflow a crash or a Temporal outage left unstarted.
 * Rows are claimed with SKIP LOCKED so several API processes can run it at once. Payments are not
 * here: admission control's dispatcher (src/services/admission.ts) is the one way they start.
 */
export async function relayOnce(deps: StarterDeps, grace_ms: number): Promise<number> {
  return (await relayRowsOnce(deps, 'refund', grace_ms)) + (await relayRowsOnce(deps, 'payout', grace_ms));
}

export function runRelay(deps: StarterDeps, opts: { interval_ms: number; grace_ms: number }): Periodic {
  return runPeriodically('workflow_start_relay', opts.interval_ms, deps.log, () => relayOnce(deps, opts.grace_ms));
}
