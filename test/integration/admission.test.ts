import { randomUUID } from 'node:crypto';
import { startAsyncStack, type AsyncStack } from '../support/async-stack';
import { checkoutBody, until } from '../support/flows';
import { call, newMerchant, settled, type Reply } from '../support/stack';

/**
 * Admission control on a stack of its own: the API process starts at most one
 * payment at a time (window 1) and the sandbox answers each call after 300 ms, so a burst of
 * sequential POSTs builds a backlog; the bounds are tiny (5 unstarted per merchant, 8 in all).
 */
const MERCHANT_BACKLOG_MAX = 5;
const BACKLOG_MAX = 8;
const BURST_MAX = 40; // POSTs per burst at most: a 429 is expected long before

let stack: AsyncStack;
const merchants: Record<'a' | 'b' | 'c' | 'd', string> = { a: '', b: '', c: '', d: '' };
/** Every payment answered 201 (by id), and its merchant's key. */
const accepted = new Map<string, string>();

beforeAll(async () => {
  stack = await startAsyncStack('admission', {
    api_env: {
      ADMISSION_WINDOW_MIN: '1',
      ADMISSION_WINDOW_INITIAL: '1',
      ADMISSION_WINDOW_MAX: '1',
      ADMISSION_BACKLOG_MAX: String(BACKLOG_MAX),
      ADMISSION_MERCHANT_BACKLOG_MAX: String(MERCHANT_BACKLOG_MAX),
    },
    sandbox_env: { SANDBOX_LATENCY_MS: '300' },
  });
  merchants.a = stack.key;
  for (const m of ['b', 'c', 'd'] as const) merchants[m] = await newMerchant(stack.api.db);
});

afterAll(async () => {
  await stack?.close();
});

interface Sent {
  key: string;
  idempotency_key: string;
  body: unknown;
  reply: Reply;
}

async function post(key: string, idempotency_key: string = randomUUID(), body: unknown = checkoutBody({ payment_method: 'tok_success', sellers: 2 })): Promise<Sent> {
  const reply = await call(`${stack.api.url}/v1/payments`, { key, idempotency_key, body });
  if (reply.status === 201) accepted.set(reply.body.id as string, key);
  return { key, idempotency_key, body, reply };
}

/** Sends one payment at a time, round-robin over `keys`, until one is refused; returns every answer. */
async function burstUntilRefused(keys: string[]): Promise<Sent[]> {
  const sent: Sent[] = [];
  for (let i = 0; i < BURST_MAX; i++) {
    const one = await post(keys[i % keys.length] ?? '');
    sent.push(one);
    if (one.reply.status !== 201) break;
  }
  return sent;
}

async function scrape(): Promise<string> {
  return await (await fetch(`${stack.api.url}/metrics`)).text();
}

function counterValue(text: string, bound: string): number {
  const m = new RegExp(`^payments_capacity_exceeded_total\\{[^}]*bound="${bound}"[^}]*\\} (\\S+)$`, 'm').exec(text);
  return Number(m?.[1] ?? 0);
}

function expectCapacityExceeded(reply: Reply): void {
  expect(reply.status).toBe(429);
  const retry_after = Number(reply.headers.get('retry-after'));
  expect(Number.isInteger(retry_after)).toBe(true);
  expect(retry_after).toBeGreaterThanOrEqual(1);
  expect(reply.body).toEqual({ error: { type: 'rate_limit', code: 'capacity_exceeded', message: expect.any(String) } });
  expect(reply.headers.get('idempotent-replayed')).toBeNull();
}

let burst_a: Sent[] = [];

