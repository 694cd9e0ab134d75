import { Client, Connection } from '@temporalio/client';
import { hasPoller, spawnEntry, waitUntil, type Stack } from '../e2e/stack';
import type { CeilingShape } from '../e2e/args';
import { round1 } from '../e2e/stats';
import { CeilingLeanWorkflow, CeilingMixedWorkflow, CeilingPaymentWorkflow } from './workflows';

const WORKFLOW_OF_SHAPE = { lean: CeilingLeanWorkflow, mixed: CeilingMixedWorkflow, children: CeilingPaymentWorkflow } as const;

/**
 * Ceiling: how many no-op payments of the chosen shape (./workflows.ts) per second Temporal and
 * one worker finish on this box. Closed loop on purpose (a fixed number of payments in flight, each started as the
 * previous one finishes): the aim is the most the pair can do, not latency at a given rate.
 */
const LIMITS = {
  // 32: on the 2-core box this is past the knee (8 in flight gave ~75 % of the most, 64 no more than 32) without
  // piling up enough work to collapse into workflow-task timeouts.
  in_flight: 32,
  steady_timeout_ms: 120_000, // how long to wait for the first full round of completions
  payments_max: 1_000_000, // bound on the loop whatever the clock does
  execute_timeout_ms: 60_000,
} as const;

export interface CeilingResult {
  shape: CeilingShape;
  ceiling_per_s: number;
  completed: number;
  failed: number;
  in_flight: number;
}

interface Window {
  warmup_s: number;
  duration_s: number;
  orders: number;
  ceiling_shape: CeilingShape;
}

export async function measureCeiling(stack: Stack, w: Window): Promise<CeilingResult> {
  const address = stack.temporal_address;
  if (address === null) throw new Error('the ceiling needs the Temporal server the bench started');
  const task_queue = `${stack.task_queue}-ceiling`;
  spawnEntry(stack, 'ceiling_worker', 'bench/ceiling/worker.ts', { TEMPORAL_ADDRESS: address, TEMPORAL_TASK_QUEUE: task_queue, WORKER_METRICS_PORT: '0' });
  await waitUntil('ceiling_worker', () => hasPoller(address, task_queue));
  const connection = await Connection.connect({ address });
  try {
    return await closedLoop(new Client({ connection }), task_queue, stack.hex, w);
  } finally {
    await connection.close();
  }
}

/**
 * The window opens once warm-up is over AND every lane has finished one payment (before that,
 * completions lag the starts and the rate reads low); it lasts duration_s.
 */
async function closedLoop(client: Client, task_queue: string, hex: string, w: Window): Promise<CeilingResult> {
  const t0 = Date.now();
  const clock = { window_start_ms: Infinity, window_end_ms: t0 + LIMITS.steady_timeout_ms + w.duration_s * 1_000 };
  let next = 0;
  let finished = 0;
  let completed = 0;
  let failed = 0;
  const lane = async () => {
    while (Date.now() < clock.window_end_ms && next < LIMITS.payments_max) {
      const n = next++;
      const payment_id = `ceil_${hex}_${n}`;
      const order_ids = Array.from({ length: w.orders }, (_, j) => `${payment_id}_${j}`);
      const ok = await client.workflow
        .execute(WORKFLOW_OF_SHAPE[w.ceiling_shape], { taskQueue: task_queue, workflowId: `ceiling-payment-${payment_id}`, args: [{ payment_id, order_ids }], workflowExecutionTimeout: LIMITS.execute_timeout_ms })
        .then(() => true, () => false);
      const end = Date.now();
      if (++finished === LIMITS.in_flight) {
        clock.window_start_ms = Math.max(end, t0 + w.warmup_s * 1_000);
        clock.window_end_ms = clock.window_start_ms + w.duration_s * 1_000;
      }
      if (end >= clock.window_start_ms && end < clock.window_end_ms) {
        if (ok) completed++;
        else failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: LIMITS.in_flight }, lane));
  return { shape: w.ceiling_shape, ceiling_per_s: round1(completed / w.duration_s), completed, failed, in_flight: LIMITS.in_flight };
}
