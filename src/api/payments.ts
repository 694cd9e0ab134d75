import { z } from 'zod';
import { merchantOf } from './auth';
import { defineRoute, requireKey, type RouteDef } from './registry';
import { CreatePaymentBody, CreateRefundBody, ListPaymentsQuery, ListRefundsQuery, PaymentList, PaymentResource, RefundResource } from './schemas';
import { RefundList } from './resources';
import { getRefund, insertRefund, listRefunds } from '../services/refunds';
import { getPayment, insertPayment, listPayments, openCheckout, validatePayment } from '../services/payments';
import { requestHash, runIdempotent } from '../services/idempotency';
import { tryStartRowWorkflow } from '../services/workflow-starter';

const IdParam = z.object({ id: z.string() });

const createPayment = defineRoute({
  method: 'post',
  path: '/v1/payments',
  operationId: 'createPayment',
  tag: 'payments',
  summary: 'Create a payment event (one checkout, one order per seller)',
  description:
    'With `payment_method` (a PSP token) the charge starts at once. Without it the answer has status `requires_payment_method` and a `checkout_url` on the PSP: ' +
    'send the buyer there; after paying they return to `return_url` and the payment proceeds (unpaid after CHECKOUT_TIMEOUT_MS → `canceled`, `checkout_expired`). ' +
    'Statuses: requires_payment_method → processing → (requires_action | pending | needs_attention) → succeeded | failed | partially_succeeded | canceled; they only move forward (an operator retry of needs_attention is the one step back).',
  auth: 'merchant',
  idempotent: true,
  body: CreatePaymentBody,
  success: { status: 201, description: 'Created (or replayed)', schema: PaymentResource, headers: ['Idempotent-Replayed'] },
  errors: {
    400: 'Invalid request (or a missing or malformed Idempotency-Key); nothing stored',
    409: 'Idempotency key in use by a request still running',
    413: 'Body too large',
    422: 'Idempotency key reused with a different body',
    503: 'The PSP could not open a hosted checkout (psp_unavailable); nothing stored, retry with the same key',
  },
  async handle({ deps, req, res, body, idempotency_key }) {
    const merchant = merchantOf(res);
    // Everything is validated before anything is written.
    const valid = validatePayment(body);
    const scope = { merchant_id: merchant.merchant_id, key: requireKey(idempotency_key), request_hash: requestHash('POST', '/v1/payments', req.body) };
    // Over capacity, a key already used still replays; a new one gets 429 and stays unclaimed.
    const refuse = deps.admission.refusal(merchant.merchant_id);
    const result = await runIdempotent(
      deps.db,
      scope,
      async (trx) => {
        const payment_id = await insertPayment(trx, merchant.merchant_id, valid, deps.commission_bps, deps.starter.task_queue);
        if (valid.body.payment_method === undefined && valid.body.return_url !== undefined) await openCheckout(trx, deps.psp, payment_id, valid.body.return_url);
        return { status: 201, body: await getPayment(trx, merchant.merchant_id, payment_id), payment_id };
      },
      refuse,
    );
    // The dispatcher starts the workflow (admission control); a new payment nudges it at once.
    if (!result.replayed) deps.admission.accepted(merchant.merchant_id);
    res.locals.payment_id = result.payment_id;
    deps.log.info({ merchant_id: merchant.merchant_id, payment_id: result.payment_id, replayed: result.replayed }, 'payment accepted');
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(result.status).json(result.body);
  },
});

const listPaymentsRoute = defineRoute({
  method: 'get',
  path: '/v1/payments',
  operationId: 'listPayments',
  tag: 'payments',
  summary: 'List your payments, newest first (cursor pagination)',
  auth: 'merchant',
  query: ListPaymentsQuery,
  success: { status: 200, description: 'A page of payments', schema: PaymentList },
  errors: { 400: 'Invalid query (or a starting_after that is not one of your payments)' },
  async handle({ deps, res, query }) {
    res.json(await listPayments(deps.db, merchantOf(res).merchant_id, query.limit, query.starting_after));
  },
});

const getPaymentRoute = defineRoute({
  method: 'get',
  path: '/v1/payments/:id',
  operationId: 'getPayment',
  tag: 'payments',
  summary: 'A payment with every order\'s status',
  auth: 'merchant',
  params: IdParam,
  success: { status: 200, description: 'The payment', schema: PaymentResource },
  errors: { 404: 'Not found (or not yours)' },
  async handle({ deps, req, res }) {
    res.locals.payment_id = String(req.params.id);
    res.json(await getPayment(deps.db, merchantOf(res).merchant_id, String(req.params.id)));
  },
});

