import { Router } from 'express';
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { merchantOf } from './auth';
import { parseWith } from './errors';
import { CreatePaymentBody, CreateRefundBody, ListPaymentsQuery, ListRefundsQuery } from './schemas';
import { getRefund, insertRefund, listRefunds } from '../services/refunds';
import { getPayment, insertPayment, listPayments, openCheckout, validatePayment } from '../services/payments';
import type { PspClient } from '../psp/client';
import { requestHash, runIdempotent, validateIdempotencyKey } from '../services/idempotency';
import { tryStartRowWorkflow, type StarterDeps } from '../services/workflow-starter';
import type { Admission } from '../services/admission';

export interface PaymentsRouterDeps {
  db: Knex;
  log: Logger;
  starter: StarterDeps;
  commission_bps: number;
  psp: PspClient;
  admission: Admission;
}

export function paymentsRouter({ db, log, starter, commission_bps, psp, admission }: PaymentsRouterDeps): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const merchant = merchantOf(res);
    const key = validateIdempotencyKey(req.header('idempotency-key'));
    // Everything is validated before anything is written.
    const valid = validatePayment(parseWith(CreatePaymentBody, req.body));
    const scope = { merchant_id: merchant.merchant_id, key, request_hash: requestHash('POST', '/v1/payments', req.body) };
    // Over capacity, a key already used still replays; a new one gets 429 and stays unclaimed.
    const refuse = admission.refusal(merchant.merchant_id);
    const result = await runIdempotent(
      db,
      scope,
      async (trx) => {
        const payment_id = await insertPayment(trx, merchant.merchant_id, valid, commission_bps, starter.task_queue);
        if (valid.body.payment_method === undefined && valid.body.return_url !== undefined) await openCheckout(trx, psp, payment_id, valid.body.return_url);
        return { status: 201, body: await getPayment(trx, merchant.merchant_id, payment_id), payment_id };
      },
      refuse,
    );
    // The dispatcher starts the workflow (admission control); a new payment nudges it at once.
    if (!result.replayed) admission.accepted(merchant.merchant_id);
    res.locals.payment_id = result.payment_id;
    log.info({ merchant_id: merchant.merchant_id, payment_id: result.payment_id, replayed: result.replayed }, 'payment accepted');
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(result.status).json(result.body);
  });

  router.get('/', async (req, res) => {
    const query = parseWith(ListPaymentsQuery, req.query);
    res.json(await listPayments(db, merchantOf(res).merchant_id, query.limit, query.starting_after));
  });

  router.get('/:id', async (req, res) => {
    res.locals.payment_id = String(req.params.id);
    res.json(await getPayment(db, merchantOf(res).merchant_id, String(req.params.id)));
  });

  // Refund part or all of one order; idempotent by key like payments. 201 while the PSP is asked.
  router.post('/:id/refunds', async (req, res) => {
    const merchant = merchantOf(res);
    const payment_id = String(req.params.id);
    const key = validateIdempotencyKey(req.header('idempotency-key'));
    const body = parseWith(CreateRefundBody, req.body);
    const scope = { merchant_id: merchant.merchant_id, key, request_hash: requestHash('POST', `/v1/payments/${payment_id}/refunds`, req.body) };
    const result = await runIdempotent(db, scope, async (trx) => {
      const refund = await insertRefund(trx, merchant.merchant_id, payment_id, body);
      return { status: 201, body: refund, payment_id };
    });
    const refund_id = (result.body as { id: string }).id;
    // Also on a replay: a first request that died before starting the workflow is healed here.
    await tryStartRowWorkflow(starter, 'refund', refund_id);
    res.locals.payment_id = payment_id;
    log.info({ merchant_id: merchant.merchant_id, payment_id, refund_id, replayed: result.replayed }, 'refund accepted');
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(result.status).json(result.body);
  });

  router.get('/:id/refunds', async (req, res) => {
    const query = parseWith(ListRefundsQuery, req.query);
    const merchant_id = merchantOf(res).merchant_id;
    await getPayment(db, merchant_id, String(req.params.id)); // 404 for another merchant's payment
    res.json(await listRefunds(db, merchant_id, { ...query, payment_id: String(req.params.id) }));
  });

  return router;
}

/** GET /v1/refunds (newest first) and /v1/refunds/:id, the merchant's own. */
export function refundsRouter({ db }: Pick<PaymentsRouterDeps, 'db'>): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const query = parseWith(ListRefundsQuery, req.query);
    res.json(await listRefunds(db, merchantOf(res).merchant_id, query));
  });
  router.get('/:id', async (req, res) => {
    res.json(await getRefund(db, merchantOf(res).merchant_id, String(req.params.id)));
  });
  return router;
}
