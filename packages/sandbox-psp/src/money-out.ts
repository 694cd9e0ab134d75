import { createHash, randomBytes } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { Knex } from './db';
import type { Logger } from './logger';
import { parseWith, readIdempotencyKey, SandboxError } from './errors';
import type { NewEvent } from './events';
import { registerSchema } from './store';
import { enqueueEvent, type EventDeps } from './webhooks';

/**
 * Money leaving the PSP: sellers' bank accounts, payouts to them, and partial refunds of charges.
 * Like charges, every POST takes an Idempotency-Key (the same key and body replay the first
 * answer; another body is 400 idempotency_key_reused), except in ignore-idempotency mode, which
 * stores every request anew so a caller's duplicates become visible (counted per reference at
 * GET /_sandbox/payouts/stats).
 *
 * - `POST /v1/bank_accounts {account_number, seller_reference}` answers a token (`btok_…`) and the
 *   last four digits; the number itself is kept only as a hash. Account number 000111111116 is a
 *   closed account: payouts to it fail with `account_closed`.
 * - `POST /v1/payouts {amount, currency, destination, reference}`: `pending`, then after
 *   SANDBOX_PAYOUT_DELAY_MS `paid` (or `failed`); events payout.created / payout.paid /
 *   payout.failed. `GET /v1/payouts/:id`, `GET /v1/payouts?idempotency_key=|reference=`.
 * - `POST /v1/refunds {charge, amount, reason?}`: part or all of a succeeded charge, never more
 *   than what is left of it (row lock on the charge: concurrent refunds cannot overshoot); event
 *   refund.succeeded. The charge keeps its status; `GET /v1/refunds?charge=` lists its refunds.
 *   The fee of the charge is not returned (the sandbox's rule, as at most PSPs).
 */
export const MONEY_OUT_LIMITS = {
  account_number_digits: { min: 4, max: 17 },
  reference_chars_max: 255,
  reason_chars_max: 500,
  amount_digits_max: 18,
  list_max: 100,
} as const;

const CLOSED_ACCOUNT_NUMBER = '000111111116';

registerSchema(`
  create table if not exists sandbox_bank_account (
    id text primary key,
    token text not null unique,
    seller_reference text not null,
    last4 text not null,
    account_hash text not null,
    closed boolean not null default false,
    created_at timestamptz not null default now()
  );
  create table if not exists sandbox_payout (
    id text primary key,
    idempotency_key text,
    request_hash text not null,
    destination text not null references sandbox_bank_account (token),
    reference text not null,
    amount_minor bigint not null check (amount_minor > 0),
    currency char(3) not null,
    status text not null check (status in ('pending', 'paid', 'failed')),
    failure_code text,
    version int not null default 1,
    decide_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  );
  create unique index if not exists sandbox_payout_key on sandbox_payout (idempotency_key) where idempotency_key is not null;
  create index if not exists sandbox_payout_reference on sandbox_payout (reference);
  create index if not exists sandbox_payout_due on sandbox_payout (decide_at) where status = 'pending';
  create table if not exists sandbox_refund (
    id text primary key,
    idempotency_key text,
    request_hash text not null,
    charge_id text not null references sandbox_charge (id),
    amount_minor bigint not null check (amount_minor > 0),
    currency char(3) not null,
    reason text,
    status text not null check (status in ('succeeded')),
    created_at timestamptz not null default now()
  );
  create unique index if not exists sandbox_refund_key on sandbox_refund (idempotency_key) where idempotency_key is not null;
  create index if not exists sandbox_refund_charge on sandbox_refund (charge_id);
`);

export interface MoneyOutDeps extends EventDeps {
  log: Logger;
}

