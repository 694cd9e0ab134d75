import { assert } from './assert';

export const PAYMENT_STATUSES = ['processing', 'succeeded', 'failed', 'partially_succeeded'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const ORDER_STATUSES = ['not_started', 'executing', 'succeeded', 'failed'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

const ORDER_TERMINAL: ReadonlySet<OrderStatus> = new Set(['succeeded', 'failed']);

export function isOrderTerminal(status: OrderStatus): boolean {
  return ORDER_TERMINAL.has(status);
}

/** Allowed moves; anything else is a bug (a status never moves backwards). */
const ORDER_MOVES: Record<OrderStatus, readonly OrderStatus[]> = {
  not_started: ['executing', 'failed'],
  executing: ['executing', 'succeeded', 'failed'],
  succeeded: [],
  failed: [],
};

export function assertOrderMove(from: OrderStatus, to: OrderStatus): void {
  assert(ORDER_MOVES[from].includes(to), `order status ${from} -> ${to} is not allowed`);
}

/** The event's status is derived from its orders, never stored independently of them. */
export function derivePaymentStatus(orders: readonly OrderStatus[]): PaymentStatus {
  assert(orders.length > 0, 'a payment has at least one order');
  if (!orders.every(isOrderTerminal)) return 'processing';
  const succeeded = orders.filter((s) => s === 'succeeded').length;
  if (succeeded === orders.length) return 'succeeded';
  if (succeeded === 0) return 'failed';
  return 'partially_succeeded';
}
