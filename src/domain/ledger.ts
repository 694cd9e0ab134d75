import { assert } from './assert';
import { divideHalfEven } from './money';

export type AccountType = 'asset' | 'liability' | 'revenue' | 'expense';
export type NormalBalance = 'debit' | 'credit';
export type Phase = 'pending' | 'posted';
export type TransactionKind = 'posting' | 'hold' | 'post_pending' | 'void_pending';

/** Assets and expenses grow with debits; liabilities and revenue with credits (primer §6). */
export function normalBalanceOf(type: AccountType): NormalBalance {
  return type === 'asset' || type === 'expense' ? 'debit' : 'credit';
}

export interface AccountRef {
  code: string;
  type: AccountType;
  merchant_id?: string;
  seller_id?: string;
}

/** One line of a posting: debit positive, credit negative. */
export interface EntryDraft {
  account: AccountRef;
  amount_minor: bigint;
  phase: Phase;
}

export interface PostingDraft {
  reference: string; // unique: a repeated post of the same business event is a no-op
  description: string;
  kind: TransactionKind;
  currency: string;
  merchant_id: string | null;
  payment_id: string | null;
  order_id: string | null;
  pending_id: string | null; // the hold a post_pending / void_pending resolves
  expires_at: Date | null; // holds only
  entries: EntryDraft[];
}

/** The chart of accounts (per currency; a seller's account is keyed by merchant and seller). */
export const ACCOUNTS = {
  psp_receivable: { code: 'psp_receivable', type: 'asset' },
  bank_cash: { code: 'bank_cash', type: 'asset' },
  platform_revenue: { code: 'platform_revenue', type: 'revenue' },
  psp_fee_expense: { code: 'psp_fee_expense', type: 'expense' },
  seller_payout_clearing: { code: 'seller_payout_clearing', type: 'liability' },
  /** Money the PSP took back for open disputes: ours again if a dispute is won. */
  disputes_pending: { code: 'disputes_pending', type: 'asset' },
  /** Sellers' shares held while their sales are disputed. */
  dispute_hold: { code: 'dispute_hold', type: 'liability' },
  sellerPayable: (merchant_id: string, seller_id: string): AccountRef => ({
    code: `seller_payable:${merchant_id}:${seller_id}`,
    type: 'liability',
    merchant_id,
    seller_id,
  }),
} as const satisfies Record<string, AccountRef | ((m: string, s: string) => AccountRef)>;

/** Per currency and phase, entries sum to zero; at least two; none zero. PostgreSQL checks it again at commit. */
export function assertBalanced(posting: PostingDraft): void {
  assert(posting.entries.length >= 2, `posting ${posting.reference} has at least two entries`);
  const sums = new Map<Phase, bigint>();
  for (const entry of posting.entries) {
    assert(entry.amount_minor !== 0n, `posting ${posting.reference} has no zero entries`);
    sums.set(entry.phase, (sums.get(entry.phase) ?? 0n) + entry.amount_minor);
  }
  for (const [phase, sum] of sums) assert(sum === 0n, `posting ${posting.reference} ${phase} entries sum to zero (got ${sum})`);
}

function posting(fields: Omit<PostingDraft, 'kind' | 'pending_id' | 'expires_at'> & Partial<Pick<PostingDraft, 'kind' | 'pending_id' | 'expires_at'>>): PostingDraft {
  const draft: PostingDraft = {
    kind: 'posting',
    pending_id: null,
    expires_at: null,
    ...fields,
    entries: fields.entries.filter((e) => e.amount_minor !== 0n),
  };
  assertBalanced(draft);
  return draft;
}

export interface CapturedOrder {
  order_id: string;
  payment_id: string;
  merchant_id: string;
  seller_id: string;
  currency: string;
  amount_minor: bigint;
  commission_minor: bigint;
  psp_fee_minor: bigint;
}

/**
 * A captured order: the PSP holds the buyer's money for us (asset) less its fee (expense), we owe
 * the seller their share (liability) and keep our commission (revenue). The wallet is the
 * seller-payable balance, so this one transaction credits the wallet and writes the ledger.
 */
export function capturePosting(o: CapturedOrder): PostingDraft {
  assert(o.amount_minor > 0n, 'captured amount is positive');
  assert(o.commission_minor >= 0n && o.commission_minor <= o.amount_minor, 'commission within the amount');
  assert(o.psp_fee_minor >= 0n && o.psp_fee_minor <= o.amount_minor, 'PSP fee within the amount');
  const posted = (account: AccountRef, amount_minor: bigint): EntryDraft => ({ account, amount_minor, phase: 'posted' });
  return posting({
    reference: `order:${o.order_id}:capture`,
    description: 'order captured',
    currency: o.currency,
    merchant_id: o.merchant_id,
    payment_id: o.payment_id,
    order_id: o.order_id,
    entries: [
      posted(ACCOUNTS.psp_receivable, o.amount_minor - o.psp_fee_minor),
      posted(ACCOUNTS.psp_fee_expense, o.psp_fee_minor),
      posted(ACCOUNTS.sellerPayable(o.merchant_id, o.seller_id), -(o.amount_minor - o.commission_minor)),
      posted(ACCOUNTS.platform_revenue, -o.commission_minor),
    ],
  });
}

