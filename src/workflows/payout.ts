import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { continueAsNew, ParentClosePolicy, proxyActivities, startChild, workflowInfo } from '@temporalio/workflow';
import type { Activities, PayoutOutcome } from '../activities';
import { dayOf } from '../domain/dates';
import { DATABASE_STEP, PSP_CALL } from './retry-policies';
import { waitForDecision } from './wait';

// The PSP calls are idempotent by our payout id: retried for as long as it takes (a day at most),
// since giving up could leave money sent but not booked.
const psp = proxyActivities<Pick<Activities, 'payOutAtPsp' | 'pollPayout'>>({ ...PSP_CALL, scheduleToCloseTimeout: '24h', retry: { ...PSP_CALL.retry, maximumAttempts: undefined } });
const books = proxyActivities<Pick<Activities, 'settlePayout' | 'reservePayoutsForRun'>>(DATABASE_STEP);

export interface PayoutPoll {
  initial_ms: number;
  max_ms: number;
}

export interface PayoutInput {
  payout_id: string;
  poll: PayoutPoll;
}

const HISTORY_EVENTS_MAX = 2_000;

/**
 * One payout (reserved already: its amount sits in seller_payout_clearing): the PSP is asked to
 * pay, the decision is polled for with backoff (a bank takes its time), then booked — paid settles
 * clearing against the PSP balance, failed gives the amount back to the seller.
 */
export async function PayoutWorkflow(input: PayoutInput): Promise<PayoutOutcome> {
  let outcome = await psp.payOutAtPsp(input.payout_id);
  // No webhook wakes a payout: it polls (payout.* events are for reconciliation and the audit trail).
  const waited = await waitForDecision(
    {
      decided: () => outcome.status !== 'pending',
      woken: () => false,
      onWoken: async () => undefined,
      poll: async () => {
        outcome = await psp.pollPayout(input.payout_id);
      },
    },
    { ...input.poll, history_events_max: HISTORY_EVENTS_MAX },
    { own_history: true },
  );
  // The PSP call is idempotent by our payout id: the next run finds the same payout.
  if (!waited.decided) await continueAsNew<typeof PayoutWorkflow>(input);
  return await books.settlePayout(outcome);
}

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export interface PayoutRunInput {
  poll: PayoutPoll;
}

/**
 * Started by the daily Schedule: the run day is the schedule's nominal day (not the clock), every
 * payable seller and currency gets one payout for it, each as its own workflow whose id names
 * seller, currency and day — a second run of the day finds the same payouts and starts nothing new.
 */
export async function PayoutRunWorkflow(input: PayoutRunInput): Promise<{ run_date: string; payouts: number }> {
  const nominal = workflowInfo().typedSearchAttributes.get(SCHEDULED_START) ?? workflowInfo().startTime;
  const run_date = dayOf(nominal.getTime());
  const payouts = await books.reservePayoutsForRun(run_date);
  for (const p of payouts) {
    try {
      await startChild(PayoutWorkflow, { workflowId: p.workflow_id, args: [{ payout_id: p.payout_id, poll: input.poll }], parentClosePolicy: ParentClosePolicy.ABANDON });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
  return { run_date, payouts: payouts.length };
}
