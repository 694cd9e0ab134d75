import { randomUUID } from 'node:crypto';
import { hashApiKey } from '../../src/services/merchants';
import { call, newMerchant, settled, waitForPayment, type TestApi, useTestApi } from '../support/stack';

let api: TestApi;
let key: string;
useTestApi((a, k) => {
  api = a;
  key = k;
});

async function merchantIdOf(api_key: string): Promise<string> {
  return (await api.db('api_key').where({ key_hash: hashApiKey(api_key) }).first()).merchant_id;
}

async function paid(api_key: string, currency: string, orders: { seller_id: string; amount: string }[]) {
  const created = await call(`${api.url}/v1/payments`, { key: api_key, idempotency_key: randomUUID(), body: { buyer: { id: `b_${randomUUID()}` }, currency, orders, payment_method: 'tok_success' } });
  expect(created.status).toBe(201);
  const done = await waitForPayment(api, api_key, created.body.id, (p) => settled(p) && p.orders.every((o: { ledger_updated: boolean }) => o.ledger_updated));
  expect(done.status).toBe('succeeded');
  return done;
}

const balances = async (api_key: string, qs = '') => (await call(`${api.url}/v1/balances${qs}`, { key: api_key })).body;

describe('multi-currency pay-in', () => {
  it('takes a JPY payment of "1000" and a KWD payment of "1.234" end to end with exact balances', async () => {
    const own = await newMerchant(api.db);
    await paid(own, 'JPY', [{ seller_id: 'jp_shop', amount: '1000' }]);
    await paid(own, 'KWD', [{ seller_id: 'kw_shop', amount: '1.234' }]);
    const list = await balances(own);
    // 3 %: JPY 30 → seller 970; KWD 1.234 → 0.03702 → 0.037 → seller 1.197.
    expect(list.data).toEqual(
      expect.arrayContaining([
        { seller_id: 'jp_shop', currency: 'JPY', available: '970', pending: '0', negative_balance: '0' },
        { seller_id: 'kw_shop', currency: 'KWD', available: '1.197', pending: '0.000', negative_balance: '0.000' },
      ]),
    );
  });
});

describe('merchant fee rules', () => {
  it('applies a merchant\'s percent + fixed commission for the currency, frozen on the order', async () => {
    const own = await newMerchant(api.db);
    const merchant_id = await merchantIdOf(own);
    await api.db('merchant_fee_rule').insert([
      { merchant_id, currency: 'USD', percent_bps: 250, fixed_minor: '10' },
      { merchant_id, currency: null, percent_bps: 100, fixed_minor: '0' },
    ]);
    await paid(own, 'USD', [{ seller_id: 'fee_shop', amount: '10.00' }]);
    await paid(own, 'EUR', [{ seller_id: 'fee_shop', amount: '10.00' }]);
    const list = await balances(own, '?seller_id=fee_shop');
    // USD: 2.5 % of 10.00 = 0.25 + 0.10 = 0.35 → 9.65. EUR falls back to the merchant default 1 % → 9.90.
    expect(list.data).toEqual(
      expect.arrayContaining([
        { seller_id: 'fee_shop', currency: 'USD', available: '9.65', pending: '0.00', negative_balance: '0.00' },
        { seller_id: 'fee_shop', currency: 'EUR', available: '9.90', pending: '0.00', negative_balance: '0.00' },
      ]),
    );
  });
});