export interface TransferDraft {
  reference: string;
  description: string;
  currency: string;
  debit: AccountRef;
  credit: AccountRef;
  amount_minor: bigint;
  merchant_id: string | null;
  payment_id?: string | null;
  order_id?: string | null;
}

const pair = (t: TransferDraft, amount_minor: bigint, phase: Phase): EntryDraft[] => [
  { account: t.debit, amount_minor, phase },
  { account: t.credit, amount_minor: -amount_minor, phase },
];

/** A two-phase hold (authorization): the amount moves into both accounts' pending balances. */
export function holdPosting(t: TransferDraft, expires_at: Date): PostingDraft {
  assert(t.amount_minor > 0n, 'a hold is for a positive amount');
  return posting({ ...base(t), kind: 'hold', expires_at, entries: pair(t, t.amount_minor, 'pending') });
}

/** Posts `amount_minor` (≤ the hold) of a hold; the whole hold leaves pending, the rest is released. */
export function postPendingPosting(hold: TransferDraft & { id: string }, amount_minor: bigint, reference: string): PostingDraft {
  assert(amount_minor > 0n && amount_minor <= hold.amount_minor, 'a posted amount is positive and at most the hold');
  return posting({
    ...base(hold),
    reference,
    description: `post hold ${hold.reference}`,
    kind: 'post_pending',
    pending_id: hold.id,
    entries: [...pair(hold, -hold.amount_minor, 'pending'), ...pair(hold, amount_minor, 'posted')],
  });
}

/** Voids a hold: its pending amounts are released, nothing is posted. */
export function voidPendingPosting(hold: TransferDraft & { id: string }, reference: string, description = `void hold ${hold.reference}`): PostingDraft {
  return posting({ ...base(hold), reference, description, kind: 'void_pending', pending_id: hold.id, entries: pair(hold, -hold.amount_minor, 'pending') });
}

function base(t: TransferDraft) {
  return {
    reference: t.reference,
    description: t.description,
    currency: t.currency,
    merchant_id: t.merchant_id,
    payment_id: t.payment_id ?? null,
    order_id: t.order_id ?? null,
    entries: [] as EntryDraft[],
  };
}

/**
 * The PSP paid out a settlement day: its net (charges less fees less refunds) leaves the PSP's
 * hands for our bank. A negative net (more refunded than charged) moves the other way. The PSP fee
 * was booked when each order was captured; it is compared by reconciliation, never booked again.
 */
export function settlementPosting(s: { reference: string; settlement_date: string; currency: string; net_minor: bigint }): PostingDraft {
  assert(s.net_minor !== 0n, 'a settlement posting moves money');
  const posted = (account: AccountRef, amount_minor: bigint): EntryDraft => ({ account, amount_minor, phase: 'posted' });
  return posting({
    reference: s.reference,
    description: `PSP settlement of ${s.settlement_date}`,
    currency: s.currency,
    merchant_id: null,
    payment_id: null,
    order_id: null,
    entries: [posted(ACCOUNTS.bank_cash, s.net_minor), posted(ACCOUNTS.psp_receivable, -s.net_minor)],
  });
}

/** The order as captured (its amount and commission), and the refunds. */
export interface RefundedOrder extends Omit<CapturedOrder, 'psp_fee_minor'> {
  refund_id: string;
  /** Refunded before this refund (succeeded ones), and this refund. */
  refunded_before_minor: bigint;
  refund_minor: bigint;
}

/**
 * The commission given back with refunds is the order's commission scaled by the refunded share,
 * computed on running totals so that refunding everything, in any number of parts, gives back
 * exactly the whole commission (no rounding residue left in platform_revenue).
 */
export function commissionRefunded(o: Pick<RefundedOrder, 'amount_minor' | 'commission_minor'>, refunded_total_minor: bigint): bigint {
  return divideHalfEven(o.commission_minor * refunded_total_minor, o.amount_minor);
}

/**
 * A refund: the PSP takes the amount back from its balance (psp_receivable), the seller gives back
 * their share (seller_payable; it may go below zero if already paid out — recovered from later
 * sales) and we give back our commission pro rata (platform_revenue). The PSP keeps its fee (the
 * sandbox's rule, as at most PSPs): psp_fee_expense is untouched, the platform bears it.
 */
