import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { loadEnv } from '../../src/config';
import { createDb, dropDatabase, ensureDatabase, migrateLatest } from '../../src/db';
import { freePort } from '../../src/dev/net';
import { ROOT, tsCommand } from '../../src/dev/run-ts';
import { ensureTemporalCli, startDevServer, waitForTemporal } from '../../src/dev/temporal';
import { createMerchant } from '../../src/services/merchants';

/**
 * The chaos run's own stack: fresh databases, a Temporal dev server on a free port with its
 * history in a SQLite file (so a restart keeps it), the sandbox PSP in ignore-idempotency mode,
 * an API and a worker. Each process is a Service the run can kill and start again; one that dies
 * on its own is started again after a second and counted.
 */

export const TIMEOUTS = {
  ready_ms: 120_000,
  stop_grace_ms: 10_000,
  temporal_stop_grace_ms: 15_000,
  restart_delay_ms: 1_000,
  poll_ms: 200,
} as const;

// Settings of the processes under test: short waits so a run of minutes sees every path.
export const STACK_SETTINGS = {
  psp_timeout_ms: 2_000, // worker's PSP client; the timeout fault holds longer than this
  psp_call_attempts_max: 3, // low enough that faults do park some orders
  psp_poll_initial_ms: 1_000,
  psp_poll_max_ms: 5_000,
  review_delay_ms: 1_000,
  webhook_backoff_ms: 200,
  relay_interval_ms: 1_000,
  webhook_sweep_interval_ms: 2_000,
  webhook_sweep_min_age_ms: 5_000,
  api_rate_limit_per_s: 100_000, // the API's per-key limiter is not what this run tests
  api_merchant_backlog_max: 1_000_000, // one merchant sends everything: only the global backlog bound applies
} as const;

/** One process of the stack, restartable. `end` is a chosen fault; any other exit is a crash. */
export class Service {
  child: ChildProcess | null = null;
  spawned_at_ms = 0;
  unexpected_exits = 0;
  /** Ends asked for with SIGTERM that needed the SIGKILL after the grace period. */
  forced_kills = 0;
  private expecting_exit = false;
  private final = false;
  private restart_timer: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    readonly log_file: string,
    private readonly launch: () => ChildProcess,
    private readonly note: (line: string) => void,
  ) {}

  /** Bytes already in the log: a readiness line is looked for after this offset. */
  logOffset(): number {
    try {
      return fs.statSync(this.log_file).size;
    } catch {
      return 0;
    }
  }

  start(): void {
    if (this.final) return;
    const child = this.launch();
    this.child = child;
    this.spawned_at_ms = Date.now();
    this.expecting_exit = false;
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      if (this.final || this.expecting_exit) return;
      this.unexpected_exits++;
      this.note(`${this.name} (pid ${child.pid}) exited on its own (code ${code}, signal ${signal}); starting it again`);
      this.restart_timer = setTimeout(() => {
        if (!this.final && this.child === null) this.start();
      }, TIMEOUTS.restart_delay_ms);
    });
  }

  /** Ends the running process with `signal` (SIGKILL after the grace) and waits until it is gone. */
  async end(signal: NodeJS.Signals, grace_ms: number = TIMEOUTS.stop_grace_ms): Promise<void> {
    clearTimeout(this.restart_timer);
    const child = this.child;
    if (child === null) return;
    this.expecting_exit = true;
    if (await endProcess(child, signal, grace_ms)) this.forced_kills++;
  }

  /** No restart from now on, whatever exits (Ctrl-C reaches the children too, they exit on their own). */
  freeze(): void {
    this.final = true;
    clearTimeout(this.restart_timer);
  }

  /** For good: no restart after this. */
  async stop(grace_ms?: number): Promise<void> {
    this.freeze();
    await this.end('SIGTERM', grace_ms);
  }
}

/** True when the grace period ran out and the process had to be SIGKILLed. */
async function endProcess(child: ChildProcess, signal: NodeJS.Signals, grace_ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let forced = false;
  child.kill(signal);
  const timer = setTimeout(() => {
    forced = signal !== 'SIGKILL';
    child.kill('SIGKILL');
  }, grace_ms);
  await exited;
  clearTimeout(timer);
  return forced;
}

export interface ChaosStack {
  hex: string;
  log_dir: string;
  tmp_dir: string;
  app_db_url: string;
  psp_db_url: string;
  api_url: string;
  psp_url: string;
  temporal_address: string;
  task_queue: string;
  admin_key: string;
  merchant_key: string;
  services: Map<'temporal' | 'sandbox' | 'api' | 'worker', Service>;
  databases: string[];
}

