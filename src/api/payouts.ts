import { z } from 'zod';
import { merchantOf } from './auth';
import { AppError } from '../domain/errors';
import { defineRoute, requireKey, type RouteDef } from './registry';
import { ListPayoutsQuery } from './schemas';
import { BankAccountResource, PayoutList, PayoutResource } from './resources';
import { getPayout, insertOnDemandPayout, listPayouts, registerBankAccount } from '../services/payouts';
import { requestHash, runIdempotent } from '../services/idempotency';
import { tryStartRowWorkflow } from '../services/workflow-starter';

const SELLER_ID_CHARS_MAX = 255;

const BankAccountBody = z.strictObject({ account_number: z.string().regex(/^[0-9]{4,17}$/, 'must be 4 to 17 digits') });
const PayoutBody = z.strictObject({ seller_id: z.string().min(1).max(SELLER_ID_CHARS_MAX), currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code') });

// The number goes to the PSP; we keep its token and last four.
const putBankAccount = defineRoute({
  method: 'put',
  path: '/v1/sellers/:seller_id/bank_account',
  operationId: 'putSellerBankAccount',
  tag: 'payouts',
  summary: 'Register (or replace) a seller\'s payout bank account',
  description: 'The account number goes to the PSP, which tokenizes it; we keep the token and the last four digits only.',
  auth: 'merchant',
  params: z.object({ seller_id: z.string().max(SELLER_ID_CHARS_MAX) }),
  check(req) {
    if (String(req.params.seller_id).length > SELLER_ID_CHARS_MAX) throw new AppError('parameter_invalid', `seller_id is at most ${SELLER_ID_CHARS_MAX} characters`, 'seller_id');
  },
  body: BankAccountBody,
  success: { status: 200, description: 'The registered account (last four digits only)', schema: BankAccountResource },
  errors: { 400: 'Not 4 to 17 digits, or a seller_id over 255 characters', 413: 'Body too large', 503: 'The PSP is unavailable; retry' },
  async handle({ deps, req, res, body }) {
    const merchant = merchantOf(res);
    const seller_id = String(req.params.seller_id);
    const saved = await registerBankAccount(deps.db, deps.psp, merchant.merchant_id, seller_id, body.account_number);
    deps.log.info({ merchant_id: merchant.merchant_id, seller_id, last4: saved.last4 }, 'seller bank account registered');
    res.json({ object: 'bank_account', ...saved });
  },
});

const createPayout = defineRoute({
  method: 'post',
  path: '/v1/payouts',
  operationId: 'createPayout',
  tag: 'payouts',
  summary: 'Pay a seller their whole available balance in one currency, now',
  description:
    'The balance is moved to payout clearing in the same transaction that makes the payout (a balance never goes below zero through a payout); the payout workflow asks the PSP (keyed by the payout id) and books paid or failed. ' +
    'The daily Schedule (PAYOUT_SCHEDULE_CRON) does the same for every payable seller, once per seller, currency and day.',
  auth: 'merchant',
  idempotent: true,
  body: PayoutBody,
  success: { status: 201, description: 'The payout (pending), or replayed', schema: PayoutResource, headers: ['Idempotent-Replayed'] },
  errors: {
    400: 'payout_nothing_available, payout_below_minimum (PAYOUT_MINIMUMS), an invalid body or Idempotency-Key; nothing written',
    404: 'No bank account for this seller',
    409: 'Idempotency key in use by a request still running',
    413: 'Body too large',
    422: 'Idempotency-Key reused with another body',
  },
  async handle({ deps, req, res, body, idempotency_key }) {
    const merchant = merchantOf(res);
    const scope = { merchant_id: merchant.merchant_id, key: requireKey(idempotency_key), request_hash: requestHash('POST', '/v1/payouts', req.body) };
    const result = await runIdempotent(deps.db, scope, async (trx) => {
      const minimum_minor = deps.payout_minimums.get(body.currency) ?? 1n;
      const payout = await insertOnDemandPayout(trx, { merchant_id: merchant.merchant_id, seller_id: body.seller_id, currency: body.currency, minimum_minor });
      return { status: 201, body: payout, payment_id: null };
    });
    const payout_id = (result.body as { id: string }).id;
    await tryStartRowWorkflow(deps.starter, 'payout', payout_id);
    deps.log.info({ merchant_id: merchant.merchant_id, payout_id, replayed: result.replayed }, 'payout accepted');
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(result.status).json(result.body);
  },
});

const listPayoutsRoute = defineRoute({
  method: 'get',
  path: '/v1/payouts',
  operationId: 'listPayouts',
  tag: 'payouts',
  summary: 'Your payouts, newest first (cursor pagination)',
  auth: 'merchant',
  query: ListPayoutsQuery,
  success: { status: 200, description: 'A page of payouts', schema: PayoutList },
  errors: { 400: 'Invalid query' },
  async handle({ deps, res, query }) {
    res.json(await listPayouts(deps.db, merchantOf(res).merchant_id, query));
  },
});

const getPayoutRoute = defineRoute({
  method: 'get',
  path: '/v1/payouts/:id',
  operationId: 'getPayout',
  tag: 'payouts',
  summary: 'One payout: pending, paid or failed',
  auth: 'merchant',
  params: z.object({ id: z.string() }),
  success: { status: 200, description: 'The payout', schema: PayoutResource },
  errors: { 404: 'Not found (or not yours)' },
  async handle({ deps, req, res }) {
    res.json(await getPayout(deps.db, merchantOf(res).merchant_id, String(req.params.id)));
  },
});

/** Sellers' bank accounts and payouts, as merchants call them. */
export const PAYOUT_ROUTES: readonly RouteDef[] = [putBankAccount, createPayout, listPayoutsRoute, getPayoutRoute];
