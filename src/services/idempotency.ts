import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import { LIMITS } from '../config';

/**
 * Stripe-style idempotency keys (primer §7), unique per merchant:
 * - first request: the key row is inserted `in_flight` with a lock expiry and committed at once,
 *   so a concurrent request with the same key sees it;
 * - the work and the stored response commit together in one transaction;
 * - same key + same request → the stored response again; different request → 422;
 *   still in flight → 409; a crashed request's lock expires and the key can be retried.
 */
export interface StoredResponse {
  status: number;
  body: unknown;
  payment_id: string | null;
}

export type IdempotentResult = StoredResponse & { replayed: boolean };

interface KeyRow {
  request_hash: string;
  status: 'in_flight' | 'completed';
  locked_until: Date | null;
  response_status: number | null;
  response_body: unknown;
  payment_id: string | null;
}

/** Canonical JSON (sorted keys) so field order does not make two equal requests differ. */
export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body)}`).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function validateIdempotencyKey(header: string | undefined): string {
  if (header === undefined || header.length === 0) {
    throw new AppError('idempotency_key_missing', 'the Idempotency-Key header is required', 'Idempotency-Key');
  }
  if (header.length > LIMITS.idempotency_key_chars_max || !/^[\x21-\x7e]+$/.test(header)) {
    throw new AppError('idempotency_key_invalid', `Idempotency-Key must be 1-${LIMITS.idempotency_key_chars_max} printable ASCII characters without spaces (a UUID is recommended)`, 'Idempotency-Key');
  }
  return header;
}

/**
 * `refuse`, when given, means the door is closed (admission control: over capacity): a key already
 * used still answers as it would (a replay of an accepted request, 409, 422), but a new key is not
 * claimed; `refuse` throws instead, so the same key works once capacity is back.
 */
export async function runIdempotent(
  db: Knex,
  scope: { merchant_id: string; key: string; request_hash: string },
  work: (trx: Knex.Transaction) => Promise<StoredResponse>,
  refuse?: () => never,
): Promise<IdempotentResult> {
  if (refuse !== undefined) {
    const existing = await findExisting(db, scope);
    if (existing === null) return refuse();
    return existing;
  }
  const claimed = await claimKey(db, scope);
  if (!claimed) return await answerExisting(db, scope);
  try {
    const response = await db.transaction(async (trx) => {
      const result = await work(trx);
      await trx('idempotency_key')
        .where({ merchant_id: scope.merchant_id, key: scope.key })
        .update({ status: 'completed', locked_until: null, response_status: result.status, response_body: JSON.stringify(result.body), payment_id: result.payment_id });
      return result;
    });
    return { ...response, replayed: false };
  } catch (err) {
    // Nothing was stored for this request, so free the key for the client's retry.
    await db('idempotency_key').where({ merchant_id: scope.merchant_id, key: scope.key, status: 'in_flight' }).delete();
    throw err;
  }
}

async function claimKey(db: Knex, scope: { merchant_id: string; key: string; request_hash: string }): Promise<boolean> {
  const lock = db.raw(`now() + (? * interval '1 millisecond')`, [LIMITS.idempotency_lock_ms]);
  const inserted = await db('idempotency_key')
    .insert({ merchant_id: scope.merchant_id, key: scope.key, request_hash: scope.request_hash, status: 'in_flight', locked_until: lock })
    .onConflict(['merchant_id', 'key'])
    .ignore()
    .returning('key');
  if (inserted.length > 0) return true;
  // A crashed request left the key locked: after the lock expires, the same request may take it over.
  const taken = await db('idempotency_key')
    .where({ merchant_id: scope.merchant_id, key: scope.key, status: 'in_flight', request_hash: scope.request_hash })
    .where('locked_until', '<', db.fn.now())
    .update({ locked_until: lock })
    .returning('key');
  return taken.length > 0;
}

async function answerExisting(db: Knex, scope: { merchant_id: string; key: string; request_hash: string }): Promise<IdempotentResult> {
  const existing = await findExisting(db, scope);
  if (existing === null) {
    // The first request failed and released the key between our insert and this read.
    throw new AppError('idempotency_key_in_use', 'a request with this Idempotency-Key was just being processed; retry', 'Idempotency-Key');
  }
  return existing;
}

/** The stored answer for a key already used (or 409/422), null for a key never used. */
async function findExisting(db: Knex, scope: { merchant_id: string; key: string; request_hash: string }): Promise<IdempotentResult | null> {
  const row = await db('idempotency_key').where({ merchant_id: scope.merchant_id, key: scope.key }).first<KeyRow | undefined>();
  if (row === undefined) return null;
  if (row.request_hash !== scope.request_hash) {
    throw new AppError('idempotency_key_reused', 'this Idempotency-Key was already used with a different request', 'Idempotency-Key');
  }
  if (row.status === 'in_flight') {
    throw new AppError('idempotency_key_in_use', 'a request with this Idempotency-Key is still being processed', 'Idempotency-Key');
  }
  return { status: row.response_status ?? 200, body: row.response_body, payment_id: row.payment_id, replayed: true };
}

/**
 * Keys live IDEMPOTENCY_KEY_TTL_MS (a day, as Stripe's do): after that the same key is a new
 * request. Completed keys go, and in-flight ones whose lock ran out (a crashed request nobody
 * retried). The payment itself stays; its workflow id still refuses a second run. Bounded per call.
 */
export async function expireIdempotencyKeys(db: Knex, ttl_ms: number, limit: number): Promise<number> {
  const expired = db('idempotency_key')
    .select('merchant_id', 'key')
    .where('created_at', '<', db.raw(`now() - (? * interval '1 millisecond')`, [ttl_ms]))
    .andWhere((q) => q.where({ status: 'completed' }).orWhere('locked_until', '<', db.fn.now()))
    .limit(limit);
  return await db('idempotency_key').whereIn(['merchant_id', 'key'], expired).delete();
}
