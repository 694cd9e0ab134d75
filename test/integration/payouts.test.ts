import { randomUUID } from 'node:crypto';
import { accountBalances } from '../../src/ledger/store';
import { hashApiKey } from '../../src/services/merchants';
import { startAsyncStack, type AsyncStack } from '../support/async-stack';
import { createPayment, createPayout, getPayout, putBankAccount, until } from '../support/flows';
import type { CreatePayoutRequest } from '../support/api-client';
import { keepHistory } from '../support/histories';
import { call, settled, waitForPayment } from '../support/stack';

/**
 * Pay-outs on a stack of its own (its own payments database, so a run
 * sees only this suite's sellers, and its own sandbox, which counts payouts per seller reference
 * in its ignore-idempotency mode: a duplicate payout would show). Payouts decide in 300 ms and
 * are polled from 500 ms.
 */
let stack: AsyncStack;
let merchant_id: string;
const POLL = { PSP_POLL_INITIAL_MS: '500', PSP_POLL_MAX_MS: '1000' };
beforeAll(async () => {
  stack = await startAsyncStack('payouts', { api_env: POLL, worker_env: POLL, sandbox_env: { SANDBOX_PAYOUT_DELAY_MS: '300', SANDBOX_IGNORE_IDEMPOTENCY: '1' } });
  merchant_id = (await stack.api.db('api_key').where({ key_hash: hashApiKey(stack.key) }).first()).merchant_id;
});
afterAll(async () => {
  await stack?.close();
});

async function sale(orders: { seller_id: string; amount: string }[]) {
  const created = await createPayment(stack.api.url, stack.key, { buyer: { id: `b_${randomUUID()}` }, currency: 'USD', orders, payment_method: 'tok_success' });
  expect(created.status).toBe(201);
  const done = await waitForPayment(stack.api, stack.key, created.body.id, (p) => settled(p) && p.orders.every((o: { ledger_updated: boolean }) => o.ledger_updated));
  expect(done.status).toBe('succeeded');
  return done;
}

async function bankAccount(seller_id: string, account_number = '000123456789') {
  return await putBankAccount(stack.api.url, stack.key, seller_id, account_number);
}

async function balanceOf(seller_id: string) {
  return (await call(`${stack.api.url}/v1/balances?seller_id=${seller_id}`, { key: stack.key })).body.data[0];
}

async function paidPayoutsOf(seller_id: string, count: number) {
  return await until(`${count} paid payout(s) of ${seller_id}`, async () => {
    const rows = await stack.api.db('payout').where({ seller_id });
    return rows.length === count && rows.every((r) => r.status === 'paid') ? rows : null;
  });
}

async function pspPayoutsOf(seller_id: string): Promise<number> {
  const stats = await fetch(`${stack.psp_url}/_sandbox/payouts/stats?reference=${encodeURIComponent(`${merchant_id}:${seller_id}`)}`);
  return ((await stats.json()) as { payouts_total: number }).payouts_total;
}

const A = `seller_a_${randomUUID()}`;
const B = `seller_b_${randomUUID()}`;

