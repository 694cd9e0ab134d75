/**
 * The payment home (table `payment_event`): the buyer's payment, the parent of its orders. Its
 * row type, loaders, the status derived from its orders and its guarded moves live here.
 */
import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { derivePaymentStatus, isMoveAllowed, PAYMENT_STATUSES, type PaymentStatus } from '../domain/status';
import { orderStatusesOfPayment } from './order';

type Conn = Knex | Knex.Transaction;

export type CaptureMethod = 'automatic' | 'all_or_nothing';

export interface PaymentRow {
  id: string;
  merchant_id: string;
  buyer_id: string;
  buyer_email: string | null;
  currency: string;
  amount_minor: string;
  status: PaymentStatus;
  payment_method: string | null;
  metadata: Record<string, string>;
  failure_code: string | null;
  failure_message: string | null;
  workflow_id: string;
  workflow_type: string | null;
  workflow_started_at: Date | null;
  task_queue: string;
  checkout_session_id: string | null;
  checkout_url: string | null;
  return_url: string | null;
  capture_method: CaptureMethod;
  created_at: Date;
  updated_at: Date;
}

export type NewPayment = Pick<PaymentRow, 'id' | 'merchant_id' | 'buyer_id' | 'buyer_email' | 'currency' | 'amount_minor' | 'payment_method' | 'return_url' | 'capture_method' | 'workflow_id' | 'task_queue'> & {
  status: Extract<PaymentStatus, 'requires_payment_method' | 'processing'>;
  metadata: Record<string, string>;
};

export async function insertPaymentRow(trx: Knex.Transaction, p: NewPayment): Promise<void> {
  await trx('payment_event').insert({ ...p, metadata: JSON.stringify(p.metadata) });
}

export async function setCheckoutSession(trx: Knex.Transaction, payment_id: string, session: { id: string; url: string }): Promise<void> {
  await trx('payment_event').where({ id: payment_id }).update({ checkout_session_id: session.id, checkout_url: session.url });
}

/** One merchant's payment, or undefined (not theirs, or none). */
export async function findMerchantPayment(conn: Conn, merchant_id: string, payment_id: string): Promise<PaymentRow | undefined> {
  return await conn('payment_event').where({ id: payment_id, merchant_id }).first<PaymentRow | undefined>();
}

export async function loadPayment(conn: Conn, payment_id: string): Promise<PaymentRow> {
  const row = await conn('payment_event').where({ id: payment_id }).first<PaymentRow | undefined>();
  assert(row !== undefined, `payment ${payment_id} exists`);
  return row;
}

/** A payment with its merchant's name (what an operator is shown). */
export async function findPaymentWithMerchantName(conn: Conn, payment_id: string): Promise<(PaymentRow & { merchant_name: string }) | undefined> {
  return await conn('payment_event as p')
    .join('merchant as m', 'm.id', 'p.merchant_id')
    .where('p.id', payment_id)
    .first<(PaymentRow & { merchant_name: string }) | undefined>('p.*', 'm.name as merchant_name');
}