export function emptyStack(hex: string, log_dir: string, tmp_dir: string): ChaosStack {
  return {
    hex,
    log_dir,
    tmp_dir,
    app_db_url: '',
    psp_db_url: '',
    api_url: '',
    psp_url: '',
    temporal_address: '',
    task_queue: `chaos-${hex}`,
    admin_key: `admin_chaos_${randomBytes(16).toString('hex')}`,
    merchant_key: '',
    services: new Map(),
    databases: [],
  };
}

export function service(stack: ChaosStack, name: 'temporal' | 'sandbox' | 'api' | 'worker'): Service {
  const s = stack.services.get(name);
  if (s === undefined) throw new Error(`assertion: the ${name} service was started`);
  return s;
}

function withDatabase(base_url: string, name: string): string {
  const url = new URL(base_url);
  url.pathname = `/${name}`;
  return url.toString();
}

// Settings of ours that a parent (npm start's shell, the test suite) may have in its env: none of
// them may leak into the chaos stack, which sets each one it needs itself.
const OWN_SETTING = /^(DATABASE_URL|DB_POOL_MAX|TEMPORAL_(ADDRESS|NAMESPACE|TASK_QUEUE|UI_URL|DB_FILE)|API_|PSP_|COMMISSION_BPS|RISK_|RATE_LIMIT_|ADMISSION_|RELAY_|WORKER_METRICS_PORT|HOLD_SWEEP_|DEMO_MERCHANT_API_KEY|CHECKOUT_TIMEOUT_MS|WAIT_HISTORY_EVENTS_MAX|ADMIN_API_KEY|WEBHOOK_SWEEP_|SANDBOX_|WORKFLOW_BUNDLE_PATH|TEST_RUN_ID|NODE_ENV|LOG_LEVEL)/;

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !OWN_SETTING.test(k)) env[k] = v;
  return { ...env, NODE_ENV: 'development', LOG_LEVEL: 'info' };
}

function tsService(stack: ChaosStack, name: 'sandbox' | 'api' | 'worker', entry: string, env: Record<string, string>, note: (l: string) => void): Service {
  const log_file = path.join(stack.log_dir, `${name}.log`);
  const launch = (): ChildProcess => {
    const fd = fs.openSync(log_file, 'a');
    try {
      const { command, args } = tsCommand(entry);
      return spawn(command, args, { cwd: ROOT, env: { ...baseEnv(), ...env }, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd); // the child has its own copy
    }
  };
  const s = new Service(name, log_file, launch, note);
  stack.services.set(name, s);
  return s;
}

export async function waitUntil(what: string, ready: () => Promise<boolean>, timeout_ms: number = TIMEOUTS.ready_ms): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, TIMEOUTS.poll_ms));
  }
  throw new Error(`${what} not ready after ${timeout_ms} ms (see its log)`);
}

export const httpOk = (url: string) => async (): Promise<boolean> => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;

/** Waits for a line containing `needle` written to the log after `offset`. */
export async function waitForLog(file: string, offset: number, needle: string, timeout_ms: number = TIMEOUTS.ready_ms): Promise<void> {
  await waitUntil(`"${needle}" in ${path.basename(file)}`, async () => {
    const size = fs.statSync(file).size;
    if (size <= offset) return false;
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      return buf.toString('utf8').includes(needle);
    } finally {
      fs.closeSync(fd);
    }
  }, timeout_ms);
}

/** The worker logs this once Worker.create is done and it is about to poll. */
export const WORKER_READY_LINE = '"msg":"worker running"';

async function createDatabases(stack: ChaosStack): Promise<void> {
  const server_url = loadEnv().DATABASE_URL;
  stack.app_db_url = withDatabase(server_url, `payments_chaos_${stack.hex}`);
  stack.psp_db_url = withDatabase(server_url, `sandbox_chaos_${stack.hex}`);
  // Recorded before creation: a Ctrl-C in between still drops them (the names are ours and random).
  stack.databases.push(stack.app_db_url, stack.psp_db_url);
  if (!(await ensureDatabase(stack.app_db_url))) throw new Error(`database payments_chaos_${stack.hex} already exists`);
  const db = createDb(stack.app_db_url, 1);
  try {
    await migrateLatest(db); // as npm start does
    stack.merchant_key = (await createMerchant(db, `chaos ${stack.hex}`)).api_key;
  } finally {
    await db.destroy();
  }
}

async function startTemporal(stack: ChaosStack, note: (l: string) => void): Promise<void> {
  const port = await freePort();
  const cli = ensureTemporalCli(note);
  const db_filename = path.join(stack.tmp_dir, 'temporal.db');
  const log_file = path.join(stack.log_dir, 'temporal.log');
  const s = new Service('temporal', log_file, () => startDevServer({ cli, port, ui_port: null, db_filename, log_file }), note);
  stack.services.set('temporal', s);
  stack.temporal_address = `127.0.0.1:${port}`;
  s.start();
  await waitForTemporal(stack.temporal_address, TIMEOUTS.ready_ms);
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

/** Bundled once: a worker started again after a SIGKILL is polling within a second or two. */
async function bundleWorkflows(stack: ChaosStack): Promise<string> {
  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: quietLogger });
  const file = path.join(stack.tmp_dir, 'workflow-bundle.js');
  fs.writeFileSync(file, bundle.code);
  return file;
}

