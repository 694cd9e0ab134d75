import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  executeChild,
  getExternalWorkflowHandle,
  proxyActivities,
  sleep,
  uuid4,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities, ReconFailure, ReconRunRef } from '../activities';
import { orderWorkflowId, reconciliationWorkflowId } from '../domain/workflow-ids';
import { previousDay } from '../domain/dates';
import type { RunTotals } from '../recon/store';
import { DATABASE_STEP, PSP_CALL } from './retry-policies';
import { pspUpdateSignal } from './contract';

type ReconSteps = Pick<Activities, 'beginReconRun' | 'failReconRun' | 'finishReconRun' | 'listReconAutoFixes' | 'noteReconItem' | 'recheckReconAutoFixes'>;

const books = proxyActivities<ReconSteps>(DATABASE_STEP);
const psp = proxyActivities<Pick<Activities, 'fetchChargeForRecon'>>(PSP_CALL);

/**
 * The file step streams a whole day (a million lines take minutes): a long start-to-close, a
 * heartbeat per batch so a dead worker is noticed in a minute, and a bounded number of attempts —
 * each attempt starts over in a fresh transaction (the failed one rolled back).
 */
const SETTLEMENT_FILE_STEP: ActivityOptions = {
  startToCloseTimeout: '2h',
  heartbeatTimeout: '2m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m', maximumAttempts: 8 },
};
const fileStep = proxyActivities<Pick<Activities, 'reconcileSettlementFile'>>(SETTLEMENT_FILE_STEP);

const FIX_RECHECK_FIRST_MS = 1_000;
const FIX_RECHECK_MAX_MS = 30_000;
const DEFAULT_FIX_WAIT_MS = 120_000;

export interface ReconciliationInput {
  settlement_date: string;
  /** How long to wait for auto-fixed orders to reach the books (RECON_FIX_WAIT_MS). */
  fix_wait_ms?: number;
}

export interface ReconciliationResult {
  run_id: string;
  settlement_date: string;
  totals: RunTotals & { auto_fixed: number; auto_fix_open: number };
}

/**
 * One settlement day: download and classify the PSP's file (one transaction), then fix what can
 * be fixed — an order the PSP settled but that still waits for a webhook gets the PSP's answer
 * as a `pspUpdate` signal, the same path a webhook takes — and re-check it. The rest stays in the
 * finance queue. Idempotent per day: a rerun finds the same differences and posts nothing new.
 */
export async function ReconciliationWorkflow(input: ReconciliationInput): Promise<ReconciliationResult> {
  const run: ReconRunRef = { run_id: `rcn_${uuid4().replace(/-/g, '').slice(0, 24)}`, settlement_date: input.settlement_date };
  await books.beginReconRun(run);
  let totals: RunTotals;
  try {
    totals = await fileStep.reconcileSettlementFile(run);
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const failure = failureOf(err);
    await books.failReconRun(run, failure);
    throw ApplicationFailure.create({ type: 'ReconciliationFailed', message: `reconciliation of ${run.settlement_date} failed: ${failure.reason}`, nonRetryable: true, details: [failure] });
  }
  const fixes = await books.listReconAutoFixes(run);
  for (const fix of fixes) {
    const problem = await signalFix(run, fix);
    if (problem !== null) await books.noteReconItem(fix.item_id, problem);
  }
  let check = await books.recheckReconAutoFixes(run);
  let auto_fixed = check.resolved;
  let wait_ms = FIX_RECHECK_FIRST_MS;
  let waited_ms = 0;
  const wait_max_ms = input.fix_wait_ms ?? DEFAULT_FIX_WAIT_MS;
  while (check.open > 0 && fixes.length > 0 && waited_ms < wait_max_ms) {
    await sleep(wait_ms);
    waited_ms += wait_ms;
    wait_ms = Math.min(wait_ms * 2, FIX_RECHECK_MAX_MS);
    check = await books.recheckReconAutoFixes(run);
    auto_fixed += check.resolved;
  }
  const final = { ...totals, auto_fixed, auto_fix_open: check.open };
  await books.finishReconRun(run, final);
  return { run_id: run.run_id, settlement_date: run.settlement_date, totals: final };
}

/** Null when the order's workflow got the PSP's answer; else why not (kept on the item). */
async function signalFix(run: ReconRunRef, fix: { order_id: string; psp_id: string; workflow_id?: string }): Promise<string | null> {
  try {
    const charge = await psp.fetchChargeForRecon(fix.psp_id);
    if (charge.status !== 'succeeded') return `not auto-fixed: the PSP now says ${charge.status}`;
    // Fixes listed before v7 name no workflow: theirs was the order's own.
    await getExternalWorkflowHandle(fix.workflow_id ?? orderWorkflowId(fix.order_id)).signal(pspUpdateSignal, { event_id: `recon:${run.run_id}:${fix.psp_id}`, charge });
    return null;
  } catch (err) {
    if (err instanceof ActivityFailure) return `not auto-fixed: the PSP could not be asked (${err.cause?.message ?? err.message})`;
    return `not auto-fixed: the order workflow could not be signalled (${(err as Error).message})`;
  }
}

function failureOf(err: ActivityFailure): ReconFailure {
  const cause = err.cause;
  const detail = cause instanceof ApplicationFailure ? (cause.details?.[0] as Partial<ReconFailure> | undefined) : undefined;
  return { line_no: typeof detail?.line_no === 'number' ? detail.line_no : null, reason: detail?.reason ?? cause?.message ?? err.message };
}

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export interface NightlyReconciliationInput {
  task_queue: string;
  fix_wait_ms?: number;
}

/**
 * Started by the nightly Temporal Schedule: reconciles the UTC day before the schedule's nominal
 * time (not the clock, so a late or replayed start reconciles the same day) as the day's own
 * workflow id, shared with `payctl recon run`: a day already being reconciled is not started twice.
 */
export async function NightlyReconciliationWorkflow(input: NightlyReconciliationInput): Promise<ReconciliationResult | 'already_running'> {
  const nominal = workflowInfo().typedSearchAttributes.get(SCHEDULED_START) ?? workflowInfo().startTime;
  const settlement_date = previousDay(nominal.getTime());
  try {
    return await executeChild(ReconciliationWorkflow, {
      workflowId: reconciliationWorkflowId(input.task_queue, settlement_date),
      args: [{ settlement_date, fix_wait_ms: input.fix_wait_ms }],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return 'already_running';
    throw err;
  }
}
