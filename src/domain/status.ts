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

/** A refund's own status (not the order's, which follows its refunds). */
export const REFUND_STATUSES = ['pending', 'succeeded', 'failed'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];
export const PAYOUT_STATUSES = ['pending', 'paid', 'failed'] as const;
export type PayoutStatus = (typeof PAYOUT_STATUSES)[number];
export const DISPUTE_STATUSES = ['needs_response', 'under_review', 'won', 'lost'] as const;
export type DisputeStatus = (typeof DISPUTE_STATUSES)[number];

/**
 * Progress rank of order and payment statuses. The database trigger on payment_order and
 * payment_event enforces the same rule through `status_rank()` and `status_move_allowed()`,
 * generated from these tables (npm run sql:generate writes migrations/sql/status.sql): 0 before
 * any work, 1 working, 2 waiting (on the buyer, the PSP or an operator), 9 terminal (and terminal
 * stays), then after a sale 10 partially refunded or disputed and 11 refunded.
 */
export const STATUS_RANK: Readonly<Record<OrderStatus | PaymentStatus, number>> = {
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
  return STATUS_RANK[status];
}

export function isOrderTerminal(status: OrderStatus): status is TerminalOrderStatus {
  return STATUS_RANK[status] >= TERMINAL_RANK;
}

export function isPaymentTerminal(status: PaymentStatus): boolean {
  return STATUS_RANK[status] >= TERMINAL_RANK;
}

/** Statuses a payment does not leave by itself: decided, then changed only by a refund or a dispute. */
export const TERMINAL_PAYMENT_STATUSES: readonly PaymentStatus[] = PAYMENT_STATUSES.filter(isPaymentTerminal);

type AnyStatus = OrderStatus | PaymentStatus;

/**
 * The ways out of the plain forward rule, as data so the SQL twin is generated from them:
 * refunds move a captured order (or payment) forward, never back; a dispute opens on a captured
 * one and closes back to it (won) or to refunded (lost); an operator's retry takes a parked order
 * one step back to work.
 */
export const MOVE_RULES = {
  refundable_from: ['succeeded', 'partially_succeeded', 'partially_refunded'],
  refunded: ['partially_refunded', 'refunded'],
  disputable_from: ['succeeded', 'partially_succeeded', 'partially_refunded', 'disputed'],
  dispute_closes_to: ['succeeded', 'partially_succeeded', 'partially_refunded', 'refunded'],
  retry_from: 'needs_attention',
  retry_to: ['executing', 'processing'],
  dispute: 'disputed',
} as const satisfies {
  refundable_from: readonly AnyStatus[];
  refunded: readonly AnyStatus[];
  disputable_from: readonly AnyStatus[];
  dispute_closes_to: readonly AnyStatus[];
  retry_from: AnyStatus;
  retry_to: readonly AnyStatus[];
  dispute: AnyStatus;
};

const REFUNDABLE_FROM: ReadonlySet<string> = new Set(MOVE_RULES.refundable_from);
const REFUNDED: ReadonlySet<string> = new Set(MOVE_RULES.refunded);
const DISPUTABLE_FROM: ReadonlySet<string> = new Set(MOVE_RULES.disputable_from);
const DISPUTE_CLOSES_TO: ReadonlySet<string> = new Set(MOVE_RULES.dispute_closes_to);
const RETRY_TO: ReadonlySet<string> = new Set(MOVE_RULES.retry_to);

/** Whether an order's (or a payment's) status may move from `from` to `to`; `status_move_allowed()` in SQL is generated from the same rules. */
export function isMoveAllowed(from: AnyStatus, to: AnyStatus): boolean {
  if (to === MOVE_RULES.dispute) return DISPUTABLE_FROM.has(from);
  if (from === MOVE_RULES.dispute) return DISPUTE_CLOSES_TO.has(to);
  if (REFUNDABLE_FROM.has(from) && REFUNDED.has(to)) return STATUS_RANK[to] >= STATUS_RANK[from];
  if (STATUS_RANK[from] >= TERMINAL_RANK) return false;
  return STATUS_RANK[to] >= STATUS_RANK[from] || (from === MOVE_RULES.retry_from && RETRY_TO.has(to));
}

/** Statuses an order may be moved from while it is being charged, to reach `to` without going backwards (after-sale moves excluded). */
export function orderStatusesBefore(to: OrderStatus): OrderStatus[] {
  return ORDER_STATUSES.filter((s) => STATUS_RANK[s] < TERMINAL_RANK && isMoveAllowed(s, to));
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
