import { randomBytes } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, type Knex } from '../../src/db';
import { spawnSandbox, STARTUP_TIMEOUT_MS, uid, type Json, type SpawnedSandbox } from '../support/sandbox';

/**
 * The sandbox PSP's money going out (groundwork for pay-outs, refunds and disputes): bank account
 * tokens, payouts that are paid or fail later with webhooks, partial refunds that never exceed the
 * charge, and their lines in the settlement file. A real process, its own database, real HTTP.
 */
jest.setTimeout(30_000);

const API_KEY = 'psk_test_money_out';
const database_url = `postgres://postgres@127.0.0.1:5432/sandbox_money_out_${randomBytes(6).toString('hex')}`;
const ignoring_url = `${database_url}_ignoring`;

let sandbox: SpawnedSandbox;
let ignoring: SpawnedSandbox;
let db: Knex;

beforeAll(async () => {
  await Promise.all([ensureDatabase(database_url), ensureDatabase(ignoring_url)]);
  [sandbox, ignoring] = await Promise.all([
    spawnSandbox('sandbox-money-out-test', { SANDBOX_DATABASE_URL: database_url, SANDBOX_API_KEY: API_KEY, SANDBOX_PAYOUT_DELAY_MS: '300' }),
    spawnSandbox('sandbox-money-out-ignoring-test', { SANDBOX_DATABASE_URL: ignoring_url, SANDBOX_API_KEY: API_KEY, SANDBOX_PAYOUT_DELAY_MS: '300', SANDBOX_IGNORE_IDEMPOTENCY: '1' }),
  ]);
  db = createDb(database_url, 2);
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await db?.destroy();
  await Promise.all([sandbox?.service.stop(), ignoring?.service.stop()]);
  await Promise.all([dropDatabase(database_url), dropDatabase(ignoring_url)]);
}, STARTUP_TIMEOUT_MS);

async function post(path: string, body: unknown, key: string | null = uid('idem'), on: SpawnedSandbox = sandbox): Promise<{ status: number; body: Json; replayed: boolean }> {
  const res = await fetch(`${on.base_url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_KEY}`, ...(key === null ? {} : { 'Idempotency-Key': key }) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json, replayed: res.headers.get('idempotent-replayed') === 'true' };
}

