import { randomBytes } from 'node:crypto';
import { dropDatabase, ensureDatabase } from '../../src/db';
import type { ChargeJson } from '../../packages/sandbox-psp/src/app';
import { loadSandboxConfig } from '../../packages/sandbox-psp/src/config';
import { spawnSandbox, STARTUP_TIMEOUT_MS, uid, type ErrorJson, type Json, type SpawnedSandbox } from '../support/sandbox';

/**
 * Fault injection (503s, rate limits, answers that never come), the request log, and capture /
 * void / refund of the sandbox PSP: real processes, a database of their own, real HTTP.
 */

jest.setTimeout(30_000);

const API_KEY = 'psk_test_faults';
const BURST_SIZE = 10;
const RATE_LIMIT_PER_S = 2;
const CLIENT_TIMEOUT_MS = 500;
const HOLD_MS = 1_500;
const SHORT_HOLD_MS = 300;
const LATENCY_MS = 400;
// Every test starts from these; the ignore-mode sandbox starts from other values, none of them
// random (a rate would make its tests flaky; rates from env are checked on the config alone).
const DEFAULT_KNOBS = {
  error_rate: 0,
  fail_next: 0,
  retry_after_s: 1,
  rate_limit_per_s: 0,
  timeout_after_charge_rate: 0,
  timeout_next: 0,
  timeout_hold_ms: 30_000,
  latency_ms: 0,
};
const IGNORING_KNOBS = { ...DEFAULT_KNOBS, retry_after_s: 7, timeout_hold_ms: 1_234, rate_limit_per_s: 100_000, latency_ms: 1 };

const database_url = `postgres://postgres@127.0.0.1:5432/sandbox_faults_${randomBytes(6).toString('hex')}`;

interface Sandbox extends SpawnedSandbox {
  start_knobs: typeof DEFAULT_KNOBS;
}

async function startSandbox(name: string, env: Record<string, string>, start_knobs: typeof DEFAULT_KNOBS): Promise<Sandbox> {
  const spawned = await spawnSandbox(`sandbox-faults-test-${name}`, { SANDBOX_DATABASE_URL: database_url, SANDBOX_API_KEY: API_KEY, ...env });
  return { ...spawned, start_knobs };
}

type AnswerBody = Partial<ChargeJson> & { error?: ErrorJson; data?: Json[] };

interface Answer {
  status: number;
  headers: Headers;
  replayed: boolean;
  body: AnswerBody;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const body = (await res.json()) as AnswerBody;
  return { status: res.status, headers: res.headers, replayed: res.headers.get('idempotent-replayed') === 'true', body };
}

function postInit(key: string, body: unknown): RequestInit {
  return {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json', 'Idempotency-Key': key },
    body: JSON.stringify(body),
  };
}

type ChargeRequest = Json & { order_reference: string };

function chargeBody(overrides: Json = {}): ChargeRequest {
  return { amount: '1000', currency: 'USD', payment_method: 'tok_success', order_reference: uid('ord'), ...overrides } as ChargeRequest;
}

async function postCharge(sandbox: Sandbox, key: string, body: Json): Promise<Answer> {
  return await call(`${sandbox.base_url}/v1/charges`, postInit(key, body));
}

type Action = 'capture' | 'void' | 'refund';

async function act(sandbox: Sandbox, charge_id: string, action: Action, key = uid('idem'), body: unknown = {}): Promise<Answer> {
  return await call(`${sandbox.base_url}/v1/charges/${charge_id}/${action}`, postInit(key, body));
}

async function getJson(sandbox: Sandbox, path: string): Promise<Answer> {
  return await call(`${sandbox.base_url}${path}`, { headers: { Authorization: `Bearer ${API_KEY}` } });
}

async function postKnobs(sandbox: Sandbox, knobs: unknown): Promise<Answer> {
  return await call(`${sandbox.base_url}/_sandbox/faults`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(knobs),
  });
}

