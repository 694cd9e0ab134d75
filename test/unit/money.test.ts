import { AppError } from '../../src/domain/errors';
import { addMoney, allocate, currencyExponent, divideHalfEven, formatAmount, parseAmount } from '../../src/domain/money';
import { commissionFor } from '../../src/domain/fees';

describe('money', () => {
  it('uses ISO 4217 exponents', () => {
    expect(currencyExponent('USD')).toBe(2);
    expect(currencyExponent('JPY')).toBe(0);
    expect(currencyExponent('KWD')).toBe(3);
  });

  it.each(['usd', 'ABC', 'XXX', 'XAU', 'US', ''])('refuses %j as a currency', (code) => {
    expect(() => currencyExponent(code)).toThrow(AppError);
  });

  it.each([
    ['12.34', 'USD', 1234n],
    ['12.3', 'USD', 1230n],
    ['12', 'USD', 1200n],
    ['0.01', 'USD', 1n],
    ['1000', 'JPY', 1000n],
    ['1.234', 'KWD', 1234n],
    ['999999999999999999', 'JPY', 999999999999999999n],
  ])('parses %s %s exactly', (text, currency, minor) => {
    expect(parseAmount(text, currency)).toBe(minor);
  });

  it.each([['12.345', 'USD'], ['10.5', 'JPY'], ['1e3', 'USD'], ['+1.00', 'USD'], [' 1.00', 'USD'], ['1.', 'USD'], ['.5', 'USD'], ['01.00', 'USD'], ['-1.00', 'USD'], ['1,00', 'USD'], ['1000000000000000000', 'JPY']])(
    'refuses %j %s with invalid_amount',
    (text, currency) => {
      expect(() => parseAmount(text, currency)).toThrow(expect.objectContaining({ code: 'invalid_amount' }));
    },
  );

  it('formats with the full exponent and round-trips', () => {
    expect(formatAmount(1230n, 'USD')).toBe('12.30');
    expect(formatAmount(5n, 'USD')).toBe('0.05');
    expect(formatAmount(1000n, 'JPY')).toBe('1000');
    expect(formatAmount(1n, 'KWD')).toBe('0.001');
    expect(formatAmount(-250n, 'USD')).toBe('-2.50');
    for (let minor = 0n; minor < 2_000n; minor += 7n) expect(parseAmount(formatAmount(minor, 'KWD'), 'KWD')).toBe(minor);
  });

  it('rounds half to even', () => {
    expect(divideHalfEven(25n, 10n)).toBe(2n); // 2.5 → 2
    expect(divideHalfEven(35n, 10n)).toBe(4n); // 3.5 → 4
    expect(divideHalfEven(26n, 10n)).toBe(3n);
    expect(divideHalfEven(24n, 10n)).toBe(2n);
    expect(divideHalfEven(0n, 10n)).toBe(0n);
  });

  it('takes commission as percent (half-even) plus fixed, never more than the amount', () => {
    expect(commissionFor(10_000n, { percent_bps: 300, fixed_minor: 0n })).toBe(300n);
    expect(commissionFor(2_550n, { percent_bps: 300, fixed_minor: 0n })).toBe(76n); // 76.5 → 76
    expect(commissionFor(50n, { percent_bps: 300, fixed_minor: 0n })).toBe(2n); // 1.5 → 2
    expect(commissionFor(10_000n, { percent_bps: 250, fixed_minor: 30n })).toBe(280n);
    expect(commissionFor(20n, { percent_bps: 0, fixed_minor: 30n })).toBe(20n);
  });

  it('allocates remainders deterministically to the largest remainders', () => {
    expect(allocate(100n, [1n, 1n, 1n])).toEqual([34n, 33n, 33n]);
    expect(allocate(5n, [1n, 3n])).toEqual([1n, 4n]);
    expect(allocate(0n, [2n, 5n])).toEqual([0n, 0n]);
  });

  it('refuses to add two currencies', () => {
    expect(() => addMoney({ amount_minor: 1n, currency: 'USD' }, { amount_minor: 1n, currency: 'EUR' })).toThrow(/cannot add USD and EUR/);
  });
});
