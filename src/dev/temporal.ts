import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/contract';

export const TEMPORAL_CLI_VERSION = 'v1.5.1'; // later tags carry a `replace` directive `go install` refuses

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function goBin(): string | null {
  try {
    return path.join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim(), 'bin');
  } catch {
    return null;
  }
}

/** `temporal` from TEMPORAL_CLI, PATH, or $(go env GOPATH)/bin — null when none is there. */
export function findTemporalCli(): string | null {
  const explicit = process.env.TEMPORAL_CLI;
  if (explicit) {
    if (!executable(explicit)) throw new Error(`TEMPORAL_CLI=${explicit} is not an executable file`);
    return explicit;
  }
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), goBin()].filter((d): d is string => !!d);
  return dirs.map((d) => path.join(d, 'temporal')).find(executable) ?? null;
}

/** Finds the CLI or builds it from source with Go (no binary downloads on this network). */
export function ensureTemporalCli(log: (msg: string) => void): string {
  const found = findTemporalCli();
  if (found !== null) return found;
  const bin = goBin();
  if (bin === null) {
    throw new Error('the Temporal CLI is missing and Go is not installed to build it: install Go ≥ 1.24 (https://go.dev/dl) or put `temporal` on PATH, or set TEMPORAL_ADDRESS to use an existing cluster');
  }
  log(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} from source (first time only, takes a few minutes)…`);
  const pkg = `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;
  try {
    execFileSync('go', ['install', pkg], { stdio: 'inherit' });
  } catch {
    // Where the checksum database is unreachable, the module proxy is the only source anyway.
    log('go install failed; retrying with GOSUMDB=off');
    execFileSync('go', ['install', pkg], { stdio: 'inherit', env: { ...process.env, GOSUMDB: 'off' } });
  }
  const built = path.join(bin, 'temporal');
  if (!executable(built)) throw new Error(`go install finished but ${built} is missing`);
  return built;
}

export interface DevServerOptions {
  cli: string;
  port: number;
  ui_port: number | null; // null: headless
  db_filename: string | null; // null: in memory
  log_file?: string; // append output here; else pipe it (pipe: true) or inherit ours
  pipe?: boolean;
}

/**
 * Dynamic config for every dev server we start (npm start, the test suite, the benches); measured
 * in docs/PERFORMANCE.md ("Tuning tried", 2026-11-27). Neither changes what a workflow records:
 * the same events, retries and timeouts.
 * - The history service reads its transfer queue (the tasks that hand workflow and activity tasks
 *   to matching, start children and report their completion) at most 20 times a second PER SHARD
 *   by default. A cluster spreads that over hundreds of shards; the dev server has one, so past
 *   ~20 transfer tasks/s every hop waited for that limiter (20-45 ms each, ~250 ms of a lone
 *   payment's ~350 ms). 1000/s makes the wait about a millisecond.
 * - Eager activity execution (off by default in the server; the SDK asks for it by default): a
 *   regular activity that a workflow task schedules on its own task queue comes back to that
 *   worker in the reply to the workflow task's completion, already started, instead of a transfer
 *   task, a matching round trip and a poll. Still a regular activity: recorded, timed out and
 *   retried as before (PSP_CALL's heartbeat timeout notices a dead worker).
 */
export const DEV_SERVER_DYNAMIC_CONFIG: Readonly<Record<string, string>> = {
  'history.transferProcessorMaxPollRPS': '1000',
  'system.enableActivityEagerExecution': 'true',
};

/**
 * For a dev server on a file (npm start, the test suite, the chaos bench). SQLite's default
 * rollback journal with synchronous=FULL serialises the server's writers on file locks and an
 * fsync per commit: 32 no-op payments in flight finished 0.6-3/s against 5-6.6/s in WAL mode
 * (PERFORMANCE.md, 2026-11-27). WAL + synchronous=NORMAL survives a killed server process (the
 * chaos bench's case); only a power cut can lose the last commits, acceptable for dev data.
 */
const SQLITE_FILE_PRAGMAS = ['journal_mode=WAL', 'synchronous=NORMAL'] as const;

export function startDevServer(opts: DevServerOptions): ChildProcess {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'warn'];
  for (const [key, value] of Object.entries(DEV_SERVER_DYNAMIC_CONFIG)) args.push('--dynamic-config-value', `${key}=${value}`);
  args.push(...(opts.ui_port === null ? ['--headless'] : ['--ui-port', String(opts.ui_port)]));
  if (opts.db_filename !== null) {
    fs.mkdirSync(path.dirname(opts.db_filename), { recursive: true });
    // A -wal left beside a deleted database would be replayed into the new one.
    if (!fs.existsSync(opts.db_filename)) for (const suffix of ['-wal', '-shm']) fs.rmSync(`${opts.db_filename}${suffix}`, { force: true });
    args.push('--db-filename', opts.db_filename);
    for (const pragma of SQLITE_FILE_PRAGMAS) args.push('--sqlite-pragma', pragma);
  }
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) args.push('--search-attribute', `${name}=${type}`);
  const out = opts.log_file !== undefined ? fs.openSync(opts.log_file, 'a') : opts.pipe === true ? 'pipe' : 'inherit';
  return spawn(opts.cli, args, { stdio: ['ignore', out, out] });
}

/** Waits until the frontend answers gRPC (the SDK's own test env gives up after 5 s; we wait longer). */
export async function waitForTemporal(address: string, timeout_ms = 120_000): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      last = (err as Error).message;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new Error(`Temporal at ${address} not ready after ${timeout_ms} ms: ${last}`);
}