export function refundPosting(o: RefundedOrder): PostingDraft {
  assert(o.refund_minor > 0n, 'a refund is for a positive amount');
  assert(o.refunded_before_minor >= 0n && o.refunded_before_minor + o.refund_minor <= o.amount_minor, 'refunds never exceed the captured amount');
  const commission_minor = commissionRefunded(o, o.refunded_before_minor + o.refund_minor) - commissionRefunded(o, o.refunded_before_minor);
  const posted = (account: AccountRef, amount_minor: bigint): EntryDraft => ({ account, amount_minor, phase: 'posted' });
  return posting({
    reference: `refund:${o.refund_id}`,
    description: 'order refunded',
    currency: o.currency,
    merchant_id: o.merchant_id,
    payment_id: o.payment_id,
    order_id: o.order_id,
    entries: [
      posted(ACCOUNTS.sellerPayable(o.merchant_id, o.seller_id), o.refund_minor - commission_minor),
      posted(ACCOUNTS.platform_revenue, commission_minor),
      posted(ACCOUNTS.psp_receivable, -o.refund_minor),
    ],
  });
}

export interface PayoutDraft {
  payout_id: string;
  merchant_id: string;
  seller_id: string;
  currency: string;
  amount_minor: bigint;
}

/**
 * A payout's three postings: the reservation moves the seller's available balance into clearing
 * (what is on its way to them); when the PSP has paid, clearing is settled against what the PSP
 * holds for us (psp_receivable: the PSP paid from our balance there); when it failed, the amount
 * goes back to the seller.
 */
export function payoutPosting(p: PayoutDraft, step: 'reserve' | 'paid' | 'failed'): PostingDraft {
  assert(p.amount_minor > 0n, 'a payout is for a positive amount');
  const seller = ACCOUNTS.sellerPayable(p.merchant_id, p.seller_id);
  const [debit, credit] =
    step === 'reserve' ? [seller, ACCOUNTS.seller_payout_clearing] : step === 'paid' ? [ACCOUNTS.seller_payout_clearing, ACCOUNTS.psp_receivable] : [ACCOUNTS.seller_payout_clearing, seller];
  const posted = (account: AccountRef, amount_minor: bigint): EntryDraft => ({ account, amount_minor, phase: 'posted' });
  return posting({
    reference: `payout:${p.payout_id}:${step}`,
    description: `payout ${step}`,
    currency: p.currency,
    merchant_id: p.merchant_id,
    payment_id: null,
    order_id: null,
    entries: [posted(debit, p.amount_minor), posted(credit, -p.amount_minor)],
  });
}

export interface DisputedOrder extends Omit<CapturedOrder, 'psp_fee_minor'> {
  dispute_id: string;
  dispute_minor: bigint;
}

/**
 * A dispute in three steps. Opened: the PSP has taken the amount back (psp_receivable →
 * disputes_pending) and the seller's share of it is held (seller_payable → dispute_hold). Won:
 * both are undone. Lost: the held share pays for it, with our commission on it (pro rata, as for
 * a refund); the pending amount is gone.
 */
export function disputePosting(d: DisputedOrder, step: 'open' | 'won' | 'lost'): PostingDraft {
  assert(d.dispute_minor > 0n && d.dispute_minor <= d.amount_minor, 'a dispute is for a positive amount at most the order');
  const commission_minor = commissionRefunded(d, d.dispute_minor);
  const seller_minor = d.dispute_minor - commission_minor;
  const seller = ACCOUNTS.sellerPayable(d.merchant_id, d.seller_id);
  const posted = (account: AccountRef, amount_minor: bigint): EntryDraft => ({ account, amount_minor, phase: 'posted' });
  const entries: Record<typeof step, EntryDraft[]> = {
    open: [posted(ACCOUNTS.disputes_pending, d.dispute_minor), posted(ACCOUNTS.psp_receivable, -d.dispute_minor), posted(seller, seller_minor), posted(ACCOUNTS.dispute_hold, -seller_minor)],
    won: [posted(ACCOUNTS.psp_receivable, d.dispute_minor), posted(ACCOUNTS.disputes_pending, -d.dispute_minor), posted(ACCOUNTS.dispute_hold, seller_minor), posted(seller, -seller_minor)],
    lost: [posted(ACCOUNTS.dispute_hold, seller_minor), posted(ACCOUNTS.platform_revenue, commission_minor), posted(ACCOUNTS.disputes_pending, -d.dispute_minor)],
  };
  return posting({
    reference: `dispute:${d.dispute_id}:${step}`,
    description: `dispute ${step}`,
    currency: d.currency,
    merchant_id: d.merchant_id,
    payment_id: d.payment_id,
    order_id: d.order_id,
    entries: entries[step],
  });
}