async function setKnobs(sandbox: Sandbox, knobs: Json): Promise<void> {
  expect((await postKnobs(sandbox, knobs)).status).toBe(200);
}

async function knobsOf(sandbox: Sandbox): Promise<Json> {
  return (await getJson(sandbox, '/_sandbox/faults')).body as Json;
}

async function requestLog(sandbox: Sandbox, order_reference: string): Promise<Json[]> {
  const answer = await getJson(sandbox, `/_sandbox/requests?order_reference=${encodeURIComponent(order_reference)}`);
  expect(answer.status).toBe(200);
  return answer.body.data ?? [];
}

async function outcomes(sandbox: Sandbox, order_reference: string): Promise<unknown[]> {
  return (await requestLog(sandbox, order_reference)).map((r) => r['outcome']);
}

async function chargesFor(sandbox: Sandbox, order_reference: string): Promise<Json[]> {
  const answer = await getJson(sandbox, `/v1/charges?order_reference=${encodeURIComponent(order_reference)}`);
  expect(answer.status).toBe(200);
  return answer.body.data ?? [];
}

async function eventsOf(sandbox: Sandbox, object_id: string): Promise<[unknown, unknown][]> {
  const answer = await getJson(sandbox, `/_sandbox/events?object_id=${object_id}`);
  const events = (answer.body.data ?? []) as { type: string; event: { data: { object: Json } } }[];
  return events.map((e) => [e.type, e.event.data.object['version']]);
}

/** Open the connections first, so a burst reaches the server as a burst (see sandbox-psp.test). */
async function warmUp(sandbox: Sandbox): Promise<void> {
  await Promise.all(Array.from({ length: BURST_SIZE }, () => fetch(`${sandbox.base_url}/healthz`).then((r) => r.json())));
}

async function authorized(sandbox: Sandbox, overrides: Json = {}): Promise<ChargeJson> {
  const answer = await postCharge(sandbox, uid('idem'), chargeBody({ capture: false, ...overrides }));
  expect(answer.status).toBe(200);
  expect(answer.body).toMatchObject({ status: 'authorized', version: 1 });
  return answer.body as ChargeJson;
}

let normal: Sandbox;
let ignoring: Sandbox;

beforeAll(async () => {
  await ensureDatabase(database_url);
  [normal, ignoring] = await Promise.all([
    startSandbox('normal', {}, DEFAULT_KNOBS),
    startSandbox(
      'ignore',
      {
        SANDBOX_IGNORE_IDEMPOTENCY: '1',
        SANDBOX_FAULT_RETRY_AFTER_S: '7',
        SANDBOX_FAULT_TIMEOUT_HOLD_MS: '1234',
        SANDBOX_FAULT_RATE_LIMIT_PER_S: '100000',
        SANDBOX_LATENCY_MS: '1',
      },
      IGNORING_KNOBS,
    ),
  ]);
}, STARTUP_TIMEOUT_MS * 2);

afterEach(async () => {
  for (const sandbox of [normal, ignoring]) {
    if (sandbox !== undefined) await setKnobs(sandbox, sandbox.start_knobs);
  }
});

afterAll(async () => {
  const running = [normal, ignoring].filter((s): s is Sandbox => s !== undefined);
  await Promise.all(running.map((s) => s.service.stop()));
  await dropDatabase(database_url);
}, STARTUP_TIMEOUT_MS);

// ---------------------------------------------------------------------------------------------

