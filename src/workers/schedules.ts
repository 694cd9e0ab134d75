import { Client, ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleOptionsAction } from '@temporalio/client';
import type { Logger } from '../logger';
import { NightlyReconciliationWorkflow, PayoutRunWorkflow, type NightlyReconciliationInput, type PayoutRunInput } from '../workflows';
import type { PayoutPoll } from '../workflows/payout';

export interface ReconScheduleOptions {
  task_queue: string;
  /** A 5-field cron in UTC, or 'off'. */
  cron: string;
  fix_wait_ms: number;
}

/** One schedule per deployment (task queue), so stacks sharing a Temporal namespace stay apart. */
export const reconScheduleId = (task_queue: string): string => `recon-nightly-${task_queue}`;

function action(opts: ReconScheduleOptions): ScheduleOptionsAction {
  const input: NightlyReconciliationInput = { task_queue: opts.task_queue, fix_wait_ms: opts.fix_wait_ms };
  return { type: 'startWorkflow', workflowType: NightlyReconciliationWorkflow, taskQueue: opts.task_queue, workflowId: reconScheduleId(opts.task_queue), args: [input] };
}

/**
 * Creates a schedule at start-up, or brings an existing one up to date (every worker does this;
 * the first creates, the rest update to the same thing). A run still going at the next nominal
 * time is not doubled (overlap SKIP); a schedule that missed its time while the server was down
 * catches up within a day. 'off' deletes it.
 */
async function ensureSchedule(client: Client, schedule_id: string, cron: string, schedule_action: ScheduleOptionsAction, log: Logger): Promise<void> {
  const handle = client.schedule.getHandle(schedule_id);
  if (cron === 'off') {
    await handle.delete().catch((err: unknown) => {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    });
    log.info({ schedule_id }, 'schedule off');
    return;
  }
  const spec = { cronExpressions: [cron] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' as const };
  try {
    await client.schedule.create({ scheduleId: schedule_id, spec, action: schedule_action, policies });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await handle.update((previous) => ({ ...previous, spec, action: schedule_action, policies: { ...previous.policies, ...policies } }));
  }
  log.info({ schedule_id, cron }, 'schedule in place');
}

/** The nightly reconciliation (docs/RECONCILIATION.md). */
export async function ensureReconSchedule(client: Client, opts: ReconScheduleOptions, log: Logger): Promise<void> {
  await ensureSchedule(client, reconScheduleId(opts.task_queue), opts.cron, action(opts), log);
}

export const payoutScheduleId = (task_queue: string): string => `payouts-daily-${task_queue}`;

/** The daily pay-out run: each payable seller and currency paid once per nominal day. */
export async function ensurePayoutSchedule(client: Client, opts: { task_queue: string; cron: string; poll: PayoutPoll }, log: Logger): Promise<void> {
  const input: PayoutRunInput = { poll: opts.poll };
  const run: ScheduleOptionsAction = { type: 'startWorkflow', workflowType: PayoutRunWorkflow, taskQueue: opts.task_queue, workflowId: `payout-run-${opts.task_queue}`, args: [input] };
  await ensureSchedule(client, payoutScheduleId(opts.task_queue), opts.cron, run, log);
}
