import { randomBytes } from 'node:crypto';
import { dropDatabase, ensureDatabase } from '../../src/db';
import type { ChargeJson } from '../../packages/sandbox-psp/src/app';
import { sleep } from '../support/processes';
import { spawnSandbox, STARTUP_TIMEOUT_MS, uid, type ErrorJson, type Json, type SpawnedSandbox } from '../support/sandbox';

/**
 * The sandbox PSP as the payment app sees it: real processes, a real database of its own, real
 * HTTP. Independent of the project's global stack so it can run alone.
 */

jest.setTimeout(30_000);

const API_KEY = 'psk_test_integration';
const LATENCY_MS = 1_500;
const STATS_POLL_MS = 50;
const BURST_SIZE = 10;

const database_url = `postgres://postgres@127.0.0.1:5432/sandbox_test_${randomBytes(6).toString('hex')}`;

type Sandbox = SpawnedSandbox;

async function startSandbox(name: string, env: Record<string, string> = {}): Promise<Sandbox> {
  return await spawnSandbox(`sandbox-psp-test-${name}`, { SANDBOX_DATABASE_URL: database_url, SANDBOX_API_KEY: API_KEY, ...env });
}

type AnswerBody = Partial<ChargeJson> & { error?: ErrorJson; data?: ChargeJson[]; ok?: boolean };

interface Answer {
  status: number;
  replayed: boolean;
  body: AnswerBody;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const body = (await res.json()) as AnswerBody;
  return { status: res.status, replayed: res.headers.get('idempotent-replayed') === 'true', body };
}

function authHeaders(api_key = API_KEY): Record<string, string> {
  return { Authorization: `Bearer ${api_key}` };
}

/** A request body; overrides may be deliberately invalid, order_reference stays a string. */
type ChargeRequest = Json & { order_reference: string };

function chargeBody(overrides: Json = {}): ChargeRequest {
  return {
    amount: '1000',
    currency: 'USD',
    payment_method: 'tok_success',
    order_reference: uid('ord'),
    ...overrides,
  } as ChargeRequest;
}

function manyMetadataKeys(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 'v']));
}

async function postCharge(sandbox: Sandbox, key: string, body: Json, headers = authHeaders()): Promise<Answer> {
  return await call(`${sandbox.base_url}/v1/charges`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json', 'Idempotency-Key': key },
    body: JSON.stringify(body),
  });
}

async function getJson(sandbox: Sandbox, path: string, headers = authHeaders()): Promise<Answer> {
  return await call(`${sandbox.base_url}${path}`, { headers });
}

async function stats(sandbox: Sandbox, query: Record<string, string>): Promise<Json> {
  const answer = await getJson(sandbox, `/_sandbox/stats?${new URLSearchParams(query).toString()}`, {});
  expect(answer.status).toBe(200);
  return answer.body as Json;
}

let normal: Sandbox;
let ignoring: Sandbox;
let slow: Sandbox;

beforeAll(async () => {
  await ensureDatabase(database_url);
  [normal, ignoring, slow] = await Promise.all([
    startSandbox('normal'),
    startSandbox('ignore', { SANDBOX_IGNORE_IDEMPOTENCY: '1' }),
    startSandbox('slow', { SANDBOX_LATENCY_MS: String(LATENCY_MS) }),
  ]);
}, STARTUP_TIMEOUT_MS * 2);

afterAll(async () => {
  const running = [normal, ignoring, slow].filter((s): s is Sandbox => s !== undefined);
  await Promise.all(running.map((s) => s.service.stop()));
  await dropDatabase(database_url);
}, STARTUP_TIMEOUT_MS);

