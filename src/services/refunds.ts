import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import { newId } from '../domain/ids';
import { formatAmount, parseAmount } from '../domain/money';
import { REFUNDABLE_ORDER_STATUSES } from '../domain/status';
import { findMerchantPayment } from '../aggregates/payment';
import { findOrder, reserveRefund } from '../aggregates/order';
import { findMerchantRefund, insertRefundRow, merchantRefundsPage, type RefundRow, type RefundStatus } from '../aggregates/refund';

/**
 * Refunds of one order, in parts or whole. Creating one reserves its amount on the order in the
 * same transaction as the refund row (one guarded UPDATE: concurrent refunds that together exceed
 * the captured amount cannot all pass), so nothing is written for a refund that does not fit.
 * The refund workflow then asks the PSP and books the outcome; a failure frees the reservation.
 */
export interface RefundResource {
  id: string;
  object: 'refund';
  payment_id: string;
  order_id: string;
  amount: string;
  currency: string;
  reason: string | null;
  status: RefundStatus;
  failure_code: string | null;
  failure_message: string | null;
  workflow_id: string;
  created_at: string;
}

function toResource(r: RefundRow): RefundResource {
  const currency = r.currency.trim();
  return {
    id: r.id,
    object: 'refund',
    payment_id: r.payment_id,
    order_id: r.order_id,
    amount: formatAmount(BigInt(r.amount_minor), currency),
    currency,
    reason: r.reason,
    status: r.status,
    failure_code: r.failure_code,
    failure_message: r.failure_message,
    workflow_id: r.workflow_id,
    created_at: r.created_at.toISOString(),
  };
}

export interface RefundRequest {
  order_id: string;
  amount: string;
  reason?: string;
}

/** In the caller's (idempotent) transaction: checks, reservation, refund row. Throws before writing anything that does not fit. */
export async function insertRefund(trx: Knex.Transaction, merchant_id: string, payment_id: string, body: RefundRequest): Promise<RefundResource> {
  const payment = await findMerchantPayment(trx, merchant_id, payment_id);
  if (payment === undefined) throw new AppError('resource_missing', `no payment ${payment_id}`, 'id');
  const order = await findOrder(trx, { id: body.order_id }, { payment_id });
  if (order === undefined) throw new AppError('resource_missing', `payment ${payment_id} has no order ${body.order_id}`, 'order_id');
  const currency = order.currency.trim();
  const amount_minor = parseAmount(body.amount, currency, 'amount');
  if (amount_minor <= 0n) throw new AppError('invalid_amount', 'amount must be greater than zero', 'amount');
  if (!(REFUNDABLE_ORDER_STATUSES as readonly string[]).includes(order.status)) {
    throw new AppError('order_not_refundable', `order ${order.id} is ${order.status}: only a captured order not in dispute can be refunded`, 'order_id');
  }
  if (!(await reserveRefund(trx, order.id, REFUNDABLE_ORDER_STATUSES, amount_minor))) {
    const now = await findOrder(trx, { id: order.id });
    const left = BigInt(now?.amount_minor ?? 0) - BigInt(now?.refunded_minor ?? 0);
    throw new AppError('refund_exceeds_refundable', `only ${formatAmount(left, currency)} ${currency} of order ${order.id} is left to refund`, 'amount');
  }
  const row = await insertRefundRow(trx, { id: newId('rfd'), merchant_id, payment_id, order_id: order.id, amount_minor: amount_minor.toString(), currency, reason: body.reason ?? null });
  return toResource(row);
}

export async function getRefund(db: Knex, merchant_id: string, refund_id: string): Promise<RefundResource> {
  const row = await findMerchantRefund(db, merchant_id, refund_id);
  if (row === undefined) throw new AppError('resource_missing', `no refund ${refund_id}`, 'id');
  return toResource(row);
}

/** Newest first (cursor pagination); optionally one payment's. */
export async function listRefunds(db: Knex, merchant_id: string, opts: { limit: number; starting_after?: string; payment_id?: string }) {
  return await merchantRefundsPage(db, merchant_id, opts, toResource);
}
