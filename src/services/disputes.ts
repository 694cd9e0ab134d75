import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import { formatAmount } from '../domain/money';
import { PspError, type PspClient } from '../psp/client';
import { findMerchantDispute, markEvidenceSubmitted, merchantDisputesPage, type DisputeRow } from '../aggregates/dispute';

/** Disputes as merchants see them, and their evidence (forwarded to the PSP before the deadline). */
export const DISPUTE_EVIDENCE_CHARS_MAX = 20_000;

function toResource(d: DisputeRow) {
  const currency = d.currency.trim();
  return {
    id: d.id,
    object: 'dispute' as const,
    payment_id: d.payment_id,
    order_id: d.order_id,
    amount: formatAmount(BigInt(d.amount_minor), currency),
    currency,
    reason: d.reason,
    status: d.status,
    evidence_due_by: d.evidence_due_by.toISOString(),
    evidence_submitted_at: d.evidence_submitted_at?.toISOString() ?? null,
    workflow_id: d.workflow_id,
    created_at: d.created_at.toISOString(),
  };
}

async function load(db: Knex, merchant_id: string, id: string): Promise<DisputeRow> {
  const row = await findMerchantDispute(db, merchant_id, id);
  if (row === undefined) throw new AppError('resource_missing', `no dispute ${id}`, 'id');
  return row;
}

export async function getDispute(db: Knex, merchant_id: string, id: string) {
  return toResource(await load(db, merchant_id, id));
}

/** Newest first (cursor pagination). */
export async function listDisputes(db: Knex, merchant_id: string, opts: { limit: number; starting_after?: string }) {
  return await merchantDisputesPage(db, merchant_id, opts, toResource);
}

/** Evidence goes to the PSP while the dispute is open and its deadline has not passed (else 409). */
export async function submitEvidence(db: Knex, psp: PspClient, merchant_id: string, id: string, text: string) {
  const row = await load(db, merchant_id, id);
  if (row.status === 'won' || row.status === 'lost') throw new AppError('dispute_closed', `dispute ${id} is already ${row.status}`, 'id');
  if (row.evidence_due_by.getTime() < Date.now()) throw new AppError('dispute_evidence_closed', `the evidence deadline of dispute ${id} passed at ${row.evidence_due_by.toISOString()}`, 'id');
  try {
    await psp.submitDisputeEvidence(id, text);
  } catch (err) {
    if (!(err instanceof PspError)) throw err;
    if (err.kind === 'definitive') throw new AppError('dispute_evidence_closed', `the PSP refused the evidence: ${err.message}`, 'id');
    throw new AppError('psp_unavailable', 'the PSP did not take the evidence; retry', undefined, err.retry_after_s);
  }
  await markEvidenceSubmitted(db, id, row.status);
  return toResource(await load(db, merchant_id, id));
}
