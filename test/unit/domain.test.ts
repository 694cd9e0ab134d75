import { capturePosting, assertBalanced, commissionRefunded, disputePosting, postPendingPosting, refundPosting, type EntryDraft } from '../../src/domain/ledger';
import { derivePaymentStatus, assertOrderMove, orderStatusesBefore, statusRank } from '../../src/domain/status';
import { evaluateRiskRules, parseRiskRules } from '../../src/domain/risk';
import { requestHash } from '../../src/services/idempotency';
import { fromZod, httpStatusOf } from '../../src/api/errors';
import { CreatePaymentBody } from '../../src/api/schemas';
import { AppError, ERROR_CODES } from '../../src/domain/errors';

describe('payment status', () => {
  it('derives the event status from its orders', () => {
    expect(derivePaymentStatus(['succeeded', 'succeeded'])).toBe('succeeded');
    expect(derivePaymentStatus(['failed', 'failed'])).toBe('failed');
    expect(derivePaymentStatus(['succeeded', 'failed'])).toBe('partially_succeeded');
    expect(derivePaymentStatus(['succeeded', 'executing'])).toBe('processing');
    expect(derivePaymentStatus(['not_started'])).toBe('processing');
  });

  it('shows the most urgent wait while any order is open, and canceled only when every order is', () => {
    expect(derivePaymentStatus(['pending', 'executing'])).toBe('pending');
    expect(derivePaymentStatus(['pending', 'requires_action', 'succeeded'])).toBe('requires_action');
    expect(derivePaymentStatus(['canceled', 'canceled'])).toBe('canceled');
    expect(derivePaymentStatus(['canceled', 'failed'])).toBe('failed');
    expect(derivePaymentStatus(['canceled', 'succeeded'])).toBe('partially_succeeded');
  });

  it('ranks statuses like the database trigger: waiting states are peers, terminal ones final', () => {
    expect(() => assertOrderMove('pending', 'requires_action')).not.toThrow();
    expect(() => assertOrderMove('requires_action', 'pending')).not.toThrow();
    expect(() => assertOrderMove('pending', 'executing')).toThrow(/not allowed/);
    expect(() => assertOrderMove('canceled', 'succeeded')).toThrow(/not allowed/);
    // news may settle a parked order too; an operator's retry is the one step back allowed
    expect(orderStatusesBefore('pending')).toEqual(['not_started', 'executing', 'requires_action', 'pending', 'needs_attention', 'authorized']);
    expect(orderStatusesBefore('succeeded')).toEqual(['not_started', 'executing', 'requires_action', 'pending', 'needs_attention', 'authorized']);
    expect(orderStatusesBefore('executing')).toEqual(['not_started', 'executing', 'needs_attention']);
    expect(() => assertOrderMove('needs_attention', 'not_started')).toThrow(/not allowed/);
    expect(derivePaymentStatus(['needs_attention', 'requires_action'])).toBe('needs_attention');
    expect(statusRank('requires_payment_method')).toBeLessThan(statusRank('processing'));
  });

  it('never lets an order status move backwards or leave a terminal state', () => {
    expect(() => assertOrderMove('succeeded', 'failed')).toThrow(/not allowed/);
    expect(() => assertOrderMove('failed', 'executing')).toThrow(/not allowed/);
    expect(() => assertOrderMove('executing', 'not_started')).toThrow(/not allowed/);
    expect(() => assertOrderMove('not_started', 'executing')).not.toThrow();
  });

  it('after a sale, lets refunds move a captured order forward only', () => {
    expect(() => assertOrderMove('succeeded', 'partially_refunded')).not.toThrow();
    expect(() => assertOrderMove('partially_refunded', 'partially_refunded')).not.toThrow();
    expect(() => assertOrderMove('partially_refunded', 'refunded')).not.toThrow();
    expect(() => assertOrderMove('succeeded', 'refunded')).not.toThrow();
    expect(() => assertOrderMove('refunded', 'partially_refunded')).toThrow(/not allowed/);
    expect(() => assertOrderMove('partially_refunded', 'succeeded')).toThrow(/not allowed/);
    expect(() => assertOrderMove('failed', 'refunded')).toThrow(/not allowed/);
    expect(() => assertOrderMove('executing', 'refunded')).not.toThrow(); // rank only; refunds check the capture
  });

  it('derives refunded when every captured order is refunded, partially_refunded on any refund', () => {
    expect(derivePaymentStatus(['refunded', 'refunded'])).toBe('refunded');
    expect(derivePaymentStatus(['refunded', 'failed'])).toBe('refunded');
    expect(derivePaymentStatus(['refunded', 'succeeded'])).toBe('partially_refunded');
    expect(derivePaymentStatus(['partially_refunded'])).toBe('partially_refunded');
    expect(derivePaymentStatus(['succeeded', 'failed'])).toBe('partially_succeeded');
  });
});

