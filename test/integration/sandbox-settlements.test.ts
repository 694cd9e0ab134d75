import { randomBytes } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, type Knex } from '../../src/db';
import type { ChargeJson } from '../../packages/sandbox-psp/src/app';
import { spawnSandbox, STARTUP_TIMEOUT_MS, uid, type ErrorJson, type Json, type SpawnedSandbox } from '../support/sandbox';

/**
 * The sandbox PSP's settlement file (GET /v1/settlements/:date) and its knobs: a real process,
 * a database of its own, real HTTP.
 */

jest.setTimeout(30_000);

const API_KEY = 'psk_test_settlements';
const HEADER = 'psp_id,idempotency_key,order_reference,type,amount,currency,fee,net,created_at,settled_at';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MS_PER_DAY = 86_400_000;
const DEFAULT_KNOBS = {
  extra_line: false,
  drop_order_reference: null,
  amount_delta_order_reference: null,
  amount_delta_minor: null,
  currency_order_reference: null,
  currency: null,
  duplicate_order_reference: null,
  late_order_reference: null,
  allow_open_day: false,
  bad_summary: false,
};

const database_url = `postgres://postgres@127.0.0.1:5432/sandbox_settlements_${randomBytes(6).toString('hex')}`;

let sandbox: SpawnedSandbox;
let db: Knex;

beforeAll(async () => {
  await ensureDatabase(database_url);
  sandbox = await spawnSandbox('sandbox-settlements-test', { SANDBOX_DATABASE_URL: database_url, SANDBOX_API_KEY: API_KEY });
  db = createDb(database_url, 2);
}, STARTUP_TIMEOUT_MS);

afterEach(async () => {
  if (sandbox !== undefined) await setKnobs({ ...DEFAULT_KNOBS, allow_open_day: true });
});

afterAll(async () => {
  await db?.destroy();
  await sandbox?.service.stop();
  await dropDatabase(database_url);
}, STARTUP_TIMEOUT_MS);

// ---------------------------------------------------------------------------------------------
// Helpers.

function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const today = (): string => utcDate(Date.now());
const yesterday = (): string => utcDate(Date.now() - MS_PER_DAY);

function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { Authorization: `Bearer ${API_KEY}`, ...extra };
}

