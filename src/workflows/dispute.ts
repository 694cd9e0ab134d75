import { continueAsNew, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities, PspDispute } from '../activities';
import { DATABASE_STEP, PSP_CALL } from './retry-policies';
import { disputeUpdateSignal } from './contract';
import { waitForDecision } from './wait';

const books = proxyActivities<Pick<Activities, 'openDispute' | 'closeDispute'>>(DATABASE_STEP);
const psp = proxyActivities<Pick<Activities, 'fetchDispute'>>(PSP_CALL);

export interface DisputeInput {
  dispute_id: string;
  /** Without a webhook, how often to ask the PSP whether the bank has decided. */
  poll_ms: number;
  /** Set by continue-as-new only: the hold is booked and this is the newest news seen. */
  opened?: PspDispute;
}

// A dispute can wait months for the bank: the history starts over well before it grows large.
const HISTORY_EVENTS_MAX = 2_000;

const decided = (d: PspDispute | null): boolean => d !== null && (d.status === 'won' || d.status === 'lost');

/**
 * One dispute, started by its first webhook (signal-with-start): the hold is booked at once, then
 * the workflow waits for the bank's decision — a webhook wakes it, or it asks the PSP every
 * `poll_ms` — and books won or lost. Only newer news counts (by the dispute's version).
 */
export async function DisputeWorkflow(input: DisputeInput): Promise<PspDispute['status']> {
  let latest: PspDispute | null = input.opened ?? null;
  setHandler(disputeUpdateSignal, (u) => {
    if (latest === null || u.dispute.version > latest.version) latest = u.dispute;
  });
  const plan = { initial_ms: input.poll_ms, max_ms: input.poll_ms, history_events_max: HISTORY_EVENTS_MAX };
  const ask = async () => {
    const asked = await psp.fetchDispute(input.dispute_id);
    const current = latest as PspDispute | null;
    if (current === null || asked.version > current.version) latest = asked;
  };
  const until = (done: () => boolean) => ({ decided: done, woken: done, onWoken: async () => undefined, poll: ask });
  if (input.opened === undefined) {
    await waitForDecision(until(() => latest !== null), plan, { own_history: false });
    const opened = latest as PspDispute | null;
    if (opened === null) throw new Error(`assertion: dispute ${input.dispute_id} known`);
    await books.openDispute(opened);
  }
  const waited = await waitForDecision(until(() => decided(latest)), plan, { own_history: true });
  if (!waited.decided) await continueAsNew<typeof DisputeWorkflow>({ ...input, opened: latest ?? undefined });
  const closed = latest as PspDispute | null;
  if (closed === null) throw new Error('assertion: a decided dispute');
  await books.closeDispute(closed);
  return closed.status;
}
