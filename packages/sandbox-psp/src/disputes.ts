import { randomBytes } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { Knex } from './db';
import { parseWith, SandboxError } from './errors';
import type { MoneyOutDeps } from './money-out';
import { registerSchema } from './store';
import { enqueueEvent } from './webhooks';

/**
 * Disputes (chargebacks): the buyer's bank takes a charge's money back and the merchant may answer
 * with evidence before a deadline; the bank then decides, won (the money comes back) or lost.
 * The PSP withdraws the amount when the dispute opens (a `dispute` settlement line) and returns it
 * if won (a `dispute_reversal` line).
 *
 * - Test-only: `POST /_sandbox/disputes {charge, reason?, evidence_due_in_s?}` opens one on a
 *   succeeded charge; `POST /_sandbox/disputes/:id/close {outcome: won|lost}` decides it.
 * - API: `GET /v1/disputes/:id`; `POST /v1/disputes/:id/evidence {text}` while the deadline has not
 *   passed (then 409 dispute_evidence_closed), and not after the decision (409 dispute_closed).
 * - Events: charge.dispute.created, charge.dispute.updated (evidence), charge.dispute.closed.
 */
export const DISPUTE_LIMITS = {
  evidence_chars_max: 20_000,
  reason_chars_max: 200,
  evidence_due_default_s: 7 * 86_400,
  evidence_due_max_s: 60 * 86_400,
} as const;

registerSchema(`
  create table if not exists sandbox_dispute (
    id text primary key,
    charge_id text not null references sandbox_charge (id),
    amount_minor bigint not null check (amount_minor > 0),
    currency char(3) not null,
    reason text not null,
    status text not null check (status in ('needs_response', 'under_review', 'won', 'lost')),
    evidence text,
    evidence_due_by timestamptz not null,
    version int not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  );
  create index if not exists sandbox_dispute_charge on sandbox_dispute (charge_id);
`);

interface DisputeRow {
  id: string;
  charge_id: string;
  amount_minor: string;
  currency: string;
  reason: string;
  status: 'needs_response' | 'under_review' | 'won' | 'lost';
  evidence: string | null;
  evidence_due_by: Date;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const unix = (d: Date): number => Math.floor(d.getTime() / 1000);

export const disputeJson = (row: DisputeRow) => ({
  id: row.id,
  object: 'dispute',
  charge: row.charge_id,
  amount: row.amount_minor,
  currency: row.currency.trim(),
  reason: row.reason,
  status: row.status,
  evidence_submitted: row.evidence !== null,
  evidence_due_by: unix(row.evidence_due_by),
  version: row.version,
  created: unix(row.created_at),
  updated: unix(row.updated_at),
});

const EVENT_OF = { created: 'charge.dispute.created', updated: 'charge.dispute.updated', closed: 'charge.dispute.closed' } as const;

async function emit(trx: Knex.Transaction, deps: MoneyOutDeps, row: DisputeRow, change: keyof typeof EVENT_OF): Promise<void> {
  await enqueueEvent(trx, deps, { type: EVENT_OF[change], object_id: row.id, object: disputeJson(row), target_url: deps.config.webhook_url });
}

async function lockDispute(trx: Knex.Transaction, id: string): Promise<DisputeRow> {
  const row = (await trx('sandbox_dispute').where({ id }).forUpdate().first()) as DisputeRow | undefined;
  if (row === undefined) throw new SandboxError('resource_missing', `no such dispute: ${id}`, 'id');
  return row;
}

async function moveDispute(trx: Knex.Transaction, row: DisputeRow, change: Partial<Pick<DisputeRow, 'status' | 'evidence'>>): Promise<DisputeRow> {
  const [moved] = (await trx('sandbox_dispute')
    .where({ id: row.id })
    .update({ ...change, version: row.version + 1, updated_at: trx.fn.now() })
    .returning('*')) as DisputeRow[];
  if (moved === undefined) throw new Error(`assertion: locked dispute ${row.id} vanished`);
  return moved;
}

const OpenBody = z.strictObject({
  charge: z.string().min(1).max(255),
  reason: z.string().min(1).max(DISPUTE_LIMITS.reason_chars_max).optional(),
  evidence_due_in_s: z.number().int().min(0).max(DISPUTE_LIMITS.evidence_due_max_s).optional(),
});

function openDispute(deps: MoneyOutDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const body = parseWith(OpenBody, req.body);
    const row = await deps.db.transaction(async (trx) => {
      const charge = (await trx('sandbox_charge').where({ id: body.charge }).forUpdate().first('id', 'status', 'amount_minor', 'currency')) as
        | { id: string; status: string; amount_minor: string; currency: string }
        | undefined;
      if (charge === undefined) throw new SandboxError('resource_missing', `no such charge: ${body.charge}`, 'charge');
      if (charge.status !== 'succeeded') throw new SandboxError('charge_not_refundable', `charge ${charge.id} is ${charge.status}: only a succeeded charge can be disputed`, 'charge');
      const open = await trx('sandbox_dispute').where({ charge_id: charge.id }).first('id');
      if (open !== undefined) throw new SandboxError('parameter_invalid', `charge ${charge.id} is already disputed (${String(open.id)})`, 'charge');
      const due_s = body.evidence_due_in_s ?? DISPUTE_LIMITS.evidence_due_default_s;
      const [inserted] = (await trx('sandbox_dispute')
        .insert({
          id: `dp_${randomBytes(12).toString('hex')}`,
          charge_id: charge.id,
          amount_minor: charge.amount_minor,
          currency: charge.currency,
          reason: body.reason ?? 'fraudulent',
          status: 'needs_response',
          evidence_due_by: new Date(Date.now() + due_s * 1000),
        })
        .returning('*')) as DisputeRow[];
      if (inserted === undefined) throw new Error('assertion: inserted dispute returned');
      await emit(trx, deps, inserted, 'created');
      return inserted;
    });
    deps.log.info({ dispute_id: row.id, charge_id: row.charge_id }, 'dispute opened');
    res.status(201).json(disputeJson(row));
  };
}

