/**
 * Card rules of the hosted checkout: pure, no I/O. The full number exists only inside one
 * request; what leaves this module is brand, last4 and the test outcome (a token name).
 */

export const CARD_LIMITS = {
  number_digits_min: 13,
  number_digits_max: 19,
  name_chars_max: 100,
  // Raw form input is bounded before any parsing, so a huge field costs nothing.
  field_chars_max: 64,
} as const;

/** Test card → the API token with the same outcome (see TOKEN_OUTCOMES in app.ts). */
export const TEST_CARDS: ReadonlyArray<{ number: string; token: string; label: string }> = [
  { number: '4242424242424242', token: 'tok_success', label: 'succeeds' },
  { number: '4000000000000002', token: 'tok_decline', label: 'declined (card_declined)' },
  { number: '4000000000009995', token: 'tok_insufficient_funds', label: 'declined (insufficient_funds)' },
  { number: '4000000000000259', token: 'tok_review_approve', label: 'pending review, then succeeds' },
  { number: '4000000000000267', token: 'tok_review_decline', label: 'pending review, then fails' },
  { number: '4000002760003184', token: 'tok_requires_action', label: '3-D Secure required' },
];

// Any other valid card succeeds, as in a permissive test mode.
const DEFAULT_TOKEN = 'tok_success';

export interface CardForm {
  card_number: string;
  expiry: string;
  cvc: string;
  name: string;
}

export interface AcceptedCard {
  brand: string;
  last4: string;
  token: string;
  exp_month: number;
  exp_year: number;
  name: string;
}

export type CardCheck = { ok: true; card: AcceptedCard } | { ok: false; errors: Partial<Record<keyof CardForm, string>> };

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export function cardBrand(digits: string): string {
  if (digits.startsWith('4')) return 'visa';
  if (/^(5[1-5]|2[2-7])/.test(digits)) return 'mastercard';
  if (/^3[47]/.test(digits)) return 'amex';
  return 'unknown';
}

function checkNumber(raw: string): string | null {
  const digits = raw.replace(/[\s-]/g, '');
  const { number_digits_min: min, number_digits_max: max } = CARD_LIMITS;
  if (!/^\d+$/.test(digits) || digits.length < min || digits.length > max) {
    return `Card number must be ${min} to ${max} digits.`;
  }
  return luhnValid(digits) ? null : 'Card number is not valid.';
}

/** MM/YY; a card is valid through the last day of its expiry month (UTC). */
function parseExpiry(raw: string, now: Date): { month: number; year: number } | string {
  const match = /^\s*(\d{2})\s*\/\s*(\d{2})\s*$/.exec(raw);
  if (match === null) return 'Expiry must be MM/YY.';
  const month = Number(match[1]);
  const year = 2000 + Number(match[2]);
  if (month < 1 || month > 12) return 'Expiry month must be 01 to 12.';
  const this_month = now.getUTCFullYear() * 12 + now.getUTCMonth();
  if (year * 12 + (month - 1) < this_month) return 'Card has expired.';
  return { month, year };
}

export function checkCard(form: CardForm, now: Date): CardCheck {
  const errors: Partial<Record<keyof CardForm, string>> = {};
  const number_error = checkNumber(form.card_number);
  if (number_error !== null) errors.card_number = number_error;
  const expiry = parseExpiry(form.expiry, now);
  if (typeof expiry === 'string') errors.expiry = expiry;
  if (!/^\d{3,4}$/.test(form.cvc.trim())) errors.cvc = 'CVC must be 3 or 4 digits.';
  const name = form.name.trim();
  if (name.length < 1 || name.length > CARD_LIMITS.name_chars_max) {
    errors.name = `Name must be 1 to ${CARD_LIMITS.name_chars_max} characters.`;
  }
  if (Object.keys(errors).length > 0 || typeof expiry === 'string') return { ok: false, errors };
  const digits = form.card_number.replace(/[\s-]/g, '');
  const token = TEST_CARDS.find((c) => c.number === digits)?.token ?? DEFAULT_TOKEN;
  const card = { brand: cardBrand(digits), last4: digits.slice(-4), token, exp_month: expiry.month, exp_year: expiry.year, name };
  return { ok: true, card };
}