describe('fault knobs', () => {
  it('reads every start value from SANDBOX_FAULT_* and SANDBOX_LATENCY_MS', () => {
    const env = {
      SANDBOX_FAULT_ERROR_RATE: '0.25',
      SANDBOX_FAULT_FAIL_NEXT: '3',
      SANDBOX_FAULT_RETRY_AFTER_S: '0',
      SANDBOX_FAULT_RATE_LIMIT_PER_S: '50',
      SANDBOX_FAULT_TIMEOUT_AFTER_CHARGE_RATE: '0.5',
      SANDBOX_FAULT_TIMEOUT_NEXT: '2',
      SANDBOX_FAULT_TIMEOUT_HOLD_MS: '1500',
      SANDBOX_LATENCY_MS: '20',
    };
    expect(loadSandboxConfig(env).fault_knobs).toEqual({
      error_rate: 0.25,
      fail_next: 3,
      retry_after_s: 0,
      rate_limit_per_s: 50,
      timeout_after_charge_rate: 0.5,
      timeout_next: 2,
      timeout_hold_ms: 1_500,
      latency_ms: 20,
    });
    expect(loadSandboxConfig({}).fault_knobs).toEqual(DEFAULT_KNOBS);
  });

  it.each([
    ['SANDBOX_FAULT_ERROR_RATE', '1.5'],
    ['SANDBOX_FAULT_FAIL_NEXT', '1001'],
    ['SANDBOX_FAULT_RETRY_AFTER_S', '601'],
    ['SANDBOX_FAULT_RATE_LIMIT_PER_S', '-1'],
    ['SANDBOX_FAULT_TIMEOUT_AFTER_CHARGE_RATE', 'often'],
    ['SANDBOX_FAULT_TIMEOUT_NEXT', '1e3'],
    ['SANDBOX_FAULT_TIMEOUT_HOLD_MS', '600001'],
  ])('refuses to start with %s=%s', (name, value) => {
    expect(() => loadSandboxConfig({ [name]: value })).toThrow(name);
  });

  it('shows the defaults, and env start values', async () => {
    expect(await knobsOf(normal)).toEqual(DEFAULT_KNOBS);
    expect(await knobsOf(ignoring)).toEqual(IGNORING_KNOBS);
  });

  it('changes only the knobs given and answers all of them', async () => {
    const answer = await postKnobs(normal, { fail_next: 3, latency_ms: 10 });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ...DEFAULT_KNOBS, fail_next: 3, latency_ms: 10 });
    expect(await knobsOf(normal)).toEqual({ ...DEFAULT_KNOBS, fail_next: 3, latency_ms: 10 });
  });

  it.each([
    ['error_rate', 1.5],
    ['error_rate', -0.1],
    ['error_rate', '0.5'],
    ['fail_next', 1_001],
    ['fail_next', 1.5],
    ['fail_next', -1],
    ['retry_after_s', 601],
    ['rate_limit_per_s', 100_001],
    ['timeout_after_charge_rate', 2],
    ['timeout_next', 'one'],
    ['timeout_hold_ms', 600_001],
    ['latency_ms', 60_001],
    ['latency_ms', null],
    ['no_such_knob', 1],
  ])('rejects %s = %p with 400 parameter_invalid and changes nothing', async (param, value) => {
    const answer = await postKnobs(normal, { fail_next: 5, [param]: value });
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_invalid', param });
    expect(await knobsOf(normal)).toEqual(DEFAULT_KNOBS);
  });

  it('rejects a body that is not an object', async () => {
    const answer = await postKnobs(normal, [1]);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'parameter_invalid' });
  });
});

