import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/**
 * Every activity's timeouts and retry policy, in one place (primer §4).
 * Exponential backoff from 1 s doubling to a cap. Attempts are unlimited on purpose for now: a
 * PSP or database outage makes orders wait, never fail, and each waiting order is visible in the
 * Temporal UI with its attempt count. (Parking exhausted orders as `needs_attention` comes with
 * the failures issue.) Declines are not errors, so they are never retried.
 */
export const PSP_CALL: ActivityOptions = {
  startToCloseTimeout: '30s',
  // The activity heartbeats every second while it waits on the PSP: a dead worker is noticed in
  // seconds, and the retry then asks the PSP by key before charging again.
  heartbeatTimeout: '5s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' },
};

export const DATABASE_STEP: ActivityOptions = {
  startToCloseTimeout: '15s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
};

/**
 * The same database steps as local activities (v3): they run in the worker that runs the
 * workflow, recorded as one marker instead of a schedule/start/complete round trip through the
 * server — the server's CPU is what limits throughput on one box (docs/PERFORMANCE.md). Safe
 * because these steps are short and idempotent: after a crash a local activity may run again.
 * Backoff past `localRetryThreshold` is scheduled with a durable timer.
 */
export const LOCAL_DATABASE_STEP: LocalActivityOptions = {
  startToCloseTimeout: '15s',
  localRetryThreshold: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
};
