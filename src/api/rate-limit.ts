import type { RequestHandler } from 'express';
import { AppError } from '../domain/errors';
import { merchantOf } from './auth';

const BUCKETS_MAX = 100_000; // bounded memory: oldest buckets are dropped past this

/**
 * A token bucket per API key, in this process's memory: with N API processes the effective limit
 * is N times higher (documented; a shared limiter belongs at the edge).
 */
export function rateLimit(opts: { per_s: number; burst: number; now_ms?: () => number }): RequestHandler {
  const now_ms = opts.now_ms ?? (() => Date.now());
  const buckets = new Map<string, { tokens: number; at_ms: number }>();
  return (_req, res, next) => {
    const key = merchantOf(res).api_key_id;
    const now = now_ms();
    const bucket = buckets.get(key) ?? { tokens: opts.burst, at_ms: now };
    bucket.tokens = Math.min(opts.burst, bucket.tokens + ((now - bucket.at_ms) / 1000) * opts.per_s);
    bucket.at_ms = now;
    buckets.delete(key);
    buckets.set(key, bucket); // re-insert: Map order doubles as least-recently-used order
    if (buckets.size > BUCKETS_MAX) buckets.delete(buckets.keys().next().value as string);
    if (bucket.tokens < 1) {
      const retry_after_s = Math.max(1, Math.ceil((1 - bucket.tokens) / opts.per_s));
      throw new AppError('rate_limited', 'too many requests for this API key', undefined, retry_after_s);
    }
    bucket.tokens -= 1;
    next();
  };
}