describe('503 faults', () => {
  it('fail_next=2: two 503s with Retry-After, then the charge; logged fault_503, fault_503, ok', async () => {
    await setKnobs(normal, { fail_next: 2, retry_after_s: 3 });
    const key = uid('idem');
    const body = chargeBody();
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await postCharge(normal, key, body));
    for (const refused of answers.slice(0, 2)) {
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('3');
      expect(refused.body.error).toMatchObject({ type: 'api_error', code: 'psp_unavailable', message: expect.any(String) });
    }
    expect(answers[2]).toMatchObject({ status: 200, replayed: false, body: { status: 'succeeded' } });
    expect((await knobsOf(normal))['fail_next']).toBe(0);

    const log = await requestLog(normal, body.order_reference);
    expect(log.map((r) => [r['outcome'], r['http_status']])).toEqual([
      ['fault_503', 503],
      ['fault_503', 503],
      ['ok', 200],
    ]);
    for (const row of log) {
      expect(row).toEqual({
        id: expect.stringMatching(/^\d+$/),
        method: 'POST',
        path: '/v1/charges',
        order_reference: body.order_reference,
        idempotency_key: key,
        outcome: expect.any(String),
        http_status: expect.any(Number),
        at: expect.any(String),
        at_ms: expect.any(Number),
      });
      expect(new Date(row['at'] as string).getTime()).toBe(row['at_ms']);
    }
    const times = log.map((r) => r['at_ms'] as number);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(await chargesFor(normal, body.order_reference)).toHaveLength(1);
  });

  it('error_rate 1 with retry_after_s 0: 503 without Retry-After, nothing stored, GETs unaffected', async () => {
    await setKnobs(normal, { error_rate: 1, retry_after_s: 0 });
    const body = chargeBody();
    const refused = await postCharge(normal, uid('idem'), body);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(refused.body.error).toMatchObject({ code: 'psp_unavailable' });
    expect(await chargesFor(normal, body.order_reference)).toEqual([]);
    expect(await outcomes(normal, body.order_reference)).toEqual(['fault_503']);
  });

  it('refuses a capture too, and leaves the charge authorized', async () => {
    const charge = await authorized(normal);
    await setKnobs(normal, { fail_next: 1 });
    const refused = await act(normal, charge.id, 'capture');
    expect(refused.status).toBe(503);
    expect((await getJson(normal, `/v1/charges/${charge.id}`)).body).toMatchObject({ status: 'authorized', version: 1 });
    expect(await eventsOf(normal, charge.id)).toEqual([['charge.authorized', 1]]);
    const log = await requestLog(normal, charge.order_reference);
    expect(log.map((r) => [r['path'], r['outcome']])).toEqual([
      ['/v1/charges', 'ok'],
      [`/v1/charges/${charge.id}/capture`, 'fault_503'],
    ]);
  });

  it('in ignore-idempotency mode a refused POST still stores nothing, and each accepted one a charge', async () => {
    await setKnobs(ignoring, { error_rate: 0, fail_next: 1 });
    const key = uid('idem');
    const body = chargeBody();
    const answers = [];
    for (let i = 0; i < 3; i += 1) answers.push(await postCharge(ignoring, key, body));
    expect(answers.map((a) => a.status)).toEqual([503, 200, 200]);
    expect(answers[0]?.headers.get('retry-after')).toBe('7');
    expect(answers[2]?.body.id).not.toBe(answers[1]?.body.id);
    expect(await chargesFor(ignoring, body.order_reference)).toHaveLength(2);
    expect(await outcomes(ignoring, body.order_reference)).toEqual(['fault_503', 'ok', 'ok']);
  });
});

describe('rate limit', () => {
  it('answers 429 rate_limited with Retry-After: 1 to a burst beyond the rate, storing nothing for those', async () => {
    await warmUp(normal);
    await setKnobs(normal, { rate_limit_per_s: RATE_LIMIT_PER_S });
    const bodies = Array.from({ length: BURST_SIZE }, () => chargeBody());
    const answers = await Promise.all(bodies.map((body) => postCharge(normal, uid('idem'), body)));
    const limited = answers.flatMap((a, i) => (a.status === 429 ? [i] : []));
    const accepted = answers.flatMap((a, i) => (a.status === 200 ? [i] : []));
    expect(limited.length + accepted.length).toBe(BURST_SIZE);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(accepted.length).toBeLessThanOrEqual(RATE_LIMIT_PER_S + 1); // plus what refills meanwhile
    for (const i of limited) {
      expect(answers[i]?.headers.get('retry-after')).toBe('1');
      expect(answers[i]?.body.error).toMatchObject({ code: 'rate_limited', message: expect.any(String) });
      const order_reference = bodies[i]?.order_reference ?? '';
      expect(await chargesFor(normal, order_reference)).toEqual([]);
      expect(await outcomes(normal, order_reference)).toEqual(['rate_limited_429']);
    }
    for (const i of accepted) expect(await chargesFor(normal, bodies[i]?.order_reference ?? '')).toHaveLength(1);
    // GETs are never limited.
    const reads = await Promise.all(bodies.map((b) => getJson(normal, `/v1/charges?order_reference=${b.order_reference}`)));
    expect(reads.every((r) => r.status === 200)).toBe(true);
  });
});

