import { Router } from 'express';
import { z } from 'zod';
import type { Knex } from 'knex';
import type { PspClient } from '../psp/client';
import { merchantOf } from './auth';
import { parseWith } from './errors';
import { PageQuery } from './schemas';
import { DISPUTE_EVIDENCE_CHARS_MAX, getDispute, listDisputes, submitEvidence } from '../services/disputes';

const EvidenceBody = z.strictObject({ text: z.string().min(1).max(DISPUTE_EVIDENCE_CHARS_MAX) });

/** GET /v1/disputes[/:id], POST /v1/disputes/:id/evidence — the merchant's own. */
export function disputesRouter({ db, psp }: { db: Knex; psp: PspClient }): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    res.json(await listDisputes(db, merchantOf(res).merchant_id, parseWith(PageQuery, req.query)));
  });
  router.get('/:id', async (req, res) => {
    res.json(await getDispute(db, merchantOf(res).merchant_id, String(req.params.id)));
  });
  router.post('/:id/evidence', async (req, res) => {
    const { text } = parseWith(EvidenceBody, req.body);
    res.json(await submitEvidence(db, psp, merchantOf(res).merchant_id, String(req.params.id), text));
  });
  return router;
}
