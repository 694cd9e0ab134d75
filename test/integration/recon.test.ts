import { randomUUID } from 'node:crypto';
import { createDb, type Knex } from '../../src/db';
import { dayOf } from '../../src/domain/dates';
import { DEFAULT_SETTLEMENT_KNOBS } from '../../packages/sandbox-psp/src/settlements';
import { accountBalances } from '../../src/ledger/store';
import { startAsyncStack, type AsyncStack } from '../support/async-stack';
import { createPayment, until } from '../support/flows';
import { payctl } from '../support/payctl';
import { keepHistory } from '../support/histories';
import { call, settled, waitForPayment } from '../support/stack';
import type { Payment } from '../support/api-client';

/**
 * Issue 9: nightly reconciliation against the sandbox PSP's settlement file, on a stack of its
 * own (its own payments database and sandbox, so the file holds only this suite's movements).
 * Orders wait for the PSP with polling 10 minutes away, so a dropped webhook is fixed by the
 * reconciliation, not by polling.
 */
const ADMIN_KEY = 'admin_recon_key_0123456789';
const today = (): string => dayOf(Date.now());
const yesterday = (): string => dayOf(Date.now() - 86_400_000);

let stack: AsyncStack;
let psp_db: Knex;
beforeAll(async () => {
  stack = await startAsyncStack('recon', {
    api_env: { ADMIN_API_KEY: ADMIN_KEY, PSP_POLL_INITIAL_MS: '600000', PSP_POLL_MAX_MS: '600000' },
    sandbox_env: { SANDBOX_REVIEW_DELAY_MS: '300' },
    worker_env: { RECON_FIX_WAIT_MS: '30000' },
  });
  psp_db = createDb(stack.sandbox_database_url, 2);
});
afterAll(async () => {
  await psp_db?.destroy();
  await stack?.close();
});

