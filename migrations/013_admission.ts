import type { Knex } from 'knex';
import { loadEnv } from '../src/config';

/**
 * Admission control. Payment workflows are started by the API's dispatcher, not by the
 * request: a payment row carries the task queue of the API that accepted it, so a dispatcher only
 * starts payments meant for its own workers (one database may serve several task queues: a
 * canary, or the test suite's own-worker stacks). The partial index serves both the dispatcher's
 * oldest-first, round-robin-by-merchant claim and the backlog count per merchant at the door; it
 * holds only unstarted rows, so it stays as small as the backlog.
 */
export async function up(knex: Knex): Promise<void> {
  // Rows accepted before this migration and not started yet belong to this deployment's queue.
  const task_queue = process.env.TEMPORAL_TASK_QUEUE ?? loadEnv({}).TEMPORAL_TASK_QUEUE;
  await knex.raw('alter table payment_event add column task_queue text check (length(task_queue) between 1 and 200)');
  await knex.raw('update payment_event set task_queue = ? where workflow_started_at is null', [task_queue]);
  await knex.raw('create index payment_event_unstarted_by_queue on payment_event (task_queue, merchant_id, created_at) where workflow_started_at is null');
  // Its only reader was the relay's payment part, now the dispatcher's (the index above).
  await knex.raw('drop index payment_event_unstarted');
}

export async function down(): Promise<void> {
  throw new Error('013 is not reversible: the dispatcher needs task_queue on every unstarted payment');
}