describe('ledger postings', () => {
  it('holds a disputed order, then releases it (won) or lets the held share pay for it (lost)', () => {
    const d = { dispute_id: 'dp_1', order_id: 'ord_1', payment_id: 'pay_1', merchant_id: 'mer_1', seller_id: 'S', currency: 'USD', amount_minor: 1_000n, commission_minor: 30n, dispute_minor: 1_000n };
    const codes = (step: 'open' | 'won' | 'lost') => disputePosting(d, step).entries.map((e) => [e.account.code, e.amount_minor]);
    expect(codes('open')).toEqual([['disputes_pending', 1_000n], ['psp_receivable', -1_000n], ['seller_payable:mer_1:S', 970n], ['dispute_hold', -970n]]);
    expect(codes('won')).toEqual([['psp_receivable', 1_000n], ['disputes_pending', -1_000n], ['dispute_hold', 970n], ['seller_payable:mer_1:S', -970n]]);
    expect(codes('lost')).toEqual([['dispute_hold', 970n], ['platform_revenue', 30n], ['disputes_pending', -1_000n]]);
    expect(() => disputePosting({ ...d, dispute_minor: 1_001n }, 'open')).toThrow(/at most the order/);
  });

  it('lets a dispute open on a captured order and close back to it, or to refunded', () => {
    expect(() => assertOrderMove('succeeded', 'disputed')).not.toThrow();
    expect(() => assertOrderMove('disputed', 'succeeded')).not.toThrow();
    expect(() => assertOrderMove('disputed', 'refunded')).not.toThrow();
    expect(() => assertOrderMove('failed', 'disputed')).toThrow(/not allowed/);
    expect(() => assertOrderMove('disputed', 'failed')).toThrow(/not allowed/);
    expect(derivePaymentStatus(['disputed', 'succeeded'])).toBe('disputed');
  });

  it('reverses a refund: the seller\'s share and the commission pro rata, the PSP takes the amount back', () => {
    const order = { refund_id: 'rfd_1', order_id: 'ord_1', payment_id: 'pay_1', merchant_id: 'mer_1', seller_id: 'S', currency: 'USD', amount_minor: 1_000n, commission_minor: 30n };
    const part = refundPosting({ ...order, refunded_before_minor: 0n, refund_minor: 333n });
    expect(part.reference).toBe('refund:rfd_1');
    expect(part.entries.map((e) => [e.account.code, e.amount_minor])).toEqual([
      ['seller_payable:mer_1:S', 323n],
      ['platform_revenue', 10n],
      ['psp_receivable', -333n],
    ]);
    // Three parts of 333 and one of 1 give back exactly the commission of 30, whatever the rounding.
    const given = [0n, 333n, 666n, 999n].map((before, i) => commissionRefunded(order, before + (i < 3 ? 333n : 1n)) - commissionRefunded(order, before));
    expect(given.reduce((a, b) => a + b, 0n)).toBe(30n);
    expect(() => refundPosting({ ...order, refunded_before_minor: 900n, refund_minor: 101n })).toThrow(/never exceed/);
  });

  it('posts a capture: receivable less the PSP fee, the fee as expense, the seller and commission as credits', () => {
    const posting = capturePosting({ order_id: 'ord_1', payment_id: 'pay_1', merchant_id: 'mer_1', seller_id: 'S', currency: 'USD', amount_minor: 10_000n, commission_minor: 300n, psp_fee_minor: 320n });
    expect(posting.reference).toBe('order:ord_1:capture');
    expect(posting.entries.map((e) => [e.account.code, e.amount_minor, e.phase])).toEqual([
      ['psp_receivable', 9_680n, 'posted'],
      ['psp_fee_expense', 320n, 'posted'],
      ['seller_payable:mer_1:S', -9_700n, 'posted'],
      ['platform_revenue', -300n, 'posted'],
    ]);
  });

  it('refuses an unbalanced posting and one that nets phases against each other', () => {
    const a = { code: 'a', type: 'asset' as const };
    const b = { code: 'b', type: 'liability' as const };
    const draft = (entries: EntryDraft[]) => ({ reference: 'x', description: 'x', kind: 'posting' as const, currency: 'USD', merchant_id: null, payment_id: null, order_id: null, pending_id: null, expires_at: null, entries });
    expect(() => assertBalanced(draft([{ account: a, amount_minor: 100n, phase: 'posted' }, { account: b, amount_minor: -99n, phase: 'posted' }]))).toThrow(/sum to zero/);
    expect(() => assertBalanced(draft([{ account: a, amount_minor: 100n, phase: 'posted' }, { account: b, amount_minor: -100n, phase: 'pending' }]))).toThrow(/sum to zero/);
  });

  it('posts part of a hold and releases the whole pending amount', () => {
    const hold = { id: '7', reference: 'h', description: 'h', currency: 'USD', merchant_id: null, debit: { code: 'a', type: 'asset' as const }, credit: { code: 'b', type: 'liability' as const }, amount_minor: 1_000n };
    const entries = postPendingPosting(hold, 600n, 'h:post').entries.map((e) => [e.account.code, e.amount_minor, e.phase]);
    expect(entries).toEqual([['a', -1_000n, 'pending'], ['b', 1_000n, 'pending'], ['a', 600n, 'posted'], ['b', -600n, 'posted']]);
    expect(() => postPendingPosting(hold, 1_001n, 'h:post')).toThrow(/at most the hold/);
  });
});