describe('a burst past the backlog bounds', () => {
  it("answers 429 capacity_exceeded with Retry-After and the standard error body once one merchant's backlog is full", async () => {
    burst_a = await burstUntilRefused([merchants.a]);
    const refused = burst_a[burst_a.length - 1];
    expect(refused).toBeDefined();
    expectCapacityExceeded(refused?.reply as Reply);
    expect(burst_a.slice(0, -1).every((s) => s.reply.status === 201)).toBe(true);
    expect(burst_a.length - 1).toBeGreaterThanOrEqual(MERCHANT_BACKLOG_MAX);
    expect(counterValue(await scrape(), 'merchant_backlog')).toBeGreaterThanOrEqual(1);
  });

  it('replays an accepted key with its 201 during the overload, and leaves the refused key unclaimed', async () => {
    const first = burst_a[0] as Sent;
    const again = await post(merchants.a, first.idempotency_key, first.body);
    expect(again.reply.status).toBe(201);
    expect(again.reply.headers.get('idempotent-replayed')).toBe('true');
    expect(again.reply.body.id).toBe(first.reply.body.id);
    // Still over capacity: a new key is refused at the same moment.
    expectCapacityExceeded((await post(merchants.a)).reply);
    const refused = burst_a[burst_a.length - 1] as Sent;
    expect(await stack.api.db('idempotency_key').where({ key: refused.idempotency_key })).toEqual([]);
  });

  it("starts another merchant's payment, sent after the burst, before the burst's backlog has drained", async () => {
    const other = await post(merchants.b);
    expect(other.reply.status).toBe(201);
    const payment_id = other.reply.body.id as string;
    const started = await until('the other merchant’s payment started', async () => {
      const row = await stack.api.db('payment_event').where({ id: payment_id }).first();
      return row.workflow_started_at === null ? null : (row as { workflow_started_at: Date; created_at: Date });
    });
    // Payments of the burst, all accepted before it, still waiting when it started (round-robin, not FIFO).
    const overtaken = await stack.api.db('payment_event')
      .whereIn('id', burst_a.filter((s) => s.reply.status === 201).map((s) => s.reply.body.id as string))
      .where('created_at', '<', started.created_at)
      .where((q) => q.whereNull('workflow_started_at').orWhere('workflow_started_at', '>', started.workflow_started_at));
    expect(overtaken.length).toBeGreaterThanOrEqual(1);
  });

  it('answers 429 to every merchant past the global backlog bound', async () => {
    // Alternating two fresh merchants keeps each below its own bound until the global one is hit.
    const sent = await burstUntilRefused([merchants.c, merchants.d]);
    expectCapacityExceeded((sent[sent.length - 1] as Sent).reply);
    expect(counterValue(await scrape(), 'backlog')).toBeGreaterThanOrEqual(1);
  });
});

describe('after the burst', () => {
  it('drains the backlog: every accepted payment reaches a terminal status, started once, charged once per order', async () => {
    const db = stack.api.db;
    const ids = [...accepted.keys()];
    await until(
      'every accepted payment is terminal',
      async () => {
        const rows = (await db('payment_event').whereIn('id', ids).select('status')) as { status: string }[];
        return rows.length === ids.length && rows.every((r) => settled(r));
      },
      120_000,
    );
    // The stack's database holds the accepted payments and nothing else (a 429 writes nothing); none waits to start.
    expect(((await db('payment_event').pluck('id')) as string[]).sort()).toEqual([...ids].sort());
    expect(await db('payment_event').whereNull('workflow_started_at').pluck('id')).toEqual([]);
    for (const id of ids) {
      const row = await db('payment_event').where({ id }).first();
      expect(row.status).toBe('succeeded');
      let runs = 0;
      for await (const execution of stack.api.temporal.workflow.list({ query: `WorkflowId = '${row.workflow_id as string}'` })) if (execution.workflowId === row.workflow_id) runs++;
      expect(runs).toBe(1);
      for (const order_id of (await db('payment_order').where({ payment_id: id }).pluck('id')) as string[]) {
        const stats = (await (await fetch(`${stack.psp_url}/_sandbox/stats?order_reference=${order_id}`)).json()) as { charges_total: number };
        expect(stats.charges_total).toBe(1);
      }
    }
    const text = await scrape();
    expect(text).toMatch(/^payments_start_backlog\{[^}]*\} 0$/m);
    expect(text).toMatch(/^payments_start_lag_seconds_count\{[^}]*\} [1-9]\d*$/m);
  });

  it('accepts a key that was refused with 429 once capacity is back', async () => {
    const refused = burst_a[burst_a.length - 1] as Sent;
    const retried = await post(merchants.a, refused.idempotency_key, refused.body);
    expect(retried.reply.status).toBe(201);
    expect(retried.reply.headers.get('idempotent-replayed')).toBeNull();
    const done = await until('the retried payment is terminal', async () => {
      const row = await stack.api.db('payment_event').where({ id: retried.reply.body.id }).first();
      return settled(row) ? row : null;
    }, 60_000);
    expect(done.status).toBe('succeeded');
  });
});
