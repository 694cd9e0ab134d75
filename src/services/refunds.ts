import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { AppError } from '../domain/errors';
import { newId } from '../domain/ids';
import { formatAmount, parseAmount } from '../domain/money';
import { REFUNDABLE_ORDER_STATUSES } from '../domain/status';
import { refundWorkflowId } from '../domain/workflow-ids';
import type { RefundResource } from '../api/schemas';
import { merchantPage } from './pages';

/**
 * Refunds of one order, in parts or whole. Creating one reserves its amount on the order in the
 * same transaction as the refund row (one guarded UPDATE: concurrent refunds that together exceed
 * the captured amount cannot all pass), so nothing is written for a refund that does not fit.
 * The refund workflow then asks the PSP and books the outcome; a failure frees the reservation.
 */
interface RefundRow {
  id: string;
  payment_id: string;
  order_id: string;
  amount_minor: string;
  currency: string;
  reason: string | null;
  status: RefundResource['status'];
  failure_code: string | null;
  failure_message: string | null;
  workflow_id: string;
  created_at: Date;
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
  const payment = await trx('payment_event').where({ id: payment_id, merchant_id }).first('id');
  if (payment === undefined) throw new AppError('resource_missing', `no payment ${payment_id}`, 'id');
  const order = (await trx('payment_order').where({ id: body.order_id, payment_id }).first('id', 'status', 'currency', 'amount_minor', 'refunded_minor')) as
    | { id: string; status: string; currency: string; amount_minor: string; refunded_minor: string }
    | undefined;
  if (order === undefined) throw new AppError('resource_missing', `payment ${payment_id} has no order ${body.order_id}`, 'order_id');
  const currency = order.currency.trim();
  const amount_minor = parseAmount(body.amount, currency, 'amount');
  if (amount_minor <= 0n) throw new AppError('invalid_amount', 'amount must be greater than zero', 'amount');
  if (!(REFUNDABLE_ORDER_STATUSES as readonly string[]).includes(order.status)) {
    throw new AppError('order_not_refundable', `order ${order.id} is ${order.status}: only a captured order not in dispute can be refunded`, 'order_id');
  }
  const reserved = await trx('payment_order')
    .where({ id: order.id })
    .whereIn('status', [...REFUNDABLE_ORDER_STATUSES])
    .whereRaw('refunded_minor + ? <= amount_minor', [amount_minor.toString()])
    .update({ refunded_minor: trx.raw('refunded_minor + ?', [amount_minor.toString()]), updated_at: trx.fn.now() })
    .returning('refunded_minor');
  if (reserved.length === 0) {
    const now = (await trx('payment_order').where({ id: order.id }).first('refunded_minor', 'amount_minor')) as { refunded_minor: string; amount_minor: string };
    const left = BigInt(now.amount_minor) - BigInt(now.refunded_minor);
    throw new AppError('refund_exceeds_refundable', `only ${formatAmount(left, currency)} ${currency} of order ${order.id} is left to refund`, 'amount');
  }
  const id = newId('rfd');
  const [row] = (await trx('refund')
    .insert({ id, merchant_id, payment_id, order_id: order.id, amount_minor: amount_minor.toString(), currency, reason: body.reason ?? null, status: 'pending', workflow_id: refundWorkflowId(id) })
    .returning('*')) as RefundRow[];
  assert(row !== undefined, 'inserted refund returned');
  return toResource(row);
}

export async function getRefund(db: Knex, merchant_id: string, refund_id: string): Promise<RefundResource> {
  const row = (await db('refund').where({ id: refund_id, merchant_id }).first()) as RefundRow | undefined;
  if (row === undefined) throw new AppError('resource_missing', `no refund ${refund_id}`, 'id');
  return toResource(row);
}

/** Newest first (cursor pagination); optionally one payment's. */
export async function listRefunds(db: Knex, merchant_id: string, opts: { limit: number; starting_after?: string; payment_id?: string }) {
  const where = opts.payment_id === undefined ? undefined : { payment_id: opts.payment_id };
  return await merchantPage(db, { table: 'refund', noun: 'refunds' }, merchant_id, { ...opts, where }, toResource);
}