describe('GET /v1/balances', () => {
  it('lists only the caller\'s sellers, filters by currency and pages with a cursor', async () => {
    const own = await newMerchant(api.db);
    await paid(own, 'USD', [{ seller_id: 'a', amount: '1.00' }, { seller_id: 'b', amount: '2.00' }, { seller_id: 'c', amount: '3.00' }]);
    await paid(own, 'EUR', [{ seller_id: 'a', amount: '1.00' }]);
    // Accounts are listed in creation order (whichever capture posted first): check the pages
    // together cover each USD seller exactly once.
    const first = await balances(own, '?currency=USD&limit=2');
    expect(first.data).toHaveLength(2);
    expect(first.has_more).toBe(true);
    const second = await balances(own, `?currency=USD&limit=2&starting_after=${first.next_cursor}`);
    expect(second.data).toHaveLength(1);
    expect(second.has_more).toBe(false);
    const sellers = [...first.data, ...second.data].map((b: { seller_id: string; currency: string }) => `${b.seller_id}:${b.currency}`);
    expect(sellers.sort()).toEqual(['a:USD', 'b:USD', 'c:USD']);
    expect((await balances(await newMerchant(api.db))).data).toEqual([]);
  });

  it.each([
    ['?currency=usd', 'invalid_currency'],
    ['?limit=0', 'parameter_invalid'],
    ['?starting_after=abc', 'invalid_cursor'],
    ['?colour=red', 'parameter_unknown'],
  ])('refuses %s with %s', async (qs, code) => {
    const reply = await call(`${api.url}/v1/balances${qs}`, { key });
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe(code);
  });
});

describe('GET /v1/ledger/transactions', () => {
  it('shows a payment\'s capture postings with their entries, filtered by payment, account and time', async () => {
    const own = await newMerchant(api.db);
    const merchant_id = await merchantIdOf(own);
    const before = new Date(Date.now() - 1_000).toISOString();
    const p1 = await paid(own, 'USD', [{ seller_id: 'x', amount: '10.00' }, { seller_id: 'y', amount: '5.00' }]);
    await paid(own, 'USD', [{ seller_id: 'x', amount: '1.00' }]);

    const byPayment = (await call(`${api.url}/v1/ledger/transactions?payment_id=${p1.id}`, { key: own })).body;
    expect(byPayment.data).toHaveLength(2);
    const order_x = p1.orders.find((o: { seller_id: string }) => o.seller_id === 'x')!;
    const capture = byPayment.data.find((t: { order_id: string }) => t.order_id === order_x.id);
    expect(capture).toMatchObject({ kind: 'posting', reference: `order:${order_x.id}:capture` });
    expect(capture.entries).toEqual(
      expect.arrayContaining([
        { account: 'psp_receivable', currency: 'USD', direction: 'debit', amount: '9.41', phase: 'posted' },
        { account: 'psp_fee_expense', currency: 'USD', direction: 'debit', amount: '0.59', phase: 'posted' },
        { account: `seller_payable:${merchant_id}:x`, currency: 'USD', direction: 'credit', amount: '9.70', phase: 'posted' },
        { account: 'platform_revenue', currency: 'USD', direction: 'credit', amount: '0.30', phase: 'posted' },
      ]),
    );

    const forX = (await call(`${api.url}/v1/ledger/transactions?account=${encodeURIComponent(`seller_payable:${merchant_id}:x`)}&limit=1`, { key: own })).body;
    expect(forX.data).toHaveLength(1);
    expect(forX.has_more).toBe(true);
    const next = (await call(`${api.url}/v1/ledger/transactions?account=${encodeURIComponent(`seller_payable:${merchant_id}:x`)}&limit=1&starting_after=${forX.next_cursor}`, { key: own })).body;
    expect(next.data).toHaveLength(1);
    expect(next.has_more).toBe(false);
    expect(Number(next.data[0].id)).toBeLessThan(Number(forX.data[0].id));

    const inWindow = (await call(`${api.url}/v1/ledger/transactions?created_gte=${encodeURIComponent(before)}`, { key: own })).body;
    expect(inWindow.data).toHaveLength(3);
    const future = (await call(`${api.url}/v1/ledger/transactions?created_gte=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, { key: own })).body;
    expect(future.data).toHaveLength(0);
    // Another merchant sees none of it.
    expect((await call(`${api.url}/v1/ledger/transactions?payment_id=${p1.id}`, { key })).body.data).toEqual([]);
  });

  it('refuses a malformed time filter', async () => {
    const reply = await call(`${api.url}/v1/ledger/transactions?created_gte=yesterday`, { key });
    expect(reply.status).toBe(400);
    expect(reply.body.error).toMatchObject({ code: 'parameter_invalid', param: 'created_gte' });
  });
});
