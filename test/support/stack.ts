import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Client, Connection } from '@temporalio/client';
import { createApp, starterDepsOf } from '../../src/api/app';
import { admissionMetrics } from '../../src/api/metrics';
import { Admission } from '../../src/services/admission';
import { createDb, type Knex } from '../../src/db';
import { createLogger } from '../../src/logger';
import { createMetricsRegistry } from '../../src/metrics';
import { createMerchant } from '../../src/services/merchants';
import { sleep } from './processes';
import { admissionSettingsOf, loadEnv, waitTimingsOf, type AdmissionSettings, type WaitTimings } from '../../src/config';
import { createPspClient } from '../../src/psp/client';
import { apiCall, type Payment } from './api-client';

function need(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set: run the suite through jest's globalSetup`);
  return value;
}

export interface TestApi {
  url: string;
  /** The express app, when it runs in this process (startTestApi): to list what it has mounted. */
  app?: Express;
  db: Knex;
  temporal: Client;
  task_queue: string;
  /** The API's dispatcher, when it runs in this process (startTestApi). */
  admission?: Admission;
  close(): Promise<void>;
}

export const TEST_WEBHOOK_SECRET = 'whsec_test_sandbox';

/** Waits as in production unless a test says otherwise (checkout 30 min, polls from 60 s). */
export const DEFAULT_TEST_TIMINGS: WaitTimings = waitTimingsOf(loadEnv({}));

/** The API's outside-world settings for tests: the suite's sandbox PSP and its webhook secret. */
export function testOutsideDeps(overrides: { psp_url?: string; timings?: Partial<WaitTimings> } = {}) {
  return {
    psp: createPspClient({ base_url: overrides.psp_url ?? need('PSP_URL'), api_key: 'psk_test_sandbox', timeout_ms: 5_000 }),
    timings: { ...DEFAULT_TEST_TIMINGS, ...overrides.timings },
    webhook_secrets: [TEST_WEBHOOK_SECRET],
  };
}

export interface TestApiOverrides {
  task_queue?: string;
  rate_limit?: { per_s: number; burst: number };
  psp_url?: string;
  timings?: Partial<WaitTimings>;
  /** Another database than the suite's (its own, or a closed port to make PostgreSQL "down"). */
  database_url?: string;
  /** Another Temporal address (a closed port makes Temporal "down"); connected lazily. */
  temporal_address?: string;
  log_level?: 'warn' | 'silent';
  /** Admission control's bounds; by default the env defaults, with the backlog bounds far out of the way. */
  admission?: Partial<AdmissionSettings>;
}

// Suites measure behaviour, not the door: only the admission suite sets backlog bounds that bite.
const TEST_ADMISSION: AdmissionSettings = { ...admissionSettingsOf(loadEnv({})), backlog_max: 1_000_000, merchant_backlog_max: 1_000_000, backlog_wait_max_s: 86_400 };

/** The real API app on an ephemeral port, talking to the suite's database and Temporal server. */
export async function startTestApi(overrides: TestApiOverrides = {}): Promise<TestApi> {
  const db = createDb(overrides.database_url ?? need('DATABASE_URL'), 5);
  // Lazy for an address given on purpose: it may be a dead one, and connecting would fail at once.
  const connection =
    overrides.temporal_address === undefined ? await Connection.connect({ address: need('TEMPORAL_ADDRESS') }) : Connection.lazy({ address: overrides.temporal_address });
  const temporal = new Client({ connection });
  const task_queue = overrides.task_queue ?? need('TEMPORAL_TASK_QUEUE');
  const log = createLogger('api-test', overrides.log_level ?? 'warn');
  const registry = createMetricsRegistry('api');
  const outside = testOutsideDeps(overrides);
  const starter = starterDepsOf({ db, temporal, task_queue, log, timings: outside.timings });
  const admission = new Admission(starter, { ...TEST_ADMISSION, ...overrides.admission }, (view) => admissionMetrics(registry, view)).start();
  const app = createApp({ db, temporal, task_queue, log, registry, commission_bps: 300, rate_limit: overrides.rate_limit ?? { per_s: 1000, burst: 1000 }, ...outside, admission });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    db,
    temporal,
    task_queue,
    admission,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await admission.stop();
      await connection.close().catch(() => undefined); // a lazy connection may never have opened
      await db.destroy();
    },
  };
}

export async function newMerchant(db: Knex): Promise<string> {
  return (await createMerchant(db, 'test merchant')).api_key;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function call(url: string, init: { method?: string; key?: string; idempotency_key?: string; body?: unknown; raw_body?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`;
  if (init.idempotency_key !== undefined) headers['idempotency-key'] = init.idempotency_key;
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined && init.raw_body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.raw_body ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text.length > 0 && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

/** Polls GET /v1/payments/:id (typed client) until `done` holds; returns the last payment seen. */
export async function waitForPayment(api: TestApi, key: string, payment_id: string, done: (p: Payment) => boolean, timeout_ms = 60_000): Promise<Payment> {
  const deadline = Date.now() + timeout_ms;
  let last: unknown;
  while (Date.now() < deadline) {
    const reply = await apiCall(api.url, 'get', '/v1/payments/{id}', { key, params: { id: payment_id } });
    last = reply.body;
    if (reply.status === 200 && done(reply.body)) return reply.body;
    await sleep(200);
  }
  throw new Error(`payment ${payment_id} did not settle in ${timeout_ms} ms: ${JSON.stringify(last)}`);
}

const TERMINAL_PAYMENT_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'partially_succeeded', 'canceled']);
export const settled = (p: { status: string }): boolean => TERMINAL_PAYMENT_STATUSES.has(p.status);

export async function pspStats(order_reference: string): Promise<{ charges_total: number; charges_succeeded: number }> {
  const res = await fetch(`${need('PSP_URL')}/_sandbox/stats?order_reference=${encodeURIComponent(order_reference)}`);
  return (await res.json()) as { charges_total: number; charges_succeeded: number };
}

/** beforeAll/afterAll for a test file: one API on an ephemeral port and one fresh merchant. */
export function useTestApi(set: (api: TestApi, key: string) => void): void {
  let api: TestApi | undefined;
  beforeAll(async () => {
    api = await startTestApi();
    set(api, await newMerchant(api.db));
  });
  afterAll(async () => {
    await api?.close();
  });
}
