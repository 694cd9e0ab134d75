import { randomUUID } from 'node:crypto';
import { call, settled, useTestApi, waitForPayment, type TestApi } from '../support/stack';

/**
 * capture_method all_or_nothing: every order is authorized first; all are captured, or the
 * authorized ones are voided (the saga's compensation) and the payment fails. The sandbox
 * declines an amount of 13.13 whatever the card, so one order can fail while its siblings pass.
 */
let api: TestApi;
let key: string;
useTestApi((a, k) => {
  api = a;
  key = k;
});

function body(amounts: string[]) {
  return {
    buyer: { id: `buyer_${randomUUID()}` },
    currency: 'USD',
    capture_method: 'all_or_nothing',
    payment_method: 'tok_success',
    orders: amounts.map((amount) => ({ seller_id: `seller_${randomUUID()}`, amount })),
  };
}

async function pspCharge(charge_id: string): Promise<{ status: string }> {
  const res = await fetch(`${String(process.env.PSP_URL)}/v1/charges/${charge_id}`, { headers: { authorization: 'Bearer psk_test_sandbox' } });
  return (await res.json()) as { status: string };
}

async function balance(seller_id: string): Promise<{ available: string; pending: string } | undefined> {
  return (await call(`${api.url}/v1/balances?seller_id=${seller_id}`, { key })).body.data[0];
}

async function kinds(payment_id: string): Promise<string[]> {
  const reply = await call(`${api.url}/v1/ledger/transactions?payment_id=${payment_id}&limit=100`, { key });
  return (reply.body.data as { kind: string }[]).map((t) => t.kind).sort();
}

it('every order authorized: all are captured, the holds released into postings', async () => {
  const created = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: body(['20.00', '30.00']) });
  expect(created.status).toBe(201);
  expect(created.body.capture_method).toBe('all_or_nothing');
  const done = await waitForPayment(api, key, created.body.id, settled);
  expect(done.status).toBe('succeeded');
  for (const order of done.orders as { psp_reference: string; seller_id: string; amount: string }[]) {
    expect((await pspCharge(order.psp_reference)).status).toBe('succeeded');
    const b = await balance(order.seller_id);
    expect(b?.pending).toBe('0.00');
    expect(Number(b?.available)).toBeGreaterThan(0);
  }
  // Per order: the hold, its release, the capture posting.
  expect(await kinds(created.body.id)).toEqual(['hold', 'hold', 'posting', 'posting', 'void_pending', 'void_pending']);
  const history = await api.db('status_history').where({ order_id: done.orders[0].id }).orderBy('id').pluck('to_status');
  expect(history).toEqual(['not_started', 'executing', 'authorized', 'succeeded']);
});

it('one order declined: the authorized ones are voided at the PSP and in the ledger, the payment fails, nothing is owed', async () => {
  const created = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: body(['20.00', '13.13', '30.00']) });
  const done = await waitForPayment(api, key, created.body.id, settled);
  expect(done.status).toBe('failed');
  // Orders come back by id, not in the request's order: pick them by amount.
  const orders = done.orders as { amount: string; status: string; failure_code: string; psp_reference: string; seller_id: string }[];
  expect(orders.find((o) => o.amount === '13.13')).toMatchObject({ status: 'failed', failure_code: 'card_declined' });
  const others = orders.filter((o) => o.amount !== '13.13');
  expect(others).toHaveLength(2);
  for (const voided of others) {
    expect(voided).toMatchObject({ status: 'canceled', failure_code: 'authorization_voided' });
    expect((await pspCharge(voided?.psp_reference ?? '')).status).toBe('canceled');
    expect(await balance(voided?.seller_id ?? '')).toMatchObject({ available: '0.00', pending: '0.00' });
  }
  // The ledger shows each authorization and its void; no posting moved money.
  expect(await kinds(created.body.id)).toEqual(['hold', 'hold', 'void_pending', 'void_pending']);
});

it('refuses an unknown capture_method', async () => {
  const reply = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: { ...body(['1.00']), capture_method: 'manual' } });
  expect(reply.status).toBe(400);
  expect(reply.body.error.param).toBe('capture_method');
});
