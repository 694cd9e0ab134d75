import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import { formatAmount } from '../domain/money';
import { assert } from '../domain/assert';
import { LIMITS } from '../config';

/** Read models for the merchant-facing ledger endpoints; every query is scoped to one merchant. */

export interface BalanceQuery {
  merchant_id: string;
  seller_id?: string;
  currency?: string;
  limit: number;
  starting_after?: string;
}

export async function listBalances(db: Knex, q: BalanceQuery) {
  assert(q.limit >= 1 && q.limit <= LIMITS.page_size_max, 'page size within limits');
  const query = db('ledger_account')
    .where({ merchant_id: q.merchant_id })
    .whereLike('code', 'seller_payable:%')
    .orderBy('id')
    .limit(q.limit + 1)
    .select<{ id: string; seller_id: string; currency: string; posted_minor: string; pending_minor: string }[]>('id', 'seller_id', 'currency', 'posted_minor', 'pending_minor');
  if (q.seller_id !== undefined) query.where({ seller_id: q.seller_id });
  if (q.currency !== undefined) query.where({ currency: q.currency });
  if (q.starting_after !== undefined) query.where('id', '>', cursorId(q.starting_after));
  const rows = await query;
  const page = rows.slice(0, q.limit);
  return {
    object: 'list' as const,
    // Seller-payable is credit-normal: what we owe the seller is minus its debit-positive sum.
    // Below zero (refunded after a payout) the seller owes us: shown as negative_balance, recovered from later sales.
    data: page.map((r) => ({
      seller_id: r.seller_id,
      currency: r.currency,
      available: formatAmount(-BigInt(r.posted_minor), r.currency),
      pending: formatAmount(-BigInt(r.pending_minor), r.currency),
      negative_balance: formatAmount(BigInt(r.posted_minor) > 0n ? BigInt(r.posted_minor) : 0n, r.currency),
    })),
    has_more: rows.length > q.limit,
    next_cursor: rows.length > q.limit ? (page[page.length - 1]?.id ?? null) : null,
  };
}

export interface TransactionQuery {
  merchant_id: string;
  account?: string;
  payment_id?: string;
  created_gte?: string;
  created_lt?: string;
  limit: number;
  starting_after?: string;
}

interface EntryRow {
  transaction_id: string;
  code: string;
  currency: string;
  amount_minor: string;
  phase: string;
}

export async function listTransactions(db: Knex, q: TransactionQuery) {
  assert(q.limit >= 1 && q.limit <= LIMITS.page_size_max, 'page size within limits');
  const query = db('ledger_transaction as t')
    .where('t.merchant_id', q.merchant_id)
    .orderBy('t.id', 'desc')
    .limit(q.limit + 1)
    .select<{ id: string; reference: string; kind: string; description: string; payment_id: string | null; order_id: string | null; created_at: Date }[]>(
      't.id', 't.reference', 't.kind', 't.description', 't.payment_id', 't.order_id', 't.created_at',
    );
  if (q.payment_id !== undefined) query.where('t.payment_id', q.payment_id);
  if (q.created_gte !== undefined) query.where('t.created_at', '>=', q.created_gte);
  if (q.created_lt !== undefined) query.where('t.created_at', '<', q.created_lt);
  if (q.starting_after !== undefined) query.where('t.id', '<', cursorId(q.starting_after));
  if (q.account !== undefined) {
    query.whereExists(db('ledger_entry as e').join('ledger_account as a', 'a.id', 'e.account_id').whereRaw('e.transaction_id = t.id').where('a.code', q.account));
  }
  const rows = await query;
  const page = rows.slice(0, q.limit);
  const entries: EntryRow[] = page.length === 0 ? [] : await db('ledger_entry as e')
    .join('ledger_account as a', 'a.id', 'e.account_id')
    .whereIn('e.transaction_id', page.map((t) => t.id))
    .orderBy('e.id')
    .select('e.transaction_id', 'a.code', 'e.currency', 'e.amount_minor', 'e.phase');
  return {
    object: 'list' as const,
    data: page.map((t) => ({
      id: String(t.id),
      reference: t.reference,
      kind: t.kind,
      description: t.description,
      payment_id: t.payment_id,
      order_id: t.order_id,
      created_at: t.created_at.toISOString(),
      entries: entries.filter((e) => String(e.transaction_id) === String(t.id)).map(toEntry),
    })),
    has_more: rows.length > q.limit,
    next_cursor: rows.length > q.limit ? String(page[page.length - 1]?.id ?? '') : null,
  };
}

function toEntry(e: EntryRow) {
  const amount_minor = BigInt(e.amount_minor);
  return {
    account: e.code,
    currency: e.currency,
    direction: amount_minor > 0n ? ('debit' as const) : ('credit' as const),
    amount: formatAmount(amount_minor > 0n ? amount_minor : -amount_minor, e.currency),
    phase: e.phase,
  };
}

function cursorId(cursor: string): string {
  if (!/^[1-9][0-9]{0,18}$/.test(cursor)) throw new AppError('invalid_cursor', 'starting_after must be a next_cursor from a previous page', 'starting_after');
  return cursor;
}
