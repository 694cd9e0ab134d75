import cc from 'currency-codes';
import { assert } from './assert';
import { AppError } from './errors';
import { LIMITS } from '../config';

/**
 * Money is bigint minor units plus an ISO 4217 code. Decimal strings exist only at boundaries
 * (HTTP, Temporal payloads, CSV); no JS number ever holds an amount.
 */
export interface Money {
  amount_minor: bigint;
  currency: string;
}

// Codes that are not money a buyer can pay with: precious metals, fund codes, testing, "no currency".
const NOT_PAYABLE = new Set([
  'XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XPD', 'XPT', 'XSU', 'XTS', 'XUA', 'XXX',
  'BOV', 'CHE', 'CHW', 'CLF', 'COU', 'MXV', 'USN', 'UYI', 'UYW',
]);

export function currencyExponent(currency: string): number {
  const entry = /^[A-Z]{3}$/.test(currency) && !NOT_PAYABLE.has(currency) ? cc.code(currency) : undefined;
  if (entry === undefined) throw new AppError('invalid_currency', `unknown currency: ${currency}`, 'currency');
  assert(Number.isInteger(entry.digits) && entry.digits >= 0 && entry.digits <= 4, 'currency exponent in range');
  return entry.digits;
}

export function isCurrency(currency: string): boolean {
  try {
    currencyExponent(currency);
    return true;
  } catch {
    return false;
  }
}

const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

/**
 * "12.34" USD → 1234n. Fewer decimals than the exponent are allowed ("12.3" → 1230n); more are
 * refused, as are signs, exponents, whitespace and more than 18 digits (int8 range).
 */
export function parseAmount(text: string, currency: string, param = 'amount'): bigint {
  const exponent = currencyExponent(currency);
  const match = DECIMAL.exec(text);
  if (match === null) throw new AppError('invalid_amount', `amount must be a decimal string like "12.34", got ${JSON.stringify(text)}`, param);
  const whole = match[1] ?? '';
  const fraction = match[2] ?? '';
  if (fraction.length > exponent) {
    throw new AppError('invalid_amount', `${currency} allows at most ${exponent} decimal places`, param);
  }
  const digits = (whole + fraction.padEnd(exponent, '0')).replace(/^0+(?=\d)/, '');
  if (digits.length > LIMITS.amount_digits_max) throw new AppError('invalid_amount', 'amount is too large', param);
  return BigInt(digits);
}

/** 1234n USD → "12.34"; 1000n JPY → "1000". */
export function formatAmount(amount_minor: bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const negative = amount_minor < 0n;
  const digits = (negative ? -amount_minor : amount_minor).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent === 0 ? '' : `.${digits.slice(digits.length - exponent)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** `CUR:amount,CUR:amount` (an env setting, amounts in the currency's units) as minor units per currency. */
export function parseCurrencyAmounts(value: string, setting: string): Map<string, bigint> {
  const amounts = new Map<string, bigint>();
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [currency, amount, extra] = part.split(':');
    if (currency === undefined || amount === undefined || extra !== undefined) {
      throw new AppError('parameter_invalid', `${setting} entry must be CUR:amount, got ${part}`, setting);
    }
    amounts.set(currency, parseAmount(amount, currency, setting));
  }
  return amounts;
}

/** Integer division rounded half to even (banker's rounding), for non-negative operands. */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  assert(numerator >= 0n && denominator > 0n, 'divideHalfEven takes non-negative numerator, positive denominator');
  const quotient = numerator / denominator;
  const twice_remainder = (numerator % denominator) * 2n;
  if (twice_remainder > denominator) return quotient + 1n;
  if (twice_remainder < denominator) return quotient;
  return quotient % 2n === 0n ? quotient : quotient + 1n;
}

/** Money arithmetic never mixes currencies: both sides must share one (an assertion, not an error path). */
export function addMoney(a: Money, b: Money): Money {
  assert(a.currency === b.currency, `cannot add ${a.currency} and ${b.currency}`);
  return { amount_minor: a.amount_minor + b.amount_minor, currency: a.currency };
}

export function subtractMoney(a: Money, b: Money): Money {
  assert(a.currency === b.currency, `cannot subtract ${b.currency} from ${a.currency}`);
  return { amount_minor: a.amount_minor - b.amount_minor, currency: a.currency };
}

/**
 * Splits a total across parts in proportion to weights without losing or creating a minor unit:
 * each part gets its floor share, and the leftover units go one each to the parts with the
 * largest remainders (ties: the earlier part), so the same input always splits the same way.
 */
export function allocate(total_minor: bigint, weights: readonly bigint[]): bigint[] {
  assert(total_minor >= 0n, 'allocate a non-negative total');
  assert(weights.length > 0 && weights.every((w) => w >= 0n), 'weights are non-negative');
  const weight_sum = weights.reduce((a, b) => a + b, 0n);
  assert(weight_sum > 0n, 'at least one positive weight');
  const shares = weights.map((w) => (total_minor * w) / weight_sum);
  const remainders = weights.map((w, i) => ({ i, r: (total_minor * w) % weight_sum }));
  let leftover = total_minor - shares.reduce((a, b) => a + b, 0n);
  remainders.sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i } of remainders) {
    if (leftover === 0n) break;
    shares[i] = (shares[i] ?? 0n) + 1n;
    leftover -= 1n;
  }
  assert(shares.reduce((a, b) => a + b, 0n) === total_minor, 'allocation sums to the total');
  return shares;
}
