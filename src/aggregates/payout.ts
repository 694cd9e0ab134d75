/**
 * The payout home (table `payout`): a seller's available balance (what seller_payable owes them)
 * on its way to their bank account through the PSP. `reservePayout` is the one place a payout is
 * made: under the seller account's row lock it reads the balance, writes the payout row and moves
 * the whole available amount into clearing — one transaction, so no payout can take a balance
 * below zero and two payouts cannot both take the same money.
 */
import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { newId } from '../domain/ids';
import { ACCOUNTS, payoutPosting } from '../domain/ledger';
import { payoutWorkflowId } from '../domain/workflow-ids';
import { postInTransaction } from '../ledger/poster';
import { merchantPage, type PageOptions, type Page } from './page';
import type { PayoutStatus } from '../domain/status';

type Conn = Knex | Knex.Transaction;

export const PAYOUT_LIMITS = { run_sellers_max: 1_000 } as const;

export type { PayoutStatus };

export interface PayoutRow {
  id: string;
  merchant_id: string;
  seller_id: string;
  currency: string;
  amount_minor: string;
  status: PayoutStatus;
  destination_token: string;
  last4: string;
  psp_payout_id: string | null;
  failure_code: string | null;
  run_date: string | null;
  workflow_id: string;
  created_at: Date;
}

/** The PSP reference a payout carries: the seller, so the PSP can count payouts per seller. */
export const payoutReference = (p: Pick<PayoutRow, 'merchant_id' | 'seller_id'>): string => `${p.merchant_id}:${p.seller_id}`;

export type ReserveRefusal = 'no_bank_account' | 'nothing_available' | 'below_minimum';

export interface ReserveRequest {
  merchant_id: string;
  seller_id: string;
  currency: string;
  /** The scheduled run's nominal day; null for an on-demand payout. */
  run_date: string | null;
  minimum_minor: bigint;
}

/** A seller's bank account as the PSP tokenized it (the number itself is never stored); the newest wins. */
export async function upsertBankAccount(conn: Knex, a: { merchant_id: string; seller_id: string; psp_token: string; last4: string }): Promise<void> {
  await conn('seller_bank_account')
    .insert(a)
    .onConflict(['merchant_id', 'seller_id'])
    .merge({ psp_token: a.psp_token, last4: a.last4, updated_at: conn.fn.now() });
}

/** A new payout of the seller's whole available balance, or why none; a run day's payout is made once. */
export async function reservePayout(trx: Knex.Transaction, r: ReserveRequest): Promise<PayoutRow | ReserveRefusal> {
  assert(r.minimum_minor > 0n, 'a payout minimum is positive');
  const seller = ACCOUNTS.sellerPayable(r.merchant_id, r.seller_id);
  const account = (await trx('ledger_account').where({ code: seller.code, currency: r.currency }).forUpdate().first('posted_minor')) as { posted_minor: string } | undefined;
  if (r.run_date !== null) {
    const earlier = (await trx('payout').where({ merchant_id: r.merchant_id, seller_id: r.seller_id, currency: r.currency, run_date: r.run_date }).first()) as PayoutRow | undefined;
    if (earlier !== undefined) return earlier;
  }
  const bank = (await trx('seller_bank_account').where({ merchant_id: r.merchant_id, seller_id: r.seller_id }).first('psp_token', 'last4')) as { psp_token: string; last4: string } | undefined;
  if (bank === undefined) return 'no_bank_account';
  // Seller-payable is credit-normal: what we owe is minus its debit-positive balance.
  const available_minor = account === undefined ? 0n : -BigInt(account.posted_minor);
  if (available_minor <= 0n) return 'nothing_available';
  if (available_minor < r.minimum_minor) return 'below_minimum';
  const id = newId('pyo');
  const workflow_id = payoutWorkflowId(r.run_date === null ? { payout_id: id } : { merchant_id: r.merchant_id, seller_id: r.seller_id, currency: r.currency, run_date: r.run_date });
  const [row] = (await trx('payout')
    .insert({ id, merchant_id: r.merchant_id, seller_id: r.seller_id, currency: r.currency, amount_minor: available_minor.toString(), status: 'pending', destination_token: bank.psp_token, last4: bank.last4, run_date: r.run_date, workflow_id })
    .returning('*')) as PayoutRow[];
  assert(row !== undefined, 'inserted payout returned');
  await postInTransaction(trx, [payoutPosting({ payout_id: id, merchant_id: r.merchant_id, seller_id: r.seller_id, currency: r.currency, amount_minor: available_minor }, 'reserve')]);
  return row;
}

