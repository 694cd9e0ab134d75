import { ApplicationFailure, Context } from '@temporalio/activity';
import { PspError } from '../psp/client';
import { FAILURE_TYPES } from '../workflows/contract';

/** How a PSP call that failed reaches the workflow: an ApplicationFailure typed by its kind. */
const PSP_FAILURE_TYPES = { definitive: FAILURE_TYPES.psp_definitive, retryable: FAILURE_TYPES.psp_retryable, unknown_outcome: FAILURE_TYPES.psp_unknown_outcome } as const;

const HEARTBEAT_EVERY_MS = 1_000;

/** Keeps the activity visibly alive while it waits on the PSP, so a dead worker is noticed in seconds. */
export async function withHeartbeat<T>(work: Promise<T>): Promise<T> {
  const ctx = Context.current();
  // A local activity has no heartbeat: its workflow task's timeout notices a dead worker instead.
  if (ctx.info.isLocal) return await work;
  const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

export function toActivityFailure(err: PspError): ApplicationFailure {
  return ApplicationFailure.create({
    type: PSP_FAILURE_TYPES[err.kind],
    message: `${err.code}: ${err.message}`,
    // Unknown outcome is retried too: the next attempt asks the PSP by key before charging.
    nonRetryable: false,
    nextRetryDelay: err.retry_after_s === undefined ? undefined : `${err.retry_after_s}s`,
  });
}

export function rethrowPsp(err: unknown): never {
  throw err instanceof PspError ? toActivityFailure(err) : err;
}
