import { randomUUID } from 'node:crypto';
import { hashApiKey } from '../../src/services/merchants';
import { expireIdempotencyKeys, requestHash } from '../../src/services/idempotency';
import { call, newMerchant, pspStats, settled, waitForPayment, type TestApi, useTestApi } from '../support/stack';

let api: TestApi;
let key: string;
useTestApi((a, k) => {
  api = a;
  key = k;
});

function checkout(payment_method: string, amounts: string[] = ['100.00', '25.50'], currency = 'USD') {
  return {
    buyer: { id: `buyer_${randomUUID()}`, email: 'buyer@example.com' },
    currency,
    orders: amounts.map((amount, i) => ({ seller_id: `seller_${i}_${randomUUID()}`, amount })),
    payment_method,
  };
}

async function pay(body: unknown, idempotency_key: string = randomUUID()) {
  return await call(`${api.url}/v1/payments`, { key, idempotency_key, body });
}

describe('pay-in happy path', () => {
  it('settles a two-order payment: both orders charged, wallets credited minus commission, ledger balanced', async () => {
    const body = checkout('tok_success');
    const created = await pay(body);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ object: 'payment', status: 'processing', currency: 'USD', amount: '125.50' });
    expect(created.body.orders).toHaveLength(2);

    const done = await waitForPayment(api, key, created.body.id, (p) => settled(p) && p.orders.every((o: { ledger_updated: boolean }) => o.ledger_updated));
    expect(done.status).toBe('succeeded');
    for (const order of done.orders) {
      expect(order).toMatchObject({ status: 'succeeded', wallet_updated: true, ledger_updated: true });
      expect(order.psp_reference).toMatch(/^ch_/);
      expect(await pspStats(order.id)).toEqual(expect.objectContaining({ charges_total: 1, charges_succeeded: 1 }));
    }

    // 3 % commission, half-even: 100.00 → 3.00 / 97.00; 25.50 → 0.765 → 0.76 / 24.74.
    // The wallet is the seller-payable balance (a view over the ledger).
    const wallets = await api.db('wallet').whereIn('seller_id', body.orders.map((o) => o.seller_id)).select('seller_id', 'balance_minor', 'pending_minor');
    const bySeller = Object.fromEntries(wallets.map((w) => [w.seller_id, w.balance_minor]));
    expect(bySeller[body.orders[0]!.seller_id]).toBe('9700');
    expect(bySeller[body.orders[1]!.seller_id]).toBe('2474');

    const entries = await api.db('ledger_entry as e')
      .join('ledger_transaction as t', 't.id', 'e.transaction_id')
      .join('ledger_account as a', 'a.id', 'e.account_id')
      .where('t.payment_id', created.body.id)
      .select('t.reference', 'a.code', 'e.amount_minor');
    expect(entries).toHaveLength(8);
    expect(entries.reduce((acc, e) => acc + BigInt(e.amount_minor), 0n)).toBe(0n);
    const byCode = (code: string) => entries.filter((e) => e.code === code).map((e) => e.amount_minor).sort();
    expect(byCode('platform_revenue')).toEqual(['-300', '-76']);
    // The sandbox's fee: 2.9 % half-even + 0.30, booked once from the charge, as an expense.
    expect(byCode('psp_fee_expense')).toEqual(['104', '320']);
    expect(byCode('psp_receivable')).toEqual(['2446', '9680']);

    // One workflow execution, no hidden retries: every step a local activity that succeeded at
    // once (risk, a charge per order — booked with its outcome — and the final status), no regular activities.
    const events = (await api.temporal.workflow.getHandle(done.workflow_id).fetchHistory()).events ?? [];
    expect(events.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
    const local = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity');
    expect(local).toHaveLength(4);
    expect(local.filter((e) => e.markerRecordedEventAttributes?.failure)).toEqual([]);
    expect(events.filter((e) => e.workflowTaskCompletedEventAttributes).length).toBeLessThanOrEqual(2);
    expect(events.length).toBeLessThanOrEqual(15);
    const executions = [];
    for await (const w of api.temporal.workflow.list({ query: `PaymentId = "${created.body.id}"` })) executions.push(w.workflowId);
    expect(executions).toEqual([done.workflow_id]);
  });
});

