import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/**
 * Every activity's timeouts and retry policy, in one place (primer §4).
 * Exponential backoff from 1 s doubling to a cap (the seed's strategies: immediate = a 0 s
 * interval, fixed = coefficient 1, incremental ≈ a small coefficient; exponential is the default).
 * A PSP `Retry-After` overrides the next delay (nextRetryDelay, src/activities/psp-call.ts).
 * - PSP calls stop after PSP_CALL_ATTEMPTS_MAX attempts (12 ≈ 6 min of backoff): the order is then
 *   parked as `needs_attention` (a dead letter) for an operator to retry or cancel, rather than
 *   retrying silently for ever against a PSP that keeps refusing.
 * - Database steps are ours and idempotent: a database outage should make payments wait, not park
 *   them all, so their limit is time, not attempts: DATABASE_STEP_ELAPSED_MAX (a day). A database
 *   down that long is an incident; the workflow then fails visibly in the Temporal UI (find them
 *   by PaymentStatus) and is reset from there once the database is back.
 * Declines are not errors, so they are never retried.
 */
export const PSP_CALL_ATTEMPTS_MAX = 12;

export const PSP_CALL: ActivityOptions = {
  startToCloseTimeout: '30s',
  // The activity heartbeats every second while it waits on the PSP: a dead worker is noticed in
  // seconds, and the retry then asks the PSP by key before charging again.
  heartbeatTimeout: '5s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s', maximumAttempts: PSP_CALL_ATTEMPTS_MAX },
};

/** PSP_CALL with another attempt limit (workflow input; tests park orders in seconds). */
export function pspCallWith(attempts_max: number | undefined): ActivityOptions {
  if (attempts_max === undefined) return PSP_CALL;
  return { ...PSP_CALL, retry: { ...PSP_CALL.retry, maximumAttempts: attempts_max } };
}

const DATABASE_STEP_ELAPSED_MAX = '24h';

export const DATABASE_STEP: ActivityOptions = {
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: DATABASE_STEP_ELAPSED_MAX,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
};

/**
 * The same database steps as local activities (payments from the `local-database-steps` patch on): they run in the worker that runs the
 * workflow, recorded as one marker instead of a schedule/start/complete round trip through the
 * server — the server's CPU is what limits throughput on one box (docs/PERFORMANCE.md). Safe
 * because these steps are short and idempotent: after a crash a local activity may run again.
 * Backoff past `localRetryThreshold` is scheduled with a durable timer.
 */
export const LOCAL_DATABASE_STEP: LocalActivityOptions = {
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: DATABASE_STEP_ELAPSED_MAX,
  localRetryThreshold: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
};

/**
 * The PSP call as a local activity (PaymentWorkflowV7): run in the worker that runs the payment, recorded as one
 * marker, so a payment whose PSP answers at once needs one workflow task. Safe because every PSP
 * step is idempotent by key and asks the PSP first on a repeat; a crashed worker is noticed when
 * the workflow task times out, and its successor runs the step again. Backoff past
 * `localRetryThreshold` is a durable timer; attempts run out as PSP_CALL's do (then the order parks).
 */
export function localPspCallWith(attempts_max: number | undefined): LocalActivityOptions {
  return {
    startToCloseTimeout: PSP_CALL.startToCloseTimeout,
    localRetryThreshold: '10s',
    retry: { ...PSP_CALL.retry, ...(attempts_max === undefined ? {} : { maximumAttempts: attempts_max }) },
  };
}
