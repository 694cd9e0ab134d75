import { randomUUID } from 'node:crypto';
import { call, newMerchant, settled, waitForPayment, type TestApi, useTestApi } from '../support/stack';
import { createRefund, getRefund, until } from '../support/flows';
import type { CreateRefundRequest } from '../support/api-client';
import { keepHistory } from '../support/histories';

/**
 * Refunds through the suite's stack: the API reserves the amount and
 * answers 201 `pending`; the refund workflow asks the sandbox PSP and books the outcome.
 */
let api: TestApi;
let key: string;
useTestApi((a, k) => {
  api = a;
  key = k;
});

async function paid(amounts: string[], token = 'tok_success', api_key = key) {
  const body = { buyer: { id: `b_${randomUUID()}` }, currency: 'USD', orders: amounts.map((amount) => ({ seller_id: `s_${randomUUID()}`, amount })), payment_method: token };
  const created = await call(`${api.url}/v1/payments`, { key: api_key, idempotency_key: randomUUID(), body });
  expect(created.status).toBe(201);
  return await waitForPayment(api, api_key, created.body.id, (p) => settled(p) && p.orders.every((o: { status: string; ledger_updated: boolean }) => o.status !== 'succeeded' || o.ledger_updated));
}

// Some bodies are invalid on purpose: typed as the valid shape, judged by the server.
async function refund(payment_id: string, body: Record<string, unknown>, opts: { idempotency_key?: string; api_key?: string } = {}) {
  return await createRefund(api.url, opts.api_key ?? key, payment_id, body as CreateRefundRequest, opts.idempotency_key);
}

async function decided(refund_id: string) {
  return await until(`refund ${refund_id} decided`, async () => {
    const got = await getRefund(api.url, key, refund_id);
    return got.body.status === 'pending' ? null : got.body;
  });
}

async function entriesOf(reference: string): Promise<Record<string, string>> {
  const rows = await api.db('ledger_entry as e')
    .join('ledger_transaction as t', 't.id', 'e.transaction_id')
    .join('ledger_account as a', 'a.id', 'e.account_id')
    .where('t.reference', reference)
    .select('a.code', 'e.amount_minor');
  return Object.fromEntries(rows.map((r) => [String(r.code).split(':')[0], String(r.amount_minor)]));
}