export async function startStack(stack: ChaosStack, note: (l: string) => void): Promise<void> {
  fs.mkdirSync(stack.log_dir, { recursive: true });
  fs.mkdirSync(stack.tmp_dir, { recursive: true });
  const [, , bundle_path] = await Promise.all([createDatabases(stack), startTemporal(stack, note), bundleWorkflows(stack)]);
  const [api_port, psp_port] = [await freePort(), await freePort()];
  stack.api_url = `http://127.0.0.1:${api_port}`;
  stack.psp_url = `http://127.0.0.1:${psp_port}`;
  const S = STACK_SETTINGS;
  const shared = { DATABASE_URL: stack.app_db_url, TEMPORAL_ADDRESS: stack.temporal_address, TEMPORAL_TASK_QUEUE: stack.task_queue, PSP_URL: stack.psp_url };
  tsService(stack, 'sandbox', 'packages/sandbox-psp/src/main.ts', {
    SANDBOX_PORT: String(psp_port),
    SANDBOX_DATABASE_URL: stack.psp_db_url,
    // Every POST is a new charge: a duplicate sent by our side shows up as a second charge.
    SANDBOX_IGNORE_IDEMPOTENCY: '1',
    SANDBOX_REVIEW_DELAY_MS: String(S.review_delay_ms),
    SANDBOX_WEBHOOK_URL: `${stack.api_url}/webhooks/psp`,
    SANDBOX_WEBHOOK_BACKOFF_MS: String(S.webhook_backoff_ms),
  }, note).start();
  tsService(stack, 'api', 'src/api/main.ts', {
    ...shared,
    API_PORT: String(api_port),
    API_HOST: '127.0.0.1',
    ADMIN_API_KEY: stack.admin_key,
    PSP_POLL_INITIAL_MS: String(S.psp_poll_initial_ms),
    PSP_POLL_MAX_MS: String(S.psp_poll_max_ms),
    PSP_CALL_ATTEMPTS_MAX: String(S.psp_call_attempts_max),
    RATE_LIMIT_PER_S: String(S.api_rate_limit_per_s),
    RATE_LIMIT_BURST: String(S.api_rate_limit_per_s),
    ADMISSION_MERCHANT_BACKLOG_MAX: String(S.api_merchant_backlog_max),
    // Chaos measures correctness under faults, not the door: a crashing worker slows starts a lot.
    ADMISSION_BACKLOG_WAIT_MAX_S: '86400',
    RELAY_INTERVAL_MS: String(S.relay_interval_ms),
    WEBHOOK_SWEEP_INTERVAL_MS: String(S.webhook_sweep_interval_ms),
    WEBHOOK_SWEEP_MIN_AGE_MS: String(S.webhook_sweep_min_age_ms),
  }, note).start();
  const worker = tsService(stack, 'worker', 'src/workers/main.ts', {
    ...shared,
    PSP_TIMEOUT_MS: String(S.psp_timeout_ms),
    WORKFLOW_BUNDLE_PATH: bundle_path,
    WORKER_METRICS_PORT: '0',
  }, note);
  const offset = worker.logOffset();
  worker.start();
  await Promise.all([
    waitUntil('sandbox PSP', httpOk(`${stack.psp_url}/healthz`)),
    waitUntil('API', httpOk(`${stack.api_url}/healthz`)),
    waitForLog(worker.log_file, offset, WORKER_READY_LINE),
  ]);
}

/** API first (no new work), then worker, PSP, Temporal; then the databases and the temp dir. Safe to call twice. */
export async function stopStack(stack: ChaosStack, keep: boolean, note: (l: string) => void): Promise<void> {
  for (const s of stack.services.values()) s.freeze(); // before any await: nothing may be started again
  for (const name of ['api', 'worker', 'sandbox', 'temporal'] as const) {
    await stack.services.get(name)?.stop(name === 'temporal' ? TIMEOUTS.temporal_stop_grace_ms : undefined).catch(() => undefined);
  }
  const databases = stack.databases.splice(0);
  if (keep) {
    if (databases.length > 0) note(`kept: databases ${databases.map((u) => new URL(u).pathname.slice(1)).join(', ')}, Temporal SQLite ${stack.tmp_dir}`);
    return;
  }
  for (const url of databases) await dropDatabase(url).catch((err: unknown) => note(`drop failed: ${String(err)}`));
  fs.rmSync(stack.tmp_dir, { recursive: true, force: true });
}

export function tmpDirFor(hex: string): string {
  return path.join(os.tmpdir(), `chaos-${hex}`);
}