/** Sellers with a bank account and something owed in some currency: the candidates of a run. */
export async function payableSellers(db: Knex): Promise<{ merchant_id: string; seller_id: string; currency: string; available_minor: bigint }[]> {
  const rows = (await db('seller_bank_account as b')
    .join('ledger_account as a', function joinAccount() {
      this.on('a.merchant_id', '=', 'b.merchant_id').andOn('a.seller_id', '=', 'b.seller_id');
    })
    .whereLike('a.code', 'seller_payable:%')
    .andWhere('a.posted_minor', '<', 0)
    .orderBy(['b.merchant_id', 'b.seller_id', 'a.currency'])
    .limit(PAYOUT_LIMITS.run_sellers_max)
    .select('b.merchant_id', 'b.seller_id', db.raw('trim(a.currency) as currency'), 'a.posted_minor')) as { merchant_id: string; seller_id: string; currency: string; posted_minor: string }[];
  return rows.map((r) => ({ merchant_id: r.merchant_id, seller_id: r.seller_id, currency: r.currency, available_minor: -BigInt(r.posted_minor) }));
}

/** The payouts a run day already made. */
export async function payoutsOfRun(conn: Conn, run_date: string): Promise<{ id: string; workflow_id: string }[]> {
  return (await conn('payout').where({ run_date }).select('id', 'workflow_id')) as { id: string; workflow_id: string }[];
}

export async function loadPayout(conn: Conn, payout_id: string, lock = false): Promise<PayoutRow> {
  const query = conn('payout').where({ id: payout_id });
  const row = (await (lock ? query.forUpdate() : query).first()) as PayoutRow | undefined;
  assert(row !== undefined, `payout ${payout_id} exists`);
  return row;
}

const RUN_DATE_TEXT = "to_char(run_date, 'YYYY-MM-DD') as run_date";

export async function findMerchantPayout(conn: Conn, merchant_id: string, payout_id: string): Promise<PayoutRow | undefined> {
  return (await conn('payout').where({ id: payout_id, merchant_id }).first('*', conn.raw(RUN_DATE_TEXT))) as PayoutRow | undefined;
}

/** A merchant's payouts newest first; optionally one seller's. */
export async function merchantPayoutsPage<Out extends { id: string }>(db: Knex, merchant_id: string, opts: PageOptions & { seller_id?: string }, toResource: (row: PayoutRow) => Out): Promise<Page<Out>> {
  const where = opts.seller_id === undefined ? undefined : { seller_id: opts.seller_id };
  const columns = ['*', db.raw(RUN_DATE_TEXT)];
  return await merchantPage(db, { table: 'payout', noun: 'payouts', columns }, merchant_id, { ...opts, where }, toResource);
}

/** The PSP took the payout: its id is kept once. */
export async function setPspPayoutId(conn: Knex, payout_id: string, psp_payout_id: string): Promise<void> {
  await conn('payout').where({ id: payout_id }).whereNull('psp_payout_id').update({ psp_payout_id, updated_at: conn.fn.now() });
}

/** The PSP's decision, once (the caller holds the row lock and saw it pending). */
export async function decidePayout(trx: Knex.Transaction, payout_id: string, status: 'paid' | 'failed', failure_code: string | null): Promise<void> {
  await trx('payout').where({ id: payout_id }).update({ status, failure_code, updated_at: trx.fn.now() });
}
