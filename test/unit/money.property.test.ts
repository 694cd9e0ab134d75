import fc from 'fast-check';
import { AppError } from '../../src/domain/errors';
import { addMoney, allocate, currencyExponent, divideHalfEven, formatAmount, parseAmount } from '../../src/domain/money';
import { commissionFor } from '../../src/domain/fees';
import { ACCOUNTS, capturePosting, type PostingDraft } from '../../src/domain/ledger';

/**
 * Property tests for the money core: pure functions, no I/O. Every property is checked against an
 * independent reference (exact rational arithmetic on bigints), not against the code under test.
 */

const RUNS = { numRuns: 300 };
const MAX_AMOUNT = 10n ** 18n - 1n; // 18 digits: the int8-safe bound parseAmount enforces

// Exponents 0, 2 and 3, each by more than one currency.
const CURRENCIES = ['USD', 'EUR', 'JPY', 'CLP', 'KWD', 'BHD'] as const;
const currency = fc.constantFrom(...CURRENCIES);

// fc.bigInt biases towards small values; mix in "n digits long" so every length 1..18 shows up.
const amount18 = fc.oneof(
  fc.bigInt({ min: 0n, max: MAX_AMOUNT }),
  fc.integer({ min: 1, max: 18 }).chain((d) => fc.bigInt({ min: d === 1 ? 0n : 10n ** BigInt(d - 1), max: 10n ** BigInt(d) - 1n })),
);
const digitString = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength });

const abs = (x: bigint) => (x < 0n ? -x : x);

