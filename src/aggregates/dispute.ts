/** The dispute home (table `dispute`): a buyer's chargeback on one order, as the PSP reports it. */
import type { Knex } from 'knex';
import type { DisputeStatus, OrderStatus } from '../domain/status';
import { disputeWorkflowId } from '../domain/workflow-ids';
import { merchantPage, type Page, type PageOptions } from './page';

type Conn = Knex | Knex.Transaction;

export type { DisputeStatus };

export interface DisputeRow {
  id: string;
  merchant_id: string;
  payment_id: string;
  order_id: string;
  amount_minor: string;
  currency: string;
  reason: string;
  status: DisputeStatus;
  evidence_due_by: Date;
  evidence_submitted_at: Date | null;
  order_status_before: OrderStatus;
  workflow_id: string;
  created_at: Date;
  updated_at: Date;
}

export type NewDispute = Pick<DisputeRow, 'id' | 'merchant_id' | 'payment_id' | 'order_id' | 'amount_minor' | 'currency' | 'reason' | 'evidence_due_by' | 'order_status_before'> & {
  status: Extract<DisputeStatus, 'needs_response' | 'under_review'>;
};

export async function disputeExists(conn: Conn, dispute_id: string): Promise<boolean> {
  return (await conn('dispute').where({ id: dispute_id }).first('id')) !== undefined;
}

export async function insertDispute(trx: Knex.Transaction, d: NewDispute): Promise<void> {
  await trx('dispute').insert({ ...d, workflow_id: disputeWorkflowId(d.id) });
}

export async function findMerchantDispute(conn: Conn, merchant_id: string, dispute_id: string): Promise<DisputeRow | undefined> {
  return (await conn('dispute').where({ id: dispute_id, merchant_id }).first()) as DisputeRow | undefined;
}

export async function lockDispute(trx: Knex.Transaction, dispute_id: string): Promise<DisputeRow | undefined> {
  return (await trx('dispute').where({ id: dispute_id }).forUpdate().first()) as DisputeRow | undefined;
}

/** The PSP's decision, once (the caller holds the row lock and saw it undecided). */
export async function decideDispute(trx: Knex.Transaction, dispute_id: string, status: 'won' | 'lost'): Promise<void> {
  await trx('dispute').where({ id: dispute_id }).update({ status, updated_at: trx.fn.now() });
}

/** Evidence went to the PSP: from the status read, the dispute is under review. */
export async function markEvidenceSubmitted(conn: Knex, dispute_id: string, from: DisputeStatus): Promise<void> {
  await conn('dispute').where({ id: dispute_id, status: from }).update({ status: 'under_review', evidence_submitted_at: conn.fn.now(), updated_at: conn.fn.now() });
}

/** A merchant's disputes newest first. */
export async function merchantDisputesPage<Out extends { id: string }>(db: Knex, merchant_id: string, opts: PageOptions, toResource: (row: DisputeRow) => Out): Promise<Page<Out>> {
  return await merchantPage(db, { table: 'dispute', noun: 'disputes' }, merchant_id, opts, toResource);
}
