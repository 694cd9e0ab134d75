import { assert } from './assert';

export const PAYMENT_STATUSES = [
  'requires_payment_method',
  'processing',
  'requires_action',
  'pending',
  'needs_attention',
  'succeeded',
  'failed',
  'partially_succeeded',
  'canceled',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const ORDER_STATUSES = ['not_started', 'executing', 'requires_action', 'pending', 'needs_attention', 'authorized', 'succeeded', 'failed', 'canceled'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export type TerminalOrderStatus = Extract<OrderStatus, 'succeeded' | 'failed' | 'canceled'>;
/** Waiting on someone else: the buyer (3-D Secure) or the PSP (review). */
export type WaitingOrderStatus = Extract<OrderStatus, 'requires_action' | 'pending'>;

/**
 * Progress rank, the same as `status_rank()` in migrations 005/006, whose trigger refuses any
 * update that lowers it: 0 before any work, 1 working, 2 waiting (on the buyer, the PSP or an
 * operator), 9 terminal (and terminal stays). One step back is allowed: an operator's retry of a
 * `needs_attention` order (see isMoveAllowed).
 */
const RANK: Record<OrderStatus | PaymentStatus, number> = {
  requires_payment_method: 0,
  not_started: 0,
  processing: 1,
  executing: 1,
  requires_action: 2,
  pending: 2,
  needs_attention: 2,
  authorized: 2,
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

/** The same rule as `status_move_allowed()` in migration 006. */
export function isMoveAllowed(from: OrderStatus | PaymentStatus, to: OrderStatus | PaymentStatus): boolean {
  if (RANK[from] === TERMINAL_RANK) return false;
  return RANK[to] >= RANK[from] || (from === 'needs_attention' && (to === 'executing' || to === 'processing'));
}

/** Statuses an order may be moved from, to reach `to` without going backwards. */
export function orderStatusesBefore(to: OrderStatus): OrderStatus[] {
  return ORDER_STATUSES.filter((s) => isMoveAllowed(s, to));
}

/** Allowed moves; anything else is a bug (a status never moves backwards). */
export function assertOrderMove(from: OrderStatus, to: OrderStatus): void {
  assert(isMoveAllowed(from, to), `order status ${from} -> ${to} is not allowed`);
}

/**
 * The event's status is derived from its orders, never stored independently of them. While any
 * order is open the most urgent wait shows: an operator's, then the buyer's, then the PSP's.
 */
export function derivePaymentStatus(orders: readonly OrderStatus[]): PaymentStatus {
  assert(orders.length > 0, 'a payment has at least one order');
  if (!orders.every(isOrderTerminal)) {
    if (orders.includes('needs_attention')) return 'needs_attention';
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
