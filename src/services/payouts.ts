import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import { formatAmount } from '../domain/money';
import type { PspClient } from '../psp/client';
import { findMerchantPayout, upsertBankAccount, merchantPayoutsPage, reservePayout, type PayoutRow, type ReserveRefusal, type ReserveRequest } from '../aggregates/payout';

/** Pay-outs as merchants see them; the payout home (src/aggregates/payout.ts) makes and moves them. */
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

export async function registerBankAccount(db: Knex, psp: PspClient, merchant_id: string, seller_id: string, account_number: string): Promise<{ seller_id: string; last4: string }> {
  // The number goes to the PSP only; we keep its token and last four digits.
  const account = await psp.createBankAccount({ account_number, seller_reference: `${merchant_id}:${seller_id}` });
  await upsertBankAccount(db, { merchant_id, seller_id, psp_token: account.token, last4: account.last4 });
  return { seller_id, last4: account.last4 };
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
  const row = await findMerchantPayout(db, merchant_id, payout_id);
  if (row === undefined) throw new AppError('resource_missing', `no payout ${payout_id}`, 'id');
  return toPayoutResource(row);
}

export async function listPayouts(db: Knex, merchant_id: string, opts: { limit: number; starting_after?: string; seller_id?: string }) {
  return await merchantPayoutsPage(db, merchant_id, opts, toPayoutResource);
}
