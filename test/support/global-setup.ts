import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createDb, ensureDatabase, migrateLatest } from '../../src/db';
import { ensureTemporalCli, startDevServer, waitForTemporal } from '../../src/dev/temporal';
import { ROOT, freePort, spawnTs, stopChild, waitForPoller } from './processes';
import { spawnSandbox } from './sandbox';
import type { ChildProcess } from 'node:child_process';

export interface TestStack {
  children: { name: string; child: ChildProcess }[];
  database_urls: string[];
  files: string[];
}

/**
 * Starts the real services the suite talks to: a Temporal dev server (in memory, headless), the
 * sandbox PSP as its own process, and one worker process; plus a fresh database for this run.
 * Connection details go to process.env, which jest's test workers inherit.
 */
export default async function globalSetup(): Promise<void> {
  const run_id = randomBytes(4).toString('hex');
  const out = path.join(ROOT, 'test-output');
  fs.mkdirSync(out, { recursive: true });
  const stack: TestStack = { children: [], database_urls: [], files: [] };
  (globalThis as { __stack?: TestStack }).__stack = stack;

  const database_url = `postgres://postgres@127.0.0.1:5432/payments_test_${run_id}`;
  const sandbox_database_url = `postgres://postgres@127.0.0.1:5432/sandbox_test_${run_id}`;
  await ensureDatabase(database_url);
  stack.database_urls.push(database_url, sandbox_database_url);
  const db = createDb(database_url, 1);
  await migrateLatest(db);
  await db.destroy();

  const temporal_port = await freePort();
  const temporal_address = `127.0.0.1:${temporal_port}`;
  const cli = ensureTemporalCli((m) => process.stderr.write(`${m}\n`));
  // A SQLite file rather than memory, so the card-number grep can read Temporal's store too.
  const temporal_db_file = path.join(out, `temporal-${run_id}.db`);
  const temporal = startDevServer({ cli, port: temporal_port, ui_port: null, db_filename: temporal_db_file, log_file: path.join(out, 'temporal.log') });
  stack.children.push({ name: 'temporal', child: temporal });
  stack.files.push(temporal_db_file, `${temporal_db_file}-wal`, `${temporal_db_file}-shm`);

  const bundle_path = path.join(out, `workflow-bundle-${run_id}.js`);
  const [bundle] = await Promise.all([
    bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: quietLogger }),
    waitForTemporal(temporal_address),
  ]);
  fs.writeFileSync(bundle_path, bundle.code);

  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATABASE_URL: database_url,
    TEMPORAL_ADDRESS: temporal_address,
    TEMPORAL_TASK_QUEUE: `test-${run_id}`,
    SANDBOX_DATABASE_URL: sandbox_database_url,
    // Exactly-once is proven by our side never sending a second charge, not by the PSP's dedupe.
    SANDBOX_IGNORE_IDEMPOTENCY: '1',
    WORKFLOW_BUNDLE_PATH: bundle_path,
    WORKER_METRICS_PORT: '0',
    RISK_BLOCKED_BUYERS: 'buyer_blocked_for_tests',
    TEST_RUN_ID: run_id,
    TEMPORAL_DB_FILE: temporal_db_file,
  };
  const sandbox = await spawnSandbox('sandbox-psp', env);
  stack.children.push(sandbox.service);
  env.PSP_URL = sandbox.base_url;
  Object.assign(process.env, env);
  const worker = spawnTs('worker', 'src/workers/main.ts', env);
  stack.children.push(worker);
  await waitForPoller(temporal_address, env.TEMPORAL_TASK_QUEUE ?? '');
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

export async function stopStack(stack: TestStack): Promise<void> {
  for (const { child } of [...stack.children].reverse()) await stopChild(child);
}