describe('declines', () => {
  it('fails the order and the payment with the decline code and moves no money', async () => {
    const created = await pay(checkout('tok_decline', ['40.00']));
    expect(created.status).toBe(201);
    const done = await waitForPayment(api, key, created.body.id, settled);
    expect(done.status).toBe('failed');
    expect(done.orders[0]).toMatchObject({ status: 'failed', failure_code: 'card_declined', wallet_updated: false, ledger_updated: false });
    expect(await pspStats(done.orders[0].id)).toEqual(expect.objectContaining({ charges_total: 1, charges_succeeded: 0 }));
    expect(await api.db('wallet').where({ seller_id: created.body.orders[0].seller_id })).toHaveLength(0);
    expect(await api.db('ledger_transaction').where({ payment_id: created.body.id })).toHaveLength(0);
  });

  it('carries insufficient_funds as the failure code', async () => {
    const created = await pay(checkout('tok_insufficient_funds', ['5.00']));
    const done = await waitForPayment(api, key, created.body.id, settled);
    expect(done.orders[0]).toMatchObject({ status: 'failed', failure_code: 'insufficient_funds' });
  });
});

describe('risk check', () => {
  it('rejects a blocked buyer before any PSP call', async () => {
    const body = { ...checkout('tok_success', ['10.00', '20.00']), buyer: { id: 'buyer_blocked_for_tests' } };
    const created = await pay(body);
    const done = await waitForPayment(api, key, created.body.id, settled);
    expect(done).toMatchObject({ status: 'failed', failure_code: 'risk_rejected' });
    for (const order of done.orders) {
      expect(order).toMatchObject({ status: 'failed', failure_code: 'risk_rejected', psp_reference: null });
      expect((await pspStats(order.id)).charges_total).toBe(0);
    }
  });

  it('rejects a payment above the per-currency maximum', async () => {
    const created = await pay(checkout('tok_success', ['50000.01']));
    const done = await waitForPayment(api, key, created.body.id, settled);
    expect(done).toMatchObject({ status: 'failed', failure_code: 'risk_rejected' });
    expect((await pspStats(done.orders[0].id)).charges_total).toBe(0);
  });
});