describe('timeout after commit', () => {
  it('commits the charge, then never answers: the caller times out, the charge exists', async () => {
    await setKnobs(normal, { timeout_next: 1, timeout_hold_ms: HOLD_MS });
    const key = uid('idem');
    const body = chargeBody();
    const started_ms = Date.now();
    const attempt = fetch(`${normal.base_url}/v1/charges`, { ...postInit(key, body), signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
    await expect(attempt).rejects.toThrow();
    expect(Date.now() - started_ms).toBeLessThan(HOLD_MS);

    const found = await getJson(normal, `/v1/charges?idempotency_key=${key}`);
    expect(found.body.data).toEqual([expect.objectContaining({ status: 'succeeded', idempotency_key: key, version: 1 })]);
    const log = await requestLog(normal, body.order_reference);
    expect(log).toEqual([expect.objectContaining({ outcome: 'timeout_after_commit', http_status: null, idempotency_key: key })]);
    expect((await knobsOf(normal))['timeout_next']).toBe(0);

    // The retry with the same key is answered with the charge that was committed.
    const retry = await postCharge(normal, key, body);
    expect(retry).toMatchObject({ status: 200, replayed: true, body: { id: found.body.data?.[0]?.['id'] } });
    expect(await outcomes(normal, body.order_reference)).toEqual(['timeout_after_commit', 'ok']);
  });

  it('destroys the connection without an answer once the hold is over', async () => {
    await setKnobs(normal, { timeout_next: 1, timeout_hold_ms: SHORT_HOLD_MS });
    const body = chargeBody();
    const started_ms = Date.now();
    await expect(fetch(`${normal.base_url}/v1/charges`, postInit(uid('idem'), body))).rejects.toThrow();
    expect(Date.now() - started_ms).toBeGreaterThanOrEqual(SHORT_HOLD_MS - 50);
    expect(await chargesFor(normal, body.order_reference)).toHaveLength(1);
  });

  it('applies to a capture: it is committed, and the retry with the key replays it', async () => {
    const charge = await authorized(normal);
    await setKnobs(normal, { timeout_after_charge_rate: 1, timeout_hold_ms: SHORT_HOLD_MS });
    const key = uid('idem');
    await expect(act(normal, charge.id, 'capture', key)).rejects.toThrow();
    await setKnobs(normal, { timeout_after_charge_rate: 0 });
    expect((await getJson(normal, `/v1/charges/${charge.id}`)).body).toMatchObject({ status: 'succeeded', version: 2 });
    const retry = await act(normal, charge.id, 'capture', key);
    expect(retry).toMatchObject({ status: 200, replayed: true, body: { status: 'succeeded', version: 2 } });
    expect(await outcomes(normal, charge.order_reference)).toEqual(['ok', 'timeout_after_commit', 'ok']);
  });
});

describe('latency knob', () => {
  it('delays the answer of a POST, not of a GET', async () => {
    await setKnobs(normal, { latency_ms: LATENCY_MS });
    const body = chargeBody();
    let started_ms = Date.now();
    expect((await postCharge(normal, uid('idem'), body)).status).toBe(200);
    expect(Date.now() - started_ms).toBeGreaterThanOrEqual(LATENCY_MS - 50);
    started_ms = Date.now();
    await chargesFor(normal, body.order_reference);
    expect(Date.now() - started_ms).toBeLessThan(LATENCY_MS);
  });
});

describe('request log', () => {
  it('logs declines and refused requests with their status', async () => {
    const order_reference = uid('ord');
    expect((await postCharge(normal, uid('idem'), chargeBody({ order_reference, payment_method: 'tok_decline' }))).status).toBe(402);
    expect((await postCharge(normal, uid('idem'), chargeBody({ order_reference, currency: 'usd' }))).status).toBe(400);
    const log = await requestLog(normal, order_reference);
    expect(log.map((r) => [r['outcome'], r['http_status']])).toEqual([
      ['declined', 402],
      ['error_4xx', 400],
    ]);
  });

  it.each([
    ['no order_reference', ''],
    ['an empty one', '?order_reference='],
    ['an overlong one', `?order_reference=${'o'.repeat(256)}`],
  ])('rejects a listing with %s', async (_label, query) => {
    const answer = await getJson(normal, `/_sandbox/requests${query}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'parameter_invalid', param: 'order_reference' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('capture: false, capture and void', () => {
  it('authorizes, then captures at version 2 with events authorized and succeeded', async () => {
    const charge = await authorized(normal);
    expect(charge.fee).toBe('59'); // the fee capture will take
    expect(await eventsOf(normal, charge.id)).toEqual([['charge.authorized', 1]]);
    const key = uid('idem');
    const captured = await act(normal, charge.id, 'capture', key);
    expect(captured).toMatchObject({ status: 200, replayed: false });
    expect(captured.body).toEqual({ ...charge, status: 'succeeded', version: 2 });
    expect((await getJson(normal, `/v1/charges/${charge.id}`)).body).toEqual(captured.body);
    expect(await eventsOf(normal, charge.id)).toEqual([
      ['charge.authorized', 1],
      ['charge.succeeded', 2],
    ]);
    // Same key: the first answer, replayed. Another key: the charge as it is. No new event.
    expect(await act(normal, charge.id, 'capture', key)).toMatchObject({ status: 200, replayed: true, body: captured.body });
    expect(await act(normal, charge.id, 'capture')).toMatchObject({ status: 200, replayed: false, body: captured.body });
    expect(await eventsOf(normal, charge.id)).toHaveLength(2);
  });

  it('voids an authorized charge: canceled at version 2, then answered as is', async () => {
    const charge = await authorized(normal);
    const voided = await act(normal, charge.id, 'void');
    expect(voided.status).toBe(200);
    // Nothing was taken; fee stays the figure a capture would have taken, as on a failed charge.
    expect(voided.body).toEqual({ ...charge, status: 'canceled', version: 2 });
    expect(await act(normal, charge.id, 'void')).toMatchObject({ status: 200, body: { status: 'canceled', version: 2 } });
    expect(await eventsOf(normal, charge.id)).toEqual([
      ['charge.authorized', 1],
      ['charge.canceled', 2],
    ]);
  });

  it('stores a decline as failed even with capture false', async () => {
    const answer = await postCharge(normal, uid('idem'), chargeBody({ capture: false, payment_method: 'tok_decline' }));
    expect(answer.status).toBe(402);
    expect(answer.body.error?.charge).toMatchObject({ status: 'failed', failure_code: 'card_declined' });
  });

  it.each([['tok_review_approve'], ['tok_review_decline'], ['tok_requires_action']])(
    'refuses capture false for %s with 400 parameter_invalid on capture, storing nothing',
    async (payment_method) => {
      const body = chargeBody({ capture: false, payment_method });
      const answer = await postCharge(normal, uid('idem'), body);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'parameter_invalid', param: 'capture', message: expect.stringMatching(/not supported/) });
      expect(await chargesFor(normal, body.order_reference)).toEqual([]);
    },
  );

  it('treats capture true as the default and capture false as another request under one key', async () => {
    const key = uid('idem');
    const body = chargeBody();
    const first = await postCharge(normal, key, body);
    expect(await postCharge(normal, key, { ...body, capture: true })).toMatchObject({ status: 200, replayed: true, body: first.body });
    const reused = await postCharge(normal, key, { ...body, capture: false });
    expect(reused.status).toBe(400);
    expect(reused.body.error).toMatchObject({ code: 'idempotency_key_reused' });
  });

  it('decides once when ten captures race', async () => {
    const charge = await authorized(normal);
    await warmUp(normal);
    const answers = await Promise.all(Array.from({ length: BURST_SIZE }, () => act(normal, charge.id, 'capture')));
    expect(answers.map((a) => [a.status, a.body.status, a.body.version])).toEqual(Array(BURST_SIZE).fill([200, 'succeeded', 2]));
    expect(await eventsOf(normal, charge.id)).toEqual([
      ['charge.authorized', 1],
      ['charge.succeeded', 2],
    ]);
  });

  it('decides once when a capture and a void race', async () => {
    const charge = await authorized(normal);
    await warmUp(normal);
    const [capture, voiding] = await Promise.all([act(normal, charge.id, 'capture'), act(normal, charge.id, 'void')]);
    expect([capture?.status, voiding?.status].sort()).toEqual([200, 409]);
    const winner = capture?.status === 200 ? 'succeeded' : 'canceled';
    expect((await getJson(normal, `/v1/charges/${charge.id}`)).body).toMatchObject({ status: winner, version: 2 });
    expect(await eventsOf(normal, charge.id)).toHaveLength(2);
  });
});

describe('refund', () => {
  it('refunds a succeeded charge at version 2, then answers it as is', async () => {
    const created = await postCharge(normal, uid('idem'), chargeBody());
    const id = created.body.id ?? '';
    const refunded = await act(normal, id, 'refund');
    expect(refunded.status).toBe(200);
    expect(refunded.body).toEqual({ ...created.body, status: 'refunded', version: 2 });
    expect(await act(normal, id, 'refund')).toMatchObject({ status: 200, body: { status: 'refunded', version: 2 } });
    expect(await eventsOf(normal, id)).toEqual([
      ['charge.succeeded', 1],
      ['charge.refunded', 2],
    ]);
  });

  it('refunds a captured charge at version 3', async () => {
    const charge = await authorized(normal);
    expect((await act(normal, charge.id, 'capture')).status).toBe(200);
    expect(await act(normal, charge.id, 'refund')).toMatchObject({ status: 200, body: { status: 'refunded', version: 3 } });
    expect((await eventsOf(normal, charge.id)).map(([type]) => type)).toEqual([
      'charge.authorized',
      'charge.succeeded',
      'charge.refunded',
    ]);
  });
});

describe('actions on a charge in the wrong state', () => {
  async function chargeIn(status: string): Promise<string> {
    if (status === 'failed') {
      const declined = await postCharge(normal, uid('idem'), chargeBody({ payment_method: 'tok_decline' }));
      return declined.body.error?.charge?.id ?? '';
    }
    if (status === 'pending') return (await postCharge(normal, uid('idem'), chargeBody({ payment_method: 'tok_review_approve' }))).body.id ?? '';
    if (status === 'requires_action') return (await postCharge(normal, uid('idem'), chargeBody({ payment_method: 'tok_requires_action' }))).body.id ?? '';
    const charge = await authorized(normal);
    if (status === 'canceled') expect((await act(normal, charge.id, 'void')).status).toBe(200);
    if (status === 'refunded') {
      expect((await act(normal, charge.id, 'capture')).status).toBe(200);
      expect((await act(normal, charge.id, 'refund')).status).toBe(200);
    }
    return charge.id;
  }

  it.each([
    ['capture', 'failed', 'charge_not_capturable'],
    ['capture', 'canceled', 'charge_not_capturable'],
    ['capture', 'refunded', 'charge_not_capturable'],
    ['capture', 'requires_action', 'charge_not_capturable'],
    ['void', 'refunded', 'charge_not_voidable'],
    ['void', 'failed', 'charge_not_voidable'],
    ['void', 'pending', 'charge_not_voidable'],
    ['refund', 'authorized', 'charge_not_refundable'],
    ['refund', 'canceled', 'charge_not_refundable'],
    ['refund', 'failed', 'charge_not_refundable'],
  ] as [Action, string, string][])('%s of a %s charge: 409 %s with the charge, unchanged', async (action, status, code) => {
    const id = await chargeIn(status);
    const before = (await getJson(normal, `/v1/charges/${id}`)).body;
    expect(before.status).toBe(status);
    const answer = await act(normal, id, action);
    expect(answer.status).toBe(409);
    expect(answer.body.error).toMatchObject({ type: 'invalid_request_error', code, message: expect.any(String), charge: before });
    expect((await getJson(normal, `/v1/charges/${id}`)).body).toEqual(before);
  });

  it('voids a succeeded charge: 409 charge_not_voidable; captures it: answered as is', async () => {
    const created = await postCharge(normal, uid('idem'), chargeBody());
    const id = created.body.id ?? '';
    expect((await act(normal, id, 'void')).body.error).toMatchObject({ code: 'charge_not_voidable' });
    expect(await act(normal, id, 'capture')).toMatchObject({ status: 200, body: created.body });
  });
});

describe('action request checks', () => {
  it('answers 404 resource_missing for an unknown charge', async () => {
    const answer = await act(normal, uid('ch'), 'capture');
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatchObject({ code: 'resource_missing', param: 'id' });
  });

  it('requires an Idempotency-Key and takes no parameters', async () => {
    const charge = await authorized(normal);
    const no_key = await call(`${normal.base_url}/v1/charges/${charge.id}/capture`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(no_key.status).toBe(400);
    expect(no_key.body.error).toMatchObject({ code: 'idempotency_key_invalid' });
    const partial = await act(normal, charge.id, 'capture', uid('idem'), { amount: '500' });
    expect(partial.status).toBe(400);
    expect(partial.body.error).toMatchObject({ code: 'parameter_invalid', param: 'amount' });
    const no_body = await call(`${normal.base_url}/v1/charges/${charge.id}/capture`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Idempotency-Key': uid('idem') },
    });
    expect(no_body).toMatchObject({ status: 200, body: { status: 'succeeded' } });
  });

  it('refuses a key already used for another action, another charge or a charge creation', async () => {
    const charge = await authorized(normal);
    const other = await authorized(normal);
    const key = uid('idem');
    expect((await act(normal, charge.id, 'capture', key)).status).toBe(200);
    for (const answer of [
      await act(normal, charge.id, 'refund', key),
      await act(normal, other.id, 'capture', key),
      await act(normal, other.id, 'void', other.idempotency_key),
      await postCharge(normal, key, chargeBody()),
    ]) {
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused' });
    }
    expect((await getJson(normal, `/v1/charges/${other.id}`)).body).toMatchObject({ status: 'authorized', version: 1 });
  });

  it('in ignore-idempotency mode ignores keys but stays idempotent by state', async () => {
    const charge = await authorized(ignoring);
    const key = uid('idem');
    const first = await act(ignoring, charge.id, 'capture', key);
    const second = await act(ignoring, charge.id, 'capture', key);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.replayed).toBe(false);
    expect(second.body).toEqual(first.body);
    // Not replayed: the key means nothing here, the request is decided by the charge's state.
    expect(await act(ignoring, charge.id, 'refund', key)).toMatchObject({ status: 200, body: { status: 'refunded', version: 3 } });
    expect(await eventsOf(ignoring, charge.id)).toHaveLength(3);
  });
});
