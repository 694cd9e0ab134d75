import fs from 'node:fs';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase } from '../../src/db';
import { signPayload, verifySignature } from '../../src/psp/signature';
import { freePort, ROOT, sleep, type Service } from '../support/processes';
import { spawnSandbox, STARTUP_TIMEOUT_MS } from '../support/sandbox';

/**
 * Hosted checkout, review outcomes and webhook delivery of the sandbox PSP: a real sandbox
 * process with its own database, and a small local HTTP receiver standing in for our webhook
 * endpoint. Webhooks are verified with the same helper our endpoint will use.
 */

jest.setTimeout(30_000);

const API_KEY = 'psk_test_checkout';
const WEBHOOK_SECRET = 'whsec_test_checkout';
const REVIEW_DELAY_MS = 300;
const BACKOFF_MS = 50;
const WAIT_MS = 10_000;
const POLL_MS = 50;
// Long enough for the delivery loop to have sent anything it was going to send.
const QUIET_MS = 600;
// The reorder sandbox: the decision lands 1 s after the charge, well inside the 3 s hold.
const REORDER_REVIEW_DELAY_MS = 1_000;
const REORDER_HOLD_MS = 3_000;
const LOG_NAME = `sandbox-checkout-test-${randomBytes(4).toString('hex')}`;

const CARDS = {
  success: '4242424242424242',
  decline: '4000000000000002',
  insufficient: '4000000000009995',
  review_approve: '4000000000000259',
  review_decline: '4000000000000267',
  three_d_secure: '4000002760003184',
  luhn_fail: '4242424242424241',
};

const database_url = `postgres://postgres@127.0.0.1:5432/sandbox_checkout_${randomBytes(6).toString('hex')}`;

// ---------------------------------------------------------------------------------------------
// Webhook receiver: records every request; paths under /flaky/<n> fail n times per event id.

interface Received {
  path: string;
  signature: string | undefined;
  raw_body: string;
  event: { id: string; type: string; created: number; data: { object: Record<string, unknown> } };
}

const received: Received[] = [];
const failures_seen = new Map<string, number>();

function handleWebhook(path: string, signature: string | undefined, raw_body: string): number {
  const event = JSON.parse(raw_body) as Received['event'];
  const flaky = /^\/flaky\/(\d+)$/.exec(path);
  if (flaky !== null) {
    const seen = failures_seen.get(event.id) ?? 0;
    if (seen < Number(flaky[1])) {
      failures_seen.set(event.id, seen + 1);
      return 500;
    }
  }
  received.push({ path, signature, raw_body, event });
  return 200;
}

async function startReceiver(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const signature = req.headers['psp-signature'];
      const status = handleWebhook(req.url ?? '/', typeof signature === 'string' ? signature : undefined, Buffer.concat(chunks).toString('utf8'));
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(POLL_MS);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function receivedFor(object_id: string, type?: string): Received[] {
  return received.filter((r) => r.event.data.object['id'] === object_id && (type === undefined || r.event.type === type));
}

// ---------------------------------------------------------------------------------------------
// Sandbox helpers.

let sandbox: Service;
let base_url: string;
let receiver: Server;
let receiver_url: string;

type Json = Record<string, unknown>;

function uid(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

async function apiAt(base: string, method: string, route: string, body?: Json): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json', 'Idempotency-Key': uid('idem') },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function api(method: string, route: string, body?: Json): Promise<{ status: number; body: Json }> {
  return await apiAt(base_url, method, route, body);
}

async function charge(payment_method: string, base = base_url): Promise<{ status: number; body: Json }> {
  return await apiAt(base, 'POST', '/v1/charges', { amount: '1000', currency: 'USD', payment_method, order_reference: uid('ord') });
}

async function openSession(webhook_path = '/ok'): Promise<{ id: string; url: string; client_reference: string }> {
  const client_reference = uid('pay');
  const answer = await api('POST', '/v1/checkout_sessions', {
    client_reference,
    return_url: 'https://merchant.example/return?x=1',
    webhook_url: `${receiver_url}${webhook_path}`,
  });
  expect(answer.status).toBe(200);
  return { id: answer.body['id'] as string, url: answer.body['url'] as string, client_reference };
}

function futureExpiry(): string {
  const next_year = (new Date().getUTCFullYear() + 1) % 100;
  return `12/${String(next_year).padStart(2, '0')}`;
}

async function submit(url: string, fields: Partial<Record<string, string>>): Promise<Response> {
  const form = { card_number: CARDS.success, expiry: futureExpiry(), cvc: '123', name: 'Ada Lovelace', ...fields };
  return await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form as Record<string, string>).toString(),
    redirect: 'manual',
  });
}

