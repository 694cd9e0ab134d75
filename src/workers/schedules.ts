import { Client, ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleOptionsAction } from '@temporalio/client';
import type { Logger } from '../logger';
import type { NightlyReconciliationInput } from '../workflows/reconciliation';

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
  return { type: 'startWorkflow', workflowType: 'NightlyReconciliationWorkflow', taskQueue: opts.task_queue, workflowId: reconScheduleId(opts.task_queue), args: [input] };
}

/**
 * Creates the nightly reconciliation schedule at start-up, or brings an existing one up to date
 * (every worker does this; the first creates, the rest update to the same thing). A run still
 * going at the next nominal time is not doubled (overlap SKIP); a schedule that missed its time
 * while the server was down catches up within a day.
 */
export async function ensureReconSchedule(client: Client, opts: ReconScheduleOptions, log: Logger): Promise<void> {
  const schedule_id = reconScheduleId(opts.task_queue);
  const handle = client.schedule.getHandle(schedule_id);
  if (opts.cron === 'off') {
    await handle.delete().catch((err: unknown) => {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    });
    log.info({ schedule_id }, 'nightly reconciliation schedule off');
    return;
  }
  const spec = { cronExpressions: [opts.cron] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' as const };
  try {
    await client.schedule.create({ scheduleId: schedule_id, spec, action: action(opts), policies });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await handle.update((previous) => ({ ...previous, spec, action: action(opts), policies: { ...previous.policies, ...policies } }));
  }
  log.info({ schedule_id, cron: opts.cron }, 'nightly reconciliation schedule in place');
}
