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
  'partially_refunded',
  'refunded',
  'disputed',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const ORDER_STATUSES = [
  'not_started',
  'executing',
  'requires_action',
  'pending',
  'needs_attention',
  'authorized',
  'succeeded',
  'failed',
  'canceled',
  'partially_refunded',
  'refunded',
  'disputed',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export type TerminalOrderStatus = Extract<OrderStatus, 'succeeded' | 'failed' | 'canceled' | 'partially_refunded' | 'refunded' | 'disputed'>;
/** Captured, whatever was refunded or disputed since: the money moved through our books. */
export const CAPTURED_ORDER_STATUSES = ['succeeded', 'partially_refunded', 'refunded', 'disputed'] as const;
/** Captured and not in dispute: what a refund may start from (a refunded order has nothing left: 409 refund_exceeds_refundable). */
export const REFUNDABLE_ORDER_STATUSES = ['succeeded', 'partially_refunded', 'refunded'] as const;
/** Waiting on someone else: the buyer (3-D Secure) or the PSP (review). */
export type WaitingOrderStatus = Extract<OrderStatus, 'requires_action' | 'pending'>;

/**
 * Progress rank, the same as `status_rank()` in migrations 005/006, whose trigger refuses any
 * update that lowers it: 0 before any work, 1 working, 2 waiting (on the buyer, the PSP or an
 * operator), 9 terminal (and terminal stays), then after a sale 10 partially refunded and 11
 * refunded. One step back is allowed: an operator's retry of a `needs_attention` order; and one
 * way out of a terminal status: a refund of a captured order or payment (see isMoveAllowed).
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
  partially_refunded: 10,
  disputed: 10,
  refunded: 11,
};
export const TERMINAL_RANK = 9;

export function statusRank(status: OrderStatus | PaymentStatus): number {
  return RANK[status];
}

export function isOrderTerminal(status: OrderStatus): status is TerminalOrderStatus {
  return RANK[status] >= TERMINAL_RANK;
}

export function isPaymentTerminal(status: PaymentStatus): boolean {
  return RANK[status] >= TERMINAL_RANK;
}

const REFUNDABLE_FROM: ReadonlySet<string> = new Set(['succeeded', 'partially_succeeded', 'partially_refunded']);
const REFUNDED: ReadonlySet<string> = new Set(['partially_refunded', 'refunded']);

const DISPUTABLE_FROM: ReadonlySet<string> = new Set(['succeeded', 'partially_succeeded', 'partially_refunded', 'disputed']);
const DISPUTE_CLOSES_TO: ReadonlySet<string> = new Set(['succeeded', 'partially_succeeded', 'partially_refunded', 'refunded']);

/** The same rule as `status_move_allowed()` in migration 011. */
export function isMoveAllowed(from: OrderStatus | PaymentStatus, to: OrderStatus | PaymentStatus): boolean {
  // A dispute opens on a captured order and closes back to it (won) or to refunded (lost).
  if (to === 'disputed') return DISPUTABLE_FROM.has(from);
  if (from === 'disputed') return DISPUTE_CLOSES_TO.has(to);
  if (REFUNDABLE_FROM.has(from) && REFUNDED.has(to)) return RANK[to] >= RANK[from];
  if (RANK[from] >= TERMINAL_RANK) return false;
  return RANK[to] >= RANK[from] || (from === 'needs_attention' && (to === 'executing' || to === 'processing'));
}

/** Statuses an order may be moved from while it is being charged, to reach `to` without going backwards (after-sale moves excluded). */
export function orderStatusesBefore(to: OrderStatus): OrderStatus[] {
  return ORDER_STATUSES.filter((s) => RANK[s] < TERMINAL_RANK && isMoveAllowed(s, to));
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
  if (orders.includes('disputed')) return 'disputed';
  // After a sale: every captured order given back is `refunded`; any refund at all, `partially_refunded`.
  const captured = orders.filter((s) => (CAPTURED_ORDER_STATUSES as readonly string[]).includes(s));
  if (captured.length > 0 && captured.every((s) => s === 'refunded')) return 'refunded';
  if (captured.some((s) => REFUNDED.has(s))) return 'partially_refunded';
  const succeeded = orders.filter((s) => s === 'succeeded').length;
  if (succeeded === orders.length) return 'succeeded';
  if (succeeded === 0) return 'failed';
  return 'partially_succeeded';
}
