import { startAsyncStack, type AsyncStack } from '../support/async-stack';
import { checkoutBody, createPayment, expectForwardOnly, sequenceOf, statusHistory, until } from '../support/flows';
import { call, settled, waitForPayment } from '../support/stack';
import { ROOT, tsCommand } from '../../src/dev/run-ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Failure classes against a stack of its own whose sandbox injects faults: Retry-After honoured,
 * a timeout after the PSP charged ends with one charge, declines are not retried, and exhausted
 * retries park an order (a dead letter) until an operator retries or cancels it. PSP calls here
 * get 3 attempts and the worker waits 1.5 s for the PSP.
 */
const ADMIN_KEY = 'admin_test_key_0123456789';
const FAULTS_OFF = { error_rate: 0, fail_next: 0, retry_after_s: 1, rate_limit_per_s: 0, timeout_after_charge_rate: 0, timeout_next: 0, timeout_hold_ms: 30_000, latency_ms: 0 };

let stack: AsyncStack;
beforeAll(async () => {
  stack = await startAsyncStack('failures', {
    api_env: { PSP_CALL_ATTEMPTS_MAX: '3', ADMIN_API_KEY: ADMIN_KEY, PSP_POLL_INITIAL_MS: '1000', PSP_POLL_MAX_MS: '1000' },
    worker_env: { PSP_TIMEOUT_MS: '1500' },
    sandbox_env: { SANDBOX_WEBHOOK_DROP_RATE: '1' },
  });
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  await stack.setFaults(FAULTS_OFF);
});

interface Attempt {
  outcome: string;
  at_ms: number;
}

async function attempts(order_id: string): Promise<Attempt[]> {
  const res = await fetch(`${stack.psp_url}/_sandbox/requests?order_reference=${order_id}`);
  return ((await res.json()) as { data: Attempt[] }).data;
}

async function chargesAt(order_id: string): Promise<{ charges_total: number; charges_succeeded: number }> {
  return (await (await fetch(`${stack.psp_url}/_sandbox/stats?order_reference=${order_id}`)).json()) as { charges_total: number; charges_succeeded: number };
}

async function ops(order_id: string, action: string, opts: { key?: string; reason?: string } = {}) {
  return await call(`${stack.api.url}/v1/ops/orders/${order_id}/${action}`, { key: opts.key ?? ADMIN_KEY, body: opts.reason === undefined ? {} : { reason: opts.reason } });
}

it('a 503 with Retry-After: 7 delays the next attempt by 7-9 s, then the charge succeeds once', async () => {
  await stack.setFaults({ fail_next: 1, retry_after_s: 7 });
  const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_success' }));
  const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
  expect(done.status).toBe('succeeded');
  const [first, second, ...rest] = await attempts(done.orders[0].id);
  expect([first?.outcome, second?.outcome, rest.length]).toEqual(['fault_503', 'ok', 0]);
  const gap_ms = (second?.at_ms ?? 0) - (first?.at_ms ?? 0);
  expect(gap_ms).toBeGreaterThanOrEqual(7_000);
  expect(gap_ms).toBeLessThanOrEqual(9_000);
});

it('a timeout after the PSP charged: the retry asks the PSP by key and finds it, one charge in all', async () => {
  await stack.setFaults({ timeout_next: 1, timeout_hold_ms: 5_000 });
  const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_success' }));
  const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
  expect(done.status).toBe('succeeded');
  const order_id = done.orders[0].id as string;
  // The sandbox runs in ignore-idempotency mode: a second POST would have made a second charge.
  expect(await chargesAt(order_id)).toEqual(expect.objectContaining({ charges_total: 1, charges_succeeded: 1 }));
  expect((await attempts(order_id)).map((a) => a.outcome)).toEqual(['timeout_after_commit']);
});

it('a decline is an outcome, not an error: one attempt, no retry', async () => {
  const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_decline' }));
  const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
  expect(done.status).toBe('failed');
  expect((await attempts(done.orders[0].id)).map((a) => a.outcome)).toEqual(['declined']);
});