describe('refunds', () => {
  it('refund a whole order, then the other: order and payment statuses follow, the books reverse', async () => {
    const payment = await paid(['10.00', '5.00']);
    // Orders come back by id within one insert: pick them by amount.
    const a = payment.orders.find((o: { amount: string }) => o.amount === '10.00')!;
    const b = payment.orders.find((o: { amount: string }) => o.amount === '5.00')!;
    const first = await refund(payment.id, { order_id: a.id, amount: '10.00', reason: 'returned' });
    expect(first).toMatchObject({ status: 201, body: { object: 'refund', payment_id: payment.id, order_id: a.id, amount: '10.00', currency: 'USD', status: 'pending', reason: 'returned' } });
    expect(await decided(first.body.id)).toMatchObject({ status: 'succeeded', failure_code: null });
    await keepHistory(api.temporal, first.body.workflow_id, 'refund-v1', 'succeeded.refund.json');
    const after_first = (await call(`${api.url}/v1/payments/${payment.id}`, { key })).body;
    expect(after_first.status).toBe('partially_refunded');
    expect(after_first.orders.find((o: { id: string }) => o.id === a.id)).toMatchObject({ status: 'refunded', amount_refunded: '10.00' });
    // The seller gives back 9.70, we give back our 0.30 commission, the PSP takes 10.00 back (and keeps its fee).
    expect(await entriesOf(`refund:${first.body.id}`)).toEqual({ seller_payable: '970', platform_revenue: '30', psp_receivable: '-1000' });
    const balances = (await call(`${api.url}/v1/balances?seller_id=${a.seller_id}`, { key })).body.data;
    expect(balances).toEqual([{ seller_id: a.seller_id, currency: 'USD', available: '0.00', pending: '0.00', negative_balance: '0.00' }]);

    const second = await refund(payment.id, { order_id: b.id, amount: '5.00' });
    expect(await decided(second.body.id)).toMatchObject({ status: 'succeeded' });
    expect((await call(`${api.url}/v1/payments/${payment.id}`, { key })).body.status).toBe('refunded');
    const history = await api.db('status_history').where({ payment_id: payment.id, order_id: null }).orderBy('id').pluck('to_status');
    expect(history.slice(-3)).toEqual(['succeeded', 'partially_refunded', 'refunded']);
    const listed = (await call(`${api.url}/v1/payments/${payment.id}/refunds`, { key })).body;
    expect(listed.data.map((r: { id: string }) => r.id)).toEqual([second.body.id, first.body.id]);
  });

  it('let only the refunds that fit through when 10 arrive at once', async () => {
    const payment = await paid(['10.00']);
    const order = payment.orders[0];
    const answers = await Promise.all(Array.from({ length: 10 }, () => refund(payment.id, { order_id: order.id, amount: '3.00' })));
    const accepted = answers.filter((r) => r.status === 201);
    expect(accepted).toHaveLength(3);
    for (const r of answers.filter((x) => x.status !== 201)) expect(r).toMatchObject({ status: 409, body: { error: { code: 'refund_exceeds_refundable', param: 'amount' } } });
    for (const r of accepted) expect(await decided(r.body.id)).toMatchObject({ status: 'succeeded' });
    expect(await api.db('refund').where({ order_id: order.id })).toHaveLength(3);
    const now = (await call(`${api.url}/v1/payments/${payment.id}`, { key })).body;
    expect(now.orders[0]).toMatchObject({ status: 'partially_refunded', amount_refunded: '9.00' });
    expect(now.status).toBe('partially_refunded');
    // The last 1.00 still fits; then nothing does.
    const last = await refund(payment.id, { order_id: order.id, amount: '1.00' });
    expect(await decided(last.body.id)).toMatchObject({ status: 'succeeded' });
    expect(await refund(payment.id, { order_id: order.id, amount: '0.01' })).toMatchObject({ status: 409, body: { error: { code: 'refund_exceeds_refundable' } } });
    // Parts that add up to the whole give back exactly the whole commission (0.30), no rounding residue.
    const refs = (await api.db('refund').where({ order_id: order.id, status: 'succeeded' }).pluck('id')).map((id) => `refund:${id}`);
    const commission = await api.db('ledger_entry as e')
      .join('ledger_transaction as t', 't.id', 'e.transaction_id')
      .join('ledger_account as a', 'a.id', 'e.account_id')
      .whereIn('t.reference', refs)
      .andWhere('a.code', 'platform_revenue')
      .sum({ total: 'e.amount_minor' });
    expect(Number(commission[0]?.total)).toBe(30);
    expect((await call(`${api.url}/v1/payments/${payment.id}`, { key })).body.orders[0]).toMatchObject({ status: 'refunded', amount_refunded: '10.00' });
  });

  it('replay by Idempotency-Key, and refuse the key for another request', async () => {
    const payment = await paid(['8.00']);
    const idempotency_key = randomUUID();
    const body = { order_id: payment.orders[0].id, amount: '2.00' };
    const first = await refund(payment.id, body, { idempotency_key });
    const again = await refund(payment.id, body, { idempotency_key });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect(await refund(payment.id, { ...body, amount: '3.00' }, { idempotency_key })).toMatchObject({ status: 422, body: { error: { code: 'idempotency_key_reused' } } });
    expect(await api.db('refund').where({ order_id: payment.orders[0].id })).toHaveLength(1);
  });
});

describe('refund bad input: a clear code, nothing written', () => {
  let payment: { id: string; orders: { id: string }[] };
  beforeAll(async () => {
    payment = await paid(['10.00']);
  });

  it.each([
    ['an amount of zero', { amount: '0.00' }, 400, 'invalid_amount'],
    ['more decimals than USD has', { amount: '1.234' }, 400, 'invalid_amount'],
    ['more than the order', { amount: '10.01' }, 409, 'refund_exceeds_refundable'],
    ['a float', { amount: 1.5 }, 400, 'invalid_amount'],
    ['an unknown field', { amount: '1.00', note: 'x' }, 400, 'parameter_unknown'],
    ['an order of another payment', { amount: '1.00', order_id: 'ord_nope' }, 404, 'resource_missing'],
  ])('refuses %s', async (_what, change, status, code) => {
    const reply = await refund(payment.id, { order_id: payment.orders[0]!.id, ...change });
    expect(reply.status).toBe(status);
    expect(reply.body.error?.code).toBe(code);
    expect(await api.db('refund').where({ payment_id: payment.id })).toHaveLength(0);
    expect((await api.db('payment_order').where({ id: payment.orders[0]!.id }).first()).refunded_minor).toBe('0');
  });

  it('refuses another merchant\'s payment (404) and a failed order (409)', async () => {
    const other = await newMerchant(api.db);
    expect(await refund(payment.id, { order_id: payment.orders[0]!.id, amount: '1.00' }, { api_key: other })).toMatchObject({ status: 404, body: { error: { code: 'resource_missing' } } });
    const declined = await paid(['5.00'], 'tok_decline');
    expect(declined.status).toBe('failed');
    expect(await refund(declined.id, { order_id: declined.orders[0].id, amount: '1.00' })).toMatchObject({ status: 409, body: { error: { code: 'order_not_refundable', param: 'order_id' } } });
  });

  it('refuses a request without an Idempotency-Key', async () => {
    const reply = await call(`${api.url}/v1/payments/${payment.id}/refunds`, { key, body: { order_id: payment.orders[0]!.id, amount: '1.00' } });
    expect(reply).toMatchObject({ status: 400, body: { error: { code: 'idempotency_key_missing' } } });
  });
});
