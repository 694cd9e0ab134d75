import { z } from 'zod';
import { merchantOf } from './auth';
import { defineRoute, type RouteDef } from './registry';
import { PageQuery } from './schemas';
import { DisputeList, DisputeResource } from './resources';
import { DISPUTE_EVIDENCE_CHARS_MAX, getDispute, listDisputes, submitEvidence } from '../services/disputes';

const EvidenceBody = z.strictObject({ text: z.string().min(1).max(DISPUTE_EVIDENCE_CHARS_MAX) });
const IdParam = z.object({ id: z.string() });

const listDisputesRoute = defineRoute({
  method: 'get',
  path: '/v1/disputes',
  operationId: 'listDisputes',
  tag: 'disputes',
  summary: 'Your disputes (chargebacks), newest first (cursor pagination)',
  description:
    'A dispute opens from the PSP\'s charge.dispute.created webhook: the disputed amount is held (the seller\'s share in dispute_hold), the order and payment show `disputed`. Won: released, the order goes back. Lost: the held share pays for it, the order ends `refunded`.',
  auth: 'merchant',
  query: PageQuery,
  success: { status: 200, description: 'A page of disputes', schema: DisputeList },
  errors: { 400: 'Invalid query' },
  async handle({ deps, res, query }) {
    res.json(await listDisputes(deps.db, merchantOf(res).merchant_id, query));
  },
});

const getDisputeRoute = defineRoute({
  method: 'get',
  path: '/v1/disputes/:id',
  operationId: 'getDispute',
  tag: 'disputes',
  summary: 'One dispute: needs_response, under_review, won or lost, with its evidence deadline',
  auth: 'merchant',
  params: IdParam,
  success: { status: 200, description: 'The dispute', schema: DisputeResource },
  errors: { 404: 'Not found (or not yours)' },
  async handle({ deps, req, res }) {
    res.json(await getDispute(deps.db, merchantOf(res).merchant_id, String(req.params.id)));
  },
});

const submitEvidenceRoute = defineRoute({
  method: 'post',
  path: '/v1/disputes/:id/evidence',
  operationId: 'submitDisputeEvidence',
  tag: 'disputes',
  summary: 'Answer a dispute with evidence text (forwarded to the PSP) before its deadline',
  auth: 'merchant',
  params: IdParam,
  body: EvidenceBody,
  success: { status: 200, description: 'The dispute, under_review', schema: DisputeResource },
  errors: { 400: 'Invalid body', 404: 'No such dispute', 409: 'dispute_evidence_closed (deadline passed) or dispute_closed (decided)', 413: 'Body too large', 503: 'The PSP did not take it; retry' },
  async handle({ deps, req, res, body }) {
    res.json(await submitEvidence(deps.db, deps.psp, merchantOf(res).merchant_id, String(req.params.id), body.text));
  },
});

/** The merchant's disputes and their evidence. */
export const DISPUTE_ROUTES: readonly RouteDef[] = [listDisputesRoute, getDisputeRoute, submitEvidenceRoute];
