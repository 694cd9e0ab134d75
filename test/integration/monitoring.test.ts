import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { parse } from 'yaml';
import { Registry } from 'prom-client';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities, type ActivityDeps } from '../../src/activities';
import { paymentStatusGauge } from '../../src/api/metrics';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../../src/db';
import { errorClassOf, FailureMemory } from '../../src/metrics';
import { PspError } from '../../src/psp/client';
import { call, newMerchant, startTestApi, type TestApi } from '../support/stack';
import { ROOT, freePort, sleep, spawnTs, waitForHttp, waitForPoller, type Service } from '../support/processes';

const ALERTS_FILE = path.join(ROOT, 'ops/prometheus/alerts.yml');
const PROMETHEUS_FILE = path.join(ROOT, 'ops/prometheus/prometheus.yml');

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

function loadRules(): { groups: { name: string; rules: Rule[] }[] } {
  return parse(fs.readFileSync(ALERTS_FILE, 'utf8'));
}

const allRules = (): Rule[] => loadRules().groups.flatMap((g) => g.rules);

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);

/**
 * Metric names in a PromQL expression: strings, label matchers, ranges and grouping label lists
 * removed, what is left that is an identifier but not a function call or keyword.
 */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const name = m[1] ?? '';
    if (!PROMQL_WORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names].sort();
}