async function postJson(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${sandbox.base_url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function charge(payment_method: string, amount: string, overrides: Json = {}): Promise<ChargeJson> {
  const body = { amount, currency: 'USD', payment_method, order_reference: uid('ord'), ...overrides };
  const answer = await postJson('/v1/charges', body, authHeaders({ 'Idempotency-Key': uid('idem') }));
  const json = (answer.body['error'] as ErrorJson | undefined)?.charge ?? answer.body;
  return json as unknown as ChargeJson;
}

async function refund(charge_id: string): Promise<void> {
  const answer = await postJson(`/v1/charges/${charge_id}/refund`, {}, authHeaders({ 'Idempotency-Key': uid('idem') }));
  expect(answer).toMatchObject({ status: 200, body: { status: 'refunded' } });
}

async function postKnobs(knobs: unknown): Promise<{ status: number; body: Json }> {
  return await postJson('/_sandbox/settlements', knobs);
}

async function setKnobs(knobs: Json): Promise<void> {
  expect((await postKnobs(knobs)).status).toBe(200);
}

interface Line {
  psp_id: string;
  idempotency_key: string;
  order_reference: string;
  type: string;
  amount: string;
  currency: string;
  fee: string;
  net: string;
  created_at: string;
  settled_at: string;
}

interface SettlementFile {
  lines: Line[];
  summary: string[];
}

async function fetchFile(date: string, headers: Record<string, string> = authHeaders()): Promise<Response> {
  return await fetch(`${sandbox.base_url}/v1/settlements/${date}`, { headers });
}

/** Parses the file and checks its shape; the summary is checked against the lines unless told. */
async function settlement(date: string, { summary_consistent = true } = {}): Promise<SettlementFile> {
  const res = await fetchFile(date);
  const text = await res.text();
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
  expect(text.endsWith('\n')).toBe(true);
  const rows = text.slice(0, -1).split('\n');
  expect(rows[0]).toBe(HEADER);
  const summary = (rows[rows.length - 1] ?? '').split(',');
  expect(summary[0]).toBe('#summary');
  const keys = HEADER.split(',') as (keyof Line)[];
  const lines = rows.slice(1, -1).map((row) => {
    const fields = row.split(',');
    expect(fields).toHaveLength(keys.length);
    return Object.fromEntries(keys.map((k, i) => [k, fields[i]])) as unknown as Line;
  });
  for (const line of lines) {
    expect(line.created_at).toMatch(ISO_UTC);
    expect(line.settled_at).toMatch(ISO_UTC);
    expect(line.amount).toMatch(/^-?\d+$/);
    expect(BigInt(line.net)).toBe(BigInt(line.amount) - BigInt(line.fee));
  }
  if (summary_consistent) expect(summary.slice(1)).toEqual(summaryOf(lines));
  return { lines, summary };
}

function summaryOf(lines: Line[]): string[] {
  const sum = (k: 'amount' | 'fee' | 'net'): string => lines.reduce((s, l) => s + BigInt(l[k]), 0n).toString();
  return [String(lines.length), sum('amount'), sum('fee'), sum('net')];
}

function linesOf(file: SettlementFile, order_reference: string): Line[] {
  return file.lines.filter((l) => l.order_reference === order_reference);
}

function otherLines(file: SettlementFile, order_reference: string): Line[] {
  return file.lines.filter((l) => l.order_reference !== order_reference);
}

async function errorOf(res: Response): Promise<ErrorJson> {
  return ((await res.json()) as { error: ErrorJson }).error;
}

/** Two settled orders to aim knobs at, and the file as it is without knobs. */
async function knobTargets(): Promise<{ target: ChargeJson; bystander: ChargeJson; before: SettlementFile }> {
  const target = await charge('tok_success', '1000');
  const bystander = await charge('tok_success', '2000');
  expect([target.status, bystander.status]).toEqual(['succeeded', 'succeeded']);
  await setKnobs({ allow_open_day: true });
  return { target, bystander, before: await settlement(today()) };
}

// ---------------------------------------------------------------------------------------------

describe('settlement file', () => {
  it('has a line per succeeded charge and per refund, none for charges that moved no money', async () => {
    const a = await charge('tok_success', '1000');
    const b = await charge('tok_success', '2500');
    const declined = await charge('tok_decline', '3000');
    const refunded = await charge('tok_success', '4000');
    const held = await charge('tok_success', '5000', { capture: false });
    expect([a.status, b.status, declined.status, refunded.status, held.status]).toEqual([
      'succeeded',
      'succeeded',
      'failed',
      'succeeded',
      'authorized',
    ]);
    await refund(refunded.id);
    await setKnobs({ allow_open_day: true });

    const file = await settlement(today());
    const pick = (l: Line): Partial<Line> => ({
      psp_id: l.psp_id,
      idempotency_key: l.idempotency_key,
      type: l.type,
      amount: l.amount,
      currency: l.currency,
      fee: l.fee,
      net: l.net,
      created_at: l.created_at,
    });
    const created = (c: ChargeJson): string => new Date(c.created * 1000).toISOString().slice(0, 19);
    // 2.9 % + 30, half to even: 1000 → 59, 2500 → 72.5 → 72 + 30, 4000 → 146.
    expect(linesOf(file, a.order_reference).map(pick)).toEqual([
      expect.objectContaining({ psp_id: a.id, idempotency_key: a.idempotency_key, type: 'charge', amount: '1000', currency: 'USD', fee: '59', net: '941' }),
    ]);
    expect(linesOf(file, b.order_reference).map(pick)).toEqual([
      expect.objectContaining({ psp_id: b.id, type: 'charge', amount: '2500', fee: '102', net: '2398' }),
    ]);
    const refunded_lines = linesOf(file, refunded.order_reference);
    expect(refunded_lines.map(pick)).toEqual([
      expect.objectContaining({ psp_id: refunded.id, type: 'charge', amount: '4000', fee: '146', net: '3854' }),
      expect.objectContaining({ psp_id: refunded.id, type: 'refund', amount: '-4000', fee: '0', net: '-4000' }),
    ]);
    expect(refunded_lines[0]?.created_at.slice(0, 19)).toBe(created(refunded));
    expect((refunded_lines[1]?.settled_at ?? '') >= (refunded_lines[0]?.settled_at ?? 'z')).toBe(true);
    expect(linesOf(file, declined.order_reference)).toEqual([]);
    expect(linesOf(file, held.order_reference)).toEqual([]);
    for (const line of file.lines) expect(line.settled_at.slice(0, 10)).toBe(today());

    // Captured later, the authorization settles as a capture line.
    const answer = await postJson(`/v1/charges/${held.id}/capture`, {}, authHeaders({ 'Idempotency-Key': uid('idem') }));
    expect(answer).toMatchObject({ status: 200, body: { status: 'succeeded' } });
    const after = await settlement(today());
    expect(linesOf(after, held.order_reference).map(pick)).toEqual([expect.objectContaining({ psp_id: held.id, type: 'capture', amount: '5000', fee: '175', net: '4825' })]);
  });

  it('has only the header and a zero summary for a past day without movements', async () => {
    const res = await fetchFile('2001-02-03');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`${HEADER}\n#summary,0,0,0,0\n`);
  });

  it('refuses today while the day is open, and any future day even with allow_open_day', async () => {
    await setKnobs({ allow_open_day: false });
    const open = await fetchFile(today());
    expect(open.status).toBe(400);
    expect(await errorOf(open)).toMatchObject({ code: 'settlement_not_ready', param: 'date' });
    await setKnobs({ allow_open_day: true });
    for (const date of [utcDate(Date.now() + MS_PER_DAY), '2999-01-01']) {
      const future = await fetchFile(date);
      expect(future.status).toBe(400);
      expect(await errorOf(future)).toMatchObject({ code: 'settlement_not_ready', param: 'date' });
    }
  });

  it.each(['2026-02-30', '2026-13-01', '2026-1-01', '20260101', 'yesterday', '2026-01-01T00:00:00Z'])(
    'answers 400 parameter_invalid for the date %p',
    async (date) => {
      const res = await fetchFile(encodeURIComponent(date));
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({ code: 'parameter_invalid', param: 'date' });
    },
  );

  it('answers 401 without a valid API key', async () => {
    const variants: Record<string, string>[] = [{}, { Authorization: 'Bearer psk_wrong' }];
    for (const headers of variants) {
      const res = await fetchFile(yesterday(), headers);
      expect(res.status).toBe(401);
      expect(await errorOf(res)).toMatchObject({ code: 'invalid_api_key' });
    }
  });
});

describe('settlement knobs', () => {
  it('reads the defaults, takes changes and refuses bad values', async () => {
    await setKnobs(DEFAULT_KNOBS);
    const read = await fetch(`${sandbox.base_url}/_sandbox/settlements`);
    expect(await read.json()).toEqual(DEFAULT_KNOBS);
    const changed = await postKnobs({ currency_order_reference: 'ord_x', currency: 'EUR', extra_line: true });
    expect(changed).toEqual({ status: 200, body: { ...DEFAULT_KNOBS, currency_order_reference: 'ord_x', currency: 'EUR', extra_line: true } });
    for (const bad of [
      { nope: true },
      { extra_line: 'yes' },
      { currency: 'eur' },
      { amount_delta_minor: 5 },
      { amount_delta_minor: '0' },
      { amount_delta_minor: '-012' },
      { drop_order_reference: '' },
      { allow_open_day: null },
      [],
    ]) {
      const answer = await postKnobs(bad);
      expect(answer.status).toBe(400);
      expect(answer.body['error']).toMatchObject({ code: 'parameter_invalid' });
    }
    const after = await fetch(`${sandbox.base_url}/_sandbox/settlements`);
    expect(await after.json()).toMatchObject({ currency_order_reference: 'ord_x', currency: 'EUR', extra_line: true });
  });

  it('extra_line adds one charge line for a charge that was never made', async () => {
    const { before } = await knobTargets();
    await setKnobs({ extra_line: true });
    const after = await settlement(today());
    expect(after.lines.slice(0, -1)).toEqual(before.lines);
    const extra = after.lines[after.lines.length - 1];
    expect(extra).toMatchObject({ type: 'charge', currency: 'USD' });
    expect(extra?.psp_id).toMatch(/^ch_[0-9a-f]+$/);
    expect(extra?.idempotency_key).toMatch(/^ord_unknown_/);
    expect(before.lines.map((l) => l.psp_id)).not.toContain(extra?.psp_id);
    const listed = await fetch(`${sandbox.base_url}/v1/charges/${extra?.psp_id}`, { headers: authHeaders() });
    expect(listed.status).toBe(404);
  });

  it('drop_order_reference leaves that order out', async () => {
    const { target, before } = await knobTargets();
    await setKnobs({ drop_order_reference: target.order_reference });
    const after = await settlement(today());
    expect(linesOf(before, target.order_reference)).toHaveLength(1);
    expect(after.lines).toEqual(otherLines(before, target.order_reference));
  });

  it('amount_delta changes that line amount (and its net), nothing else', async () => {
    const { target, before } = await knobTargets();
    await setKnobs({ amount_delta_order_reference: target.order_reference, amount_delta_minor: '-7' });
    const after = await settlement(today());
    expect(otherLines(after, target.order_reference)).toEqual(otherLines(before, target.order_reference));
    const [was] = linesOf(before, target.order_reference);
    expect(linesOf(after, target.order_reference)).toEqual([{ ...was, amount: '993', net: '934' }]);
  });

  it('currency changes that line currency, nothing else', async () => {
    const { target, before } = await knobTargets();
    await setKnobs({ currency_order_reference: target.order_reference, currency: 'EUR' });
    const after = await settlement(today());
    expect(otherLines(after, target.order_reference)).toEqual(otherLines(before, target.order_reference));
    const [was] = linesOf(before, target.order_reference);
    expect(linesOf(after, target.order_reference)).toEqual([{ ...was, currency: 'EUR' }]);
  });

  it('duplicate_order_reference emits that line twice, counted twice in the summary', async () => {
    const { target, before } = await knobTargets();
    await setKnobs({ duplicate_order_reference: target.order_reference });
    const after = await settlement(today());
    expect(otherLines(after, target.order_reference)).toEqual(otherLines(before, target.order_reference));
    const [was] = linesOf(before, target.order_reference);
    expect(linesOf(after, target.order_reference)).toEqual([was, was]);
    expect(after.summary[1]).toBe(String(before.lines.length + 1));
  });

  it('late_order_reference moves that line to the next day file', async () => {
    const { target, bystander } = await knobTargets();
    // The only way to have movements yesterday: date this order's back by a day.
    await db('sandbox_event')
      .where({ object_id: target.id })
      .update({ created_at: db.raw("created_at - interval '1 day'") });
    const yesterday_before = await settlement(yesterday());
    const today_before = await settlement(today());
    const [moved] = linesOf(yesterday_before, target.order_reference);
    expect(moved?.settled_at.slice(0, 10)).toBe(yesterday());
    expect(linesOf(today_before, target.order_reference)).toEqual([]);
    expect(linesOf(today_before, bystander.order_reference)).toHaveLength(1);

    await setKnobs({ late_order_reference: target.order_reference });
    const yesterday_after = await settlement(yesterday());
    const today_after = await settlement(today());
    expect(yesterday_after.lines).toEqual(otherLines(yesterday_before, target.order_reference));
    expect(linesOf(today_after, target.order_reference)).toEqual([moved]);
    expect(otherLines(today_after, target.order_reference)).toEqual(today_before.lines);
  });

  it('bad_summary makes the summary disagree with the lines; without it the summary matches', async () => {
    const { before } = await knobTargets();
    expect(before.summary.slice(1)).toEqual(summaryOf(before.lines));
    await setKnobs({ bad_summary: true });
    const after = await settlement(today(), { summary_consistent: false });
    expect(after.lines).toEqual(before.lines);
    expect(after.summary.slice(1)).not.toEqual(summaryOf(after.lines));
  });
});

describe('settlement paging', () => {
  it('streams a day of more movements than one page, each once, in order', async () => {
    // Straight into the database: 2,500 settled charges on a past day, in batches of 1,000 per
    // page on the server. Microsecond timestamps, and runs of equal ones, test the cursor.
    const date = '2001-03-04';
    const count = 2_500;
    const prefix = `pg_${randomBytes(4).toString('hex')}`;
    await db.raw(
      `insert into sandbox_charge (id, idempotency_key, request_hash, order_reference, amount_minor, currency,
         payment_method, status, fee_minor, created_at, updated_at)
       select ?::text || '_ch_' || lpad(i::text, 5, '0'), ?::text || '_key_' || i, 'h', ?::text || '_ord_' || i,
         100 + i, 'USD', 'tok_success', 'succeeded', 1,
         timestamptz '2001-03-04T00:00:00Z', timestamptz '2001-03-04T00:00:00Z'
       from generate_series(1, ?) as i`,
      [prefix, prefix, prefix, count],
    );
    await db.raw(
      `insert into sandbox_event (id, type, object_id, payload, status, created_at)
       select ?::text || '_ev_' || lpad(i::text, 5, '0'), 'charge.succeeded', ?::text || '_ch_' || lpad(i::text, 5, '0'),
         '{}', 'no_endpoint', timestamptz '2001-03-04T00:00:00Z' + (i / 7) * interval '1 microsecond'
       from generate_series(1, ?) as i`,
      [prefix, prefix, count],
    );
    await setKnobs({ allow_open_day: false });
    const file = await settlement(date);
    expect(file.lines).toHaveLength(count);
    expect(file.lines.map((l) => l.psp_id)).toEqual(
      Array.from({ length: count }, (_, i) => `${prefix}_ch_${String(i + 1).padStart(5, '0')}`),
    );
    const expected_amount = Array.from({ length: count }, (_, i) => 101 + i).reduce((s, n) => s + n, 0);
    expect(file.summary.slice(1)).toEqual([String(count), String(expected_amount), String(count), String(expected_amount - count)]);
  });
});