/** A merchant's payments newest first, `limit` of them, after the cursor row (already checked to be theirs). */
export async function merchantPaymentsPage(conn: Conn, merchant_id: string, limit: number, after_id?: string): Promise<PaymentRow[]> {
  let query = conn('payment_event').where({ merchant_id }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
  // Compare in SQL: JS Dates would drop PostgreSQL's microseconds and skip or repeat rows.
  if (after_id !== undefined) query = query.whereRaw('(created_at, id) < (select created_at, id from payment_event where id = ?)', [after_id]);
  return await query.select<PaymentRow[]>('*');
}

export async function findPaymentByCheckoutSession(conn: Conn, checkout_session_id: string): Promise<Pick<PaymentRow, 'id' | 'status'> | undefined> {
  return await conn('payment_event').where({ checkout_session_id }).first<Pick<PaymentRow, 'id' | 'status'> | undefined>('id', 'status');
}

export async function paymentStatuses(conn: Conn, payment_ids: string[]): Promise<Pick<PaymentRow, 'id' | 'status'>[]> {
  return (await conn('payment_event').select('id', 'status').whereRaw('id = any(?)', [payment_ids])) as Pick<PaymentRow, 'id' | 'status'>[];
}

/** What a start needs of a payment. */
export interface UnstartedPayment {
  id: string;
  merchant_id: string;
  workflow_id: string;
  amount_minor: string;
  currency: string;
  payment_method: string | null;
  capture_method: 'automatic' | 'all_or_nothing';
  order_ids: string[];
}

/** What a start needs of a payment row (alias `table`), its order ids included: one query per claim, not one per start. */
export function unstartedColumns(conn: Conn, table: string): (string | Knex.Raw)[] {
  const columns = ['id', 'merchant_id', 'workflow_id', 'amount_minor', 'currency', 'payment_method', 'capture_method'].map((c) => `${table}.${c}`);
  return [...columns, conn.raw(`array(select o.id from payment_order o where o.payment_id = ${table}.id order by o.id) as order_ids`)];
}

/** The payment row the starter needs, whether or not its workflow already started. */
export async function startablePayment(conn: Conn, payment_id: string): Promise<UnstartedPayment | undefined> {
  return await conn('payment_event as p').select(unstartedColumns(conn, 'p')).where('p.id', payment_id).first<UnstartedPayment | undefined>();
}

export type ClaimedPayment = UnstartedPayment & { status: string; age_ms: number };

/**
 * Unstarted payments of one task queue, round-robin across merchants and oldest first within
 * one: every merchant's oldest, then every merchant's second oldest, …; among merchants at the same
 * rank, the one served least recently first (so round-robin holds across claims, not only within
 * one: with a batch of one, rank alone would be first-come-first-served). One merchant's burst
 * cannot starve the others. FOR UPDATE does not go with a window function: ranks come from a CTE.
 */
export async function claimUnstarted(trx: Knex.Transaction, task_queue: string, limit: number, served: ReadonlyMap<string, number>): Promise<ClaimedPayment[]> {
  const ranked = trx('payment_event')
    .select('id', 'created_at', trx.raw('row_number() over (partition by merchant_id order by created_at, id) as merchant_rank'))
    .whereNull('workflow_started_at')
    .where({ task_queue });
  const last_served = trx.raw('select * from unnest(?::text[], ?::float8[]) as s(merchant_id, at_ms)', [[...served.keys()], [...served.values()]]);
  return (await trx
    .with('ranked', ranked)
    .with('served', last_served)
    .from({ p: 'payment_event' })
    .join('ranked', 'ranked.id', 'p.id')
    .leftJoin('served', 'served.merchant_id', 'p.merchant_id')
    .select(...unstartedColumns(trx, 'p'), 'p.status', trx.raw('(extract(epoch from clock_timestamp() - p.created_at) * 1000)::float8 as age_ms'))
    .whereNull('p.workflow_started_at')
    .where('ranked.merchant_rank', '<=', limit)
    .orderBy('ranked.merchant_rank')
    .orderByRaw('coalesce(served.at_ms, 0)')
    .orderBy([{ column: 'ranked.created_at' }, { column: 'p.id' }])
    .limit(limit)
    .forUpdate('p')
    .skipLocked()) as ClaimedPayment[];
}

export async function countBacklog(db: Conn, task_queue: string): Promise<{ merchant_id: string; n: number }[]> {
  const rows = (await db('payment_event').select('merchant_id').count('* as n').whereNull('workflow_started_at').where({ task_queue }).groupBy('merchant_id')) as { merchant_id: string; n: string }[];
  return rows.map((r) => ({ merchant_id: r.merchant_id, n: Number(r.n) }));
}

/** The payment's workflow started (the admission dispatcher's start marker). */
export async function markWorkflowStarted(conn: Conn, payment_id: string, workflow_type: string): Promise<void> {
  await conn('payment_event').where({ id: payment_id }).whereNull('workflow_started_at').update({ workflow_started_at: conn.fn.now(), workflow_type });
}

/** Stores the token the hosted checkout produced; the payment moves on to `processing`. */
export async function attachPaymentMethod(conn: Knex, payment_id: string, payment_method: string): Promise<void> {
  await conn('payment_event')
    .where({ id: payment_id, status: 'requires_payment_method' })
    .whereNull('payment_method')
    .update({ payment_method, status: 'processing', updated_at: conn.fn.now() });
}

/**
 * Stores the payment's status as derived from its orders, only ever forward: a payment shown as
 * `pending` stays `pending` (not `processing`) while another order is still being charged, and a
 * terminal payment never changes. The status-history trigger (migrations/sql/status-history.sql) is the backstop.
 */
export async function storeDerivedStatus(
  trx: Knex.Transaction,
  payment_id: string,
  failure: { failure_code?: string; failure_message?: string } = {},
): Promise<PaymentStatus> {
  await trx('payment_event').where({ id: payment_id }).forUpdate().first();
  const status = derivePaymentStatus(await orderStatusesOfPayment(trx, payment_id));
  const movable = PAYMENT_STATUSES.filter((s) => isMoveAllowed(s, status));
  await trx('payment_event')
    .where({ id: payment_id })
    .whereIn('status', movable)
    .update({ status, ...failure, updated_at: trx.fn.now() });
  const row = await trx('payment_event').where({ id: payment_id }).first<{ status: PaymentStatus }>('status');
  return row.status;
}