describe('money properties', () => {
  it('covers exponents 0, 2 and 3', () => {
    expect(new Set(CURRENCIES.map(currencyExponent))).toEqual(new Set([0, 2, 3]));
  });

  it('parseAmount(formatAmount(x)) === x, and formatted amounts are plain decimals with exactly the exponent', () => {
    fc.assert(
      fc.property(amount18, currency, (x, c) => {
        const e = currencyExponent(c);
        const text = formatAmount(x, c);
        expect(text).not.toMatch(/[e+\s]/i);
        expect(text).toMatch(e === 0 ? /^(0|[1-9][0-9]*)$/ : new RegExp(`^(0|[1-9][0-9]*)\\.[0-9]{${e}}$`));
        expect(parseAmount(text, c)).toBe(x);
      }),
      RUNS,
    );
  });

  it('parseAmount accepts up to the exponent in decimals, padding with zeros', () => {
    const decimal = fc.constantFrom('USD', 'KWD', 'BHD').chain((c) =>
      fc.tuple(fc.constant(c), fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }), digitString(1, currencyExponent(c))),
    );
    fc.assert(
      fc.property(decimal, ([c, whole, fraction]) => {
        const e = currencyExponent(c);
        expect(parseAmount(`${whole}.${fraction}`, c)).toBe(whole * 10n ** BigInt(e) + BigInt(fraction) * 10n ** BigInt(e - fraction.length));
      }),
      RUNS,
    );
  });

  it('parseAmount refuses any string with more decimals than the exponent (invalid_amount)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 12n }), currency, fc.integer({ min: 1, max: 6 }), digitString(6, 6), (whole, c, extra, pool) => {
        const e = currencyExponent(c);
        const fraction = (pool + pool).slice(0, e + extra); // e+1 .. e+6 digits, zeros included
        let thrown: unknown;
        try {
          parseAmount(`${whole}.${fraction}`, c);
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(AppError);
        expect((thrown as AppError).code).toBe('invalid_amount');
      }),
      RUNS,
    );
  });

  it('allocate: parts sum to the total, are ≥ 0, each within one unit of its exact share, deterministic', () => {
    const weights = fc.array(fc.oneof(fc.bigInt({ min: 0n, max: 10n }), fc.bigInt({ min: 0n, max: 10n ** 9n })), { minLength: 1, maxLength: 12 }).filter((ws) => ws.some((w) => w > 0n));
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 10n ** 15n })), weights, (total, ws) => {
        const parts = allocate(total, ws);
        expect(parts).toHaveLength(ws.length);
        expect(parts.reduce((a, b) => a + b, 0n)).toBe(total);
        const sum = ws.reduce((a, b) => a + b, 0n);
        parts.forEach((part, i) => {
          expect(part >= 0n).toBe(true);
          // |part − total·w/sum| < 1  ⇔  |part·sum − total·w| < sum (i.e. part is the floor or the ceiling)
          expect(abs(part * sum - total * (ws[i] as bigint)) < sum).toBe(true);
        });
        expect(allocate(total, [...ws])).toEqual(parts);
      }),
      RUNS,
    );
  });

  it('commissionFor: 0 ≤ commission ≤ amount, seller share + commission = amount, matches the exact rule, monotonic in amount', () => {
    const rule = fc.record({
      percent_bps: fc.oneof(fc.constantFrom(0, 1, 250, 300, 5_000, 9_999, 10_000), fc.integer({ min: 0, max: 10_000 })),
      fixed_minor: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 1_000n }), fc.bigInt({ min: 0n, max: 10n ** 13n })),
    });
    const amount = fc.oneof(fc.bigInt({ min: 1n, max: 10_000n }), fc.bigInt({ min: 1n, max: 10n ** 14n }));
    fc.assert(
      fc.property(amount, amount, rule, (a1, a2, r) => {
        const [lo, hi] = a1 <= a2 ? [a1, a2] : [a2, a1];
        const c_lo = commissionFor(lo, r);
        const c_hi = commissionFor(hi, r);
        for (const [amt, c] of [[lo, c_lo], [hi, c_hi]] as const) {
          expect(c >= 0n && c <= amt).toBe(true);
          const seller = amt - c;
          expect(seller >= 0n).toBe(true);
          expect(seller + c).toBe(amt);
          // Reference: amt·bps/10000 rounded half to even (exact rational), plus fixed, capped at amt.
          const num = amt * BigInt(r.percent_bps);
          const q = num / 10_000n;
          const twice_r = 2n * (num % 10_000n);
          const rounded = twice_r > 10_000n || (twice_r === 10_000n && q % 2n === 1n) ? q + 1n : q;
          const expected = rounded + r.fixed_minor > amt ? amt : rounded + r.fixed_minor;
          expect(c).toBe(expected);
        }
        expect(c_lo <= c_hi).toBe(true);
      }),
      RUNS,
    );
  });

  it('divideHalfEven is the nearest integer to n/d, ties to even (exact rational reference)', () => {
    const denominator = fc.oneof(fc.bigInt({ min: 1n, max: 10n }), fc.bigInt({ min: 1n, max: 10n ** 12n }));
    const pair = fc.oneof(
      fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 30n }), denominator),
      // exact ties: n = k·d + d/2 with d even
      fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.bigInt({ min: 1n, max: 10n ** 9n })).map(([k, h]) => [k * 2n * h + h, 2n * h] as [bigint, bigint]),
    );
    fc.assert(
      fc.property(pair, ([n, d]) => {
        const q = divideHalfEven(n, d);
        // |q − n/d| ≤ 1/2  ⇔  |2(q·d − n)| ≤ d; on a tie (= d) q is even.
        const twice_error = abs(2n * (q * d - n));
        expect(twice_error <= d).toBe(true);
        if (twice_error === d) expect(q % 2n).toBe(0n);
        // and against the remainder comparison: 2·remainder vs the denominator
        const floor = n / d;
        const twice_rem = 2n * (n - floor * d);
        const expected = twice_rem > d ? floor + 1n : twice_rem < d ? floor : floor % 2n === 0n ? floor : floor + 1n;
        expect(q).toBe(expected);
      }),
      RUNS,
    );
  });

  it('addMoney adds within one currency and refuses to mix currencies (assertion)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }), fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }), currency, currency, (a, b, c1, c2) => {
        if (c1 === c2) {
          expect(addMoney({ amount_minor: a, currency: c1 }, { amount_minor: b, currency: c2 })).toEqual({ amount_minor: a + b, currency: c1 });
        } else {
          expect(() => addMoney({ amount_minor: a, currency: c1 }, { amount_minor: b, currency: c2 })).toThrow(/assertion failed/);
        }
      }),
      RUNS,
    );
  });

  it('capturePosting: entries balance, seller credit = amount − commission, receivable = amount − fee', () => {
    const order = fc.bigInt({ min: 1n, max: 10n ** 15n }).chain((amount) =>
      fc.record({
        amount: fc.constant(amount),
        commission: fc.oneof(fc.constantFrom(0n, amount), fc.bigInt({ min: 0n, max: amount })),
        fee: fc.oneof(fc.constantFrom(0n, amount), fc.bigInt({ min: 0n, max: amount })),
        currency,
        seller: fc.constantFrom('s1', 'seller:with:colons', 's_ü'),
      }),
    );
    const total = (p: PostingDraft, code: string) => p.entries.filter((e) => e.account.code === code).reduce((a, e) => a + e.amount_minor, 0n);
    fc.assert(
      fc.property(order, (o) => {
        const p = capturePosting({
          order_id: 'ord_1',
          payment_id: 'pay_1',
          merchant_id: 'm_1',
          seller_id: o.seller,
          currency: o.currency,
          amount_minor: o.amount,
          commission_minor: o.commission,
          psp_fee_minor: o.fee,
        });
        expect(p.entries.reduce((a, e) => a + e.amount_minor, 0n)).toBe(0n);
        expect(p.entries.length).toBeGreaterThanOrEqual(2);
        for (const e of p.entries) {
          expect(e.amount_minor).not.toBe(0n);
          expect(e.phase).toBe('posted');
        }
        expect(p.currency).toBe(o.currency);
        expect(p.kind).toBe('posting');
        expect(total(p, ACCOUNTS.sellerPayable('m_1', o.seller).code)).toBe(-(o.amount - o.commission));
        expect(total(p, ACCOUNTS.psp_receivable.code)).toBe(o.amount - o.fee);
        expect(total(p, ACCOUNTS.psp_fee_expense.code)).toBe(o.fee);
        expect(total(p, ACCOUNTS.platform_revenue.code)).toBe(-o.commission);
        // debits total the amount: what the buyer paid is accounted for exactly once
        expect(p.entries.filter((e) => e.amount_minor > 0n).reduce((a, e) => a + e.amount_minor, 0n)).toBe(o.amount);
      }),
      RUNS,
    );
  });
});
