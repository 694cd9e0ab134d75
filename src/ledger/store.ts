import type { Knex } from 'knex';

export interface LedgerBreak {
  kind: 'unbalanced_transaction' | 'too_few_entries' | 'posted_balance_mismatch' | 'pending_balance_mismatch' | 'resolution_without_hold' | 'order_flag_without_posting';
  id: string;
  currency: string;
  detail: string;
}

export interface CurrencyTotals {
  currency: string;
  transactions: number;
  posted_sum_minor: string;
  pending_sum_minor: string;
}

export interface LedgerReport {
  transactions: number;
  entries: number;
  accounts: number;
  currencies: CurrencyTotals[];
  breaks: LedgerBreak[];
}

type Row = Record<string, string>;

// Each check is one query returning its offending rows; the report lists them with their ids.
const CHECKS: { kind: LedgerBreak['kind']; sql: string; detail: (r: Row) => string }[] = [
  {
    kind: 'unbalanced_transaction',
    sql: `select transaction_id::text as id, currency, phase, sum(amount_minor)::text as total
          from ledger_entry group by transaction_id, currency, phase having sum(amount_minor) <> 0`,
    detail: (r) => `${r.phase} entries sum to ${r.total}`,
  },
  {
    kind: 'too_few_entries',
    sql: `select t.id::text as id, '' as currency, count(e.id)::text as n from ledger_transaction t
          left join ledger_entry e on e.transaction_id = t.id group by t.id having count(e.id) < 2`,
    detail: (r) => `${r.n} entries`,
  },
  {
    kind: 'posted_balance_mismatch',
    sql: `select a.id::text as id, a.code, a.currency, a.posted_minor::text as stored,
            coalesce(sum(e.amount_minor) filter (where e.phase = 'posted'), 0)::text as summed
          from ledger_account a left join ledger_entry e on e.account_id = a.id
          group by a.id having a.posted_minor <> coalesce(sum(e.amount_minor) filter (where e.phase = 'posted'), 0)`,
    detail: (r) => `${r.code}: stored ${r.stored}, entries ${r.summed}`,
  },
  {
    kind: 'pending_balance_mismatch',
    sql: `select a.id::text as id, a.code, a.currency, a.pending_minor::text as stored,
            coalesce(sum(e.amount_minor) filter (where e.phase = 'pending'), 0)::text as summed
          from ledger_account a left join ledger_entry e on e.account_id = a.id
          group by a.id having a.pending_minor <> coalesce(sum(e.amount_minor) filter (where e.phase = 'pending'), 0)`,
    detail: (r) => `${r.code}: stored pending ${r.stored}, entries ${r.summed}`,
  },
  {
    kind: 'resolution_without_hold',
    sql: `select r.id::text as id, '' as currency, r.pending_id::text as pending_id from ledger_transaction r
          join ledger_transaction h on h.id = r.pending_id where h.kind <> 'hold'`,
    detail: (r) => `resolves transaction ${r.pending_id}, which is not a hold`,
  },
  {
    // The wallet is the seller-payable balance; an order marked credited must have its posting.
    kind: 'order_flag_without_posting',
    sql: `select o.id as id, o.currency from payment_order o
          where (o.ledger_updated or o.wallet_updated)
            and not exists (select 1 from ledger_transaction t where t.reference = 'order:' || o.id || ':capture')`,
    detail: () => 'wallet_updated/ledger_updated set but no capture posting',
  },
];

/** Primer §9.1 and §9.5: balanced transactions, stored balances equal to their entries, flags backed by postings. */
export async function verifyLedger(db: Knex): Promise<LedgerReport> {
  const counts: Row = (await db.raw(`select (select count(*) from ledger_transaction)::text as transactions,
      (select count(*) from ledger_entry)::text as entries, (select count(*) from ledger_account)::text as accounts`)).rows[0];
  const currencies: CurrencyTotals[] = (
    await db.raw(`select a.currency, count(distinct e.transaction_id)::int as transactions,
        coalesce(sum(e.amount_minor) filter (where e.phase = 'posted'), 0)::text as posted_sum_minor,
        coalesce(sum(e.amount_minor) filter (where e.phase = 'pending'), 0)::text as pending_sum_minor
      from ledger_entry e join ledger_account a on a.id = e.account_id group by a.currency order by a.currency`)
  ).rows;
  const breaks: LedgerBreak[] = [];
  for (const check of CHECKS) {
    const rows: Row[] = (await db.raw(check.sql)).rows;
    for (const r of rows) breaks.push({ kind: check.kind, id: String(r.id), currency: String(r.currency ?? ''), detail: check.detail(r) });
  }
  return { transactions: Number(counts.transactions), entries: Number(counts.entries), accounts: Number(counts.accounts), currencies, breaks };
}

export interface AccountBalance {
  id: string;
  code: string;
  currency: string;
  type: string;
  normal_balance: 'debit' | 'credit';
  posted_minor: bigint; // signed, debit-positive
  pending_minor: bigint;
}

/** Balances read in the account's own normal direction: a seller's credit balance is positive. */
export function available(a: Pick<AccountBalance, 'normal_balance' | 'posted_minor'>): bigint {
  return a.normal_balance === 'debit' ? a.posted_minor : -a.posted_minor;
}

export function pending(a: Pick<AccountBalance, 'normal_balance' | 'pending_minor'>): bigint {
  return a.normal_balance === 'debit' ? a.pending_minor : -a.pending_minor;
}

export async function accountBalances(db: Knex, code: string, currency?: string): Promise<AccountBalance[]> {
  const query = db('ledger_account').where({ code }).orderBy('currency');
  if (currency !== undefined) query.where({ currency });
  const rows: Row[] = await query.select('id', 'code', 'currency', 'type', 'normal_balance', 'posted_minor', 'pending_minor');
  return rows.map((r) => ({
    id: String(r.id),
    code: String(r.code),
    currency: String(r.currency),
    type: String(r.type),
    normal_balance: r.normal_balance as 'debit' | 'credit',
    posted_minor: BigInt(String(r.posted_minor)),
    pending_minor: BigInt(String(r.pending_minor)),
  }));
}

export interface PostingTransaction {
  id: string;
  reference: string;
  kind: string;
  description: string;
  order_id: string | null;
  created_at: Date;
}

export interface PostingEntry {
  transaction_id: string;
  account: string;
  amount_minor: string;
  currency: string;
  phase: string;
}

/** A payment's ledger transactions and their entries, in posting order. */
export async function paymentPostings(db: Knex, payment_id: string): Promise<{ transactions: PostingTransaction[]; entries: PostingEntry[] }> {
  const transactions: PostingTransaction[] = await db('ledger_transaction')
    .where({ payment_id })
    .orderBy('id')
    .select('id', 'reference', 'kind', 'description', 'order_id', 'created_at');
  const entries: PostingEntry[] = transactions.length === 0 ? [] : await db('ledger_entry as e')
    .join('ledger_account as a', 'a.id', 'e.account_id')
    .whereIn('e.transaction_id', transactions.map((t) => t.id))
    .orderBy('e.id')
    .select('e.transaction_id', 'a.code as account', 'e.amount_minor', 'e.currency', 'e.phase');
  return { transactions, entries };
}