describe('sandbox PSP charges', () => {
  it('charges a success token and answers the charge with its fee', async () => {
    const key = uid('idem');
    const body = chargeBody({ amount: '1000', metadata: { cart: 'c1' } });
    const answer = await postCharge(normal, key, body);
    expect(answer.status).toBe(200);
    expect(answer.replayed).toBe(false);
    expect(answer.body).toEqual({
      id: expect.stringMatching(/^ch_[0-9a-f]+$/),
      object: 'charge',
      amount: '1000',
      currency: 'USD',
      status: 'succeeded',
      failure_code: null,
      failure_message: null,
      next_action: null,
      fee: '59', // 2.9 % of 1000 is 29, plus the fixed 30
      payment_method: 'tok_success',
      order_reference: body.order_reference,
      idempotency_key: key,
      version: 1,
      created: expect.any(Number),
    });
    expect(Number.isInteger(answer.body.created)).toBe(true);
    expect(Math.abs((answer.body.created ?? 0) - Date.now() / 1000)).toBeLessThan(60);
  });

  it.each([
    ['an exact percentage', '1000', '59'],
    ['a half rounded down to even', '500', '44'], // 14.5 -> 14
    ['a half rounded up to even', '1500', '74'], // 43.5 -> 44
    ['a fee capped at a tiny amount', '10', '10'],
    ['an amount beyond the range of a JS number', '999999999999999999', '29000000000000030'],
  ])('computes the fee with half-even rounding: %s', async (_label, amount, fee) => {
    const answer = await postCharge(normal, uid('idem'), chargeBody({ amount }));
    expect(answer.status).toBe(200);
    expect(answer.body.amount).toBe(amount);
    expect(answer.body.fee).toBe(fee);
  });

  it('declines tok_decline with 402 card_declined and stores the failed charge', async () => {
    const key = uid('idem');
    const body = chargeBody({ payment_method: 'tok_decline' });
    const answer = await postCharge(normal, key, body);
    expect(answer.status).toBe(402);
    expect(answer.body.error).toMatchObject({
      type: 'card_error',
      code: 'card_declined',
      message: expect.any(String),
      charge: { object: 'charge', status: 'failed', failure_code: 'card_declined', idempotency_key: key },
    });
    const counts = await stats(normal, { order_reference: body.order_reference });
    expect(counts).toEqual({ order_reference: body.order_reference, charges_total: 1, charges_succeeded: 0 });

    const replay = await postCharge(normal, key, body);
    expect(replay.status).toBe(402);
    expect(replay.replayed).toBe(true);
    expect(replay.body.error?.charge?.id).toBe(answer.body.error?.charge?.id);
  });

  it('declines tok_insufficient_funds with 402 insufficient_funds', async () => {
    const answer = await postCharge(normal, uid('idem'), chargeBody({ payment_method: 'tok_insufficient_funds' }));
    expect(answer.status).toBe(402);
    expect(answer.body.error).toMatchObject({
      type: 'card_error',
      code: 'insufficient_funds',
      charge: { status: 'failed', failure_code: 'insufficient_funds', failure_message: expect.any(String) },
    });
  });

  it('rejects an unknown token with 400 and stores nothing', async () => {
    const key = uid('idem');
    const body = chargeBody({ payment_method: 'tok_made_up' });
    const answer = await postCharge(normal, key, body);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'invalid_payment_method', param: 'payment_method' });
    expect(await stats(normal, { order_reference: body.order_reference })).toMatchObject({ charges_total: 0 });
    expect(await stats(normal, { idempotency_key: key })).toEqual({
      idempotency_key: key,
      charges_total: 0,
      charges_succeeded: 0,
    });
  });
});

describe('sandbox PSP 3-D Secure charges', () => {
  it('answers tok_requires_action with 200, status requires_action and a redirect next_action', async () => {
    const answer = await postCharge(normal, uid('idem'), chargeBody({ payment_method: 'tok_requires_action' }));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      status: 'requires_action',
      failure_code: null,
      version: 1,
      next_action: { type: 'redirect_to_url', redirect_url: `${normal.base_url}/3ds/${answer.body.id}` },
    });
    expect(Object.keys(answer.body.next_action ?? {}).sort()).toEqual(['redirect_url', 'type']);
    expect((await getJson(normal, `/v1/charges/${answer.body.id}`)).body).toEqual(answer.body);
  });
});

describe('sandbox PSP charge events', () => {
  /** The charge from a 200 answer or from the card error of a 402. */
  const chargeOf = (answer: Answer): Partial<ChargeJson> => answer.body.error?.charge ?? answer.body;

  async function eventsOf(sandbox: Sandbox, object_id: string): Promise<Json[]> {
    const answer = await getJson(sandbox, `/_sandbox/events?object_id=${object_id}`, {});
    expect(answer.status).toBe(200);
    return answer.body.data as unknown as Json[];
  }

  describe.each([
    ['normal', () => normal],
    ['ignore-idempotency', () => ignoring],
  ])('in %s mode', (_mode, sandbox) => {
    it.each([
      ['tok_success', 'succeeded', 'charge.succeeded'],
      ['tok_decline', 'failed', 'charge.failed'],
      ['tok_review_approve', 'pending', 'charge.pending'],
      ['tok_requires_action', 'requires_action', 'charge.requires_action'],
    ])('records one event when a %s charge is created', async (payment_method, status, type) => {
      const key = uid('idem');
      const body = chargeBody({ payment_method });
      const charge = chargeOf(await postCharge(sandbox(), key, body));
      expect(charge.status).toBe(status);
      const listed = await eventsOf(sandbox(), charge.id ?? '');
      // No SANDBOX_WEBHOOK_URL here: the event is kept, marked as having nowhere to go.
      expect(listed).toEqual([expect.objectContaining({ type, object_id: charge.id, status: 'no_endpoint' })]);
      const event = listed[0]?.['event'] as { type: string; data: { object: Json } };
      expect(event.type).toBe(type);
      expect(event.data.object).toEqual({ ...charge, updated: expect.any(Number) });
    });
  });

  it('records no event for a replay', async () => {
    const key = uid('idem');
    const body = chargeBody();
    const first = await postCharge(normal, key, body);
    const replay = await postCharge(normal, key, body);
    expect(replay.replayed).toBe(true);
    expect(await eventsOf(normal, first.body.id ?? '')).toHaveLength(1);
  });
});

