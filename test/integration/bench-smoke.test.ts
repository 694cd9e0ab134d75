import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tsCommand } from '../../src/dev/run-ts';
import { LIMITS, UsageError, parseArgs } from '../../bench/e2e/args';
import { ROOT } from '../support/processes';
import { newMerchant, startTestApi, type TestApi } from '../support/stack';

/**
 * `npm run bench` (bench/e2e.ts) as a child process at a low rate against an API on the suite's
 * own stack (Temporal, worker, sandbox PSP, database): the report's shape and its bookkeeping.
 * The flag rules are checked in-process (no stack needed).
 */
const BENCH_TIMEOUT_MS = 60_000;
const OUT_DIR = 'test-output/bench';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runBench(args: string[]): Promise<Run> {
  const { command, args: node_args } = tsCommand('bench/e2e.ts');
  const child = spawn(command, [...node_args, ...args], { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), BENCH_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const BASE = ['--duration', '3', '--orders', '2'];

describe('bench flags', () => {
  it('reads --overload with or without a multiple, and runs --find-max first unless --sustainable is given', () => {
    expect(parseArgs(['--rate', '2', ...BASE, '--overload'])).toMatchObject({ overload_multiple: LIMITS.overload_multiple_default, find_max: true, sustainable_per_s: null });
    expect(parseArgs(['--rate', '2', '--overload', '4.5', ...BASE])).toMatchObject({ overload_multiple: 4.5, find_max: true });
    expect(parseArgs(['--sustainable', '7', '--overload=2', ...BASE])).toMatchObject({ overload_multiple: 2, sustainable_per_s: 7, rate_per_s: 7, find_max: false });
    expect(parseArgs(['--rate', '2', ...BASE])).toMatchObject({ overload_multiple: null, ceiling_shape: 'lean' });
    expect(parseArgs(['--rate', '2', ...BASE, '--ceiling', '--ceiling-shape', 'children'])).toMatchObject({ ceiling: true, ceiling_shape: 'children' });
  });

  it.each([
    [['--rate', '2', ...BASE, '--overload', '1'], /--overload/],
    [['--rate', '2', ...BASE, '--overload', 'x3'], /--overload/],
    [['--sustainable', '2', ...BASE], /--sustainable only goes with --overload/],
    [['--sustainable', '2', '--rate', '2', '--overload', ...BASE], /--sustainable replaces/],
    [['--sustainable', '2', '--find-max', '--overload', ...BASE], /--sustainable replaces/],
    [['--sustainable', '1500', '--overload', '2', ...BASE], /more than/],
    [['--overload', ...BASE], /--rate is required/],
    [['--rate', '2', ...BASE, '--ceiling-shape', 'lean'], /only goes with --ceiling/],
    [['--rate', '2', ...BASE, '--ceiling', '--ceiling-shape', 'flat'], /not one of/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
    expect(() => parseArgs(argv)).toThrow(message);
  });
});

describe('npm run bench', () => {
  let api: TestApi;
  let key: string;
  beforeAll(async () => {
    api = await startTestApi();
    key = await newMerchant(api.db);
  });
  afterAll(async () => {
    await api.close();
  });

  it('refuses an out-of-range rate with a usage error and starts nothing', async () => {
    const run = await runBench(['--rate', '0', '--duration', '3', '--orders', '2']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--rate/);
    expect(run.stderr).not.toMatch(/starting the stack/);
  });

  it('refuses an unknown token and an unreachable --url', async () => {
    expect((await runBench(['--rate', '5', '--duration', '3', '--orders', '2', '--tokens', 'tok_nope:1'])).code).toBe(2);
    expect((await runBench(['--rate', '5', '--duration', '3', '--orders', '2', '--url', 'http://127.0.0.1:1', '--key', 'sk_x'])).code).toBe(2);
  });

  it('reports a short open-loop run in which every accepted payment completed', async () => {
    const run = await runBench(['--rate', '5', '--duration', '3', '--orders', '2', '--warmup', '1', '--tokens', 'tok_success:4,tok_decline:1', '--url', api.url, '--key', key, '--out', OUT_DIR]);
    expect(run).toMatchObject({ code: 0 });
    const json_path = /report: (\S+\.json)/.exec(run.stdout)?.[1];
    expect(json_path).toBeDefined();
    const report = JSON.parse(fs.readFileSync(path.resolve(ROOT, json_path ?? ''), 'utf8'));
    expect(report).toMatchObject({
      completed_per_s: expect.any(Number),
      accepted_per_s: expect.any(Number),
      accept_latency_ms: { p50: expect.any(Number), p90: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) },
      completion_latency_ms: { p50: expect.any(Number), p99: expect.any(Number) },
      errors_by_code: {},
      refused: 0,
      http_5xx: 0,
      cpu_ms_per_payment: { bench: expect.any(Number), total: expect.any(Number) },
      overload: null,
    });
    expect(report.sent).toBe(15);
    expect(report.accepted + report.rejected).toBe(report.sent);
    expect(report.accepted).toBe(report.sent);
    expect(report.completed).toBe(report.accepted);
    expect(report.not_completed).toBe(0);
    expect(fs.existsSync(path.resolve(ROOT, (json_path ?? '').replace(/\.json$/, '.svg')))).toBe(true);
  });

  it('offers a multiple of a given sustainable rate, waits for the drain and says every accepted payment ended terminal', async () => {
    const run = await runBench(['--sustainable', '2', '--overload', '2', '--duration', '2', '--warmup', '0', '--orders', '1', '--url', api.url, '--key', key, '--out', OUT_DIR]);
    expect(run).toMatchObject({ code: 0 });
    const json_path = /report: (\S+\.json)/.exec(run.stdout)?.[1];
    const report = JSON.parse(fs.readFileSync(path.resolve(ROOT, json_path ?? ''), 'utf8'));
    expect(report.overload).toMatchObject({
      multiple: 2,
      sustainable_rate_per_s: 2,
      sustainable_from: 'flag',
      rate_per_s: 4,
      sent: 8,
      http_5xx: 0,
      errors_by_code: {},
      drain_s: expect.any(Number),
      not_terminal_after_drain: 0,
      all_terminal_after_drain: true,
      terminal_source: 'api',
    });
    // Every request is answered one way: accepted, refused at the door (429), or an error.
    expect(report.overload.accepted + report.overload.refused).toBe(report.overload.sent);
    expect(report.steps.map((s: { phase: string }) => s.phase)).toEqual(['overload']);
    expect(run.stdout).toMatch(/overload: 2 x 2\/s/);
  });
});