describe('the daily payout run', () => {
  it('pays each seller exactly their available balance once, even when the run is triggered twice', async () => {
    await sale([{ seller_id: A, amount: '10.00' }, { seller_id: B, amount: '5.00' }]);
    for (const seller of [A, B]) expect(await bankAccount(seller)).toMatchObject({ status: 200, body: { seller_id: seller, last4: '6789' } });
    const stored = await stack.api.db('seller_bank_account').where({ seller_id: A }).first();
    expect(JSON.stringify(stored)).not.toContain('000123456789');

    const schedule = stack.api.temporal.schedule.getHandle(`payouts-daily-${stack.api.task_queue}`);
    expect((await schedule.describe()).action).toMatchObject({ workflowType: 'PayoutRunWorkflow' });
    await schedule.trigger();
    const [a] = await paidPayoutsOf(A, 1);
    const [b] = await paidPayoutsOf(B, 1);
    // 3 % commission: A is owed 9.70, B 4.85 — all of it, once.
    expect([a.amount_minor, b.amount_minor]).toEqual(['970', '485']);
    // The same day again: the run finds its payouts, starts nothing new.
    await schedule.trigger();
    const runs = await until('two scheduled runs', async () => {
      const recent = (await schedule.describe()).info.recentActions;
      return recent.length >= 2 ? recent : null;
    });
    for (const r of runs) await stack.api.temporal.workflow.getHandle(r.action.workflow.workflowId).result();
    await keepHistory(stack.api.temporal, runs[0]!.action.workflow.workflowId, 'payout-v1', 'run.payout.json');
    await keepHistory(stack.api.temporal, a.workflow_id, 'payout-v1', 'paid.payout.json');
    expect(await stack.api.db('payout').whereIn('seller_id', [A, B])).toHaveLength(2);
    expect(await pspPayoutsOf(A)).toBe(1);
    expect(await pspPayoutsOf(B)).toBe(1);
    expect(await balanceOf(A)).toMatchObject({ available: '0.00', negative_balance: '0.00' });
    const [clearing] = await accountBalances(stack.api.db, 'seller_payout_clearing', 'USD');
    expect(clearing?.posted_minor).toBe(0n);
    const listed = (await call(`${stack.api.url}/v1/payouts?seller_id=${A}`, { key: stack.key })).body.data;
    expect(listed).toEqual([expect.objectContaining({ seller_id: A, amount: '9.70', status: 'paid', bank_account_last4: '6789', run_date: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) })]);
    expect(listed[0].workflow_id).toBe(`payout-${merchant_id}-${A}-USD-${listed[0].run_date}`);
  });

  it('after a refund of a paid-out sale the seller owes us; the next sale nets it out', async () => {
    const first = (await stack.api.db('payment_order').where({ seller_id: A }).first()) as { id: string; payment_id: string };
    const refund = await call(`${stack.api.url}/v1/payments/${first.payment_id}/refunds`, { key: stack.key, idempotency_key: randomUUID(), body: { order_id: first.id, amount: '10.00' } });
    expect(refund.status).toBe(201);
    await until('the refund succeeded', async () => (await stack.api.db('refund').where({ id: refund.body.id, status: 'succeeded' }).first()) ?? null);
    expect(await balanceOf(A)).toMatchObject({ available: '-9.70', negative_balance: '9.70' });
    await sale([{ seller_id: A, amount: '20.00' }]);
    expect(await balanceOf(A)).toMatchObject({ available: '9.70', negative_balance: '0.00' });
    const payout = await createPayout(stack.api.url, stack.key, { seller_id: A, currency: 'USD' });
    expect(payout).toMatchObject({ status: 201, body: { object: 'payout', seller_id: A, amount: '9.70', status: 'pending', run_date: null } });
    await until('the on-demand payout is paid', async () => ((await getPayout(stack.api.url, stack.key, payout.body.id)).body.status === 'paid' ? true : null));
    expect(await balanceOf(A)).toMatchObject({ available: '0.00', negative_balance: '0.00' });
  });
});

