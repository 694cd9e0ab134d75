import type { Request, Response } from 'express';
import type { Knex } from './db';
import type { ErrorCode } from './errors';
import type { Logger } from './logger';
import { registerSchema } from './store';

/**
 * Every attempt at a money-moving POST under /v1/charges, refused ones included, so a test can
 * see what the caller actually sent: how often it retried, and what each attempt was answered.
 * Written before the answer leaves, so a caller that has its answer finds the row.
 */

export const REQUEST_LOG_LIMITS = {
  list_max: 100,
  // Longer paths (a made-up route under /v1/charges) are cut, not refused: the log never fails a request.
  path_chars_max: 500,
  value_chars_max: 255,
} as const;

/**
 * `declined`: answered 402 with a failed charge. `timeout_after_commit`: committed, then never
 * answered. `error_5xx`: our own failure (500); a fault-knob 503 is `fault_503`.
 */
export type RequestOutcome =
  | 'ok'
  | 'declined'
  | 'fault_503'
  | 'rate_limited_429'
  | 'timeout_after_commit'
  | 'error_4xx'
  | 'error_5xx';

export interface Attempt {
  method: string;
  path: string;
  /** From the request body (charge creation) when it had a usable one. */
  order_reference: string | null;
  /** For capture/void/refund: the order reference is read from this charge when it exists. */
  charge_id: string | null;
  idempotency_key: string | null;
  outcome: RequestOutcome;
  /** null when no answer was sent (timeout_after_commit). */
  http_status: number | null;
}

interface AttemptRow {
  id: string; // bigserial: pg hands int8 over as text
  method: string;
  path: string;
  order_reference: string | null;
  idempotency_key: string | null;
  outcome: RequestOutcome;
  http_status: number | null;
  at: Date;
}

registerSchema(`
  create table if not exists sandbox_request_log (
    id bigserial primary key,
    method text not null,
    path text not null,
    order_reference text null,
    idempotency_key text null,
    outcome text not null,
    http_status int null,
    at timestamptz not null default clock_timestamp()
  );
  alter table sandbox_request_log drop constraint if exists sandbox_request_log_outcome_check;
  alter table sandbox_request_log add constraint sandbox_request_log_outcome_check
    check (outcome in ('ok', 'declined', 'fault_503', 'rate_limited_429', 'timeout_after_commit', 'error_4xx', 'error_5xx'));
  create index if not exists sandbox_request_log_order_reference_idx on sandbox_request_log (order_reference, id);
`);

function bounded(value: string | null, chars_max: number): string | null {
  return value === null ? null : value.slice(0, chars_max);
}

export async function insertAttempt(db: Knex, attempt: Attempt): Promise<void> {
  const order_reference =
    attempt.order_reference ??
    (attempt.charge_id === null
      ? null
      : db.raw('(select order_reference from sandbox_charge where id = ?)', [attempt.charge_id]));
  await db('sandbox_request_log').insert({
    method: attempt.method,
    path: bounded(attempt.path, REQUEST_LOG_LIMITS.path_chars_max),
    order_reference: typeof order_reference === 'string' ? bounded(order_reference, REQUEST_LOG_LIMITS.value_chars_max) : order_reference,
    idempotency_key: bounded(attempt.idempotency_key, REQUEST_LOG_LIMITS.value_chars_max),
    outcome: attempt.outcome,
    http_status: attempt.http_status,
  });
}

/** Oldest first, bounded by REQUEST_LOG_LIMITS.list_max. */
export async function listAttempts(db: Knex, order_reference: string): Promise<AttemptRow[]> {
  return (await db('sandbox_request_log')
    .where({ order_reference })
    .orderBy([{ column: 'at' }, { column: 'id' }])
    .limit(REQUEST_LOG_LIMITS.list_max)) as AttemptRow[];
}

export function toAttemptJson(row: AttemptRow): Record<string, unknown> {
  return {
    id: row.id,
    method: row.method,
    path: row.path,
    order_reference: row.order_reference,
    idempotency_key: row.idempotency_key,
    outcome: row.outcome,
    http_status: row.http_status,
    at: row.at.toISOString(),
    at_ms: row.at.getTime(),
  };
}

/** The request's own logger (with its req_id) where the app's middleware set one. */
export function requestLogger(res: Response, fallback: Logger): Logger {
  return (res.locals['log'] as Logger | undefined) ?? fallback;
}

/** Every POST under /v1/charges moves money (or tries to): each attempt goes to the request log. */
export function isMoneyPost(req: Request<unknown>): boolean {
  return req.method === 'POST' && /^\/v1\/charges(\/|$)/.test(pathOf(req));
}

function pathOf(req: Request<unknown>): string {
  return req.originalUrl.split('?')[0] ?? '';
}

const CHARGE_ACTION_PATH = /^\/v1\/charges\/([^/]+)\/[^/]+$/;

function attemptOf(req: Request<unknown>, outcome: RequestOutcome, http_status: number | null): Attempt {
  const path = pathOf(req);
  const body_reference = (req.body as { order_reference?: unknown } | undefined)?.order_reference;
  const order_reference =
    path.replace(/\/+$/, '') === '/v1/charges' && typeof body_reference === 'string' && body_reference.length > 0
      ? body_reference
      : null;
  const key = req.get('Idempotency-Key');
  return {
    method: req.method,
    path,
    order_reference,
    charge_id: CHARGE_ACTION_PATH.exec(path)?.[1] ?? null,
    idempotency_key: key === undefined || key.length === 0 ? null : key,
    outcome,
    http_status,
  };
}

/** Written before the answer leaves; a failure to write is logged, never turned into an error. */
export async function recordAttempt(
  deps: { db: Knex; log: Logger },
  req: Request<unknown>,
  res: Response,
  outcome: RequestOutcome,
  http_status: number | null,
): Promise<void> {
  res.locals['attempt_recorded'] = true;
  try {
    await insertAttempt(deps.db, attemptOf(req, outcome, http_status));
  } catch (err) {
    requestLogger(res, deps.log).warn({ err }, 'request log write failed');
  }
}

export function outcomeOf(code: ErrorCode, status: number): RequestOutcome {
  if (code === 'psp_unavailable') return 'fault_503';
  if (code === 'rate_limited') return 'rate_limited_429';
  if (code === 'card_declined' || code === 'insufficient_funds') return 'declined';
  return status < 500 ? 'error_4xx' : 'error_5xx';
}