describe('dead letters', () => {
  async function parked(): Promise<{ payment_id: string; order_id: string }> {
    await stack.setFaults({ fail_next: 3, retry_after_s: 0 });
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_success' }));
    const p = await waitForPayment(stack.api, stack.key, created.body.id, (x) => x.status === 'needs_attention', 30_000);
    expect(p.orders[0]).toMatchObject({ status: 'needs_attention', failure_code: 'retries_exhausted' });
    expect(p.orders[0].failure_message).toMatch(/psp_unavailable/);
    return { payment_id: created.body.id, order_id: p.orders[0].id };
  }

  it('exhausted retries park the order; an operator retry completes it with one charge', async () => {
    const { payment_id, order_id } = await parked();
    expect((await attempts(order_id)).map((a) => a.outcome)).toEqual(['fault_503', 'fault_503', 'fault_503']);
    const reply = await ops(order_id, 'retry');
    expect(reply.status).toBe(202);
    const done = await waitForPayment(stack.api, stack.key, payment_id, settled, 30_000);
    expect(done.status).toBe('succeeded');
    expect(await chargesAt(order_id)).toEqual(expect.objectContaining({ charges_total: 1, charges_succeeded: 1 }));
    const history = await statusHistory(stack.api.db, payment_id);
    expect(sequenceOf(history, order_id)).toEqual(['not_started', 'executing', 'needs_attention', 'executing', 'succeeded']);
    expect(sequenceOf(history, null)).toEqual(['processing', 'needs_attention', 'processing', 'succeeded']);
  });

  it('an operator cancel of a parked order that was never charged: canceled, nothing at the PSP', async () => {
    const { payment_id, order_id } = await parked();
    const reply = await ops(order_id, 'cancel', { reason: 'buyer asked us to stop' });
    expect(reply.status).toBe(202);
    const done = await waitForPayment(stack.api, stack.key, payment_id, settled, 30_000);
    expect(done).toMatchObject({ status: 'canceled' });
    expect(done.orders[0]).toMatchObject({ status: 'canceled', failure_code: 'canceled_by_operator', failure_message: 'buyer asked us to stop' });
    expect(await chargesAt(order_id)).toEqual(expect.objectContaining({ charges_total: 0 }));
  });

  it('a cancel after the PSP charged refunds it first', async () => {
    // The charge is pending review when the PSP goes down: polls fail until the order parks.
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_review_approve' }));
    const pending = await waitForPayment(stack.api, stack.key, created.body.id, (p) => p.status === 'pending', 20_000);
    const order_id = pending.orders[0].id as string;
    await stack.stopPsp();
    try {
      await waitForPayment(stack.api, stack.key, created.body.id, (p) => p.status === 'needs_attention', 30_000);
    } finally {
      await stack.startPsp();
    }
    // Back up, the PSP settles the review (approve): the money was taken.
    const charge = await until('the PSP approved the charge', async () => {
      const res = await fetch(`${stack.psp_url}/v1/charges/${pending.orders[0].psp_reference}`, { headers: { authorization: 'Bearer psk_test_sandbox' } });
      const json = (await res.json()) as { status: string };
      return json.status === 'succeeded' ? json : null;
    });
    expect(charge.status).toBe('succeeded');
    expect((await ops(order_id, 'cancel', { reason: 'parked too long' })).status).toBe(202);
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
    expect(done.orders[0]).toMatchObject({ status: 'canceled', failure_code: 'canceled_by_operator' });
    const after = (await (await fetch(`${stack.psp_url}/v1/charges/${pending.orders[0].psp_reference}`, { headers: { authorization: 'Bearer psk_test_sandbox' } })).json()) as { status: string };
    expect(after.status).toBe('refunded');
    // Nothing was booked for a charge that was given back.
    expect(await stack.api.db('ledger_transaction').where({ reference: `order:${order_id}:capture` })).toEqual([]);
    expectForwardOnly((await statusHistory(stack.api.db, created.body.id)).filter((r) => r.from_status !== 'needs_attention'));
  });

  it('refuses operator commands without the admin key, on unknown orders and on orders not parked', async () => {
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_success' }));
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
    const order_id = done.orders[0].id as string;
    expect((await ops(order_id, 'retry', { key: stack.key })).body.error.code).toBe('api_key_invalid');
    expect((await call(`${stack.api.url}/v1/ops/orders/${order_id}/retry`, { body: {} })).status).toBe(401);
    expect((await ops('ord_nope', 'retry')).status).toBe(404);
    const not_parked = await ops(order_id, 'cancel');
    expect(not_parked.status).toBe(409);
    expect(not_parked.body.error.code).toBe('order_not_parked');
    expect((await ops(order_id, 'frobnicate')).status).toBe(404);
    expect((await ops(order_id, 'retry', { reason: 'x'.repeat(501) })).status).toBe(400);
    const after = await waitForPayment(stack.api, stack.key, created.body.id, settled);
    expect(after.orders[0].status).toBe('succeeded');
  });

  it('payctl lists parked orders and refuses bad commands', async () => {
    const { order_id } = await parked();
    const run = promisify(execFile);
    const cmd = tsCommand('src/cli/payctl.ts');
    const payctl = async (args: string[]) => {
      try {
        const { stdout, stderr } = await run(cmd.command, [...cmd.args, ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: stack.database_url } });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const list = await payctl(['order', 'list', '--status', 'needs_attention']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(order_id);
    expect((await payctl(['order', 'list'])).code).toBe(2);
    expect((await payctl(['order', 'cancel', order_id])).code).toBe(2);
    expect((await payctl(['order', 'retry', 'ord_nope'])).code).toBe(2);
    const retried = await payctl(['order', 'retry', order_id, '--reason', 'PSP is back']);
    expect(retried.code).toBe(0);
    await until('the retried order succeeds', async () => (await stack.api.db('payment_order').where({ id: order_id, status: 'succeeded' }).first()) ?? null);
  });
});