describe('idempotency', () => {
  it('replays the first response for the same key and body, with one charge per order', async () => {
    const body = checkout('tok_success');
    const idem = randomUUID();
    const first = await pay(body, idem);
    const second = await pay(body, idem);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.body).toEqual(first.body);
    const done = await waitForPayment(api, key, first.body.id, settled);
    expect(done.status).toBe('succeeded');
    for (const order of done.orders) expect((await pspStats(order.id)).charges_total).toBe(1);
    expect(await api.db('payment_event').where({ buyer_id: body.buyer.id })).toHaveLength(1);
  });

  it('expires keys after their time to live: the same key is then a new request, the old payment stays', async () => {
    const body = checkout('tok_success', ['3.00']);
    const idem = randomUUID();
    const first = await pay(body, idem);
    const merchant_id = (await api.db('api_key').where({ key_hash: hashApiKey(key) }).first()).merchant_id;
    // A key from yesterday, and one a crashed request left locked long ago: both go; a fresh one stays.
    await api.db('idempotency_key').where({ merchant_id, key: idem }).update({ created_at: api.db.raw("now() - interval '25 hours'") });
    const stale_lock = randomUUID();
    await api.db('idempotency_key').insert({ merchant_id, key: stale_lock, request_hash: 'x', status: 'in_flight', locked_until: api.db.raw("now() - interval '24 hours'"), created_at: api.db.raw("now() - interval '25 hours'") });
    const fresh = randomUUID();
    await pay(checkout('tok_success', ['4.00']), fresh);
    expect(await expireIdempotencyKeys(api.db, 24 * 3_600_000, 1_000)).toBeGreaterThanOrEqual(2);
    const remaining = await api.db('idempotency_key').where({ merchant_id }).whereIn('key', [idem, stale_lock, fresh]).pluck('key');
    expect(remaining).toEqual([fresh]);
    expect(await api.db('payment_event').where({ id: first.body.id })).toHaveLength(1);
    const again = await pay(body, idem);
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.body.id);
  });

  it('answers 422 idempotency_key_reused when the same key comes with a different body', async () => {
    const idem = randomUUID();
    expect((await pay(checkout('tok_success'), idem)).status).toBe(201);
    const reused = await pay(checkout('tok_success'), idem);
    expect(reused.status).toBe(422);
    expect(reused.body.error).toMatchObject({ type: 'idempotency', code: 'idempotency_key_reused' });
  });

  it('creates exactly one payment from 20 concurrent requests with one key', async () => {
    const body = checkout('tok_success', ['12.34']);
    const idem = randomUUID();
    const replies = await Promise.all(Array.from({ length: 20 }, () => pay(body, idem)));
    const statuses = replies.map((r) => r.status);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    const ids = new Set(replies.filter((r) => r.status === 201).map((r) => r.body.id));
    expect(ids.size).toBe(1);
    for (const r of replies.filter((x) => x.status === 409)) expect(r.body.error.code).toBe('idempotency_key_in_use');
    expect(await api.db('payment_event').where({ buyer_id: body.buyer.id })).toHaveLength(1);
    const [id] = [...ids];
    const done = await waitForPayment(api, key, String(id), settled);
    expect((await pspStats(done.orders[0].id)).charges_total).toBe(1);
  });

  it('answers 409 while the first request holds the key, and lets a retry take over once its lock expires', async () => {
    const body = checkout('tok_success', ['9.99']);
    const idem = randomUUID();
    const merchant_id = (await api.db('api_key').where({ key_hash: hashApiKey(key) }).first()).merchant_id;
    // A request that claimed the key and then died (or is still working): same body, lock not expired.
    await api.db('idempotency_key').insert({ merchant_id, key: idem, request_hash: requestHash('POST', '/v1/payments', body), status: 'in_flight', locked_until: api.db.raw("now() + interval '1 minute'") });
    const busy = await pay(body, idem);
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe('idempotency_key_in_use');
    expect(await api.db('payment_event').where({ buyer_id: body.buyer.id })).toHaveLength(0);

    await api.db('idempotency_key').where({ merchant_id, key: idem }).update({ locked_until: api.db.raw("now() - interval '1 second'") });
    const retried = await pay(body, idem);
    expect(retried.status).toBe(201);
    expect((await waitForPayment(api, key, retried.body.id, settled)).status).toBe('succeeded');
  });

  it('scopes keys per merchant: two merchants may use the same key', async () => {
    const other = await newMerchant(api.db);
    const idem = randomUUID();
    const mine = await pay(checkout('tok_success', ['1.00']), idem);
    const theirs = await call(`${api.url}/v1/payments`, { key: other, idempotency_key: idem, body: checkout('tok_success', ['2.00']) });
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.body.id).not.toBe(mine.body.id);
  });
});

describe('reading payments', () => {
  it('hides another merchant\'s payment behind 404', async () => {
    const created = await pay(checkout('tok_success', ['3.00']));
    const other = await newMerchant(api.db);
    const reply = await call(`${api.url}/v1/payments/${created.body.id}`, { key: other });
    expect(reply.status).toBe(404);
    expect(reply.body.error).toMatchObject({ type: 'not_found', code: 'resource_missing' });
  });

  it('lists a merchant\'s payments newest first with cursor pagination', async () => {
    const own = await newMerchant(api.db);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(`${api.url}/v1/payments`, { key: own, idempotency_key: randomUUID(), body: checkout('tok_success', ['1.00']) });
      ids.push(r.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 5; page++) {
      const qs: string = cursor === null ? 'limit=2' : `limit=2&starting_after=${cursor}`;
      const reply = await call(`${api.url}/v1/payments?${qs}`, { key: own });
      expect(reply.status).toBe(200);
      seen.push(...reply.body.data.map((p: { id: string }) => p.id));
      cursor = reply.body.next_cursor;
      if (!reply.body.has_more) break;
    }
    expect(seen).toEqual([...ids].reverse());
    const bad = await call(`${api.url}/v1/payments?starting_after=pay_nope`, { key: own });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_cursor');
  });
});