const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('hex')}`;
const hashOf = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex');
const unix = (d: Date): number => Math.floor(d.getTime() / 1000);
const Amount = z.string().regex(new RegExp(`^[1-9][0-9]{0,${MONEY_OUT_LIMITS.amount_digits_max - 1}}$`), 'must be a positive integer in minor units as a string');
const Currency = z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter uppercase currency code');

function keyReused(): never {
  throw new SandboxError('idempotency_key_reused', 'Idempotency-Key was already used with different request parameters', 'Idempotency-Key');
}

/** The key a request is stored under: none in ignore-idempotency mode (every request is new). */
function storedKey(deps: MoneyOutDeps, req: Request): string | null {
  const key = readIdempotencyKey(req);
  return deps.config.ignore_idempotency ? null : key;
}

/** One lock per key, so two requests with the same key decide once (the second replays). */
async function lockKey(trx: Knex.Transaction, key: string | null): Promise<void> {
  if (key !== null) await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`money-out:${key}`]);
}

// ---------------------------------------------------------------------------------------------
// Bank accounts.

const BankAccountBody = z.strictObject({
  account_number: z
    .string()
    .regex(new RegExp(`^[0-9]{${MONEY_OUT_LIMITS.account_number_digits.min},${MONEY_OUT_LIMITS.account_number_digits.max}}$`), 'must be 4 to 17 digits'),
  seller_reference: z.string().min(1).max(MONEY_OUT_LIMITS.reference_chars_max),
});

interface BankAccountRow {
  id: string;
  token: string;
  seller_reference: string;
  last4: string;
  closed: boolean;
  created_at: Date;
}

const bankAccountJson = (row: BankAccountRow) => ({ id: row.id, object: 'bank_account', token: row.token, last4: row.last4, seller_reference: row.seller_reference, created: unix(row.created_at) });

function postBankAccount(deps: MoneyOutDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const body = parseWith(BankAccountBody, req.body);
    const [row] = (await deps.db('sandbox_bank_account')
      .insert({
        id: newId('ba'),
        token: newId('btok'),
        seller_reference: body.seller_reference,
        last4: body.account_number.slice(-4),
        account_hash: hashOf(['bank_account', body.account_number]),
        closed: body.account_number === CLOSED_ACCOUNT_NUMBER,
      })
      .returning('*')) as BankAccountRow[];
    if (row === undefined) throw new Error('assertion: inserted bank account returned');
    deps.log.info({ bank_account: row.id, seller_reference: row.seller_reference, last4: row.last4 }, 'bank account tokenized');
    res.status(201).json(bankAccountJson(row));
  };
}

// ---------------------------------------------------------------------------------------------
// Payouts.

const PayoutBody = z.strictObject({
  amount: Amount,
  currency: Currency,
  destination: z.string().min(1).max(MONEY_OUT_LIMITS.reference_chars_max),
  reference: z.string().min(1).max(MONEY_OUT_LIMITS.reference_chars_max),
});

interface PayoutRow {
  id: string;
  idempotency_key: string | null;
  request_hash: string;
  destination: string;
  reference: string;
  amount_minor: string;
  currency: string;
  status: 'pending' | 'paid' | 'failed';
  failure_code: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export const payoutJson = (row: PayoutRow) => ({
  id: row.id,
  object: 'payout',
  amount: row.amount_minor,
  currency: row.currency.trim(),
  destination: row.destination,
  reference: row.reference,
  idempotency_key: row.idempotency_key,
  status: row.status,
  failure_code: row.failure_code,
  version: row.version,
  created: unix(row.created_at),
  updated: unix(row.updated_at),
});

const PAYOUT_EVENTS = { pending: 'payout.created', paid: 'payout.paid', failed: 'payout.failed' } as const;

function payoutEvent(row: PayoutRow, deps: MoneyOutDeps): NewEvent {
  return { type: PAYOUT_EVENTS[row.status], object_id: row.id, object: payoutJson(row), target_url: deps.config.webhook_url };
}

function postPayout(deps: MoneyOutDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = storedKey(deps, req);
    const body = parseWith(PayoutBody, req.body);
    const request_hash = hashOf(['payout', body.amount, body.currency, body.destination, body.reference]);
    const { row, replayed } = await deps.db.transaction(async (trx) => {
      await lockKey(trx, key);
      const earlier = key === null ? undefined : ((await trx('sandbox_payout').where({ idempotency_key: key }).first()) as PayoutRow | undefined);
      if (earlier !== undefined) return earlier.request_hash === request_hash ? { row: earlier, replayed: true } : keyReused();
      const account = (await trx('sandbox_bank_account').where({ token: body.destination }).first()) as BankAccountRow | undefined;
      if (account === undefined) throw new SandboxError('resource_missing', `no such bank account token: ${body.destination}`, 'destination');
      const [inserted] = (await trx('sandbox_payout')
        .insert({
          id: newId('po'),
          idempotency_key: key,
          request_hash,
          destination: body.destination,
          reference: body.reference,
          amount_minor: body.amount,
          currency: body.currency,
          status: 'pending',
          decide_at: new Date(Date.now() + deps.config.payout_delay_ms),
        })
        .returning('*')) as PayoutRow[];
      if (inserted === undefined) throw new Error('assertion: inserted payout returned');
      await enqueueEvent(trx, deps, payoutEvent(inserted, deps));
      return { row: inserted, replayed: false };
    });
    deps.log.info({ payout_id: row.id, reference: row.reference, idempotency_key: key, replayed }, replayed ? 'payout replayed' : 'payout created');
    if (replayed) res.set('Idempotent-Replayed', 'true');
    res.status(200).json(payoutJson(row));
  };
}

/** Pending payouts whose time has come: paid, or failed for a closed account. One event each. */
export async function decideDuePayouts(deps: MoneyOutDeps): Promise<number> {
  return await deps.db.transaction(async (trx) => {
    const due = (await trx('sandbox_payout as p')
      .join('sandbox_bank_account as a', 'a.token', 'p.destination')
      .where('p.status', 'pending')
      .andWhere('p.decide_at', '<=', trx.fn.now())
      .orderBy('p.decide_at')
      .limit(100)
      .forUpdate()
      .skipLocked()
      .select('p.id', 'a.closed')) as { id: string; closed: boolean }[];
    for (const p of due) {
      const [moved] = (await trx('sandbox_payout')
        .where({ id: p.id, status: 'pending' })
        .update({ status: p.closed ? 'failed' : 'paid', failure_code: p.closed ? 'account_closed' : null, version: trx.raw('version + 1'), updated_at: trx.fn.now() })
        .returning('*')) as PayoutRow[];
      if (moved !== undefined) await enqueueEvent(trx, deps, payoutEvent(moved, deps));
    }
    return due.length;
  });
}

function getPayout(deps: MoneyOutDeps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const row = (await deps.db('sandbox_payout').where({ id: req.params.id }).first()) as PayoutRow | undefined;
    if (row === undefined) throw new SandboxError('resource_missing', `no such payout: ${req.params.id}`, 'id');
    res.json(payoutJson(row));
  };
}

const PayoutFilter = z.union([z.strictObject({ idempotency_key: z.string().min(1).max(255) }), z.strictObject({ reference: z.string().min(1).max(255) })]);

function listPayouts(deps: MoneyOutDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const filter = parseWith(PayoutFilter, req.query);
    const rows = (await deps.db('sandbox_payout').where(filter).orderBy('created_at').limit(MONEY_OUT_LIMITS.list_max)) as PayoutRow[];
    res.json({ object: 'list', data: rows.map(payoutJson) });
  };
}

/** GET /_sandbox/payouts/stats?reference=: how many payouts one reference got (duplicates show). */
function payoutStats(deps: MoneyOutDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const { reference } = parseWith(z.strictObject({ reference: z.string().min(1).max(255) }), req.query);
    const [row] = (await deps.db('sandbox_payout')
      .where({ reference })
      .select(deps.db.raw('count(*)::int as payouts_total'), deps.db.raw("count(*) filter (where status = 'paid')::int as payouts_paid"))) as { payouts_total: number; payouts_paid: number }[];
    res.json({ reference, ...row });
  };
}

// ---------------------------------------------------------------------------------------------
// Refunds.

const RefundBody = z.strictObject({
  charge: z.string().min(1).max(255),
  amount: Amount,
  reason: z.string().min(1).max(MONEY_OUT_LIMITS.reason_chars_max).optional(),
});

interface RefundRow {
  id: string;
  idempotency_key: string | null;
  request_hash: string;
  charge_id: string;
  amount_minor: string;
  currency: string;
  reason: string | null;
  status: 'succeeded';
  created_at: Date;
}

const refundJson = (row: RefundRow) => ({
  id: row.id,
  object: 'refund',
  charge: row.charge_id,
  amount: row.amount_minor,
  currency: row.currency.trim(),
  reason: row.reason,
  idempotency_key: row.idempotency_key,
  status: row.status,
  created: unix(row.created_at),
});

async function refundInTransaction(trx: Knex.Transaction, deps: MoneyOutDeps, key: string | null, body: z.infer<typeof RefundBody>): Promise<{ row: RefundRow; replayed: boolean }> {
  const request_hash = hashOf(['refund', body.charge, body.amount, body.reason ?? null]);
  await lockKey(trx, key);
  const earlier = key === null ? undefined : ((await trx('sandbox_refund').where({ idempotency_key: key }).first()) as RefundRow | undefined);
  if (earlier !== undefined) return earlier.request_hash === request_hash ? { row: earlier, replayed: true } : keyReused();
  // The charge row lock serialises refunds of one charge: the sum below cannot race.
  const charge = (await trx('sandbox_charge').where({ id: body.charge }).forUpdate().first('id', 'status', 'amount_minor', 'currency')) as
    | { id: string; status: string; amount_minor: string; currency: string }
    | undefined;
  if (charge === undefined) throw new SandboxError('resource_missing', `no such charge: ${body.charge}`, 'charge');
  if (charge.status !== 'succeeded') throw new SandboxError('charge_not_refundable', `charge ${charge.id} is ${charge.status}: only a succeeded charge can be refunded`, 'charge');
  const [done] = (await trx('sandbox_refund').where({ charge_id: charge.id }).sum({ total: 'amount_minor' })) as { total: string | null }[];
  const left = BigInt(charge.amount_minor) - BigInt(done?.total ?? 0);
  if (BigInt(body.amount) > left) throw new SandboxError('refund_exceeds_charge', `only ${left} of charge ${charge.id} is left to refund`, 'amount');
  const [row] = (await trx('sandbox_refund')
    .insert({ id: newId('re'), idempotency_key: key, request_hash, charge_id: charge.id, amount_minor: body.amount, currency: charge.currency, reason: body.reason ?? null, status: 'succeeded' })
    .returning('*')) as RefundRow[];
  if (row === undefined) throw new Error('assertion: inserted refund returned');
  await enqueueEvent(trx, deps, { type: 'refund.succeeded', object_id: row.id, object: refundJson(row), target_url: deps.config.webhook_url });
  return { row, replayed: false };
}

function postRefund(deps: MoneyOutDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = storedKey(deps, req);
    const body = parseWith(RefundBody, req.body);
    const { row, replayed } = await deps.db.transaction((trx) => refundInTransaction(trx, deps, key, body));
    deps.log.info({ refund_id: row.id, charge_id: row.charge_id, amount: row.amount_minor, idempotency_key: key, replayed }, replayed ? 'refund replayed' : 'refund created');
    if (replayed) res.set('Idempotent-Replayed', 'true');
    res.status(200).json(refundJson(row));
  };
}

const RefundFilter = z.union([z.strictObject({ charge: z.string().min(1).max(255) }), z.strictObject({ idempotency_key: z.string().min(1).max(255) })]);

function listRefunds(deps: MoneyOutDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const filter = parseWith(RefundFilter, req.query);
    const where = 'charge' in filter ? { charge_id: filter.charge } : filter;
    const rows = (await deps.db('sandbox_refund').where(where).orderBy('created_at').limit(MONEY_OUT_LIMITS.list_max)) as RefundRow[];
    res.json({ object: 'list', data: rows.map(refundJson) });
  };
}

/** The /v1 routes (behind the API key and the JSON parser) and the test-only /_sandbox ones. */
export function mountMoneyOut(app: express.Express, deps: MoneyOutDeps, faults: express.RequestHandler): void {
  app.post('/v1/bank_accounts', postBankAccount(deps));
  app.post('/v1/payouts', faults, postPayout(deps));
  app.get('/v1/payouts', listPayouts(deps));
  app.get('/v1/payouts/:id', getPayout(deps));
  app.post('/v1/refunds', faults, postRefund(deps));
  app.get('/v1/refunds', listRefunds(deps));
}

export function moneyOutAdminRouter(deps: MoneyOutDeps): express.Router {
  const router = express.Router();
  router.get('/payouts/stats', payoutStats(deps));
  return router;
}
