/** The refund home (table `refund`): a refund of one order, in part or whole. */
import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { refundWorkflowId } from '../domain/workflow-ids';
import { merchantPage, type Page, type PageOptions } from './page';
import type { RefundStatus } from '../domain/status';

type Conn = Knex | Knex.Transaction;

export type { RefundStatus };

export interface RefundRow {
  id: string;
  merchant_id: string;
  payment_id: string;
  order_id: string;
  amount_minor: string;
  currency: string;
  reason: string | null;
  status: RefundStatus;
  psp_refund_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
  workflow_id: string;
  workflow_started_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export type NewRefund = Pick<RefundRow, 'id' | 'merchant_id' | 'payment_id' | 'order_id' | 'amount_minor' | 'currency' | 'reason'>;

/** A new refund, `pending` until the PSP decides. */
export async function insertRefundRow(trx: Knex.Transaction, r: NewRefund): Promise<RefundRow> {
  const [row] = (await trx('refund').insert({ ...r, status: 'pending', workflow_id: refundWorkflowId(r.id) }).returning('*')) as RefundRow[];
  assert(row !== undefined, 'inserted refund returned');
  return row;
}

export async function findMerchantRefund(conn: Conn, merchant_id: string, refund_id: string): Promise<RefundRow | undefined> {
  return (await conn('refund').where({ id: refund_id, merchant_id }).first()) as RefundRow | undefined;
}

export async function loadRefund(conn: Conn, refund_id: string, lock = false): Promise<RefundRow> {
  const query = conn('refund').where({ id: refund_id });
  const row = (await (lock ? query.forUpdate() : query).first()) as RefundRow | undefined;
  assert(row !== undefined, `refund ${refund_id} exists`);
  return row;
}

/** What the order's succeeded refunds add up to (the caller holds the order's row lock). */
export async function succeededRefundsOfOrder(trx: Knex.Transaction, order_id: string): Promise<bigint> {
  const [done] = (await trx('refund').where({ order_id, status: 'succeeded' }).sum({ total: 'amount_minor' })) as { total: string | null }[];
  return BigInt(done?.total ?? 0);
}

/** The PSP's decision, once: the caller holds the refund's row lock and has seen it pending. */
export async function markRefundSucceeded(trx: Knex.Transaction, refund_id: string, psp_refund_id: string): Promise<void> {
  await trx('refund').where({ id: refund_id }).update({ status: 'succeeded', psp_refund_id, updated_at: trx.fn.now() });
}

export async function markRefundFailed(trx: Knex.Transaction, refund_id: string, failure: { failure_code: string | null; failure_message: string | null }): Promise<void> {
  await trx('refund').where({ id: refund_id }).update({ status: 'failed', ...failure, updated_at: trx.fn.now() });
}

/** A merchant's refunds newest first; optionally one payment's. */
export async function merchantRefundsPage<Out extends { id: string }>(db: Knex, merchant_id: string, opts: PageOptions & { payment_id?: string }, toResource: (row: RefundRow) => Out): Promise<Page<Out>> {
  const where = opts.payment_id === undefined ? undefined : { payment_id: opts.payment_id };
  return await merchantPage(db, { table: 'refund', noun: 'refunds' }, merchant_id, { ...opts, where }, toResource);
}
