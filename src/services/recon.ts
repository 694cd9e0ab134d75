import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { AppError } from '../domain/errors';
import { reconciliationWorkflowId } from '../domain/workflow-ids';
import { checkRunDay } from '../domain/dates';
import { ReconciliationWorkflow, type ReconciliationInput } from '../workflows';

/** A settlement day a run may reconcile, or a 400 that says why not. */
export function runnableDay(value: string, now_ms: number = Date.now()): string {
  const checked = checkRunDay(value, now_ms);
  if ('day' in checked) return checked.day;
  if (checked.problem === 'in_future') throw new AppError('settlement_date_in_future', `${value} has not begun: a settlement day can be reconciled once it has begun (UTC)`, 'date');
  throw new AppError('parameter_invalid', 'date must be a calendar day as YYYY-MM-DD (UTC)', 'date');
}

/**
 * Starts the day's reconciliation workflow, or finds the one already running for it (the workflow
 * id is the day's: two requests never run one day twice at once). A finished day runs again.
 */
export async function startReconciliation(deps: { temporal: Client; task_queue: string }, date: string, fix_wait_ms?: number): Promise<{ workflow_id: string; already_running: boolean }> {
  const settlement_date = runnableDay(date);
  const workflow_id = reconciliationWorkflowId(deps.task_queue, settlement_date);
  const input: ReconciliationInput = { settlement_date, ...(fix_wait_ms === undefined ? {} : { fix_wait_ms }) };
  try {
    await deps.temporal.workflow.start(ReconciliationWorkflow, { taskQueue: deps.task_queue, workflowId: workflow_id, args: [input] });
    return { workflow_id, already_running: false };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { workflow_id, already_running: true };
    throw err;
  }
}