// Refund part or all of one order; idempotent by key like payments. 201 while the PSP is asked.
const createRefund = defineRoute({
  method: 'post',
  path: '/v1/payments/:id/refunds',
  operationId: 'createRefund',
  tag: 'refunds',
  summary: 'Refund part or all of one order of a payment',
  description:
    'The amount is reserved on the order at once (concurrent refunds never exceed what was captured); the answer is 201 `pending` and the refund workflow asks the PSP, then reverses the seller\'s share and the commission pro rata in the ledger (the PSP keeps its fee). ' +
    'The order becomes `partially_refunded` or `refunded`, and the payment follows. Watch GET /v1/refunds/{id}.',
  auth: 'merchant',
  params: IdParam,
  idempotent: true,
  body: CreateRefundBody,
  success: { status: 201, description: 'Accepted (pending), or replayed', schema: RefundResource, headers: ['Idempotent-Replayed'] },
  errors: {
    400: 'Invalid body or amount (invalid_amount, parameter_invalid, parameter_unknown) or Idempotency-Key; nothing written',
    404: 'No such payment (or not yours), or no such order in it',
    409: 'order_not_refundable (not captured) or refund_exceeds_refundable (more than is left); nothing written',
    413: 'Body too large',
    422: 'Idempotency-Key reused with another body',
  },
  async handle({ deps, req, res, body, idempotency_key }) {
    const merchant = merchantOf(res);
    const payment_id = String(req.params.id);
    const scope = { merchant_id: merchant.merchant_id, key: requireKey(idempotency_key), request_hash: requestHash('POST', `/v1/payments/${payment_id}/refunds`, req.body) };
    const result = await runIdempotent(deps.db, scope, async (trx) => {
      const refund = await insertRefund(trx, merchant.merchant_id, payment_id, body);
      return { status: 201, body: refund, payment_id };
    });
    const refund_id = (result.body as { id: string }).id;
    // Also on a replay: a first request that died before starting the workflow is healed here.
    await tryStartRowWorkflow(deps.starter, 'refund', refund_id);
    res.locals.payment_id = payment_id;
    deps.log.info({ merchant_id: merchant.merchant_id, payment_id, refund_id, replayed: result.replayed }, 'refund accepted');
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(result.status).json(result.body);
  },
});

const listPaymentRefunds = defineRoute({
  method: 'get',
  path: '/v1/payments/:id/refunds',
  operationId: 'listPaymentRefunds',
  tag: 'refunds',
  summary: 'The refunds of a payment, newest first',
  auth: 'merchant',
  params: IdParam,
  query: ListRefundsQuery,
  success: { status: 200, description: 'A page of the payment\'s refunds', schema: RefundList },
  errors: { 400: 'Invalid query', 404: 'No such payment (or not yours)' },
  async handle({ deps, req, res, query }) {
    const merchant_id = merchantOf(res).merchant_id;
    await getPayment(deps.db, merchant_id, String(req.params.id)); // 404 for another merchant's payment
    res.json(await listRefunds(deps.db, merchant_id, { ...query, payment_id: String(req.params.id) }));
  },
});

const listRefundsRoute = defineRoute({
  method: 'get',
  path: '/v1/refunds',
  operationId: 'listRefunds',
  tag: 'refunds',
  summary: 'Your refunds, newest first (cursor pagination)',
  auth: 'merchant',
  query: ListRefundsQuery,
  success: { status: 200, description: 'A page of refunds', schema: RefundList },
  errors: { 400: 'Invalid query' },
  async handle({ deps, res, query }) {
    res.json(await listRefunds(deps.db, merchantOf(res).merchant_id, query));
  },
});

const getRefundRoute = defineRoute({
  method: 'get',
  path: '/v1/refunds/:id',
  operationId: 'getRefund',
  tag: 'refunds',
  summary: 'One refund: pending, succeeded or failed (with the PSP\'s reason)',
  auth: 'merchant',
  params: IdParam,
  success: { status: 200, description: 'The refund', schema: RefundResource },
  errors: { 404: 'Not found (or not yours)' },
  async handle({ deps, req, res }) {
    res.json(await getRefund(deps.db, merchantOf(res).merchant_id, String(req.params.id)));
  },
});

/** Payments and their refunds, as merchants call them. */
export const PAYMENT_ROUTES: readonly RouteDef[] = [createPayment, listPaymentsRoute, getPaymentRoute, createRefund, listPaymentRefunds, listRefundsRoute, getRefundRoute];
