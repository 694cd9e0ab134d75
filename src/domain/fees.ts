import { assert } from './assert';
import { divideHalfEven } from './money';

/** A merchant's commission: a percentage (basis points, rounded half-even) plus a fixed amount. */
export interface FeeRule {
  percent_bps: number;
  fixed_minor: bigint;
}

/** Never more than the amount itself: the seller's share is never negative. */
export function commissionFor(amount_minor: bigint, rule: FeeRule): bigint {
  assert(amount_minor > 0n, 'commission is taken on a positive amount');
  assert(Number.isInteger(rule.percent_bps) && rule.percent_bps >= 0 && rule.percent_bps <= 10_000, 'percent_bps in 0..10000');
  assert(rule.fixed_minor >= 0n, 'fixed fee is not negative');
  const commission_minor = divideHalfEven(amount_minor * BigInt(rule.percent_bps), 10_000n) + rule.fixed_minor;
  return commission_minor > amount_minor ? amount_minor : commission_minor;
}
