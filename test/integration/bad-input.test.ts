import { randomUUID } from 'node:crypto';
import { findMerchantByApiKey } from '../../src/services/merchants';
import { call, type TestApi, useTestApi } from '../support/stack';

let api: TestApi;
let key: string;
useTestApi((a, k) => {
  api = a;
  key = k;
});

const valid = () => ({
  buyer: { id: `buyer_${randomUUID()}` },
  currency: 'USD',
  orders: [{ seller_id: 'seller_a', amount: '10.00' }],
  payment_method: 'tok_success',
});

/** Rows of this suite's merchant only: other suites write to the same database in parallel. */
async function countRows(): Promise<number> {
  const merchant = await findMerchantByApiKey(api.db, key);
  if (merchant === null) throw new Error('test merchant missing');
  const mine = { merchant_id: merchant.merchant_id };
  const [p, o, k] = await Promise.all([
    api.db('payment_event').where(mine).count<{ count: string }[]>('* as count'),
    api.db('payment_order').where(mine).count<{ count: string }[]>('* as count'),
    api.db('idempotency_key').where(mine).count<{ count: string }[]>('* as count'),
  ]);
  return Number(p[0]?.count) + Number(o[0]?.count) + Number(k[0]?.count);
}

type Case = { name: string; status: number; code: string; param?: string; body?: unknown; raw_body?: string; idempotency_key?: string | null; key?: string | null };

const orders = (n: number) => Array.from({ length: n }, (_, i) => ({ seller_id: `s${i}`, amount: '1.00' }));

const CASES: Case[] = [
  { name: 'malformed JSON', status: 400, code: 'invalid_json', raw_body: '{"buyer": {' },
  { name: 'an unknown top-level field', status: 400, code: 'parameter_unknown', param: 'colour', body: { ...valid(), colour: 'red' } },
  { name: 'an unknown order field', status: 400, code: 'parameter_unknown', param: 'orders[0].tip', body: { ...valid(), orders: [{ seller_id: 's', amount: '1.00', tip: '1' }] } },
  { name: 'a float amount as a JSON number', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: 12.3 }] } },
  { name: 'too many decimals for USD', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: '12.345' }] } },
  { name: 'any decimals for JPY', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), currency: 'JPY', orders: [{ seller_id: 's', amount: '10.5' }] } },
  { name: 'a negative amount', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: '-5.00' }] } },
  { name: 'a zero amount', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: '0.00' }] } },
  { name: 'a leading plus sign', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: '+5.00' }] } },
  { name: 'surrounding whitespace', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: ' 5.00' }] } },
  { name: 'exponent notation', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: '1e3' }] } },
  { name: 'an amount over 18 digits', status: 400, code: 'invalid_amount', param: 'orders[0].amount', body: { ...valid(), orders: [{ seller_id: 's', amount: '10000000000000000000.00' }] } },
  { name: 'an unknown currency', status: 400, code: 'invalid_currency', param: 'currency', body: { ...valid(), currency: 'ABC' } },
  { name: 'a lower-case currency', status: 400, code: 'invalid_currency', param: 'currency', body: { ...valid(), currency: 'usd' } },
  { name: 'zero orders', status: 400, code: 'no_orders', param: 'orders', body: { ...valid(), orders: [] } },
  { name: 'more than 100 orders', status: 400, code: 'too_many_orders', param: 'orders', body: { ...valid(), orders: orders(101) } },
  { name: 'two orders for one seller', status: 400, code: 'duplicate_seller', param: 'orders[1].seller_id', body: { ...valid(), orders: [{ seller_id: 's', amount: '1.00' }, { seller_id: 's', amount: '2.00' }] } },
  { name: 'a card number as payment_method', status: 400, code: 'card_data_not_allowed', param: 'payment_method', body: { ...valid(), payment_method: '4242 4242 4242 4242' } },
  { name: 'no payment_method and no return_url', status: 400, code: 'return_url_required', param: 'return_url', body: { ...valid(), payment_method: undefined } },
  { name: 'a return_url that is not http(s)', status: 400, code: 'parameter_invalid', param: 'return_url', body: { ...valid(), payment_method: undefined, return_url: 'javascript:alert(1)' } },
  { name: 'an over-long return_url', status: 400, code: 'parameter_invalid', param: 'return_url', body: { ...valid(), payment_method: undefined, return_url: `https://shop.example/${'a'.repeat(2_100)}` } },
  { name: 'a missing buyer', status: 400, code: 'parameter_missing', param: 'buyer', body: { ...valid(), buyer: undefined } },
  { name: 'a missing idempotency key', status: 400, code: 'idempotency_key_missing', idempotency_key: null, body: valid() },
  { name: 'an over-long idempotency key', status: 400, code: 'idempotency_key_invalid', idempotency_key: 'k'.repeat(256), body: valid() },
  { name: 'a missing API key', status: 401, code: 'api_key_missing', key: null, body: valid() },
  { name: 'a wrong API key', status: 401, code: 'api_key_invalid', key: 'sk_test_not_a_real_key', body: valid() },
  { name: 'an oversized body', status: 413, code: 'body_too_large', body: { ...valid(), metadata: { note: 'x'.repeat(70_000) } } },
];

describe('bad input on POST /v1/payments', () => {
  it.each(CASES)('refuses $name with $status $code and writes nothing', async (c) => {
    const before = await countRows();
    const reply = await call(`${api.url}/v1/payments`, {
      key: c.key === null ? undefined : (c.key ?? key),
      idempotency_key: c.idempotency_key === null ? undefined : (c.idempotency_key ?? randomUUID()),
      body: c.body,
      raw_body: c.raw_body,
    });
    expect(reply.status).toBe(c.status);
    expect(reply.body.error.code).toBe(c.code);
    expect(typeof reply.body.error.message).toBe('string');
    if (c.param !== undefined) expect(reply.body.error.param).toBe(c.param);
    expect(await countRows()).toBe(before);
  });

  it('never echoes a card number back in an error', async () => {
    const reply = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: { ...valid(), payment_method: '4000056655665556' } });
    expect(JSON.stringify(reply.body)).not.toContain('4000056655665556');
  });

  it('answers unknown routes with a JSON 404', async () => {
    const reply = await call(`${api.url}/v1/nothing-here`, { key });
    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe('route_not_found');
  });
});
