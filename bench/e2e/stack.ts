import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { loadEnv } from '../../src/config';
import { createDb, dropDatabase, ensureDatabase, migrateLatest } from '../../src/db';
import { ROOT, tsCommand } from '../../src/dev/run-ts';
import { ensureTemporalCli, startDevServer, waitForTemporal } from '../../src/dev/temporal';
import { createMerchant } from '../../src/services/merchants';
import { freePort } from '../../src/dev/net';

/** How long each piece may take to come up; a stack that is not ready by then is a failed run. */
const READY_TIMEOUT_MS = 90_000;
const POLL_INTERVAL_MS = 200;
const STOP_GRACE_MS = 10_000;
// Far above any rate the bench offers: the limiter is a per-key guard, not what we measure.
const BENCH_RATE_LIMIT_PER_S = '100000';
// One merchant sends everything: only the global backlog bound (ADMISSION_BACKLOG_MAX) applies.
const BENCH_MERCHANT_BACKLOG_MAX = '1000000';

export interface Stack {
  hex: string;
  api_url: string;
  api_key: string | null;
  database_url: string | null; // set when the bench owns the stack: completions are read from it
  temporal_address: string | null;
  task_queue: string;
  children: Map<string, ChildProcess>;
  databases: string[];
  log_dir: string;
}

export function emptyStack(hex: string, log_dir: string): Stack {
  return { hex, api_url: '', api_key: null, database_url: null, temporal_address: null, task_queue: `bench-${hex}`, children: new Map(), databases: [], log_dir };
}


function withDatabase(base_url: string, name: string): string {
  const url = new URL(base_url);
  url.pathname = `/${name}`;
  return url.toString();
}

export function spawnEntry(stack: Stack, name: string, entry: string, env: Record<string, string>): ChildProcess {
  const log = fs.openSync(path.join(stack.log_dir, `${name}.log`), 'a');
  const { command, args } = tsCommand(entry);
  // BENCH_CPU_PROF_DIR=dir: each process writes a V8 CPU profile there when it exits (node --cpu-prof).
  const prof_dir = process.env.BENCH_CPU_PROF_DIR;
  if (prof_dir !== undefined && prof_dir !== '') args.unshift('--cpu-prof', `--cpu-prof-dir=${path.resolve(prof_dir)}`);
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  stack.children.set(name, child);
  return child;
}

export async function waitUntil(what: string, ready: () => Promise<boolean>, timeout_ms = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
  throw new Error(`${what} not ready after ${timeout_ms} ms (see its log in the run's logs/ directory)`);
}

const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;

async function createDatabases(stack: Stack): Promise<{ app_url: string; psp_url: string }> {
  const server_url = loadEnv().DATABASE_URL;
  const app_url = withDatabase(server_url, `bench_${stack.hex}`);
  const psp_url = withDatabase(server_url, `bench_${stack.hex}_psp`);
  // Recorded before creation: a Ctrl-C in between still drops them (the names are ours and random).
  stack.databases.push(app_url, psp_url);
  if (!(await ensureDatabase(app_url))) throw new Error(`database bench_${stack.hex} already exists`);
  const db = createDb(app_url, 1);
  try {
    await migrateLatest(db);
    stack.api_key = (await createMerchant(db, `bench ${stack.hex}`)).api_key;
  } finally {
    await db.destroy();
  }
  stack.database_url = app_url;
  return { app_url, psp_url };
}

async function startTemporal(stack: Stack): Promise<string> {
  const port = await freePort();
  const cli = ensureTemporalCli((m) => process.stderr.write(`bench: ${m}\n`));
  const child = startDevServer({ cli, port, ui_port: null, db_filename: null, log_file: path.join(stack.log_dir, 'temporal.log') });
  stack.children.set('temporal', child);
  const address = `127.0.0.1:${port}`;
  await waitForTemporal(address, READY_TIMEOUT_MS);
  stack.temporal_address = address;
  return address;
}

/** The production processes, each its own node process, on free ports, against fresh databases. */
export async function startStack(stack: Stack): Promise<void> {
  const [{ app_url, psp_url }, temporal_address] = await Promise.all([createDatabases(stack), startTemporal(stack)]);
  const [api_port, sandbox_port] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    NODE_ENV: 'development',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    DATABASE_URL: app_url,
    TEMPORAL_ADDRESS: temporal_address,
    TEMPORAL_TASK_QUEUE: stack.task_queue,
    PSP_URL: `http://127.0.0.1:${sandbox_port}`,
    SANDBOX_PORT: String(sandbox_port),
    SANDBOX_DATABASE_URL: psp_url,
    API_PORT: String(api_port),
    API_HOST: '127.0.0.1',
    WORKER_METRICS_PORT: '0',
    RATE_LIMIT_PER_S: BENCH_RATE_LIMIT_PER_S,
    RATE_LIMIT_BURST: BENCH_RATE_LIMIT_PER_S,
    ADMISSION_MERCHANT_BACKLOG_MAX: BENCH_MERCHANT_BACKLOG_MAX,
  };
  spawnEntry(stack, 'sandbox_psp', 'packages/sandbox-psp/src/main.ts', env);
  spawnEntry(stack, 'worker', 'src/workers/main.ts', env);
  spawnEntry(stack, 'api', 'src/api/main.ts', env);
  stack.api_url = `http://127.0.0.1:${api_port}`;
  await Promise.all([
    waitUntil('sandbox_psp', httpOk(`${env.PSP_URL}/healthz`)),
    waitUntil('api', httpOk(`${stack.api_url}/healthz`)),
    waitUntil('worker', () => hasPoller(temporal_address, stack.task_queue)),
  ]);
}

export async function hasPoller(address: string, task_queue: string): Promise<boolean> {
  const connection = await Connection.connect({ address });
  try {
    const res = await connection.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: task_queue }, taskQueueType: 1 });
    return (res.pollers ?? []).length > 0;
  } finally {
    await connection.close();
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** API first (no new work), then workers, PSP, Temporal; then the databases. Safe to call twice. */
export async function stopStack(stack: Stack): Promise<void> {
  const order = ['api', 'ceiling_worker', 'worker', 'sandbox_psp', 'temporal'];
  const names = [...stack.children.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  for (const name of names) {
    const child = stack.children.get(name);
    stack.children.delete(name);
    if (child !== undefined) await stopChild(child).catch(() => undefined);
  }
  for (const url of stack.databases.splice(0)) await dropDatabase(url).catch((err: unknown) => process.stderr.write(`bench: drop failed: ${String(err)}\n`));
}