/** Sample names a /metrics text exposes: each TYPE line's name, a histogram as its three series. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name = '', type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(`${name}${suffix}`);
    else names.add(name);
  }
  return names;
}

/** The value of the sample `name` whose labels include `labels` (NaN counts as found), or undefined. */
function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const [, sample_name, label_text = '', value = ''] of text.matchAll(/^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/gm)) {
    if (sample_name !== name) continue;
    const have = new Map([...label_text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(value);
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return await res.text();
}

describe('alert rules file', () => {
  it('has groups of rules, each with alert, expr, for, a severity and a summary and description', () => {
    const doc = loadRules();
    expect(Object.keys(doc)).toEqual(['groups']);
    expect(doc.groups.length).toBeGreaterThan(0);
    for (const group of doc.groups) {
      expect(Object.keys(group).sort()).toEqual(['name', 'rules']);
      expect(group.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(group.rules.length).toBeGreaterThan(0);
      for (const rule of group.rules) {
        expect(Object.keys(rule).sort()).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
        expect(rule.alert).toMatch(/^[A-Z][A-Za-z0-9]+$/);
        expect(typeof rule.expr).toBe('string');
        expect(rule.expr.trim().length).toBeGreaterThan(0);
        expect(rule.for).toMatch(/^[1-9][0-9]*[smh]$/);
        expect(Object.keys(rule.labels)).toEqual(['severity']);
        expect(['critical', 'warning']).toContain(rule.labels.severity);
        expect(Object.keys(rule.annotations).sort()).toEqual(['description', 'summary']);
        expect(rule.annotations.summary.trim().length).toBeGreaterThan(0);
        expect(rule.annotations.description.trim().length).toBeGreaterThan(0);
        // Every parenthesis and brace closes (promtool would refuse the file otherwise).
        for (const [open, close] of [['(', ')'], ['{', '}'], ['[', ']']] as const) {
          expect(rule.expr.split(open).length).toBe(rule.expr.split(close).length);
        }
      }
    }
    const names = allRules().map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        'PaymentOrdersNeedAttention',
        'PaymentOpenTooLong',
        'PspEventsUnapplied',
        'PspEventsUnknownGrowing',
        'PspRetryRateHigh',
        'ApiServerErrorRateHigh',
        'PaymentsApiDown',
        'PaymentsWorkerDown',
      ]),
    );
  });

  it('is loaded by the example Prometheus config, whose job names the up rules use', () => {
    const config = parse(fs.readFileSync(PROMETHEUS_FILE, 'utf8')) as { rule_files: string[]; scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[] };
    expect(config.rule_files).toEqual(['alerts.yml']);
    const jobs = new Map(config.scrape_configs.map((j) => [j.job_name, j]));
    expect(jobs.get('payments-api')?.static_configs[0]?.targets).toEqual(['127.0.0.1:3000']);
    expect(jobs.get('payments-worker')?.static_configs[0]?.targets).toEqual(['127.0.0.1:9464']);
    for (const job of jobs.values()) expect(job.metrics_path).toBe('/metrics');
    const up_jobs = allRules().flatMap((r) => [...r.expr.matchAll(/\bup\{job="([^"]+)"\}/g)].map((m) => m[1]));
    expect(up_jobs.sort()).toEqual(['payments-api', 'payments-worker']);
  });

  it('names only activity types the worker registers', () => {
    const registered = Object.keys(createActivities({} as ActivityDeps));
    const named = allRules().flatMap((r) => [...r.expr.matchAll(/activity=~?"([^"]+)"/g)].flatMap((m) => (m[1] ?? '').split('|')));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((name) => !registered.includes(name))).toEqual([]);
  });

  it('finds metric names in an expression', () => {
    expect(metricNamesIn('sum by (route, status) (rate(http_request_duration_seconds_count{status=~"5.."}[5m])) / sum(rate(x_total[5m] offset 1h)) > 0.05')).toEqual([
      'http_request_duration_seconds_count',
      'x_total',
    ]);
    expect(metricNamesIn('up{job="payments-api"} == 0 and on(instance) max(delta(payments_psp_events_unknown[30m])) > 1e3')).toEqual(['payments_psp_events_unknown', 'up']);
  });
});

describe('metrics our processes expose', () => {
  let api: TestApi;
  let key: string;
  let worker: Service;
  let metrics_url: string;
  let task_queue: string;
  const payments: string[] = [];

  beforeAll(async () => {
    // Our own worker, on its own task queue with /metrics on, and a PSP address nobody listens on.
    task_queue = `monitoring-${randomUUID()}`;
    const metrics_port = await freePort();
    metrics_url = `http://127.0.0.1:${metrics_port}/metrics`;
    worker = spawnTs(`worker-${task_queue}`, 'src/workers/main.ts', {
      TEMPORAL_TASK_QUEUE: task_queue,
      WORKER_METRICS_PORT: String(metrics_port),
      PSP_URL: `http://127.0.0.1:${await freePort()}`,
    });
    api = await startTestApi({ task_queue });
    key = await newMerchant(api.db);
    await waitForPoller(String(process.env.TEMPORAL_ADDRESS), task_queue);
    await waitForHttp(metrics_url);
  });

  afterAll(async () => {
    // The payments sent to the down PSP would retry for minutes: end their workflows.
    for (const payment_id of payments) {
      await api.temporal.workflow.getHandle(`payment-${payment_id}`).terminate('monitoring test done').catch(() => undefined);
    }
    await worker?.stop('SIGKILL');
    await api?.close();
  });

  it('counts PSP retries and failures by activity and error class', async () => {
    const created = await call(`${api.url}/v1/payments`, {
      key,
      idempotency_key: randomUUID(),
      body: { buyer: { id: `buyer_${randomUUID()}` }, currency: 'USD', orders: [{ seller_id: 'seller_a', amount: '9.99' }], payment_method: 'tok_success' },
    });
    expect(created.status).toBe(201);
    payments.push(created.body.id);
    // Connection refused at the PSP is retryable; the first retry comes 1 s after the first failure.
    const retried = { activity: 'chargeOrder', error_class: 'Psp_retryable', service: 'worker' };
    const deadline = Date.now() + 30_000;
    let text = '';
    while (Date.now() < deadline) {
      text = await scrape(metrics_url);
      // The retry is counted when attempt 2 starts, its failure when it ends: wait for both.
      if ((sampleValue(text, 'activity_retries_total', retried) ?? 0) >= 1 && (sampleValue(text, 'activity_failures_total', retried) ?? 0) >= 2) break;
      await sleep(250);
    }
    expect(sampleValue(text, 'activity_retries_total', retried)).toBeGreaterThanOrEqual(1);
    expect(sampleValue(text, 'activity_failures_total', retried)).toBeGreaterThanOrEqual(2);
    expect(sampleValue(text, 'activity_attempts_total', { activity: 'chargeOrder', retry: 'yes' })).toBeGreaterThanOrEqual(1);
    // Nothing fell through to the catch-all classes.
    expect(sampleValue(text, 'activity_failures_total', { activity: 'chargeOrder', error_class: 'other' })).toBeUndefined();
  });

  it('exposes every metric the alert rules use, on the API or the worker', async () => {
    const api_names = exposedNames(await scrape(`${api.url}/metrics`));
    const worker_names = exposedNames(await scrape(metrics_url));
    expect(api_names).toContain('payments_orders_needs_attention');
    expect(worker_names).toContain('activity_retries_total');
    const missing = allRules().flatMap((rule) =>
      metricNamesIn(rule.expr)
        .filter((name) => name !== 'up' && !api_names.has(name) && !worker_names.has(name))
        .map((name) => `${rule.alert}: ${name}`),
    );
    expect(missing).toEqual([]);
    // Every rule looks at some metric (an extractor that found nothing would pass the check above).
    expect(allRules().filter((rule) => metricNamesIn(rule.expr).length === 0)).toEqual([]);
  });
});

describe('scrape-time database gauges', () => {
  it('report parked orders, the oldest open payment and the PSP inbox from the database', async () => {
    // A database of its own: exact numbers, and no rows other tests could trip over.
    const url = `postgres://postgres@127.0.0.1:5432/monitoring_${randomBytes(4).toString('hex')}`;
    await ensureDatabase(url);
    const own = await startTestApi({ database_url: url, task_queue: 'monitoring-unused', log_level: 'silent' });
    const db = own.db;
    try {
      await migrateLatest(db);
      const metrics_url = `${own.url}/metrics`;
      const empty = await scrape(metrics_url);
      const api = { service: 'api' };
      expect(sampleValue(empty, 'payments_metrics_db_up', api)).toBe(1);
      expect(sampleValue(empty, 'payments_orders_needs_attention', api)).toBe(0);
      expect(sampleValue(empty, 'payments_oldest_open_payment_age_seconds', api)).toBe(0);
      expect(sampleValue(empty, 'payments_psp_events_unapplied', api)).toBe(0);
      expect(sampleValue(empty, 'payments_psp_events_unknown', api)).toBe(0);

      const ids = await insertParkedPayment(db);
      const text = await scrape(metrics_url);
      expect(sampleValue(text, 'payments_metrics_db_up', api)).toBe(1);
      expect(sampleValue(text, 'payments_orders_needs_attention', api)).toBe(1);
      expect(sampleValue(text, 'payments', { status: 'needs_attention' })).toBe(1);
      expect(sampleValue(text, 'payments', { status: 'succeeded' })).toBe(1);
      // The parked payment is 2 h old; the older succeeded one is terminal and does not count.
      const age = sampleValue(text, 'payments_oldest_open_payment_age_seconds', api) ?? 0;
      expect(age).toBeGreaterThanOrEqual(7_200);
      expect(age).toBeLessThan(7_200 + 600);
      expect(sampleValue(text, 'payments_psp_events_unapplied', api)).toBe(1);
      expect(sampleValue(text, 'payments_psp_events_unknown', api)).toBe(1);

      // Applied: no longer counted. The parked order is cancelled by an operator: nothing open.
      await db('psp_event').where({ id: ids.unapplied_event_id }).update({ applied_at: db.fn.now() });
      await db('payment_order').where({ id: ids.order_id }).update({ status: 'canceled', failure_code: 'canceled_by_operator' });
      await db('payment_event').where({ id: ids.payment_id }).update({ status: 'canceled' });
      const after = await scrape(metrics_url);
      expect(sampleValue(after, 'payments_orders_needs_attention', api)).toBe(0);
      expect(sampleValue(after, 'payments_oldest_open_payment_age_seconds', api)).toBe(0);
      expect(sampleValue(after, 'payments_psp_events_unapplied', api)).toBe(0);
      expect(sampleValue(after, 'payments_psp_events_unknown', api)).toBe(1);
    } finally {
      await own.close();
      await dropDatabase(url);
    }
  });

  it('answer quickly, with payments_metrics_db_up 0 and no numbers, when PostgreSQL does not answer', async () => {
    // Accepts connections and never says a word: a hung database, not a refused one.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const db = createDb(`postgres://postgres@127.0.0.1:${(silent.address() as net.AddressInfo).port}/none`, 1);
    try {
      const registry = new Registry();
      paymentStatusGauge(registry, db, { timeout_ms: 300 });
      const started = Date.now();
      const [first, second] = await Promise.all([registry.metrics(), registry.metrics()]);
      expect(Date.now() - started).toBeLessThan(3_000);
      for (const text of [first, second]) {
        expect(sampleValue(text, 'payments_metrics_db_up')).toBe(0);
        expect(sampleValue(text, 'payments_orders_needs_attention')).toBeNaN();
        expect(sampleValue(text, 'payments_oldest_open_payment_age_seconds')).toBeNaN();
        expect(sampleValue(text, 'payments', { status: 'succeeded' })).toBeUndefined();
      }
      // Both scrapes waited on one read: the hung database got one connection attempt.
      expect(sockets.length).toBeLessThanOrEqual(1);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      await db.destroy();
    }
  });
});

describe('error classes', () => {
  it('maps activity errors to a closed set of labels', () => {
    expect(errorClassOf(ApplicationFailure.create({ type: 'Psp_retryable', message: 'x' }))).toBe('Psp_retryable');
    expect(errorClassOf(ApplicationFailure.create({ type: 'Psp_unknown_outcome', message: 'x' }))).toBe('Psp_unknown_outcome');
    expect(errorClassOf(ApplicationFailure.nonRetryable('x', 'ChargeUndecided'))).toBe('ChargeUndecided');
    expect(errorClassOf(ApplicationFailure.create({ type: 'SomethingNew', message: 'x' }))).toBe('other');
    expect(errorClassOf(new PspError('definitive', 'invalid_request', 'x'))).toBe('Psp_definitive');
    expect(errorClassOf(new Error('assertion failed: x'))).toBe('Error');
    class DatabaseError extends Error {
      constructor() {
        super('relation does not exist');
        this.name = 'error'; // as pg's DatabaseError does
      }
    }
    expect(errorClassOf(new DatabaseError())).toBe('DatabaseError');
    expect(errorClassOf(new TypeError('x'))).toBe('other');
    expect(errorClassOf('a string')).toBe('other');
  });

  it('remembers the last failure of an activity for its next attempt, in bounded memory', () => {
    const memory = new FailureMemory(2);
    memory.remember('a', 'Psp_retryable');
    memory.remember('b', 'Error');
    memory.remember('c', 'Psp_unknown_outcome');
    expect(memory.size).toBe(2);
    expect(memory.take('a')).toBeUndefined();
    expect(memory.take('c')).toBe('Psp_unknown_outcome');
    expect(memory.take('c')).toBeUndefined();
  });
});

async function insertParkedPayment(db: Knex): Promise<{ payment_id: string; order_id: string; unapplied_event_id: string }> {
  const suffix = randomBytes(6).toString('hex');
  const merchant_id = `mer_${suffix}`;
  const payment_id = `pay_${suffix}`;
  const order_id = `ord_${suffix}`;
  await db('merchant').insert({ id: merchant_id, name: 'monitoring' });
  // workflow_started_at set: no relay starts a workflow for these hand-made rows.
  const payment = { merchant_id, buyer_id: 'b', currency: 'USD', amount_minor: '1000', workflow_started_at: db.fn.now() };
  await db('payment_event').insert({ ...payment, id: `${payment_id}_done`, status: 'succeeded', workflow_id: `payment-${payment_id}_done`, created_at: db.raw(`now() - interval '5 hours'`) });
  await db('payment_event').insert({ ...payment, id: payment_id, status: 'needs_attention', workflow_id: `payment-${payment_id}`, created_at: db.raw(`now() - interval '2 hours'`) });
  await db('payment_order').insert({
    id: order_id,
    payment_id,
    merchant_id,
    seller_id: 's1',
    amount_minor: '1000',
    currency: 'USD',
    status: 'needs_attention',
    failure_code: 'retries_exhausted',
    failure_message: 'Psp_retryable: psp_unavailable',
    charge_attempts: 12,
    commission_minor: '30',
  });
  const unapplied_event_id = `evt_${suffix}_order`;
  const event = { type: 'charge.succeeded', payload: '{}' };
  await db('psp_event').insert([
    { ...event, id: unapplied_event_id, object_id: `ch_${suffix}`, route: 'order', payment_id, order_id },
    { ...event, id: `evt_${suffix}_unknown`, object_id: 'ch_elsewhere', route: 'unknown', note: 'no order ord_elsewhere' },
    { ...event, id: `evt_${suffix}_ignored`, object_id: 'ch_old', route: 'ignored', note: 'order already succeeded', applied_at: db.fn.now() },
  ]);
  return { payment_id, order_id, unapplied_event_id };
}
