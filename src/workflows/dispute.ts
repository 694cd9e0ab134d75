import { condition, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities, PspDispute } from '../activities';
import { DATABASE_STEP, PSP_CALL } from './retry-policies';
import { disputeUpdateSignal } from './signals';

const books = proxyActivities<Pick<Activities, 'openDispute' | 'closeDispute'>>(DATABASE_STEP);
const psp = proxyActivities<Pick<Activities, 'fetchDispute'>>(PSP_CALL);

export interface DisputeInput {
  dispute_id: string;
  /** Without a webhook, how often to ask the PSP whether the bank has decided. */
  poll_ms: number;
}

const decided = (d: PspDispute | null): boolean => d !== null && (d.status === 'won' || d.status === 'lost');

/**
 * One dispute, started by its first webhook (signal-with-start): the hold is booked at once, then
 * the workflow waits for the bank's decision — a webhook wakes it, or it asks the PSP every
 * `poll_ms` — and books won or lost. Only newer news counts (by the dispute's version).
 */
export async function DisputeWorkflow(input: DisputeInput): Promise<PspDispute['status']> {
  let latest: PspDispute | null = null;
  setHandler(disputeUpdateSignal, (u) => {
    if (latest === null || u.dispute.version > latest.version) latest = u.dispute;
  });
  if (!(await condition(() => latest !== null, input.poll_ms))) latest = await psp.fetchDispute(input.dispute_id);
  const opened = latest as PspDispute | null;
  if (opened === null) throw new Error(`assertion: dispute ${input.dispute_id} known`);
  await books.openDispute(opened);
  while (!decided(latest)) {
    if (!(await condition(() => decided(latest), input.poll_ms))) {
      const asked = await psp.fetchDispute(input.dispute_id);
      const current = latest as PspDispute | null;
      if (current === null || asked.version > current.version) latest = asked;
    }
  }
  const closed = latest as PspDispute | null;
  if (closed === null) throw new Error('assertion: a decided dispute');
  await books.closeDispute(closed);
  return closed.status;
}
