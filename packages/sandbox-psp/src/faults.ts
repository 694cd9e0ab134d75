import express, { type NextFunction, type Request, type Response } from 'express';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Deps } from './app';
import { FAULT_KNOB_LIMITS, type FaultKnobs } from './config';
import { SandboxError } from './errors';
import { KnobState, mountKnobRoutes } from './knobs';
import { chance } from './events';
import { listAttempts, REQUEST_LOG_LIMITS, toAttemptJson } from './request-log';

/**
 * Fault injection for the money-moving POSTs under /v1/charges (create, capture, void, refund):
 * the failures our payment app must survive without charging twice. Per request, in this order:
 * rate limit (429), then fail (503), both before anything is done; then the request is
 * processed and committed; then, maybe, no answer at all (the caller times out). GETs are never
 * touched: a caller must always be able to ask what happened.
 */

// A 429 says "try again in a second": the bucket refills continuously, one second refills it all.
const RATE_LIMITED_RETRY_AFTER_S = 1;
const MS_PER_S = 1_000;

/** The knobs live in memory: env gives the start values, POST /_sandbox/faults changes them. */
export class FaultKnobState extends KnobState<FaultKnobs> {
  private tokens = 0;
  private refilled_at_ms = 0;

  constructor(start: FaultKnobs) {
    super(start);
    this.fillBucket();
  }

  /** A new rate starts with a full bucket, so a test's burst is measured from a known state. */
  override set(change: Partial<FaultKnobs>): FaultKnobs {
    const knobs = super.set(change);
    if (change.rate_limit_per_s !== undefined) this.fillBucket();
    return knobs;
  }

  /** Takes a token from the bucket; false when it is empty. Always true with the limit off. */
  admit(now_ms = performance.now()): boolean {
    const rate_per_s = this.current.rate_limit_per_s;
    if (rate_per_s === 0) return true;
    const elapsed_s = Math.max(0, now_ms - this.refilled_at_ms) / MS_PER_S;
    this.tokens = Math.min(this.capacity(), this.tokens + elapsed_s * rate_per_s);
    this.refilled_at_ms = now_ms;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Countdown first, then the rate: fail_next=2 fails exactly the next two requests. */
  failNow(): boolean {
    if (this.current.fail_next > 0) {
      this.current.fail_next -= 1;
      return true;
    }
    return chance(this.current.error_rate);
  }

  /** Same order for the timeout: countdown first, then the rate. */
  timeoutNow(): boolean {
    if (this.current.timeout_next > 0) {
      this.current.timeout_next -= 1;
      return true;
    }
    return chance(this.current.timeout_after_charge_rate);
  }

  /** One second's worth of requests may come at once; at least one, so any rate admits some. */
  private capacity(): number {
    return Math.max(1, this.current.rate_limit_per_s);
  }

  private fillBucket(): void {
    this.tokens = this.capacity();
    this.refilled_at_ms = performance.now();
  }
}

/**
 * Route middleware in front of a money-moving POST (after authentication and body parsing, so a
 * refused attempt is still logged with its order reference). A refusal is an error like any
 * other: the error handler answers it and writes the request log.
 */
export function refuseByFaults(faults: FaultKnobState) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    if (!faults.admit()) {
      res.set('Retry-After', String(RATE_LIMITED_RETRY_AFTER_S));
      throw new SandboxError('rate_limited', 'too many requests (sandbox rate limit); nothing was done, retry later');
    }
    if (faults.failNow()) {
      const { retry_after_s } = faults.get();
      if (retry_after_s > 0) res.set('Retry-After', String(retry_after_s));
      throw new SandboxError('psp_unavailable', 'the PSP is temporarily unavailable (sandbox fault); nothing was done');
    }
    next();
  };
}

/**
 * The "PSP charged, caller timed out" case: the work is committed, the answer never comes. The
 * connection is held, then destroyed without a response; a caller that hangs up first ends it.
 */
export async function holdWithoutAnswer(res: Response, hold_ms: number): Promise<void> {
  const hung_up = new AbortController();
  const onClose = (): void => hung_up.abort();
  res.once('close', onClose);
  try {
    await sleep(hold_ms, undefined, { signal: hung_up.signal });
  } catch {
    // The caller hung up first: nothing is left to drop.
  } finally {
    res.off('close', onClose);
  }
  res.socket?.destroy();
}

// ---------------------------------------------------------------------------------------------
// Test-only admin: /_sandbox/faults (knobs) and /_sandbox/requests (the request log).

const rate = z.number().min(0).max(1);
const count = (max: number) => z.number().int().min(0).max(max);

const FaultKnobsBodySchema = z.strictObject({
  error_rate: rate.optional(),
  fail_next: count(FAULT_KNOB_LIMITS.countdown_max).optional(),
  retry_after_s: count(FAULT_KNOB_LIMITS.retry_after_s_max).optional(),
  rate_limit_per_s: count(FAULT_KNOB_LIMITS.rate_limit_per_s_max).optional(),
  timeout_after_charge_rate: rate.optional(),
  timeout_next: count(FAULT_KNOB_LIMITS.countdown_max).optional(),
  timeout_hold_ms: count(FAULT_KNOB_LIMITS.timeout_hold_ms_max).optional(),
  latency_ms: count(FAULT_KNOB_LIMITS.latency_ms_max).optional(),
});

function parseOrderReference(query: Request['query']): string {
  const value = query['order_reference'];
  const max = REQUEST_LOG_LIMITS.value_chars_max;
  if (typeof value !== 'string' || value.length < 1 || value.length > max) {
    throw new SandboxError('parameter_invalid', `order_reference is required, 1 to ${max} characters`, 'order_reference');
  }
  return value;
}

/** Mounted at /_sandbox behind the JSON parser (app.ts). */
export function createFaultAdminRouter(deps: Pick<Deps, 'db' | 'faults' | 'log'>): express.Router {
  const router = express.Router();
  mountKnobRoutes(router, 'faults', deps.faults, FaultKnobsBodySchema, deps.log);
  router.get('/requests', async (req, res) => {
    const attempts = await listAttempts(deps.db, parseOrderReference(req.query));
    res.json({ object: 'list', data: attempts.map(toAttemptJson) });
  });
  return router;
}
