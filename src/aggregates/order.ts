/**
 * The order home: one seller's part of a payment (table `payment_order`). Its row type, its
 * loaders and its guarded status moves live here and nowhere else. A move that can race names the
 * statuses it may start from in its WHERE clause, so a concurrent move or a stale caller changes
 * nothing; the others run under the caller's row lock (each says so). Beneath both, the SQL
 * trigger of migrations/sql/status.sql refuses any move the rules of src/domain/status.ts refuse.
 */
import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { orderStatusesBefore, type OrderStatus } from '../domain/status';
import { orderSignalWorkflowId } from '../domain/workflow-ids';

type Conn = Knex | Knex.Transaction;

export interface OrderRow {
  id: string;
  payment_id: string;
  merchant_id: string;
  seller_id: string;
  amount_minor: string;
  currency: string;
  status: OrderStatus;
  refunded_minor: string;
  psp_reference: string | null;
  failure_code: string | null;
  failure_message: string | null;
  charge_attempts: number;
  /** While a charge attempt talks to the PSP (see claimCharge). */
  charge_lease_until: Date | null;
  commission_bps: number | null;
  commission_minor: string;
  psp_fee_minor: string | null;
  wallet_updated: boolean;
  ledger_updated: boolean;
  psp_version: number | null;
  next_action_url: string | null;
  captured_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export type NewOrder = Pick<OrderRow, 'id' | 'payment_id' | 'merchant_id' | 'seller_id' | 'amount_minor' | 'currency' | 'commission_minor'> & { commission_bps: number };

export type FailureFields = { failure_code: string | null; failure_message: string | null };

/** New orders start `not_started`; the payment's workflow moves them on. */
export async function insertOrders(trx: Knex.Transaction, orders: NewOrder[]): Promise<void> {
  await trx('payment_order').insert(orders.map((o) => ({ ...o, status: 'not_started' })));
}

/** The orders of some payments, oldest first. */
export async function ordersOfPayments(conn: Conn, payment_ids: string[]): Promise<OrderRow[]> {
  if (payment_ids.length === 0) return [];
  return await conn('payment_order').whereIn('payment_id', payment_ids).orderBy('created_at').orderBy('id').select<OrderRow[]>('*');
}

export async function orderStatusesOfPayment(conn: Conn, payment_id: string): Promise<OrderStatus[]> {
  const rows = await conn('payment_order').where({ payment_id }).select<{ status: OrderStatus }[]>('status');
  return rows.map((r) => r.status);
}

export async function findOrder(conn: Conn, by: { id: string } | { psp_reference: string }, opts: { lock?: boolean; payment_id?: string } = {}): Promise<OrderRow | undefined> {
  const query = conn('payment_order').where(by);
  if (opts.payment_id !== undefined) query.andWhere({ payment_id: opts.payment_id });
  return (await (opts.lock === true ? query.forUpdate() : query).first()) as OrderRow | undefined;
}

export async function loadOrder(conn: Conn, order_id: string, opts: { lock?: boolean } = {}): Promise<OrderRow> {
  const row = await findOrder(conn, { id: order_id }, opts);
  assert(row !== undefined, `order ${order_id} exists`);
  return row;
}

/** An order with what charging it needs of its payment: one query on the hot path, hence the join. */
export type ChargeableOrder = OrderRow & { payment_method: string | null; capture_method: 'automatic' | 'all_or_nothing' };

export async function loadChargeableOrder(conn: Conn, order_id: string): Promise<ChargeableOrder> {
  const row = await conn('payment_order as o')
    .join('payment_event as p', 'p.id', 'o.payment_id')
    .select('o.*', 'p.payment_method', 'p.capture_method')
    .where('o.id', order_id)
    .first();
  assert(row !== undefined, `order ${order_id} exists`);
  return row as ChargeableOrder;
}

/** The workflow an order's signals go to: its payment's (v7), or its own for a legacy payment. */
export async function orderSignalTarget(conn: Conn, order_id: string): Promise<string> {
  const row = await conn('payment_order as o')
    .join('payment_event as p', 'p.id', 'o.payment_id')
    .where('o.id', order_id)
    .first<{ payment_id: string; workflow_type: string | null } | undefined>('o.payment_id', 'p.workflow_type');
  assert(row !== undefined, `order ${order_id} exists`);
  return orderSignalWorkflowId({ order_id, ...row });
}

export interface ParkedOrder {
  id: string;
  payment_id: string;
  merchant_id: string;
  seller_id: string;
  status: string;
  failure_code: string | null;
  failure_message: string | null;
  updated_at: Date;
}

/** Orders waiting for an operator, longest waiting first. */
export async function listParkedOrders(conn: Conn, limit: number): Promise<ParkedOrder[]> {
  return await conn('payment_order')
    .where({ status: 'needs_attention' })
    .orderBy('updated_at')
    .limit(limit)
    .select<ParkedOrder[]>('id', 'payment_id', 'merchant_id', 'seller_id', 'status', 'failure_code', 'failure_message', 'updated_at');
}

// ---- Guarded moves: one function per kind of move. ----

/**
 * A charge attempt claims the order before it may talk to the PSP: counted (a later attempt asks
 * the PSP before sending), and leased until `lease_ms` from now, so two attempts can never be in
 * flight at once — a local activity may run again while a slow first run is still calling the PSP
 * (its workflow task timed out under load). The lease ends with the attempt (released, or cleared
 * by the outcome's move) or, if the worker died, by expiring. An attempt stalled past its lease
 * (a starved process) could still send after the next one: the order id as the PSP's idempotency
 * key is what keeps that from charging twice. Answers the attempt number (also the fencing token
 * of its release), or null when the order is not chargeable or another attempt holds it.
 */
export async function claimCharge(conn: Knex, order_id: string, lease_ms: number): Promise<number | null> {
  assert(Number.isInteger(lease_ms) && lease_ms > 0, 'a charge lease has a positive length');
  const claimed = await conn('payment_order')
    .where({ id: order_id })
    .whereIn('status', ['not_started', 'executing'])
    .andWhere((q) => q.whereNull('charge_lease_until').orWhere('charge_lease_until', '<=', conn.fn.now()))
    .update({
      status: 'executing',
      charge_attempts: conn.raw('charge_attempts + 1'),
      charge_lease_until: conn.raw("now() + make_interval(secs => ?)", [lease_ms / 1000]),
      updated_at: conn.fn.now(),
    })
    .returning<{ charge_attempts: number }[]>('charge_attempts');
  return claimed[0]?.charge_attempts ?? null;
}

/** The attempt numbered `attempt` is over without an outcome (the PSP refused or did not answer). */
export async function releaseCharge(conn: Knex, order_id: string, attempt: number): Promise<void> {
  await conn('payment_order').where({ id: order_id, charge_attempts: attempt }).update({ charge_lease_until: null });
}

export interface ChargeOutcomeFields extends FailureFields {
  status: OrderStatus;
  psp_reference: string | null;
  psp_fee_minor: string | null;
  next_action_url: string | null;
  psp_version: number | null;
}

/**
 * The PSP's news, forward only: from a status before it, and not older (by the PSP's charge
 * version) than what is stored. Undefined when nothing moved: the stored state wins.
 */
export async function moveToChargeOutcome(trx: Knex.Transaction, order_id: string, o: ChargeOutcomeFields): Promise<OrderRow | undefined> {
  const version = o.psp_version;
  const query = trx('payment_order').where({ id: order_id }).whereIn('status', orderStatusesBefore(o.status));
  if (version !== null) query.andWhere((q) => q.whereNull('psp_version').orWhere('psp_version', '<=', version));
  const updated = await query
    .update({
      status: o.status,
      psp_reference: o.psp_reference,
      failure_code: o.failure_code,
      failure_message: o.failure_message,
      psp_fee_minor: o.psp_fee_minor,
      next_action_url: o.next_action_url,
      charge_lease_until: null,
      wallet_updated: o.status === 'succeeded',
      ledger_updated: o.status === 'succeeded',
      ...(version === null ? {} : { psp_version: version }),
      updated_at: trx.fn.now(),
    })
    .returning<OrderRow[]>('*');
  return updated[0];
}

/** The capture's posting exists: the flags follow it (a repeat changes nothing). */
export async function markBooked(conn: Knex, order_id: string): Promise<void> {
  await conn('payment_order')
    .where({ id: order_id })
    .andWhere((q) => q.where({ wallet_updated: false }).orWhere({ ledger_updated: false }))
    .update({ wallet_updated: true, ledger_updated: true, updated_at: conn.fn.now() });
}

/** Parked again (a repeat, or a failed cancel): only the reason changes. */
export async function refreshParkReason(conn: Conn, order_id: string, failure: FailureFields): Promise<void> {
  await conn('payment_order').where({ id: order_id, status: 'needs_attention' }).update({ ...failure, updated_at: conn.fn.now() });
}

/**
 * Parks an order for an operator, or sends a parked one back to `executing`; only from the status
 * read. Never parks while a charge attempt holds the lease: that attempt may still charge, and a
 * parked order's charge would wait for an operator who is told nothing was charged. Answers
 * whether the order moved.
 */
export async function moveForOperator(trx: Knex.Transaction, order_id: string, from: OrderStatus, to: 'needs_attention' | 'executing', failure: FailureFields): Promise<boolean> {
  const query = trx('payment_order').where({ id: order_id, status: from });
  if (to === 'needs_attention') query.andWhere((q) => q.whereNull('charge_lease_until').orWhere('charge_lease_until', '<=', trx.fn.now()));
  return (await query.update({ status: to, ...failure, updated_at: trx.fn.now() })) === 1;
}

/** An operator's cancel of a parked order. */
export async function cancelParked(trx: Knex.Transaction, order_id: string, failure_message: string, psp_reference: string | null): Promise<void> {
  await trx('payment_order')
    .where({ id: order_id, status: 'needs_attention' })
    .update({ status: 'canceled', failure_code: 'canceled_by_operator', failure_message, psp_reference, updated_at: trx.fn.now() });
}

export type AuthorizationEnd = { status: 'succeeded'; psp_fee_minor: string; psp_version: number; wallet_updated: true; ledger_updated: true } | ({ status: 'canceled'; psp_version: number } & FailureFields);

/** An authorized order captured or voided; undefined if it was not authorized any more. */
export async function resolveAuthorized(trx: Knex.Transaction, order_id: string, change: AuthorizationEnd): Promise<OrderRow | undefined> {
  const [moved] = await trx('payment_order')
    .where({ id: order_id, status: 'authorized' })
    .update({ ...change, updated_at: trx.fn.now() })
    .returning<OrderRow[]>('*');
  return moved;
}

/** A payment ended before any charge: its orders that never started take the end. */
export async function endUnstartedOrders(trx: Knex.Transaction, payment_id: string, status: 'failed' | 'canceled', failure: FailureFields): Promise<void> {
  await trx('payment_order').where({ payment_id, status: 'not_started' }).update({ status, ...failure, updated_at: trx.fn.now() });
}

/** A dispute opened on the order (its row is locked by the caller). */
export async function markDisputed(trx: Knex.Transaction, order_id: string): Promise<void> {
  await trx('payment_order').where({ id: order_id }).update({ status: 'disputed', updated_at: trx.fn.now() });
}

/** A dispute decided: won, the order goes back to where it was; lost, it ends refunded in full. */
export async function endDispute(trx: Knex.Transaction, order: Pick<OrderRow, 'id' | 'amount_minor'>, outcome: { won: true; status_before: OrderStatus } | { won: false }): Promise<void> {
  const back = outcome.won ? { status: outcome.status_before } : { status: 'refunded', refunded_minor: order.amount_minor };
  await trx('payment_order').where({ id: order.id }).update({ ...back, updated_at: trx.fn.now() });
}

/**
 * Reserves a refund's amount on a refundable order, in one guarded UPDATE: concurrent refunds
 * that together exceed the captured amount cannot all pass. False if it does not fit.
 */
export async function reserveRefund(trx: Knex.Transaction, order_id: string, refundable: readonly OrderStatus[], amount_minor: bigint): Promise<boolean> {
  const reserved = await trx('payment_order')
    .where({ id: order_id })
    .whereIn('status', [...refundable])
    .whereRaw('refunded_minor + ? <= amount_minor', [amount_minor.toString()])
    .update({ refunded_minor: trx.raw('refunded_minor + ?', [amount_minor.toString()]), updated_at: trx.fn.now() })
    .returning('refunded_minor');
  return reserved.length > 0;
}

/** A failed refund frees what it reserved. */
export async function releaseRefund(trx: Knex.Transaction, order_id: string, amount_minor: string): Promise<void> {
  await trx('payment_order').where({ id: order_id }).update({ refunded_minor: trx.raw('refunded_minor - ?', [amount_minor]), updated_at: trx.fn.now() });
}

/** A succeeded refund: the order is refunded in part or in full. */
export async function markRefunded(trx: Knex.Transaction, order_id: string, status: 'refunded' | 'partially_refunded'): Promise<void> {
  await trx('payment_order').where({ id: order_id }).update({ status, updated_at: trx.fn.now() });
}