describe('risk rules', () => {
  const rules = parseRiskRules('USD:100.00,JPY:10000', 'bad_buyer, worse_buyer');
  const input = { payment_id: 'p', merchant_id: 'm', buyer_id: 'ok', currency: 'USD', amount_minor: 10_000n };

  it('passes a payment within the limit', () => {
    expect(evaluateRiskRules(rules, input)).toEqual({ approved: true });
  });
  it('rejects above the per-currency cap and blocked buyers', () => {
    expect(evaluateRiskRules(rules, { ...input, amount_minor: 10_001n })).toMatchObject({ approved: false, code: 'risk_rejected' });
    expect(evaluateRiskRules(rules, { ...input, buyer_id: 'worse_buyer' })).toMatchObject({ approved: false, code: 'risk_rejected' });
  });
  it('refuses malformed rule config', () => {
    expect(() => parseRiskRules('USD100', '')).toThrow(/CUR:amount/);
    expect(() => parseRiskRules('USD:1.001', '')).toThrow(AppError);
  });
});

describe('errors', () => {
  it('maps every code to an HTTP status in one table', () => {
    for (const code of Object.keys(ERROR_CODES) as (keyof typeof ERROR_CODES)[]) {
      const status = httpStatusOf(new AppError(code, 'm'));
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
    expect(httpStatusOf(new AppError('idempotency_key_reused', 'm'))).toBe(422);
    expect(httpStatusOf(new AppError('idempotency_key_in_use', 'm'))).toBe(409);
  });

  it('names the offending field of a schema failure', () => {
    const parsed = CreatePaymentBody.safeParse({ buyer: { id: 'b' }, currency: 'USD', orders: [{ seller_id: 's', amount: 5 }] });
    expect(parsed.success).toBe(false);
    if (!parsed.success) expect(fromZod(parsed.error)).toMatchObject({ code: 'invalid_amount', param: 'orders[0].amount' });
  });
});

describe('idempotency request hash', () => {
  it('ignores key order but not values', () => {
    expect(requestHash('POST', '/p', { a: 1, b: { c: 2, d: 3 } })).toBe(requestHash('POST', '/p', { b: { d: 3, c: 2 }, a: 1 }));
    expect(requestHash('POST', '/p', { a: '1.00' })).not.toBe(requestHash('POST', '/p', { a: '1.0' }));
  });
});