async function events(query: Record<string, string>): Promise<Json[]> {
  const res = await fetch(`${base_url}/_sandbox/events?${new URLSearchParams(query).toString()}`);
  return ((await res.json()) as { data: Json[] }).data;
}

async function postKnobs(knobs: Json): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${base_url}/_sandbox/webhooks`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(knobs),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function setKnobs(knobs: Json): Promise<void> {
  expect((await postKnobs(knobs)).status).toBe(200);
}

function verified(r: Received): boolean {
  const now_unix = Math.floor(Date.now() / 1000);
  return verifySignature({ header: r.signature, raw_body: r.raw_body, secrets: [WEBHOOK_SECRET], now_unix }).ok;
}

beforeAll(async () => {
  await ensureDatabase(database_url);
  const receiver_port = await freePort();
  receiver = await startReceiver(receiver_port);
  receiver_url = `http://127.0.0.1:${receiver_port}`;
  ({ service: sandbox, base_url } = await spawnSandbox(LOG_NAME, {
    // As inherited from the suite's environment before this suite used spawnSandbox.
    SANDBOX_IGNORE_IDEMPOTENCY: process.env.SANDBOX_IGNORE_IDEMPOTENCY ?? '0',
    SANDBOX_DATABASE_URL: database_url,
    SANDBOX_API_KEY: API_KEY,
    SANDBOX_WEBHOOK_URL: `${receiver_url}/ok`,
    SANDBOX_WEBHOOK_SECRET: WEBHOOK_SECRET,
    SANDBOX_WEBHOOK_BACKOFF_MS: String(BACKOFF_MS),
    SANDBOX_REVIEW_DELAY_MS: String(REVIEW_DELAY_MS),
  }));
}, STARTUP_TIMEOUT_MS * 2);

afterEach(async () => {
  await setKnobs({ duplicate_rate: 0, drop_rate: 0, reorder: false, reorder_hold_ms: 300, delay_ms: 0 });
});

afterAll(async () => {
  await sandbox?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
  await dropDatabase(database_url);
}, STARTUP_TIMEOUT_MS);

// ---------------------------------------------------------------------------------------------

