import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { AppError } from '../domain/errors';
import { holdPosting, postPendingPosting, voidPendingPosting, type AccountRef, type AccountType, type TransferDraft } from '../domain/ledger';
import { postInTransaction, type PostResult } from './poster';

/**
 * Two-phase transfers (authorizations): a hold moves an amount into pending balances; later it is
 * posted (fully or partly) or voided — never both, enforced by a unique index on pending_id — or
 * it expires and is voided by `expireHolds`.
 */
export interface OpenHold extends TransferDraft {
  id: string;
  expires_at: Date;
  expired: boolean;
}

interface HoldEntryRow {
  id: string;
  reference: string;
  description: string;
  merchant_id: string | null;
  payment_id: string | null;
  order_id: string | null;
  expires_at: Date;
  expired: boolean;
  amount_minor: string;
  currency: string;
  code: string;
  type: AccountType;
  account_merchant_id: string | null;
  seller_id: string | null;
}

const accountRef = (r: HoldEntryRow): AccountRef => ({
  code: r.code,
  type: r.type,
  ...(r.account_merchant_id === null ? {} : { merchant_id: r.account_merchant_id }),
  ...(r.seller_id === null ? {} : { seller_id: r.seller_id }),
});

export async function findHold(conn: Knex | Knex.Transaction, reference: string): Promise<OpenHold> {
  const rows: HoldEntryRow[] = (
    await conn.raw(
      `select t.id::text as id, t.reference, t.description, t.merchant_id, t.payment_id, t.order_id, t.expires_at,
              t.expires_at <= now() as expired, e.amount_minor::text as amount_minor, e.currency,
              a.code, a.type, a.merchant_id as account_merchant_id, a.seller_id
       from ledger_transaction t join ledger_entry e on e.transaction_id = t.id join ledger_account a on a.id = e.account_id
       where t.reference = ? and t.kind = 'hold' order by e.amount_minor desc`,
      [reference],
    )
  ).rows;
  if (rows.length === 0) throw new AppError('resource_missing', `no hold ${reference}`, 'reference');
  assert(rows.length === 2, `hold ${reference} has one debit and one credit entry`);
  const [debit, credit] = rows as [HoldEntryRow, HoldEntryRow];
  return {
    id: debit.id,
    reference: debit.reference,
    description: debit.description,
    currency: debit.currency,
    merchant_id: debit.merchant_id,
    payment_id: debit.payment_id,
    order_id: debit.order_id,
    debit: accountRef(debit),
    credit: accountRef(credit),
    amount_minor: BigInt(debit.amount_minor),
    expires_at: debit.expires_at,
    expired: debit.expired,
  };
}

export async function createHold(conn: Knex | Knex.Transaction, transfer: TransferDraft, ttl_ms: number): Promise<PostResult> {
  assert(ttl_ms > 0, 'a hold has a positive time to live');
  const [result] = await postInTransaction(conn, [holdPosting(transfer, new Date(Date.now() + ttl_ms))]);
  return result as PostResult;
}

async function resolve(conn: Knex | Knex.Transaction, draft: ReturnType<typeof voidPendingPosting>): Promise<PostResult> {
  try {
    const [result] = await postInTransaction(conn, [draft]);
    return result as PostResult;
  } catch (err) {
    if ((err as { constraint?: string }).constraint === 'ledger_transaction_resolves_once') {
      throw new AppError('hold_already_resolved', 'this hold was already posted or voided', 'reference');
    }
    throw err;
  }
}

/** Posts `amount_minor` of an open hold (partial capture); the rest is released. */
export async function postHold(conn: Knex | Knex.Transaction, hold_reference: string, amount_minor: bigint, reference: string): Promise<PostResult> {
  const hold = await findHold(conn, hold_reference);
  if (hold.expired) throw new AppError('hold_expired', `hold ${hold_reference} expired at ${hold.expires_at.toISOString()}`, 'reference');
  if (amount_minor <= 0n || amount_minor > hold.amount_minor) throw new AppError('invalid_amount', 'the posted amount must be positive and at most the held amount', 'amount');
  return await resolve(conn, postPendingPosting(hold, amount_minor, reference));
}

export async function voidHold(conn: Knex | Knex.Transaction, hold_reference: string, reference: string): Promise<PostResult> {
  return await resolve(conn, voidPendingPosting(await findHold(conn, hold_reference), reference));
}

/** Voids holds past their expiry that nobody resolved; bounded per call. Returns how many. */
export async function expireHolds(db: Knex, limit: number): Promise<number> {
  const due: { reference: string }[] = await db('ledger_transaction as t')
    .select('t.reference')
    .where('t.kind', 'hold')
    .where('t.expires_at', '<=', db.fn.now())
    .whereNotExists(db('ledger_transaction as r').whereRaw('r.pending_id = t.id'))
    .orderBy('t.expires_at')
    .limit(limit);
  let voided = 0;
  for (const { reference } of due) {
    const hold = await findHold(db, reference);
    try {
      // created = false: a concurrent sweep voided it first; count only what this call did.
      const result = await resolve(db, voidPendingPosting(hold, `${reference}:expired`, `hold ${reference} expired`));
      if (result.created) voided += 1;
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'hold_already_resolved')) throw err; // a capture won the race
    }
  }
  return voided;
}