async function settlementKnobs(knobs: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${stack.psp_url}/_sandbox/settlements`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(knobs) });
  expect(res.status).toBe(200);
}

/** The sandbox's file as it is, for today (the day is still open). */
const NO_DIFFERENCES = { ...DEFAULT_SETTLEMENT_KNOBS, allow_open_day: true };

async function pay(opts: { currency?: string; amounts?: string[]; token?: string; capture_method?: 'automatic' | 'all_or_nothing' } = {}): Promise<Payment> {
  const body = {
    buyer: { id: `buyer_${randomUUID()}` },
    currency: opts.currency ?? 'USD',
    orders: (opts.amounts ?? ['10.00']).map((amount) => ({ seller_id: `seller_${randomUUID()}`, amount })),
    payment_method: opts.token ?? 'tok_success',
    ...(opts.capture_method === undefined ? {} : { capture_method: opts.capture_method }),
  };
  const created = await createPayment(stack.api.url, stack.key, body);
  expect(created.status).toBe(201);
  return created.body;
}

async function settledPayment(id: string): Promise<Payment> {
  return await waitForPayment(stack.api, stack.key, id, settled, 30_000);
}

/** Starts the day's run through the ops API and waits for its workflow; returns the run row. */
async function reconcile(date: string): Promise<{ run: Record<string, any>; failed: string | null }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const started = await call(`${stack.api.url}/v1/ops/recon/runs`, { key: ADMIN_KEY, body: { date, fix_wait_ms: 30_000 } });
  expect(started.status).toBe(202);
  let failed: string | null = null;
  await stack.api.temporal.workflow
    .getHandle(started.body.workflow_id)
    .result()
    .catch((err: Error & { cause?: Error }) => {
      failed = err.cause?.message ?? err.message;
    });
  const runs = await call(`${stack.api.url}/v1/ops/recon/runs?date=${date}&limit=1`, { key: ADMIN_KEY });
  expect(runs.status).toBe(200);
  return { run: runs.body.data[0], failed };
}

const keep = (workflow_id: string, file: string) => keepHistory(stack.api.temporal, workflow_id, 'recon-v1', file);

async function itemsOf(date: string): Promise<Record<string, any>[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const got = await stack.api.db('recon_item').where({ settlement_date: date }).orderBy('id');
  return got;
}

async function balance(code: string, currency: string): Promise<bigint> {
  const [account] = await accountBalances(stack.api.db, code, currency);
  return account?.posted_minor ?? 0n;
}

describe('a clean day', () => {
  it('matches every line of mixed types (charge, capture, refund) and currencies, finds no difference, and psp_receivable nets to zero', async () => {
    const created = [
      ...(await Promise.all(Array.from({ length: 14 }, (_, i) => pay({ amounts: [`${10 + i}.00`, '5.25'] })))),
      ...(await Promise.all(Array.from({ length: 6 }, () => pay({ currency: 'EUR', amounts: ['20.00', '7.99'] })))),
      ...(await Promise.all(Array.from({ length: 6 }, () => pay({ currency: 'JPY', amounts: ['1200', '800'], capture_method: 'all_or_nothing' })))),
    ];
    for (const p of created) expect((await settledPayment(p.id)).status).toBe('succeeded');
    // A partial refund: a refund line the PSP settles, matched to our refund by its key.
    const refunded = created[0]!;
    const refund = await call(`${stack.api.url}/v1/payments/${refunded.id}/refunds`, { key: stack.key, idempotency_key: randomUUID(), body: { order_id: refunded.orders[0]!.id, amount: '3.00' } });
    expect(refund.status).toBe(201);
    await until('the refund succeeded', async () => ((await stack.api.db('refund').where({ id: refund.body.id, status: 'succeeded' }).first()) ?? null));
    await settlementKnobs(NO_DIFFERENCES);

    const { run, failed } = await reconcile(today());
    expect(failed).toBeNull();
    expect(run).toMatchObject({ status: 'succeeded', settlement_date: today() });
    expect(run.totals.lines).toBe(53);
    expect(run.totals.matched.count).toBe(53);
    expect(run.totals.differences).toEqual({});
    expect(await itemsOf(today())).toEqual([]);
    const types = await stack.api.db('settlement_line').where({ settlement_date: today() }).groupBy('type', 'result').select('type', 'result').count('* as n');
    expect(types.map((t) => [t.type, t.result, Number(t.n)]).sort()).toEqual([
      ['capture', 'matched', 12],
      ['charge', 'matched', 40],
      ['refund', 'matched', 1],
    ]);
    // The PSP paid the day's net to the bank: what it owed us is settled, per currency.
    for (const currency of ['USD', 'EUR', 'JPY']) {
      expect(await balance('psp_receivable', currency)).toBe(0n);
      expect(await balance('bank_cash', currency)).toBe(BigInt(run.totals.settlement_net_by_currency[currency]));
    }
  });

  it('changes nothing when the day is reconciled again', async () => {
    const snapshot = async () => ({
      items: await stack.api.db('recon_item').orderBy('id').select('id', 'subject', 'class', 'status', 'note', 'updated_at'),
      transactions: await stack.api.db('ledger_transaction').count('* as n').first(),
      postings: await stack.api.db('settlement_posting').orderBy(['settlement_date', 'currency', 'seq']),
      lines: await stack.api.db('settlement_line').where({ settlement_date: today() }).orderBy('line_no').select('line_no', 'psp_id', 'result', 'amount_minor'),
    });
    const before = await snapshot();
    const { run, failed } = await reconcile(today());
    expect(failed).toBeNull();
    expect(run.totals.posted_now_by_currency).toEqual({});
    expect(await snapshot()).toEqual(before);
  });
});

describe('differences', () => {
  it('finds each injected difference once, and auto-fixes a payment whose webhook was dropped', async () => {
    const [a, b, c, d, e] = await Promise.all(Array.from({ length: 5 }, () => pay()));
    const settled_all = await Promise.all([a, b, c, d, e].map((p) => settledPayment(p!.id)));
    const [A, B, C, D, E] = settled_all.map((p) => p.orders[0]!);
    // F: the PSP decides after a review, and every webhook is dropped: our order stays pending.
    await stack.setKnobs({ drop_rate: 1 });
    const f = await pay({ token: 'tok_review_approve' });
    const F_id = f.orders[0]!.id;
    await until('the PSP approved F', async () => (await psp_db('sandbox_charge').where({ idempotency_key: F_id, status: 'succeeded' }).first()) ?? null);
    await stack.setKnobs({ drop_rate: 0 });
    expect((await stack.api.db('payment_order').where({ id: F_id }).first()).status).toBe('pending');
    // E was captured yesterday (as far as both sides know) and the PSP settles it a day late.
    await stack.api.db('payment_order').where({ id: E!.id }).update({ captured_at: stack.api.db.raw("captured_at - interval '1 day'") });
    await psp_db('sandbox_event').where({ object_id: E!.psp_reference, type: 'charge.succeeded' }).update({ created_at: psp_db.raw("created_at - interval '1 day'") });

    await settlementKnobs({ ...NO_DIFFERENCES, late_order_reference: E!.id });
    const first = await reconcile(yesterday());
    expect(first.failed).toBeNull();
    const e_item = (await itemsOf(yesterday())).find((i) => i.order_id === E!.id);
    expect(e_item).toMatchObject({ class: 'missing_at_psp', status: 'open' });

    await settlementKnobs({
      ...NO_DIFFERENCES,
      extra_line: true,
      drop_order_reference: A!.id,
      amount_delta_order_reference: B!.id,
      amount_delta_minor: '100',
      currency_order_reference: C!.id,
      currency: 'EUR',
      duplicate_order_reference: D!.id,
      late_order_reference: E!.id,
    });
    const { run, failed } = await reconcile(today());
    expect(failed).toBeNull();
    const items = await stack.api.db('recon_item').where('updated_at', '>=', run.started_at).orderBy('id');
    const by = (order_id: string | null, cls: string) => items.filter((i) => i.order_id === order_id && i.class === cls);
    expect(by(A!.id, 'missing_at_psp')).toEqual([expect.objectContaining({ status: 'open', field: 'line', psp_value: 'no line' })]);
    expect(by(B!.id, 'amount_mismatch')).toEqual([expect.objectContaining({ status: 'open', field: 'amount', our_value: '1000', psp_value: '1100', workflow_id: `payment-${b!.id}` })]);
    expect(by(C!.id, 'currency_mismatch')).toEqual([expect.objectContaining({ field: 'currency', our_value: 'USD', psp_value: 'EUR' })]);
    expect(by(D!.id, 'duplicate')).toEqual([expect.objectContaining({ status: 'open', field: 'line' })]);
    // The item first reported missing yesterday became today's timing difference (one item, resolved).
    expect(by(E!.id, 'timing')).toEqual([expect.objectContaining({ id: e_item!.id, status: 'resolved' })]);
    const unknown = items.filter((i) => i.class === 'missing_internally' && i.order_id === null);
    expect(unknown).toEqual([expect.objectContaining({ status: 'open', auto_fixable: false, our_value: 'no record' })]);
    expect(by(F_id, 'missing_internally')).toEqual([expect.objectContaining({ status: 'resolved', auto_fixable: true, auto_fixed: true })]);
    // Nothing else: each injected difference once.
    expect(items.length).toBe(7);
    expect(run.totals.auto_fixed).toBe(1);
    await keep(run.workflow_id, 'auto-fix.recon.json');
    const fixed = await settledPayment(f.id);
    expect(fixed.status).toBe('succeeded');
    expect(await stack.api.db('ledger_transaction').where({ reference: `order:${F_id}:capture` })).toHaveLength(1);

    const report = await payctl(['recon', 'report', '--date', today()], stack.database_url);
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(/matched: \d+ lines/);
    expect(report.stdout).toContain(`amount_mismatch: 1`);
    expect(report.stdout).toContain(`ours 1000, PSP 1100 (order ${B!.id}, workflow payment-${b!.id}`);
    expect(report.stdout).toContain(`/namespaces/default/workflows/payment-${b!.id}`);
  });

  it('lets finance resolve or write off an open item once, with a note', async () => {
    const open = await call(`${stack.api.url}/v1/ops/recon/items?status=open&class=amount_mismatch`, { key: ADMIN_KEY });
    expect(open.status).toBe(200);
    const item = open.body.data[0];
    const closed = await call(`${stack.api.url}/v1/ops/recon/items/${item.id}/write-off`, { key: ADMIN_KEY, body: { note: 'PSP credit note 17 covers it' } });
    expect(closed).toMatchObject({ status: 200, body: { id: item.id, status: 'written_off' } });
    expect(closed.body.note).toContain('PSP credit note 17 covers it');
    const again = await call(`${stack.api.url}/v1/ops/recon/items/${item.id}/resolve`, { key: ADMIN_KEY, body: { note: 'x' } });
    expect(again).toMatchObject({ status: 409, body: { error: { code: 'recon_item_closed' } } });
    const by_cli = await payctl(['recon', 'resolve', item.id, '--note', 'again'], stack.database_url);
    expect(by_cli.code).toBe(2);
    expect(by_cli.stderr).toContain('already written_off');
    // The queue as metrics: differences by class and status, and when a run last succeeded.
    const metrics = await (await fetch(`${stack.api.url}/metrics`)).text();
    expect(metrics).toContain('payments_recon_items{class="amount_mismatch",status="written_off",service="api"} 1');
    expect(metrics).toContain('payments_recon_items{class="missing_at_psp",status="open",service="api"} 1');
    const last = Number(/payments_recon_last_success_timestamp_seconds{[^}]*} (\S+)/.exec(metrics)?.[1]);
    expect(Date.now() / 1000 - last).toBeLessThan(300);
  });
});

describe('a bad settlement file', () => {
  it('fails the run with the line number and reason, applies nothing, and a rerun after the fix succeeds', async () => {
    const before = {
      items: await stack.api.db('recon_item').orderBy('id').select('id', 'class', 'status', 'updated_at'),
      lines: await stack.api.db('settlement_line').where({ settlement_date: today() }).count('* as n').first(),
      postings: await stack.api.db('settlement_posting').count('* as n').first(),
    };
    await settlementKnobs({ ...NO_DIFFERENCES, bad_summary: true });
    const { run, failed } = await reconcile(today());
    expect(failed).toMatch(/summary does not add up/);
    expect(run).toMatchObject({ status: 'failed' });
    expect(Number(run.error_line)).toBeGreaterThan(2);
    expect(run.error_reason).toContain(`line ${run.error_line}: summary does not add up: count says`);
    expect({
      items: await stack.api.db('recon_item').orderBy('id').select('id', 'class', 'status', 'updated_at'),
      lines: await stack.api.db('settlement_line').where({ settlement_date: today() }).count('* as n').first(),
      postings: await stack.api.db('settlement_posting').count('* as n').first(),
    }).toEqual(before);

    await settlementKnobs(NO_DIFFERENCES);
    const rerun = await reconcile(today());
    expect(rerun.failed).toBeNull();
    expect(rerun.run.status).toBe('succeeded');
  });

  it('refuses a future day and a day that does not exist, starting nothing', async () => {
    const tomorrow = dayOf(Date.now() + 86_400_000);
    const future = await call(`${stack.api.url}/v1/ops/recon/runs`, { key: ADMIN_KEY, body: { date: tomorrow } });
    expect(future).toMatchObject({ status: 400, body: { error: { code: 'settlement_date_in_future', param: 'date' } } });
    const no_day = await call(`${stack.api.url}/v1/ops/recon/runs`, { key: ADMIN_KEY, body: { date: '2026-02-30' } });
    expect(no_day).toMatchObject({ status: 400, body: { error: { code: 'parameter_invalid', param: 'date' } } });
    const cli = await payctl(['recon', 'run', '--date', tomorrow], stack.database_url);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('has not begun');
    expect(await stack.api.db('recon_run').where({ settlement_date: tomorrow })).toEqual([]);
  });
});

describe('the nightly schedule', () => {
  it('exists per deployment, and a triggered run reconciles the day before its nominal time', async () => {
    const handle = stack.api.temporal.schedule.getHandle(`recon-nightly-${stack.api.task_queue}`);
    const described = await handle.describe();
    expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'NightlyReconciliationWorkflow', taskQueue: stack.api.task_queue });
    expect(described.policies.overlap).toBe('SKIP');
    const succeeded = async () => await stack.api.db('recon_run').where({ settlement_date: yesterday(), status: 'succeeded', workflow_id: `recon-${stack.api.task_queue}-${yesterday()}` });
    const before = (await succeeded()).length;
    await settlementKnobs(NO_DIFFERENCES);
    await handle.trigger();
    await until('the scheduled run of yesterday finished', async () => ((await succeeded()).length > before ? true : null), 60_000);
    const nightly = (await handle.describe()).info.recentActions.at(-1)?.action.workflow.workflowId;
    if (nightly !== undefined) await keep(nightly, 'nightly.recon.json');
  });
});