describe('webhook signature helper', () => {
  const body = '{"id":"evt_1","type":"charge.succeeded"}';
  const t_unix = 1_700_000_000;
  const header = signPayload('whsec_a', body, t_unix);
  const verify = (over: Partial<Parameters<typeof verifySignature>[0]>) =>
    verifySignature({ header, raw_body: body, secrets: ['whsec_a'], now_unix: t_unix + 10, ...over });

  it('accepts a valid signature and formats the header as t=…,v1=…', () => {
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verify({})).toEqual({ ok: true });
  });

  it('rejects a tampered body, a stale timestamp and a wrong secret', () => {
    expect(verify({ raw_body: body.replace('succeeded', 'failed') })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verify({ now_unix: t_unix + 301 })).toEqual({ ok: false, reason: 'stale' });
    expect(verify({ secrets: ['whsec_b'] })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('accepts the second secret during rotation and reports missing or malformed headers', () => {
    expect(verify({ secrets: ['whsec_new', 'whsec_a'] })).toEqual({ ok: true });
    expect(verify({ header: undefined })).toEqual({ ok: false, reason: 'missing' });
    expect(verify({ header: 't=abc,v1=zz' })).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('hosted checkout page', () => {
  it('renders a form with the card fields and no external URLs', async () => {
    const session = await openSession();
    expect(session.url).toBe(`${base_url}/checkout/${session.id}`);
    const res = await fetch(session.url);
    const html = await res.text();
    expect(res.status).toBe(200);
    for (const name of ['card_number', 'expiry', 'cvc', 'name']) expect(html).toContain(`name="${name}"`);
    expect(html).toContain(CARDS.review_approve);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it.each([
    ['a card failing Luhn', { card_number: CARDS.luhn_fail }, 'Card number is not valid.'],
    ['a past expiry', { expiry: '01/20' }, 'Card has expired.'],
    ['a bad CVC', { cvc: '12' }, 'CVC must be 3 or 4 digits.'],
  ])('answers 400 with the error for %s and makes no token', async (_label, fields, message) => {
    const session = await openSession();
    const res = await submit(session.url, fields);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(message);
    await sleep(QUIET_MS);
    expect(await events({ type: 'payment_method.attached' })).not.toContainEqual(
      expect.objectContaining({ event: expect.objectContaining({ data: { object: expect.objectContaining({ checkout_session: session.id }) } }) }),
    );
    expect((await fetch(session.url)).status).toBe(200); // still open
  });

  it('redirects to return_url and sends a signed payment_method.attached webhook', async () => {
    const session = await openSession();
    const res = await submit(session.url, {});
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`https://merchant.example/return?x=1&checkout_session=${session.id}`);
    const [hook] = await waitFor('attached webhook', () => {
      const hits = received.filter((r) => r.event.data.object['checkout_session'] === session.id);
      return hits.length > 0 ? hits : undefined;
    });
    expect(verified(hook!)).toBe(true);
    expect(hook!.event).toMatchObject({
      id: expect.stringMatching(/^evt_/),
      type: 'payment_method.attached',
      created: expect.any(Number),
      data: { object: { id: expect.stringMatching(/^pm_/), client_reference: session.client_reference, card: { brand: 'visa', last4: '4242' } } },
    });
    const again = await fetch(session.url);
    expect(await again.text()).toContain('already complete');
    expect((await submit(session.url, {})).status).toBe(409);
  });

  it('charges a checkout token with its card outcome', async () => {
    const session = await openSession();
    expect((await submit(session.url, { card_number: CARDS.insufficient })).status).toBe(303);
    const hook = await waitFor('attached webhook', () => received.find((r) => r.event.data.object['checkout_session'] === session.id));
    const pm = hook.event.data.object['id'] as string;
    const charge = await api('POST', '/v1/charges', { amount: '500', currency: 'EUR', payment_method: pm, order_reference: uid('ord') });
    expect(charge.status).toBe(402);
    expect(charge.body['error']).toMatchObject({ code: 'insufficient_funds' });
  });

  it('charges a token from the 3-D Secure test card as requires_action', async () => {
    const session = await openSession();
    expect((await submit(session.url, { card_number: CARDS.three_d_secure })).status).toBe(303);
    const hook = await waitFor('attached webhook', () => received.find((r) => r.event.data.object['checkout_session'] === session.id));
    const answer = await charge(hook.event.data.object['id'] as string);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      status: 'requires_action',
      next_action: { type: 'redirect_to_url', redirect_url: `${base_url}/3ds/${answer.body['id'] as string}` },
    });
  });

  it('keeps the full card number out of the database and the log', async () => {
    const db = createDb(database_url, 1);
    try {
      const columns = (await db('information_schema.columns')
        .where({ table_schema: 'public' })
        .whereIn('data_type', ['text', 'character varying', 'character'])
        .select('table_name', 'column_name')) as { table_name: string; column_name: string }[];
      expect(columns.length).toBeGreaterThan(10);
      const dump: string[] = [];
      for (const c of columns) {
        const rows = (await db(c.table_name).select(db.raw('??::text as v', [c.column_name]))) as { v: string | null }[];
        dump.push(...rows.map((r) => r.v ?? ''));
      }
      const all = dump.join('\n');
      expect(all).toContain('4242'); // the last4 is there, so the dump did read the tokens
      for (const number of Object.values(CARDS)) expect(all).not.toContain(number);
    } finally {
      await db.destroy();
    }
    const log = fs.readFileSync(path.join(ROOT, 'test-output', `${LOG_NAME}.log`), 'utf8');
    expect(log).toContain('checkout completed');
    for (const number of Object.values(CARDS)) expect(log).not.toContain(number);
  });
});

describe('review outcomes', () => {
  it.each([
    ['tok_review_approve', 'charge.succeeded', 'succeeded'],
    ['tok_review_decline', 'charge.failed', 'failed'],
  ])('%s answers pending, then sends %s with a higher version', async (token, type, status) => {
    const started_ms = Date.now();
    const charge = await api('POST', '/v1/charges', { amount: '1000', currency: 'USD', payment_method: token, order_reference: uid('ord') });
    expect(charge.status).toBe(200);
    expect(charge.body).toMatchObject({ status: 'pending', version: 1 });
    const id = charge.body['id'] as string;
    const hook = await waitFor(type, () => receivedFor(id, type)[0]);
    expect(Date.now() - started_ms).toBeGreaterThanOrEqual(REVIEW_DELAY_MS - 50);
    expect(verified(hook)).toBe(true);
    expect(hook.event.data.object).toMatchObject({ id, status, version: 2, updated: expect.any(Number) });
    const fetched = await api('GET', `/v1/charges/${id}`);
    expect(fetched.body).toMatchObject({ status, version: 2 });
    // Reorder off: the endpoint hears of the charge in the order its states happened.
    await waitFor('pending webhook', () => receivedFor(id, 'charge.pending')[0]);
    expect(receivedFor(id).map((r) => [r.event.type, r.event.data.object['version']])).toEqual([
      ['charge.pending', 1],
      [type, 2],
    ]);
  });
});

describe('webhook delivery', () => {
  it('retries a failing endpoint with backoff and delivers on the third attempt', async () => {
    const session = await openSession('/flaky/2');
    expect((await submit(session.url, {})).status).toBe(303);
    const hook = await waitFor('flaky delivery', () => received.find((r) => r.event.data.object['checkout_session'] === session.id));
    expect(hook.path).toBe('/flaky/2');
    // The receiver has the event before the sandbox records the 2xx: wait for the record.
    const listed = await waitFor('delivery recorded', async () => {
      const [event] = await events({ object_id: hook.event.data.object['id'] as string });
      return event?.['status'] === 'delivered' ? event : undefined;
    });
    expect(listed).toMatchObject({ status: 'delivered', attempts: 3 });
  });

  it('records a dropped event and never sends it when drop_rate is 1', async () => {
    await setKnobs({ drop_rate: 1 });
    const session = await openSession();
    expect((await submit(session.url, {})).status).toBe(303);
    await sleep(QUIET_MS);
    expect(received.filter((r) => r.event.data.object['checkout_session'] === session.id)).toHaveLength(0);
    const listed = await events({ type: 'payment_method.attached' });
    const mine = listed.filter((e) => (e['event'] as Received['event']).data.object['checkout_session'] === session.id);
    expect(mine).toEqual([expect.objectContaining({ status: 'dropped', attempts: 0 })]);
  });

  it('sends an event twice with the same id when duplicate_rate is 1', async () => {
    await setKnobs({ duplicate_rate: 1 });
    const session = await openSession();
    expect((await submit(session.url, {})).status).toBe(303);
    const hits = await waitFor('two deliveries', () => {
      const found = received.filter((r) => r.event.data.object['checkout_session'] === session.id);
      return found.length >= 2 ? found : undefined;
    });
    await sleep(QUIET_MS);
    expect(received.filter((r) => r.event.data.object['checkout_session'] === session.id)).toHaveLength(2);
    expect(hits[0]!.event.id).toBe(hits[1]!.event.id);
    expect(hits.every(verified)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('checkout session API', () => {
  it('gets a session: open without a token, then complete with its pm_ token', async () => {
    const session = await openSession();
    const open = await api('GET', `/v1/checkout_sessions/${session.id}`);
    expect(open.status).toBe(200);
    expect(open.body).toEqual({
      id: session.id,
      object: 'checkout_session',
      url: session.url,
      status: 'open',
      client_reference: session.client_reference,
      return_url: 'https://merchant.example/return?x=1',
      payment_method: null,
      created: expect.any(Number),
    });
    expect((await submit(session.url, {})).status).toBe(303);
    const complete = await api('GET', `/v1/checkout_sessions/${session.id}`);
    expect(complete.body).toMatchObject({ status: 'complete', payment_method: expect.stringMatching(/^pm_[0-9a-f]+$/) });
  });

  it('answers 404 resource_missing for an unknown session and 401 without the API key', async () => {
    const missing = await api('GET', `/v1/checkout_sessions/${uid('cs')}`);
    expect(missing.status).toBe(404);
    expect(missing.body['error']).toMatchObject({ type: 'invalid_request_error', code: 'resource_missing', param: 'id' });
    const session = await openSession();
    const res = await fetch(`${base_url}/v1/checkout_sessions/${session.id}`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as Json)['error']).toMatchObject({ code: 'invalid_api_key' });
  });
});

describe('3-D Secure', () => {
  async function authenticate(charge_id: string, fields: [string, string][]): Promise<{ status: number; html: string }> {
    const res = await fetch(`${base_url}/3ds/${charge_id}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
      redirect: 'manual',
    });
    return { status: res.status, html: await res.text() };
  }

  async function requiresAction(): Promise<string> {
    const answer = await charge('tok_requires_action');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'requires_action', version: 1 });
    return answer.body['id'] as string;
  }

  it('renders a challenge page with approve and fail buttons posting back to itself', async () => {
    const id = await requiresAction();
    const res = await fetch(`${base_url}/3ds/${id}`);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html).toContain(`<form method="post" action="/3ds/${id}">`);
    expect(html).toMatch(/<button type="submit" id="approve" name="action" value="approve">/);
    expect(html).toMatch(/<button type="submit" id="fail" name="action" value="fail">/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('approve: the charge succeeds at version 2 and a signed charge.succeeded is sent', async () => {
    const id = await requiresAction();
    const decided = await authenticate(id, [['action', 'approve']]);
    expect(decided.status).toBe(200);
    expect(decided.html).toContain('Authentication complete');
    const fetched = await api('GET', `/v1/charges/${id}`);
    expect(fetched.body).toMatchObject({ status: 'succeeded', version: 2, failure_code: null, next_action: null });
    const listed = await events({ object_id: id });
    expect(listed.map((e) => e['type'])).toEqual(['charge.requires_action', 'charge.succeeded']);
    const hook = await waitFor('charge.succeeded', () => receivedFor(id, 'charge.succeeded')[0]);
    expect(verified(hook)).toBe(true);
    expect(hook.event.data.object).toMatchObject({ status: 'succeeded', version: 2, next_action: null, updated: expect.any(Number) });
    const first = receivedFor(id, 'charge.requires_action')[0];
    expect(first?.event.data.object).toMatchObject({ version: 1, next_action: { type: 'redirect_to_url', redirect_url: `${base_url}/3ds/${id}` } });
  });

  it('fail: the charge fails with authentication_failed, and a second answer is refused with 409', async () => {
    const id = await requiresAction();
    expect((await authenticate(id, [['action', 'fail']])).status).toBe(200);
    const failed = { status: 'failed', version: 2, failure_code: 'authentication_failed', failure_message: 'The card holder failed 3-D Secure authentication.' };
    expect((await api('GET', `/v1/charges/${id}`)).body).toMatchObject(failed);
    expect((await events({ object_id: id })).map((e) => e['type'])).toEqual(['charge.requires_action', 'charge.failed']);
    const again = await authenticate(id, [['action', 'approve']]);
    expect(again.status).toBe(409);
    expect(again.html).toContain('Nothing to authenticate');
    expect((await api('GET', `/v1/charges/${id}`)).body).toMatchObject(failed);
    expect(await events({ object_id: id })).toHaveLength(2);
  });

  it('decides once when approve and fail race', async () => {
    const id = await requiresAction();
    const answers = await Promise.all([authenticate(id, [['action', 'approve']]), authenticate(id, [['action', 'fail']])]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect((await api('GET', `/v1/charges/${id}`)).body).toMatchObject({ version: 2 });
    expect(await events({ object_id: id })).toHaveLength(2);
  });

  it('answers 404 for an unknown charge', async () => {
    const unknown = uid('ch');
    expect((await fetch(`${base_url}/3ds/${unknown}`)).status).toBe(404);
    const post = await authenticate(unknown, [['action', 'approve']]);
    expect(post.status).toBe(404);
    expect(post.html).toContain('No such charge.');
  });

  it.each([
    ['no action', []],
    ['an unknown action', [['action', 'maybe']]],
    ['a repeated action', [['action', 'approve'], ['action', 'fail']]],
  ] as [string, [string, string][]][])('answers 400 for %s and leaves the charge waiting', async (_label, fields) => {
    const id = await requiresAction();
    const answer = await authenticate(id, fields);
    expect(answer.status).toBe(400);
    expect(answer.html).toContain('id="approve"');
    expect((await api('GET', `/v1/charges/${id}`)).body).toMatchObject({ status: 'requires_action', version: 1 });
  });

  it('is never decided by the review scheduler', async () => {
    const id = await requiresAction();
    await sleep(REVIEW_DELAY_MS + QUIET_MS);
    expect((await api('GET', `/v1/charges/${id}`)).body).toMatchObject({ status: 'requires_action', version: 1 });
    expect((await events({ object_id: id })).map((e) => e['type'])).toEqual(['charge.requires_action']);
  });
});

describe('webhook knobs', () => {
  it('sets reorder_hold_ms and shows it with the other knobs', async () => {
    const set = await postKnobs({ reorder_hold_ms: 1_500 });
    expect(set).toEqual({ status: 200, body: expect.objectContaining({ reorder_hold_ms: 1_500, reorder: false }) });
    const res = await fetch(`${base_url}/_sandbox/webhooks`);
    expect(await res.json()).toEqual({ duplicate_rate: 0, drop_rate: 0, reorder: false, reorder_hold_ms: 1_500, delay_ms: 0 });
  });

  it.each([
    ['a negative hold', -1],
    ['a fraction', 1.5],
    ['more than ten minutes', 600_001],
    ['a string', '300'],
  ])('rejects %s with 400 parameter_invalid', async (_label, reorder_hold_ms) => {
    const answer = await postKnobs({ reorder_hold_ms });
    expect(answer.status).toBe(400);
    expect(answer.body['error']).toMatchObject({ code: 'parameter_invalid', param: 'reorder_hold_ms' });
  });
});

describe('webhook reorder', () => {
  const reorder_database_url = `${database_url}_reorder`;
  let reorder_sandbox: Service;
  let reorder_base_url: string;

  beforeAll(async () => {
    await ensureDatabase(reorder_database_url);
    ({ service: reorder_sandbox, base_url: reorder_base_url } = await spawnSandbox(`${LOG_NAME}-reorder`, {
      SANDBOX_IGNORE_IDEMPOTENCY: process.env.SANDBOX_IGNORE_IDEMPOTENCY ?? '0',
      SANDBOX_DATABASE_URL: reorder_database_url,
      SANDBOX_API_KEY: API_KEY,
      SANDBOX_WEBHOOK_URL: `${receiver_url}/reorder`,
      SANDBOX_WEBHOOK_SECRET: WEBHOOK_SECRET,
      SANDBOX_REVIEW_DELAY_MS: String(REORDER_REVIEW_DELAY_MS),
      SANDBOX_WEBHOOK_REORDER: '1',
      SANDBOX_WEBHOOK_REORDER_HOLD_MS: String(REORDER_HOLD_MS),
    }));
  }, STARTUP_TIMEOUT_MS * 2);

  afterAll(async () => {
    await reorder_sandbox?.stop();
    await dropDatabase(reorder_database_url);
  }, STARTUP_TIMEOUT_MS);

  it('delivers a review charge\'s charge.succeeded (version 2) before its charge.pending (version 1)', async () => {
    const knobs = await fetch(`${reorder_base_url}/_sandbox/webhooks`);
    expect(await knobs.json()).toMatchObject({ reorder: true, reorder_hold_ms: REORDER_HOLD_MS });
    const started_ms = Date.now();
    const answer = await charge('tok_review_approve', reorder_base_url);
    expect(answer.body).toMatchObject({ status: 'pending', version: 1 });
    const id = answer.body['id'] as string;
    const hooks = await waitFor('both webhooks', () => {
      const found = receivedFor(id);
      return found.length >= 2 ? found : undefined;
    });
    // Both were held: nothing arrives before the decision plus the hold.
    expect(Date.now() - started_ms).toBeGreaterThanOrEqual(REORDER_REVIEW_DELAY_MS + REORDER_HOLD_MS - 100);
    expect(hooks.map((r) => [r.event.type, r.event.data.object['version']])).toEqual([
      ['charge.succeeded', 2],
      ['charge.pending', 1],
    ]);
    expect(hooks.every((r) => r.path === '/reorder' && verified(r))).toBe(true);
  });
});
