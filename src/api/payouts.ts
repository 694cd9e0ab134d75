import { Router } from 'express';
import { z } from 'zod';
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import type { PspClient } from '../psp/client';
import { merchantOf } from './auth';
import { parseWith } from './errors';
import { AppError } from '../domain/errors';
import { ListPayoutsQuery } from './schemas';
import { getPayout, insertOnDemandPayout, listPayouts, registerBankAccount } from '../services/payouts';
import { requestHash, runIdempotent, validateIdempotencyKey } from '../services/idempotency';
import { tryStartRowWorkflow, type StarterDeps } from '../services/workflow-starter';

export interface PayoutsRouterDeps {
  db: Knex;
  log: Logger;
  psp: PspClient;
  starter: StarterDeps;
  payout_minimums: ReadonlyMap<string, bigint>;
}

const BankAccountBody = z.strictObject({ account_number: z.string().regex(/^[0-9]{4,17}$/, 'must be 4 to 17 digits') });
const PayoutBody = z.strictObject({ seller_id: z.string().min(1).max(255), currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code') });

/** PUT /v1/sellers/:seller_id/bank_account: the number goes to the PSP; we keep its token and last four. */
export function sellersRouter({ db, psp, log }: Pick<PayoutsRouterDeps, 'db' | 'psp' | 'log'>): Router {
  const router = Router();
  router.put('/:seller_id/bank_account', async (req, res) => {
    const merchant = merchantOf(res);
    const seller_id = String(req.params.seller_id);
    if (seller_id.length > 255) throw new AppError('parameter_invalid', 'seller_id is at most 255 characters', 'seller_id');
    const body = parseWith(BankAccountBody, req.body);
    const saved = await registerBankAccount(db, psp, merchant.merchant_id, seller_id, body.account_number);
    log.info({ merchant_id: merchant.merchant_id, seller_id, last4: saved.last4 }, 'seller bank account registered');
    res.json({ object: 'bank_account', ...saved });
  });
  return router;
}

/** POST /v1/payouts (one seller and currency, now; idempotent by key), GET /v1/payouts[/:id]. */
export function payoutsRouter({ db, log, starter, payout_minimums }: PayoutsRouterDeps): Router {
  const router = Router();
  router.post('/', async (req, res) => {
    const merchant = merchantOf(res);
    const key = validateIdempotencyKey(req.header('idempotency-key'));
    const body = parseWith(PayoutBody, req.body);
    const scope = { merchant_id: merchant.merchant_id, key, request_hash: requestHash('POST', '/v1/payouts', req.body) };
    const result = await runIdempotent(db, scope, async (trx) => {
      const minimum_minor = payout_minimums.get(body.currency) ?? 1n;
      const payout = await insertOnDemandPayout(trx, { merchant_id: merchant.merchant_id, seller_id: body.seller_id, currency: body.currency, minimum_minor });
      return { status: 201, body: payout, payment_id: null };
    });
    const payout_id = (result.body as { id: string }).id;
    await tryStartRowWorkflow(starter, 'payout', payout_id);
    log.info({ merchant_id: merchant.merchant_id, payout_id, replayed: result.replayed }, 'payout accepted');
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(result.status).json(result.body);
  });
  router.get('/', async (req, res) => {
    const query = parseWith(ListPayoutsQuery, req.query);
    res.json(await listPayouts(db, merchantOf(res).merchant_id, query));
  });
  router.get('/:id', async (req, res) => {
    res.json(await getPayout(db, merchantOf(res).merchant_id, String(req.params.id)));
  });
  return router;
}
