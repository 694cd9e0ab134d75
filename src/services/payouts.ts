import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { AppError } from '../domain/errors';
import { newId } from '../domain/ids';
import { ACCOUNTS, payoutPosting } from '../domain/ledger';
import { formatAmount } from '../domain/money';
import { payoutWorkflowId } from '../domain/workflow-ids';
import { postInTransaction } from '../ledger/poster';
import type { PspClient } from '../psp/client';
import { merchantPage } from './pages';

/**
 * Pay-outs: a seller's available balance (what seller_payable owes them) goes to their bank
 * account through the PSP. `reservePayout` is the one place a payout is made: under the seller
 * account's row lock it reads the balance, writes the payout row and moves the whole available
 * amount into clearing — one transaction, so no payout can take a balance below zero and two
 * payouts cannot both take the same money.
 */
export const PAYOUT_LIMITS = { run_sellers_max: 1_000 } as const;

export interface PayoutRow {
  id: string;
  merchant_id: string;
  seller_id: string;
  currency: string;
  amount_minor: string;
  status: 'pending' | 'paid' | 'failed';
  destination_token: string;
  last4: string;
  psp_payout_id: string | null;
  failure_code: string | null;
  run_date: string | null;
  workflow_id: string;
  created_at: Date;
}

export function toPayoutResource(p: PayoutRow) {
  const currency = p.currency.trim();
  return {
    id: p.id,
    object: 'payout' as const,
    seller_id: p.seller_id,
    amount: formatAmount(BigInt(p.amount_minor), currency),
    currency,
    status: p.status,
    bank_account_last4: p.last4,
    failure_code: p.failure_code,
    run_date: p.run_date,
    workflow_id: p.workflow_id,
    created_at: p.created_at.toISOString(),
  };
}

/** The PSP reference a payout carries: the seller, so the PSP can count payouts per seller. */
export const payoutReference = (p: Pick<PayoutRow, 'merchant_id' | 'seller_id'>): string => `${p.merchant_id}:${p.seller_id}`;

export async function registerBankAccount(db: Knex, psp: PspClient, merchant_id: string, seller_id: string, account_number: string): Promise<{ seller_id: string; last4: string }> {
  // The number goes to the PSP only; we keep its token and last four digits.
  const account = await psp.createBankAccount({ account_number, seller_reference: `${merchant_id}:${seller_id}` });
  await db('seller_bank_account')
    .insert({ merchant_id, seller_id, psp_token: account.token, last4: account.last4 })
    .onConflict(['merchant_id', 'seller_id'])
    .merge({ psp_token: account.token, last4: account.last4, updated_at: db.fn.now() });
  return { seller_id, last4: account.last4 };
}

export type ReserveRefusal = 'no_bank_account' | 'nothing_available' | 'below_minimum';

export interface ReserveRequest {
  merchant_id: string;
  seller_id: string;
  currency: string;
  /** The scheduled run's nominal day; null for an on-demand payout. */
  run_date: string | null;
  minimum_minor: bigint;
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

const REFUSALS: Record<ReserveRefusal, () => AppError> = {
  no_bank_account: () => new AppError('resource_missing', 'no bank account is registered for this seller (PUT /v1/sellers/{seller_id}/bank_account)', 'seller_id'),
  nothing_available: () => new AppError('payout_nothing_available', 'the seller holds nothing available in this currency', 'currency'),
  below_minimum: () => new AppError('payout_below_minimum', 'the seller\'s available balance is below the payout minimum for this currency', 'currency'),
};

/** POST /v1/payouts: one seller, one currency, now. Refused with a clear code when nothing can be paid. */
export async function insertOnDemandPayout(trx: Knex.Transaction, r: Omit<ReserveRequest, 'run_date'>) {
  const made = await reservePayout(trx, { ...r, run_date: null });
  if (typeof made === 'string') throw REFUSALS[made]();
  return toPayoutResource(made);
}

export async function getPayout(db: Knex, merchant_id: string, payout_id: string) {
  const row = (await db('payout').where({ id: payout_id, merchant_id }).first('*', db.raw("to_char(run_date, 'YYYY-MM-DD') as run_date"))) as PayoutRow | undefined;
  if (row === undefined) throw new AppError('resource_missing', `no payout ${payout_id}`, 'id');
  return toPayoutResource(row);
}

export async function listPayouts(db: Knex, merchant_id: string, opts: { limit: number; starting_after?: string; seller_id?: string }) {
  const where = opts.seller_id === undefined ? undefined : { seller_id: opts.seller_id };
  const columns = ['*', db.raw("to_char(run_date, 'YYYY-MM-DD') as run_date")];
  return await merchantPage(db, { table: 'payout', noun: 'payouts', columns }, merchant_id, { ...opts, where }, toPayoutResource);
}