const CloseBody = z.strictObject({ outcome: z.enum(['won', 'lost']) });

function closeDispute(deps: MoneyOutDeps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const { outcome } = parseWith(CloseBody, req.body);
    const row = await deps.db.transaction(async (trx) => {
      const dispute = await lockDispute(trx, req.params.id);
      if (dispute.status === outcome) return dispute;
      if (dispute.status === 'won' || dispute.status === 'lost') throw new SandboxError('dispute_closed', `dispute ${dispute.id} is already ${dispute.status}`, 'id');
      const moved = await moveDispute(trx, dispute, { status: outcome });
      await emit(trx, deps, moved, 'closed');
      return moved;
    });
    deps.log.info({ dispute_id: row.id, status: row.status }, 'dispute closed');
    res.json(disputeJson(row));
  };
}

const EvidenceBody = z.strictObject({ text: z.string().min(1).max(DISPUTE_LIMITS.evidence_chars_max) });

function submitEvidence(deps: MoneyOutDeps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const { text } = parseWith(EvidenceBody, req.body);
    const row = await deps.db.transaction(async (trx) => {
      const dispute = await lockDispute(trx, req.params.id);
      if (dispute.status === 'won' || dispute.status === 'lost') throw new SandboxError('dispute_closed', `dispute ${dispute.id} is already ${dispute.status}`, 'id');
      if (dispute.evidence_due_by.getTime() < Date.now()) throw new SandboxError('dispute_evidence_closed', `the evidence deadline of dispute ${dispute.id} has passed`, 'id');
      const moved = await moveDispute(trx, dispute, { status: 'under_review', evidence: text });
      await emit(trx, deps, moved, 'updated');
      return moved;
    });
    res.json(disputeJson(row));
  };
}

function getDispute(deps: MoneyOutDeps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const row = (await deps.db('sandbox_dispute').where({ id: req.params.id }).first()) as DisputeRow | undefined;
    if (row === undefined) throw new SandboxError('resource_missing', `no such dispute: ${req.params.id}`, 'id');
    res.json(disputeJson(row));
  };
}

/** The /v1 routes (behind the API key and the JSON parser). */
export function mountDisputes(app: express.Express, deps: MoneyOutDeps): void {
  app.get('/v1/disputes/:id', getDispute(deps));
  app.post('/v1/disputes/:id/evidence', submitEvidence(deps));
}

/** Test-only: open and decide disputes (mounted under /_sandbox). */
export function disputeAdminRouter(deps: MoneyOutDeps): express.Router {
  const router = express.Router();
  router.post('/disputes', openDispute(deps));
  router.post('/disputes/:id/close', closeDispute(deps));
  return router;
}