describe('sandbox PSP idempotency', () => {
  it('answers a replay of the same key and body with the same charge', async () => {
    const key = uid('idem');
    const body = chargeBody();
    const first = await postCharge(normal, key, body);
    // Same request with fields in another order: the hash is of the canonical body.
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const second = await postCharge(normal, key, reordered);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.replayed).toBe(true);
    expect(second.body).toEqual(first.body);
    expect(await stats(normal, { order_reference: body.order_reference })).toMatchObject({
      charges_total: 1,
      charges_succeeded: 1,
    });
  });

  it('refuses the same key with a different body', async () => {
    const key = uid('idem');
    const body = chargeBody();
    expect((await postCharge(normal, key, body)).status).toBe(200);
    const reused = await postCharge(normal, key, { ...body, amount: '2000' });
    expect(reused.status).toBe(400);
    expect(reused.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused' });
    expect(await stats(normal, { idempotency_key: key })).toMatchObject({ charges_total: 1 });
  });

  it('makes one charge from 10 concurrent requests with one key', async () => {
    // Open the connections first: on cold ones the TCP handshakes spread the burst out so much
    // that the requests reach the server one after another and the race is never run.
    await Promise.all(Array.from({ length: BURST_SIZE }, () => getJson(normal, '/healthz', {})));
    const key = uid('idem');
    const body = chargeBody();
    const answers = await Promise.all(Array.from({ length: BURST_SIZE }, () => postCharge(normal, key, body)));
    expect(answers.map((a) => a.status)).toEqual(Array(BURST_SIZE).fill(200));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.filter((a) => !a.replayed)).toHaveLength(1);
    expect(await stats(normal, { idempotency_key: key })).toMatchObject({ charges_total: 1 });
  });

  it('stores a duplicate charge per request in ignore-idempotency mode', async () => {
    const key = uid('idem');
    const body = chargeBody();
    const first = await postCharge(ignoring, key, body);
    const second = await postCharge(ignoring, key, body);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.replayed).toBe(false);
    expect(second.body.id).not.toBe(first.body.id);
    expect(await stats(ignoring, { order_reference: body.order_reference })).toMatchObject({
      charges_total: 2,
      charges_succeeded: 2,
    });
  });
});

