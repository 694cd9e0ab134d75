import { assert } from './assert';
import { splitCommission } from './money';

export type AccountType = 'asset' | 'liability' | 'revenue' | 'expense';

/** One line of a posting: debit positive, credit negative (primer §6). */
export interface EntryDraft {
  account_code: string;
  account_type: AccountType;
  amount_minor: bigint;
}

export interface PostingDraft {
  reference: string; // unique: a repeated post of the same business event is a no-op
  description: string;
  currency: string;
  payment_id: string | null;
  order_id: string | null;
  entries: EntryDraft[];
}

export const ACCOUNTS = {
  psp_receivable: 'psp_receivable',
  platform_revenue: 'platform_revenue',
  sellerPayable: (merchant_id: string, seller_id: string) => `seller_payable:${merchant_id}:${seller_id}`,
} as const;

export function assertBalanced(posting: PostingDraft): void {
  assert(posting.entries.length >= 2, `posting ${posting.reference} has at least two entries`);
  let sum = 0n;
  for (const entry of posting.entries) {
    assert(entry.amount_minor !== 0n, `posting ${posting.reference} has no zero entries`);
    sum += entry.amount_minor;
  }
  assert(sum === 0n, `posting ${posting.reference} sums to zero (got ${sum})`);
}

/**
 * A captured order: the PSP now holds the buyer's money for us (asset), we owe the seller their
 * share (liability) and keep our commission (revenue).
 */
export function capturePosting(order: {
  order_id: string;
  payment_id: string;
  merchant_id: string;
  seller_id: string;
  currency: string;
  amount_minor: bigint;
  commission_bps: number;
}): PostingDraft {
  const { commission_minor, seller_minor } = splitCommission(order.amount_minor, order.commission_bps);
  const entries: EntryDraft[] = [
    { account_code: ACCOUNTS.psp_receivable, account_type: 'asset', amount_minor: order.amount_minor },
    { account_code: ACCOUNTS.sellerPayable(order.merchant_id, order.seller_id), account_type: 'liability', amount_minor: -seller_minor },
  ];
  if (commission_minor > 0n) {
    entries.push({ account_code: ACCOUNTS.platform_revenue, account_type: 'revenue', amount_minor: -commission_minor });
  }
  const posting: PostingDraft = {
    reference: `order:${order.order_id}:capture`,
    description: 'order captured',
    currency: order.currency,
    payment_id: order.payment_id,
    order_id: order.order_id,
    entries: entries.filter((e) => e.amount_minor !== 0n),
  };
  assertBalanced(posting);
  return posting;
}
