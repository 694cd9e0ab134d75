import type { Knex } from 'knex';
import { assertBalanced, type PostingDraft } from '../domain/ledger';
import { assert } from '../domain/assert';

/**
 * Writes a balanced posting inside the caller's transaction. Returns false when the reference was
 * already posted (a repeated post is a no-op, so an activity that runs twice is safe).
 * Accounts are locked in ascending id order so concurrent postings to the same hot accounts queue
 * up instead of deadlocking.
 */
export async function postTransaction(trx: Knex.Transaction, posting: PostingDraft): Promise<boolean> {
  assertBalanced(posting);
  const inserted = await trx('ledger_transaction')
    .insert({ reference: posting.reference, description: posting.description, payment_id: posting.payment_id, order_id: posting.order_id })
    .onConflict('reference')
    .ignore()
    .returning<{ id: string }[]>('id');
  const tx = inserted[0];
  if (tx === undefined) return false;

  const account_ids = await lockAccounts(trx, posting);
  for (const entry of posting.entries) {
    const account_id = account_ids.get(entry.account_code);
    assert(account_id !== undefined, `account ${entry.account_code} exists`);
    await trx('ledger_entry').insert({ transaction_id: tx.id, account_id, amount_minor: entry.amount_minor.toString(), currency: posting.currency });
    await trx('ledger_account')
      .where({ id: account_id })
      .update({ balance_minor: trx.raw('balance_minor + ?::bigint', [entry.amount_minor.toString()]) });
  }
  return true;
}

async function lockAccounts(trx: Knex.Transaction, posting: PostingDraft): Promise<Map<string, string>> {
  const rows = posting.entries.map((e) => ({ code: e.account_code, currency: posting.currency, type: e.account_type }));
  await trx('ledger_account').insert(rows).onConflict(['code', 'currency']).ignore();
  const locked = await trx('ledger_account')
    .select<{ id: string; code: string }[]>('id', 'code')
    .where('currency', posting.currency)
    .whereIn('code', rows.map((r) => r.code))
    .orderBy('id')
    .forUpdate();
  return new Map(locked.map((r) => [r.code, r.id]));
}

export interface LedgerBreak {
  kind: 'unbalanced_transaction' | 'balance_mismatch' | 'too_few_entries';
  id: string;
  currency: string;
  detail: string;
}

export interface LedgerReport {
  transactions: number;
  entries: number;
  accounts: number;
  breaks: LedgerBreak[];
}

/** Primer §9.1: every transaction sums to zero per currency; stored balances equal their entries. */
export async function verifyLedger(db: Knex): Promise<LedgerReport> {
  const counts = await db.raw(`select
      (select count(*) from ledger_transaction) as transactions,
      (select count(*) from ledger_entry) as entries,
      (select count(*) from ledger_account) as accounts`);
  const unbalanced = await db.raw(`
    select transaction_id::text as id, currency, sum(amount_minor)::text as total, count(*)::int as n
    from ledger_entry group by transaction_id, currency
    having sum(amount_minor) <> 0`);
  const thin = await db.raw(`
    select t.id::text as id, count(e.id)::int as n from ledger_transaction t
    left join ledger_entry e on e.transaction_id = t.id group by t.id having count(e.id) < 2`);
  const mismatched = await db.raw(`
    select a.id::text as id, a.code, a.currency, a.balance_minor::text as stored, coalesce(sum(e.amount_minor), 0)::text as summed
    from ledger_account a left join ledger_entry e on e.account_id = a.id
    group by a.id having a.balance_minor <> coalesce(sum(e.amount_minor), 0)`);
  const breaks: LedgerBreak[] = [
    ...unbalanced.rows.map((r: { id: string; currency: string; total: string }) => ({ kind: 'unbalanced_transaction' as const, id: r.id, currency: r.currency, detail: `entries sum to ${r.total}` })),
    ...thin.rows.map((r: { id: string; n: number }) => ({ kind: 'too_few_entries' as const, id: r.id, currency: '', detail: `${r.n} entries` })),
    ...mismatched.rows.map((r: { id: string; code: string; currency: string; stored: string; summed: string }) => ({ kind: 'balance_mismatch' as const, id: r.id, currency: r.currency, detail: `${r.code}: stored ${r.stored}, entries ${r.summed}` })),
  ];
  const c = counts.rows[0];
  return { transactions: Number(c.transactions), entries: Number(c.entries), accounts: Number(c.accounts), breaks };
}
