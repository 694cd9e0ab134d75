import { assert } from './assert';

export const PAYMENT_STATUSES = [
  'requires_payment_method',
  'processing',
  'requires_action',
  'pending',
  'succeeded',
  'failed',
  'partially_succeeded',
  'canceled',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const ORDER_STATUSES = ['not_started', 'executing', 'requires_action', 'pending', 'succeeded', 'failed', 'canceled'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export type TerminalOrderStatus = Extract<OrderStatus, 'succeeded' | 'failed' | 'canceled'>;
/** Waiting on someone else: the buyer (3-D Secure) or the PSP (review). */
export type WaitingOrderStatus = Extract<OrderStatus, 'requires_action' | 'pending'>;

/**
 * Progress rank, the same as `status_rank()` in migration 005, whose trigger refuses any update
 * that lowers it: 0 before any work, 1 working, 2 waiting, 9 terminal (and terminal stays).
 */
const RANK: Record<OrderStatus | PaymentStatus, number> = {
  requires_payment_method: 0,
  not_started: 0,
  processing: 1,
  executing: 1,
  requires_action: 2,
  pending: 2,
  succeeded: 9,
  failed: 9,
  partially_succeeded: 9,
  canceled: 9,
};
export const TERMINAL_RANK = 9;

export function statusRank(status: OrderStatus | PaymentStatus): number {
  return RANK[status];
}

export function isOrderTerminal(status: OrderStatus): status is TerminalOrderStatus {
  return RANK[status] === TERMINAL_RANK;
}

export function isPaymentTerminal(status: PaymentStatus): boolean {
  return RANK[status] === TERMINAL_RANK;
}

/** Statuses an order may be moved from, to reach `to` without going backwards. */
export function orderStatusesBefore(to: OrderStatus): OrderStatus[] {
  return ORDER_STATUSES.filter((s) => RANK[s] !== TERMINAL_RANK && RANK[s] <= RANK[to]);
}

/** Allowed moves; anything else is a bug (a status never moves backwards). */
export function assertOrderMove(from: OrderStatus, to: OrderStatus): void {
  assert(RANK[from] !== TERMINAL_RANK && RANK[to] >= RANK[from], `order status ${from} -> ${to} is not allowed`);
}

/**
 * The event's status is derived from its orders, never stored independently of them. While any
 * order is open the most urgent wait shows: the buyer's action first, then the PSP's review.
 */
export function derivePaymentStatus(orders: readonly OrderStatus[]): PaymentStatus {
  assert(orders.length > 0, 'a payment has at least one order');
  if (!orders.every(isOrderTerminal)) {
    if (orders.includes('requires_action')) return 'requires_action';
    if (orders.includes('pending')) return 'pending';
    return 'processing';
  }
  if (orders.every((s) => s === 'canceled')) return 'canceled';
  const succeeded = orders.filter((s) => s === 'succeeded').length;
  if (succeeded === orders.length) return 'succeeded';
  if (succeeded === 0) return 'failed';
  return 'partially_succeeded';
}