describe('a payout run when the worker crashes', () => {
  it('still pays each seller once: the worker is killed right after the run starts, and the day is run again', async () => {
    const D = `seller_d_${randomUUID()}`;
    const E = `seller_e_${randomUUID()}`;
    await sale([{ seller_id: D, amount: '7.00' }, { seller_id: E, amount: '3.00' }]);
    for (const seller of [D, E]) await bankAccount(seller);
    const schedule = stack.api.temporal.schedule.getHandle(`payouts-daily-${stack.api.task_queue}`);
    const before = (await schedule.describe()).info.recentActions.length;
    await schedule.trigger();
    await stack.crashWorker();
    const [d] = await paidPayoutsOf(D, 1);
    const [e] = await paidPayoutsOf(E, 1);
    expect([d.amount_minor, e.amount_minor]).toEqual(['679', '291']);
    // The day again once the first run is over (while it runs, the schedule's overlap policy skips).
    await stack.api.temporal.workflow.getHandle((await schedule.describe()).info.recentActions.at(-1)!.action.workflow.workflowId).result();
    await schedule.trigger();
    const runs = await until('both triggered runs', async () => {
      const recent = (await schedule.describe()).info.recentActions;
      return recent.length >= before + 2 ? recent.slice(before) : null;
    });
    for (const r of runs) await stack.api.temporal.workflow.getHandle(r.action.workflow.workflowId).result();
    expect(await stack.api.db('payout').whereIn('seller_id', [D, E])).toHaveLength(2);
    expect(await pspPayoutsOf(D)).toBe(1);
    expect(await pspPayoutsOf(E)).toBe(1);
    expect(await balanceOf(D)).toMatchObject({ available: '0.00' });
  }, 120_000);
});

describe('reconciliation of a day with sales, a refund and payouts', () => {
  it('matches every line (charges, refund, payouts) and psp_receivable nets to zero', async () => {
    const today = new Date().toISOString().slice(0, 10);
    expect((await fetch(`${stack.psp_url}/_sandbox/settlements`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ allow_open_day: true }) })).status).toBe(200);
    const run = await stack.api.temporal.workflow.execute('ReconciliationWorkflow', { taskQueue: stack.api.task_queue, workflowId: `recon-${stack.api.task_queue}-${today}`, args: [{ settlement_date: today, fix_wait_ms: 0 }] });
    const types = await stack.api.db('settlement_line').where({ settlement_date: today }).groupBy('type', 'result').select('type', 'result').count('* as n');
    expect(types.map((t) => [t.type, t.result, Number(t.n)]).sort()).toEqual([
      ['charge', 'matched', 5],
      ['payout', 'matched', 5],
      ['refund', 'matched', 1],
    ]);
    expect((run as { totals: { differences: unknown } }).totals.differences).toEqual({});
    const [receivable] = await accountBalances(stack.api.db, 'psp_receivable', 'USD');
    expect(receivable?.posted_minor).toBe(0n);
  });
});

describe('payout bad input: a clear code, nothing written', () => {
  // Invalid bodies on purpose: typed as the valid shape, judged by the server.
  const post = (body: Record<string, unknown>) => createPayout(stack.api.url, stack.key, body as CreatePayoutRequest);

  it('refuses an unknown seller, a currency the seller holds nothing in, and a balance below the minimum', async () => {
    const before = await stack.api.db('payout').count('* as n').first();
    expect(await post({ seller_id: `nobody_${randomUUID()}`, currency: 'USD' })).toMatchObject({ status: 404, body: { error: { code: 'resource_missing', param: 'seller_id' } } });
    expect(await post({ seller_id: B, currency: 'EUR' })).toMatchObject({ status: 400, body: { error: { code: 'payout_nothing_available', param: 'currency' } } });
    const C = `seller_c_${randomUUID()}`;
    await sale([{ seller_id: C, amount: '0.50' }]);
    await bankAccount(C);
    expect(await post({ seller_id: C, currency: 'USD' })).toMatchObject({ status: 400, body: { error: { code: 'payout_below_minimum' } } });
    expect(await post({ seller_id: C, currency: 'usd' })).toMatchObject({ status: 400, body: { error: { param: 'currency' } } });
    expect((await stack.api.db('payout').count('* as n').first())?.n).toBe(before?.n);
  });

  it('refuses a bank account number that is not 4 to 17 digits', async () => {
    expect(await bankAccount(B, '12-34')).toMatchObject({ status: 400, body: { error: { code: 'parameter_invalid', param: 'account_number' } } });
  });
});
