import { AppError } from '../../src/domain/errors';
import { currencyExponent, divideHalfEven, formatAmount, parseAmount, splitCommission } from '../../src/domain/money';

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

  it('splits commission so that the parts always sum to the whole', () => {
    expect(splitCommission(10_000n, 300)).toEqual({ commission_minor: 300n, seller_minor: 9_700n });
    expect(splitCommission(2_550n, 300)).toEqual({ commission_minor: 76n, seller_minor: 2_474n }); // 76.5 → 76
    expect(splitCommission(50n, 300)).toEqual({ commission_minor: 2n, seller_minor: 48n }); // 1.5 → 2
    for (let amount = 1n; amount < 5_000n; amount += 13n) {
      const { commission_minor, seller_minor } = splitCommission(amount, 300);
      expect(commission_minor + seller_minor).toBe(amount);
    }
  });
});