async function get(path: string, on: SpawnedSandbox = sandbox): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${on.base_url}${path}`, { headers: { Authorization: `Bearer ${API_KEY}` } });
  return { status: res.status, body: (await res.json()) as Json };
}

async function bankAccount(account_number = '000123456789', on: SpawnedSandbox = sandbox): Promise<string> {
  const made = await post('/v1/bank_accounts', { account_number, seller_reference: uid('seller') }, null, on);
  expect(made.status).toBe(201);
  return String(made.body['token']);
}

async function charge(amount: string): Promise<Json> {
  const made = await post('/v1/charges', { amount, currency: 'USD', payment_method: 'tok_success', order_reference: uid('ord') });
  expect(made).toMatchObject({ status: 200, body: { status: 'succeeded' } });
  return made.body;
}

async function untilPayout(id: string, status: string): Promise<Json> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = await get(`/v1/payouts/${id}`);
    if (got.body['status'] === status || Date.now() > deadline) return got.body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('bank accounts', () => {
  it('answer a token and the last four digits, and keep no account number', async () => {
    const made = await post('/v1/bank_accounts', { account_number: '000123456789', seller_reference: 'seller_1' }, null);
    expect(made).toMatchObject({ status: 201, body: { object: 'bank_account', last4: '6789', seller_reference: 'seller_1' } });
    expect(String(made.body['token'])).toMatch(/^btok_[0-9a-f]{24}$/);
    const stored = await db('sandbox_bank_account').where({ token: made.body['token'] }).first();
    expect(JSON.stringify(stored)).not.toContain('000123456789');
  });

  it.each([
    [{ account_number: '12' }, 'account_number'],
    [{ account_number: '1234-5678', seller_reference: 's' }, 'account_number'],
    [{ account_number: '000123456789', seller_reference: '' }, 'seller_reference'],
    [{ account_number: '000123456789', seller_reference: 's', routing: 'x' }, undefined],
  ])('refuse %j with 400 parameter_invalid', async (body, param) => {
    const made = await post('/v1/bank_accounts', body, null);
    expect(made.status).toBe(400);
    expect(made.body['error']).toMatchObject({ code: 'parameter_invalid', ...(param === undefined ? {} : { param }) });
  });
});

describe('payouts', () => {
  it('start pending, are paid later with payout.created and payout.paid events, and replay by key', async () => {
    const destination = await bankAccount();
    const key = uid('payout');
    const body = { amount: '4200', currency: 'USD', destination, reference: uid('seller') };
    const first = await post('/v1/payouts', body, key);
    expect(first).toMatchObject({ status: 200, replayed: false, body: { object: 'payout', status: 'pending', amount: '4200', currency: 'USD', idempotency_key: key } });
    const again = await post('/v1/payouts', body, key);
    expect(again).toMatchObject({ status: 200, replayed: true, body: { id: first.body['id'] } });
    const reused = await post('/v1/payouts', { ...body, amount: '4300' }, key);
    expect(reused).toMatchObject({ status: 400, body: { error: { code: 'idempotency_key_reused' } } });
    expect(await untilPayout(String(first.body['id']), 'paid')).toMatchObject({ status: 'paid', failure_code: null, version: 2 });
    const events = await db('sandbox_event').where({ object_id: first.body['id'] }).orderBy('created_at').select('type');
    expect(events.map((e) => e.type)).toEqual(['payout.created', 'payout.paid']);
    const by_key = await get(`/v1/payouts?idempotency_key=${key}`);
    expect((by_key.body['data'] as Json[]).map((p) => p['id'])).toEqual([first.body['id']]);
  });

  it('to a closed account fail with account_closed and a payout.failed event', async () => {
    const destination = await bankAccount('000111111116');
    const made = await post('/v1/payouts', { amount: '100', currency: 'EUR', destination, reference: uid('seller') });
    expect(await untilPayout(String(made.body['id']), 'failed')).toMatchObject({ status: 'failed', failure_code: 'account_closed' });
    expect(await db('sandbox_event').where({ object_id: made.body['id'], type: 'payout.failed' })).toHaveLength(1);
  });

  it('refuse an unknown destination (404), a bad amount and a missing key (400)', async () => {
    const destination = await bankAccount();
    expect(await post('/v1/payouts', { amount: '100', currency: 'USD', destination: 'btok_nope', reference: 'r' })).toMatchObject({ status: 404, body: { error: { param: 'destination' } } });
    expect(await post('/v1/payouts', { amount: '1.00', currency: 'USD', destination, reference: 'r' })).toMatchObject({ status: 400, body: { error: { param: 'amount' } } });
    expect(await post('/v1/payouts', { amount: '100', currency: 'USD', destination, reference: 'r' }, null)).toMatchObject({ status: 400, body: { error: { code: 'idempotency_key_invalid' } } });
  });

  it('in ignore-idempotency mode, count every payout per reference (duplicates show)', async () => {
    const destination = await bankAccount('000123456789', ignoring);
    const reference = uid('seller');
    const key = uid('payout');
    for (let i = 0; i < 2; i++) expect((await post('/v1/payouts', { amount: '100', currency: 'USD', destination, reference }, key, ignoring)).status).toBe(200);
    const stats = await get(`/_sandbox/payouts/stats?reference=${reference}`, ignoring);
    expect(stats.body).toMatchObject({ reference, payouts_total: 2 });
  });
});

describe('partial refunds', () => {
  it('refund parts of a charge until nothing is left, replay by key, then refuse more', async () => {
    const c = await charge('1000');
    const key = uid('refund');
    const first = await post('/v1/refunds', { charge: c['id'], amount: '300', reason: 'damaged' }, key);
    expect(first).toMatchObject({ status: 200, body: { object: 'refund', charge: c['id'], amount: '300', currency: 'USD', status: 'succeeded', reason: 'damaged' } });
    expect(await post('/v1/refunds', { charge: c['id'], amount: '300', reason: 'damaged' }, key)).toMatchObject({ status: 200, replayed: true, body: { id: first.body['id'] } });
    expect((await post('/v1/refunds', { charge: c['id'], amount: '700' })).status).toBe(200);
    const over = await post('/v1/refunds', { charge: c['id'], amount: '1' });
    expect(over).toMatchObject({ status: 409, body: { error: { code: 'refund_exceeds_charge', param: 'amount' } } });
    const listed = await get(`/v1/refunds?charge=${c['id']}`);
    expect((listed.body['data'] as Json[]).map((r) => r['amount'])).toEqual(['300', '700']);
    // The charge keeps its status; each refund has its event.
    expect((await get(`/v1/charges/${c['id']}`)).body['status']).toBe('succeeded');
    expect(await db('sandbox_event').where({ type: 'refund.succeeded', object_id: first.body['id'] })).toHaveLength(1);
  });

  it('never exceed the charge under 10 concurrent refunds', async () => {
    const c = await charge('1000');
    const answers = await Promise.all(Array.from({ length: 10 }, () => post('/v1/refunds', { charge: c['id'], amount: '300' })));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(3);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(7);
    const [sum] = await db('sandbox_refund').where({ charge_id: c['id'] }).sum({ total: 'amount_minor' });
    expect(Number(sum?.total)).toBe(900);
  });

  it('refuse a charge that is not succeeded (409) or does not exist (404)', async () => {
    const declined = await post('/v1/charges', { amount: '500', currency: 'USD', payment_method: 'tok_decline', order_reference: uid('ord') });
    const id = (declined.body['error'] as Json)['charge'] as Json;
    expect(await post('/v1/refunds', { charge: id['id'], amount: '100' })).toMatchObject({ status: 409, body: { error: { code: 'charge_not_refundable' } } });
    expect(await post('/v1/refunds', { charge: 'ch_nope', amount: '100' })).toMatchObject({ status: 404, body: { error: { param: 'charge' } } });
  });
});

describe('settlement file', () => {
  it('lists partial refunds and paid payouts as negative lines without a fee', async () => {
    const c = await charge('2000');
    const refund = await post('/v1/refunds', { charge: c['id'], amount: '500' });
    const destination = await bankAccount();
    const payout = await post('/v1/payouts', { amount: '800', currency: 'USD', destination, reference: 'seller_file' });
    await untilPayout(String(payout.body['id']), 'paid');
    expect((await post('/_sandbox/settlements', { allow_open_day: true }, null)).status).toBe(200);
    const text = await (await fetch(`${sandbox.base_url}/v1/settlements/${new Date().toISOString().slice(0, 10)}`, { headers: { Authorization: `Bearer ${API_KEY}` } })).text();
    const lines = text.trim().split('\n').map((l) => l.split(','));
    const of = (psp_id: unknown) => lines.find((l) => l[0] === psp_id)?.slice(0, 8);
    expect(of(c['id'])).toEqual([c['id'], c['idempotency_key'], c['order_reference'], 'charge', '2000', 'USD', '88', '1912']);
    expect(of(refund.body['id'])).toEqual([refund.body['id'], refund.body['idempotency_key'], c['order_reference'], 'refund', '-500', 'USD', '0', '-500']);
    expect(of(payout.body['id'])).toEqual([payout.body['id'], payout.body['idempotency_key'], 'seller_file', 'payout', '-800', 'USD', '0', '-800']);
    const summary = lines.at(-1) ?? [];
    const data = lines.slice(1, -1);
    expect(summary[0]).toBe('#summary');
    expect(BigInt(summary[2] ?? 'x')).toBe(data.reduce((sum, l) => sum + BigInt(l[4] ?? '0'), 0n));
  });
});

describe('disputes', () => {
  const open = (body: Json) => post('/_sandbox/disputes', body, null);

  it('open on a succeeded charge, take evidence before the deadline, and close won or lost, each with its event', async () => {
    const c = await charge('1500');
    const opened = await open({ charge: c['id'], reason: 'product_not_received' });
    expect(opened).toMatchObject({ status: 201, body: { object: 'dispute', charge: c['id'], amount: '1500', currency: 'USD', status: 'needs_response', evidence_submitted: false, reason: 'product_not_received' } });
    expect(Number(opened.body['evidence_due_by']) - Date.now() / 1000).toBeGreaterThan(6 * 86_400);
    const id = String(opened.body['id']);
    expect(await post(`/v1/disputes/${id}/evidence`, { text: 'tracking 1Z999, signed for' }, null)).toMatchObject({ status: 200, body: { status: 'under_review', evidence_submitted: true } });
    expect(await post(`/_sandbox/disputes/${id}/close`, { outcome: 'won' }, null)).toMatchObject({ status: 200, body: { status: 'won', version: 3 } });
    expect(await post(`/_sandbox/disputes/${id}/close`, { outcome: 'lost' }, null)).toMatchObject({ status: 409, body: { error: { code: 'dispute_closed' } } });
    expect(await post(`/v1/disputes/${id}/evidence`, { text: 'late' }, null)).toMatchObject({ status: 409, body: { error: { code: 'dispute_closed' } } });
    const events = await db('sandbox_event').where({ object_id: id }).orderBy('created_at').pluck('type');
    expect(events).toEqual(['charge.dispute.created', 'charge.dispute.updated', 'charge.dispute.closed']);
    expect((await get(`/v1/disputes/${id}`)).body).toMatchObject({ status: 'won' });
  });

  it('refuse evidence after the deadline, a second dispute on a charge, and a charge that did not succeed', async () => {
    const c = await charge('700');
    const opened = await open({ charge: c['id'], evidence_due_in_s: 0 });
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await post(`/v1/disputes/${opened.body['id']}/evidence`, { text: 'too late' }, null)).toMatchObject({ status: 409, body: { error: { code: 'dispute_evidence_closed' } } });
    expect(await open({ charge: c['id'] })).toMatchObject({ status: 400, body: { error: { param: 'charge' } } });
    const declined = await post('/v1/charges', { amount: '500', currency: 'USD', payment_method: 'tok_decline', order_reference: uid('ord') });
    expect(await open({ charge: ((declined.body['error'] as Json)['charge'] as Json)['id'] })).toMatchObject({ status: 409 });
    expect(await open({ charge: 'ch_nope' })).toMatchObject({ status: 404 });
  });

  it('settle as a negative dispute line when opened and a positive reversal when won; nothing back when lost', async () => {
    const won = await charge('1200');
    const lost = await charge('800');
    const d_won = await open({ charge: won['id'] });
    const d_lost = await open({ charge: lost['id'] });
    await post(`/_sandbox/disputes/${d_won.body['id']}/close`, { outcome: 'won' }, null);
    await post(`/_sandbox/disputes/${d_lost.body['id']}/close`, { outcome: 'lost' }, null);
    expect((await post('/_sandbox/settlements', { allow_open_day: true }, null)).status).toBe(200);
    const text = await (await fetch(`${sandbox.base_url}/v1/settlements/${new Date().toISOString().slice(0, 10)}`, { headers: { Authorization: `Bearer ${API_KEY}` } })).text();
    const lines = text.trim().split('\n').map((l) => l.split(','));
    const of = (id: unknown) => lines.filter((l) => l[0] === id).map((l) => [l[3], l[4], l[6]]);
    expect(of(d_won.body['id'])).toEqual([['dispute', '-1200', '0'], ['dispute_reversal', '1200', '0']]);
    expect(of(d_lost.body['id'])).toEqual([['dispute', '-800', '0']]);
  });
});
