import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { findTemporalCli } from '../../src/dev/temporal';
import { ROOT } from '../support/processes';

/**
 * `npm run chaos` (bench/chaos.ts) as a child process, small: it starts a stack of its own
 * (databases, Temporal dev server, sandbox PSP, API, worker; nothing shared with the suite's), kills
 * the worker every 3 s, restarts Temporal and the API once, and must end with every invariant PASS.
 * It runs in its own process group, so a timeout can stop it and everything it started.
 */
const INVARIANTS = [
  'quiescent_in_time',
  'all_accepted',
  'terminal_or_parked',
  'one_succeeded_charge_per_order',
  'succeeded_orders_match_psp',
  'ledger_verify',
  'wallets_match_ledger',
  'books_match_orders',
  'psp_reconciliation',
  'no_api_5xx',
  'idempotent_replays',
];
const RUN_DURATION_MAX_S = 110; // the run fails itself past this
const TEST_TIMEOUT_MS = 150_000;
const STOP_GRACE_MS = 20_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function chaos(args: string[], timeout_ms: number): Promise<Run> {
  const child = spawn('npm', ['run', '--silent', 'chaos', '--', ...args], { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const group = (signal: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  // Ctrl-C first (the run stops what it started and drops its databases), then no more asking.
  const soft = setTimeout(() => group('SIGINT'), timeout_ms);
  const hard = setTimeout(() => group('SIGKILL'), timeout_ms + STOP_GRACE_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(soft);
  clearTimeout(hard);
  return { code, stdout, stderr };
}

describe('npm run chaos', () => {
  it.each([
    [['--payments', '0']],
    [['--kill-every-s', '601']],
    [['--duration-max-s', 'soon']],
    [['--frobnicate']],
  ])('refuses %j with the usage text and exit 2, starting nothing', async (args) => {
    const run = await chaos(args, 30_000);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/usage: npm run chaos/);
    expect(run.stderr).not.toMatch(/stack up/);
  });

  it(
    'keeps every invariant through worker kills, a Temporal restart, an API restart and PSP faults',
    async () => {
      expect(findTemporalCli()).not.toBeNull(); // `npm run setup:temporal` provides it
      const run = await chaos(['--payments', '60', '--kill-every-s', '3', '--duration-max-s', String(RUN_DURATION_MAX_S)], TEST_TIMEOUT_MS - STOP_GRACE_MS - 5_000);
      const not_passed = INVARIANTS.filter((name) => !new RegExp(`^PASS +${name} `, 'm').test(run.stdout));
      // The whole output on failure: the FAIL lines carry the offending ids.
      if (run.code !== 0 || not_passed.length > 0) throw new Error(`chaos run: exit ${run.code}, not PASS: ${not_passed.join(', ') || '-'}\n${run.stdout}\n--- stderr (tail) ---\n${run.stderr.slice(-4_000)}`);
      expect(run.stdout).not.toMatch(/^FAIL/m);
      // It did inject what it says: kills, one restart each.
      expect(run.stdout).toMatch(/worker kills +[1-9]\d* \(SIGKILL/);
      expect(run.stdout).toMatch(/Temporal restarts +1 /);
      expect(run.stdout).toMatch(/API restarts +1 /);
      const json_path = /^report: (\S+\.json)$/m.exec(run.stdout)?.[1];
      expect(json_path).toBeDefined();
      const report = JSON.parse(fs.readFileSync(path.resolve(ROOT, json_path ?? ''), 'utf8')) as { passed: boolean; invariants: { name: string; ok: boolean }[] };
      expect(report.passed).toBe(true);
      expect(report.invariants.map((i) => i.name)).toEqual(INVARIANTS);
    },
    TEST_TIMEOUT_MS,
  );
});
