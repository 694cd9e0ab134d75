import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createDb, dropDatabase, ensureDatabase, migrateLatest } from '../../src/db';
import { verifyLedger } from '../../src/ledger/store';
import { freePort, logFileOf, spawnTs, waitForHttp, waitForOwnListen, waitForPoller, type Service } from './processes';
import { newMerchant, type TestApi } from './stack';

/**
 * A stack of its own for tests of delayed PSP results, webhooks and failures: an API process, a
 * sandbox PSP whose webhooks go to that API, and a worker on its own task queue calling that
 * sandbox, over a payments database of its own. Nothing is shared but the Temporal server: its
 * knobs and faults touch no other suite, and its API's relay never starts another suite's
 * payments. Closing it checks its ledger. Every process logs to test-output/.
 */
export interface AsyncStack {
  api: TestApi;
  key: string;
  psp_url: string;
  database_url: string;
  /** The log files of this stack's processes (for the card-number grep). */
  log_files: string[];
  sandbox_database_url: string;
  setKnobs(knobs: Record<string, unknown>): Promise<void>;
  setFaults(faults: Record<string, unknown>): Promise<void>;
  /** Stops the sandbox PSP process (the PSP is down) and starts it again on the same port and database. */
  stopPsp(): Promise<void>;
  startPsp(): Promise<void>;
  /** SIGKILLs the worker (a crash: nothing finishes cleanly), then starts a new one on the same task queue. */
  crashWorker(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_KNOBS = { duplicate_rate: 0, drop_rate: 0, reorder: false, delay_ms: 0 } as const;

export interface AsyncStackOptions {
  /** CHECKOUT_TIMEOUT_MS, PSP_POLL_INITIAL_MS, … for the API process. */
  api_env: Record<string, string>;
  sandbox_env?: Record<string, string>;
  worker_env?: Record<string, string>;
}

async function postJson(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${url} failed: HTTP ${res.status} ${await res.text()}`);
}

interface Spawned {
  services: Service[];
  psp_url: string;
  api_url: string;
  sandbox_env: Record<string, string>;
  worker_env: Record<string, string>;
}

const START_ATTEMPTS = 3;


async function spawnOnce(id: string, attempt: number, where: { task_queue: string; database_url: string; sandbox_database_url: string }, opts: AsyncStackOptions): Promise<Spawned> {
  const [psp_port, api_port] = [await freePort(), await freePort()];
  const psp_url = `http://127.0.0.1:${psp_port}`;
  const api_url = `http://127.0.0.1:${api_port}`;
  const shared = { TEMPORAL_TASK_QUEUE: where.task_queue, PSP_URL: psp_url, DATABASE_URL: where.database_url };
  const sandbox_env = {
    SANDBOX_PORT: String(psp_port),
    SANDBOX_DATABASE_URL: where.sandbox_database_url,
    SANDBOX_WEBHOOK_URL: `${api_url}/webhooks/psp`,
    SANDBOX_WEBHOOK_BACKOFF_MS: '200',
    ...opts.sandbox_env,
  };
  const suffix = attempt === 1 ? id : `${id}-try${attempt}`;
  const worker_env = { ...shared, ...opts.worker_env };
  const services: Service[] = [
    spawnTs(`sandbox-${suffix}`, 'packages/sandbox-psp/src/main.ts', sandbox_env),
    spawnTs(`api-${suffix}`, 'src/api/main.ts', { ...shared, API_PORT: String(api_port), WEBHOOK_SWEEP_INTERVAL_MS: '2000', RELAY_INTERVAL_MS: '1000', ADMISSION_BACKLOG_WAIT_MAX_S: '86400', ...opts.api_env }),
    spawnTs(`worker-${suffix}`, 'src/workers/main.ts', worker_env),
  ];
  const [sandbox, api] = services as [Service, Service, Service];
  try {
    await Promise.all([
      waitForOwnListen(sandbox, 'sandbox-psp listening', psp_port),
      waitForOwnListen(api, 'api listening', api_port),
      waitForPoller(String(process.env.TEMPORAL_ADDRESS), where.task_queue),
    ]);
    await Promise.all([waitForHttp(`${psp_url}/healthz`), waitForHttp(`${api_url}/healthz`)]);
  } catch (err) {
    for (const s of [...services].reverse()) await s.stop();
    throw err;
  }
  return { services, psp_url, api_url, sandbox_env, worker_env };
}

async function spawnWithRetry(id: string, where: { task_queue: string; database_url: string; sandbox_database_url: string }, opts: AsyncStackOptions): Promise<Spawned> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(id, attempt, where, opts);
    } catch (err) {
      if (attempt >= START_ATTEMPTS) throw err;
    }
  }
}

export async function startAsyncStack(name: string, opts: AsyncStackOptions): Promise<AsyncStack> {
  const id = `${name}-${randomBytes(3).toString('hex')}`;
  const task_queue = `${String(process.env.TEMPORAL_TASK_QUEUE)}-${id}`;
  const db_suffix = `${id.replace(/-/g, '_')}_${String(process.env.TEST_RUN_ID)}`;
  const sandbox_database_url = `postgres://postgres@127.0.0.1:5432/sandbox_${db_suffix}`;
  const database_url = `postgres://postgres@127.0.0.1:5432/payments_${db_suffix}`;
  await ensureDatabase(database_url);
  const db = createDb(database_url, 5);
  await migrateLatest(db);
  const connection = await Connection.connect({ address: String(process.env.TEMPORAL_ADDRESS) });
  let spawned: Spawned;
  try {
    spawned = await spawnWithRetry(id, { task_queue, database_url, sandbox_database_url }, opts);
  } catch (err) {
    await connection.close();
    await db.destroy();
    throw err;
  }
  const { services, psp_url, api_url, sandbox_env, worker_env } = spawned;
  const stopAll = async (): Promise<void> => {
    for (const s of [...services].reverse()) await s.stop();
    await connection.close();
    await db.destroy();
  };
  const api: TestApi = { url: api_url, db, temporal: new Client({ connection }), task_queue, close: stopAll };
  return {
    api,
    key: await newMerchant(db),
    psp_url,
    database_url,
    log_files: services.map(logFileOf),
    sandbox_database_url,
    async setKnobs(knobs) {
      await postJson(`${psp_url}/_sandbox/webhooks`, knobs);
    },
    async setFaults(faults) {
      await postJson(`${psp_url}/_sandbox/faults`, faults);
    },
    async stopPsp() {
      await services[0]?.stop();
    },
    async startPsp() {
      services[0] = spawnTs(`sandbox-${id}`, 'packages/sandbox-psp/src/main.ts', sandbox_env);
      await waitForHttp(`${psp_url}/healthz`);
    },
    async crashWorker() {
      await services[2]?.stop('SIGKILL');
      services[2] = spawnTs(`worker-${id}`, 'src/workers/main.ts', worker_env);
      await waitForPoller(String(process.env.TEMPORAL_ADDRESS), task_queue);
    },
    async close() {
      const report = await verifyLedger(db);
      await stopAll();
      await dropDatabase(sandbox_database_url);
      await dropDatabase(database_url);
      if (report.breaks.length > 0) throw new Error(`ledger verify of stack ${id}: ${JSON.stringify(report.breaks)}`);
    },
  };
}