describe('sandbox PSP reads', () => {
  it('gets a charge by id, by idempotency key and by order reference', async () => {
    const order_reference = uid('ord');
    const key_a = uid('idem');
    const a = await postCharge(normal, key_a, chargeBody({ order_reference }));
    const b = await postCharge(normal, uid('idem'), chargeBody({ order_reference, amount: '2500' }));

    const by_id = await getJson(normal, `/v1/charges/${a.body.id}`);
    expect(by_id.status).toBe(200);
    expect(by_id.body).toEqual(a.body);

    const by_key = await getJson(normal, `/v1/charges?idempotency_key=${key_a}`);
    expect(by_key.body).toEqual({ object: 'list', data: [a.body] });

    const by_order = await getJson(normal, `/v1/charges?order_reference=${order_reference}`);
    expect(by_order.body).toEqual({ object: 'list', data: [a.body, b.body] });
  });

  it('answers 404 resource_missing for an unknown charge id', async () => {
    const answer = await getJson(normal, `/v1/charges/${uid('ch')}`);
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatchObject({ type: 'invalid_request_error', code: 'resource_missing' });
  });

  it.each([
    ['no filter', ''],
    ['both filters', '?idempotency_key=a&order_reference=b'],
    ['an empty filter', '?order_reference='],
  ])('rejects a list with %s', async (_label, query) => {
    const answer = await getJson(normal, `/v1/charges${query}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'parameter_invalid' });
  });

  it('answers health and unknown routes as JSON', async () => {
    expect(await getJson(normal, '/healthz', {})).toEqual({ status: 200, replayed: false, body: { ok: true } });
    const missing = await getJson(normal, '/v1/transfers');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'route_not_found' });
  });
});

describe('sandbox PSP request checks', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong key', authHeaders('psk_test_wrong_key')],
    ['a non-bearer scheme', { Authorization: `Basic ${API_KEY}` }],
  ])('answers 401 with %s', async (_label, headers) => {
    const order_reference = uid('ord');
    const post = await postCharge(normal, uid('idem'), chargeBody({ order_reference }), headers);
    const get = await getJson(normal, `/v1/charges?order_reference=${order_reference}`, headers);
    for (const answer of [post, get]) {
      expect(answer.status).toBe(401);
      expect(answer.body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    }
    expect(await stats(normal, { order_reference })).toMatchObject({ charges_total: 0 });
  });

  it.each([
    ['a float JSON number amount', { amount: 12.3 }, 'amount'],
    ['an integer JSON number amount', { amount: 1234 }, 'amount'],
    ['a leading zero', { amount: '012' }, 'amount'],
    ['a zero amount', { amount: '0' }, 'amount'],
    ['a negative amount', { amount: '-5' }, 'amount'],
    ['a decimal string amount', { amount: '12.30' }, 'amount'],
    ['a 19-digit amount', { amount: '1234567890123456789' }, 'amount'],
    ['a lowercase currency', { currency: 'usd' }, 'currency'],
    ['an unknown field', { captured: true }, 'captured'],
    ['a non-boolean capture', { capture: 'false' }, 'capture'],
    ['an empty order reference', { order_reference: '' }, 'order_reference'],
    ['too many metadata keys', { metadata: manyMetadataKeys(21) }, 'metadata'],
  ])('rejects %s with 400 parameter_invalid', async (_label, overrides, param) => {
    const order_reference = uid('ord');
    const answer = await postCharge(normal, uid('idem'), chargeBody({ order_reference, ...overrides }));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_invalid', param });
    expect(await stats(normal, { order_reference })).toMatchObject({ charges_total: 0 });
  });

  it.each([
    ['a missing', undefined],
    ['an overlong', 'k'.repeat(256)],
  ])('rejects %s Idempotency-Key', async (_label, key) => {
    const headers: Record<string, string> = { ...authHeaders(), 'Content-Type': 'application/json' };
    if (key !== undefined) headers['Idempotency-Key'] = key;
    const answer = await call(`${normal.base_url}/v1/charges`, {
      method: 'POST',
      headers,
      body: JSON.stringify(chargeBody()),
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'idempotency_key_invalid' });
  });

  it('rejects malformed JSON and an oversized body', async () => {
    const post = (body: string) =>
      call(`${normal.base_url}/v1/charges`, {
        method: 'POST',
        headers: { ...authHeaders(), 'Content-Type': 'application/json', 'Idempotency-Key': uid('idem') },
        body,
      });
    const malformed = await post('{"amount": "10"');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: 'invalid_json' });
    const oversized = await post(JSON.stringify(chargeBody({ metadata: { blob: 'x'.repeat(17 * 1024) } })));
    expect(oversized.status).toBe(413);
    expect(oversized.body.error).toMatchObject({ code: 'body_too_large' });
  });
});

describe('sandbox PSP process', () => {
  it('keeps a charge across a restart of the process', async () => {
    let sandbox = await startSandbox('restart');
    const key = uid('idem');
    const body = chargeBody();
    const created = await postCharge(sandbox, key, body);
    expect(created.status).toBe(200);
    await sandbox.service.stop('SIGTERM');
    expect(sandbox.service.child.exitCode).toBe(0);

    sandbox = await startSandbox('restart');
    try {
      const fetched = await getJson(sandbox, `/v1/charges/${created.body.id}`);
      expect(fetched.body).toEqual(created.body);
      const replay = await postCharge(sandbox, key, body);
      expect(replay.replayed).toBe(true);
      expect(replay.body.id).toBe(created.body.id);
    } finally {
      await sandbox.service.stop();
    }
  });

  it('holds the charge in its store while the slow answer is still in flight', async () => {
    const body = chargeBody();
    const started_ms = Date.now();
    let settled = false;
    const pending = postCharge(slow, uid('idem'), body).finally(() => {
      settled = true;
    });
    let seen_in_flight = false;
    while (!settled && !seen_in_flight) {
      const counts = await stats(slow, { order_reference: body.order_reference });
      seen_in_flight = counts['charges_total'] === 1 && !settled;
      await sleep(STATS_POLL_MS);
    }
    const answer = await pending;
    expect(seen_in_flight).toBe(true);
    expect(answer.status).toBe(200);
    expect(Date.now() - started_ms).toBeGreaterThanOrEqual(LATENCY_MS - 50);
  });
});
