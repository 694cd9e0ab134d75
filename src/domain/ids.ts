import { randomBytes } from 'node:crypto';

/** Prefixed random ids (Stripe style) so an id says what it is: pay_…, ord_…, mer_… */
export function newId(prefix: 'pay' | 'ord' | 'mer' | 'key' | 'rcn' | 'rfd' | 'pyo'): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}
