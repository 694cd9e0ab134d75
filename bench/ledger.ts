/**
 * Ledger posting benchmark: order captures per second and their latency, through LedgerPoster
 * (group commit: concurrent posts share one statement and one commit) and through one statement
 * per posting, next to pgbench on the same server in the same run.
 *
 *   npm run bench:ledger -- [--duration S] [--clients 1,8,32]
 *
 * A benchmark that prints numbers, never a test: the goals are reported, not enforced. It
 * exits non-zero only when the books are wrong (a verifyLedger break, the hot seller's balance off
 * its tally) or a posting failed. Everything runs in its own fresh databases, dropped at the end,
 * on failure and on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadEnv } from '../src/config';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../src/db';
import { assert } from '../src/domain/assert';
import { capturePosting, type PostingDraft } from '../src/domain/ledger';
import { LedgerPoster, postInTransaction, type PostResult } from '../src/ledger/poster';
import { accountBalances, verifyLedger, type LedgerReport } from '../src/ledger/store';

const LIMITS = {
  duration_s_default: 5,
  duration_s_max: 300,
  warmup_s: 1,
  clients_default: [1, 8, 32],
  clients_max: 256,
  client_counts_max: 8,
  pool_max: 16,
  sellers: 1_000,
  seed_batch: 250, // postings per seed statement; LedgerPoster's BATCH_MAX is 256
  hot_share: 0.9,
  pgbench_scale: 10,
  pgbench_threads_max: 2,
  pgbench_grace_s: 60, // pgbench -T plus this, then it is killed
  breaks_printed_max: 10,
  cleanup_timeout_ms: 30_000,
} as const;

const GOALS = { spread_per_s: 5_000, hot_per_s: 2_000, pgbench_ratio: 0.5 } as const;

const HOT_SELLER = 's0';
const CURRENCY = 'USD';
const COMMISSION_BPS = 300n;
const PSP_FEE_PER_MILLE = 29n;
const PSP_FEE_FIXED_MINOR = 30n;
const HOT_PGBENCH_SCRIPT = 'update pgbench_accounts set abalance = abalance + 1 where aid = 1;\n';

const USAGE = `usage: npm run bench:ledger -- [--duration S] [--clients LIST]
  --duration S     measured seconds per run, a whole number 1..${LIMITS.duration_s_max} (default ${LIMITS.duration_s_default}; plus ${LIMITS.warmup_s} s warm-up)
  --clients LIST   concurrent clients per run, comma-separated, each 1..${LIMITS.clients_max}, at most ${LIMITS.client_counts_max} (default ${LIMITS.clients_default.join(',')})
  --help           this text`;

type Workload = 'spread' | 'hot';
type Mode = 'batched' | 'single';
const WORKLOADS: readonly Workload[] = ['spread', 'hot'];
const MODES: readonly Mode[] = ['batched', 'single'];

interface Options {
  duration_s: number;
  clients: number[];
  help: boolean;
}

interface Row {
  workload: Workload;
  clients: number;
  mode: Mode;
  postings: number; // completed inside the measured window
  postings_per_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  avg_batch: number | null; // postings per commit (rows sharing an xmin), over the whole run
  errors: number;
  first_error: string | null;
  pgbench_tps: number | null;
  ratio: number | null; // postings_per_s / pgbench_tps
}

/** Everything the run owns, so a failure or Ctrl-C can give it all back. */
interface Context {
  options: Options;
  database_url: string;
  scratch_url: string;
  merchant_id: string;
  hot_tally_minor: bigint; // sum of the seller shares posted to HOT_SELLER: its account must be minus this
  next_run: number;
  interrupted: boolean;
  pools: Set<Knex>;
  children: Set<ChildProcess>;
  databases: Set<string>;
  tmp_dirs: Set<string>;
  cleaning: Promise<void> | null;
}

class UsageError extends Error {}

const out = (line = '') => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stderr.write(`bench:ledger: ${line}\n`);
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

// ---------------------------------------------------------------------------------------------
// Flags

function wholeNumber(flag: string, text: string, max: number): number {
  if (!/^[1-9][0-9]{0,2}$/.test(text) || Number(text) > max) throw new UsageError(`${flag}: "${text}" is not a whole number from 1 to ${max}`);
  return Number(text);
}

function parseClients(text: string): number[] {
  const counts = text.split(',').map((part) => wholeNumber('--clients', part, LIMITS.clients_max));
  if (counts.length > LIMITS.client_counts_max) throw new UsageError(`--clients takes at most ${LIMITS.client_counts_max} counts`);
  if (new Set(counts).size !== counts.length) throw new UsageError('--clients has a count twice');
  return counts;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { duration_s: LIMITS.duration_s_default, clients: [...LIMITS.clients_default], help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag = '', inline] = arg.startsWith('--') ? arg.split(/=(.*)/s, 2) : [arg];
    if (flag === '--help' && inline === undefined) {
      options.help = true;
      continue;
    }
    if (flag !== '--duration' && flag !== '--clients') throw new UsageError(arg.startsWith('-') ? `unknown flag: ${arg}` : `unexpected argument: ${arg}`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === '' || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    if (flag === '--duration') options.duration_s = wholeNumber(flag, value, LIMITS.duration_s_max);
    else options.clients = parseClients(value);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Resources and cleanup

function withDatabase(base_url: string, name: string): string {
  const url = new URL(base_url);
  url.pathname = `/${name}`;
  return url.toString();
}

function newContext(options: Options): Context {
  const hex = randomBytes(4).toString('hex');
  const server_url = loadEnv().DATABASE_URL;
  return {
    options,
    database_url: withDatabase(server_url, `bench_ledger_${hex}`),
    scratch_url: withDatabase(server_url, `bench_ledger_${hex}_pgbench`),
    merchant_id: `mer_bench_${hex}`,
    hot_tally_minor: 0n,
    next_run: 0,
    interrupted: false,
    pools: new Set(),
    children: new Set(),
    databases: new Set(),
    tmp_dirs: new Set(),
    cleaning: null,
  };
}

async function createFreshDatabase(ctx: Context, database_url: string): Promise<void> {
  ctx.databases.add(database_url); // before: a Ctrl-C during creation still drops it (the name is ours and random)
  if (!(await ensureDatabase(database_url))) {
    ctx.databases.delete(database_url); // not ours: never drop it
    throw new Error(`database already exists: ${new URL(database_url).pathname.slice(1)}`);
  }
}

function openPool(ctx: Context, pool_max: number): Knex {
  const db = createDb(ctx.database_url, pool_max);
  ctx.pools.add(db);
  return db;
}

async function closePool(ctx: Context, db: Knex): Promise<void> {
  ctx.pools.delete(db);
  await db.destroy();
}

/** Idempotent; the same promise for the normal end, a failure and a signal. */
function cleanup(ctx: Context): Promise<void> {
  ctx.cleaning ??= (async () => {
    type Step = [what: string, run: () => Promise<unknown>];
    const steps: Step[] = [
      ...[...ctx.children].map((child): Step => ['stop pgbench', async () => child.kill('SIGTERM')]),
      ...[...ctx.pools].map((db): Step => ['close pool', () => closePool(ctx, db)]),
      ...[...ctx.databases].map((url): Step => [`drop ${new URL(url).pathname.slice(1)}`, () => dropDatabase(url)]),
      ...[...ctx.tmp_dirs].map((dir): Step => ['remove temp dir', () => fs.promises.rm(dir, { recursive: true, force: true })]),
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        progress(`cleanup: ${what} failed: ${message(err)}`);
      }
    }
  })();
  return ctx.cleaning;
}

/**
 * Ctrl-C reaches us twice (the terminal signals the whole process group and tsx relays it too), so
 * a repeated signal does not cut the cleanup short; a deadline does, should dropping hang.
 */
function onSignals(ctx: Context): void {
  const handle = (signal: NodeJS.Signals, code: number) => {
    if (ctx.interrupted) return;
    ctx.interrupted = true;
    progress(`${signal}: stopping and dropping the bench databases`);
    setTimeout(() => {
      progress(`cleanup still running after ${LIMITS.cleanup_timeout_ms} ms: exiting`);
      process.exit(code);
    }, LIMITS.cleanup_timeout_ms).unref();
    void cleanup(ctx).finally(() => process.exit(code));
  };
  process.on('SIGINT', () => handle('SIGINT', 130));
  process.on('SIGTERM', () => handle('SIGTERM', 143));
}

// ---------------------------------------------------------------------------------------------
// Postings

function pickSeller(workload: Workload): string {
  if (workload === 'hot' && Math.random() < LIMITS.hot_share) return HOT_SELLER;
  return `s${Math.floor(Math.random() * LIMITS.sellers)}`;
}

/** One order capture; returns the seller's share too, for the hot seller's tally. */
function capture(merchant_id: string, order_id: string, seller_id: string): { posting: PostingDraft; seller_share_minor: bigint } {
  const amount_minor = 100n + BigInt(Math.floor(Math.random() * 99_901)); // 1.00 .. 1,000.00 USD
  const commission_minor = (amount_minor * COMMISSION_BPS) / 10_000n;
  const psp_fee_minor = (amount_minor * PSP_FEE_PER_MILLE) / 1_000n + PSP_FEE_FIXED_MINOR;
  const draft = capturePosting({ order_id, payment_id: `pay_${order_id}`, merchant_id, seller_id, currency: CURRENCY, amount_minor, commission_minor, psp_fee_minor });
  // The bench has no payment_event / payment_order rows, and those ids are foreign keys.
  return { posting: { ...draft, payment_id: null, order_id: null }, seller_share_minor: amount_minor - commission_minor };
}

async function seed(ctx: Context, db: Knex): Promise<void> {
  await db('merchant').insert({ id: ctx.merchant_id, name: 'ledger bench merchant' });
  // One capture per seller first, so the timed runs measure postings, not account creation.
  for (let first = 0; first < LIMITS.sellers; first += LIMITS.seed_batch) {
    const captures = Array.from({ length: Math.min(LIMITS.seed_batch, LIMITS.sellers - first) }, (_, i) => ({
      seller_id: `s${first + i}`,
      ...capture(ctx.merchant_id, `seed_${first + i}`, `s${first + i}`),
    }));
    const results = await postInTransaction(db, captures.map((c) => c.posting));
    assert(results.every((r) => r.created), 'seed postings are new');
    for (const c of captures) if (c.seller_id === HOT_SELLER) ctx.hot_tally_minor += c.seller_share_minor;
  }
  await db.raw('analyze'); // what autovacuum would have done by now on a live system
}

// ---------------------------------------------------------------------------------------------
// One timed run

interface RunState {
  tag: string;
  workload: Workload;
  next_order: number;
  measure_from_ns: bigint;
  stop_at_ns: bigint;
  latencies_ms: number[];
  errors: number;
  first_error: string | null;
}

type Send = (posting: PostingDraft) => Promise<PostResult>;

async function clientLoop(ctx: Context, run: RunState, send: Send): Promise<void> {
  for (;;) {
    if (ctx.interrupted || process.hrtime.bigint() >= run.stop_at_ns) return;
    const seller_id = pickSeller(run.workload);
    const { posting, seller_share_minor } = capture(ctx.merchant_id, `${run.tag}_${run.next_order++}`, seller_id);
    const began_ns = process.hrtime.bigint();
    try {
      const result = await send(posting);
      const done_ns = process.hrtime.bigint();
      if (!result.created) throw new Error(`posting ${posting.reference} was not new`);
      if (seller_id === HOT_SELLER) ctx.hot_tally_minor += seller_share_minor;
      if (done_ns >= run.measure_from_ns && done_ns <= run.stop_at_ns) run.latencies_ms.push(Number(done_ns - began_ns) / 1e6);
    } catch (err) {
      run.errors += 1;
      run.first_error ??= message(err);
    }
  }
}

function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? null;
}

/** Postings per commit: rows written by one transaction share its xmin. */
async function averageBatch(db: Knex, tag: string): Promise<number | null> {
  const res = await db.raw<{ rows: { postings: number; commits: number }[] }>(
    `select count(*)::int as postings, count(distinct xmin::text)::int as commits from ledger_transaction where starts_with(reference, ?)`,
    [`order:${tag}_`],
  );
  const row = res.rows[0];
  return row === undefined || row.commits === 0 ? null : row.postings / row.commits;
}

async function runLedger(ctx: Context, workload: Workload, clients: number, mode: Mode): Promise<Row> {
  const db = openPool(ctx, Math.min(clients, LIMITS.pool_max));
  try {
    const poster = new LedgerPoster(db); // one per process, shared by every client: the design under test
    const send: Send =
      mode === 'batched'
        ? (posting) => poster.post(posting)
        : async (posting) => {
            const [result] = await postInTransaction(db, [posting]);
            assert(result !== undefined, 'one result for one posting');
            return result;
          };
    const start_ns = process.hrtime.bigint();
    const measure_from_ns = start_ns + BigInt(LIMITS.warmup_s) * 1_000_000_000n;
    const run: RunState = {
      tag: `r${ctx.next_run++}`,
      workload,
      next_order: 0,
      measure_from_ns,
      stop_at_ns: measure_from_ns + BigInt(ctx.options.duration_s) * 1_000_000_000n,
      latencies_ms: [],
      errors: 0,
      first_error: null,
    };
    await Promise.all(Array.from({ length: clients }, () => clientLoop(ctx, run, send)));
    const sorted = Float64Array.from(run.latencies_ms).sort();
    return {
      workload,
      clients,
      mode,
      postings: sorted.length,
      postings_per_s: sorted.length / ctx.options.duration_s,
      p50_ms: percentile(sorted, 0.5),
      p99_ms: percentile(sorted, 0.99),
      avg_batch: await averageBatch(db, run.tag),
      errors: run.errors,
      first_error: run.first_error,
      pgbench_tps: null,
      ratio: null,
    };
  } finally {
    await closePool(ctx, db);
  }
}

// ---------------------------------------------------------------------------------------------
// pgbench

function runPgbench(ctx: Context, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.PGBENCH ?? 'pgbench', [...args, ctx.scratch_url], { stdio: ['ignore', 'pipe', 'pipe'] });
    ctx.children.add(child);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    const timer = setTimeout(() => child.kill('SIGTERM'), (ctx.options.duration_s + LIMITS.pgbench_grace_s) * 1_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      ctx.children.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      ctx.children.delete(child);
      const text = Buffer.concat(chunks).toString('utf8');
      if (code === 0) resolve(text);
      else reject(new Error(`pgbench ${args.join(' ')} exited ${code ?? signal}: ${text.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

async function preparePgbench(ctx: Context): Promise<string> {
  await createFreshDatabase(ctx, ctx.scratch_url);
  await runPgbench(ctx, ['-i', '-q', '-s', String(LIMITS.pgbench_scale)]);
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'bench-ledger-'));
  ctx.tmp_dirs.add(dir);
  const script = path.join(dir, 'hot.sql');
  await fs.promises.writeFile(script, HOT_PGBENCH_SCRIPT);
  return script;
}

async function pgbenchTps(ctx: Context, workload: Workload, clients: number, hot_script: string): Promise<number> {
  const load = workload === 'spread' ? ['-b', 'simple-update'] : ['-f', hot_script];
  const threads = Math.min(clients, LIMITS.pgbench_threads_max); // pgbench wants threads ≤ clients
  const text = await runPgbench(ctx, ['-n', ...load, '-c', String(clients), '-j', String(threads), '-T', String(ctx.options.duration_s)]);
  const match = /^tps = ([0-9.]+)/m.exec(text);
  if (match?.[1] === undefined) throw new Error(`no "tps = …" in pgbench output: ${text.trim()}`);
  return Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// Report

const fixed = (n: number | null, digits: number) => (n === null ? '-' : n.toFixed(digits));

function printTable(rows: Row[]): void {
  const header = ['workload', 'clients', 'mode', 'postings/s', 'p50 ms', 'p99 ms', 'pgbench tps', 'ratio', 'avg batch', 'errors'];
  const cells = rows.map((r) => [
    r.workload,
    String(r.clients),
    r.mode,
    fixed(r.postings_per_s, 0),
    fixed(r.p50_ms, 2),
    fixed(r.p99_ms, 2),
    fixed(r.pgbench_tps, 0),
    fixed(r.ratio, 2),
    fixed(r.avg_batch, 1),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => c.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  out(line(header));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) out(line(c));
  for (const r of rows) if (r.first_error !== null) out(`errors in ${r.workload}/${r.clients}/${r.mode}: ${r.errors}, first: ${r.first_error}`);
}

interface Goal {
  goal: string;
  met: boolean | null;
  detail: string;
}

/** The goals, judged on each workload's best batched run (that is the production path). */
function goals(rows: Row[]): Goal[] {
  const result: Goal[] = [];
  for (const [workload, target] of [['spread', GOALS.spread_per_s], ['hot', GOALS.hot_per_s]] as const) {
    const best = rows.filter((r) => r.workload === workload && r.mode === 'batched').sort((a, b) => b.postings_per_s - a.postings_per_s)[0];
    const at = best === undefined ? '' : ` (best batched run: ${best.clients} clients)`;
    const rate = best?.postings_per_s ?? 0;
    result.push({ goal: `${workload} >= ${target} postings/s`, met: best === undefined ? null : rate >= target, detail: `${rate.toFixed(0)}/s${at}` });
    const ratio = best?.ratio ?? null;
    result.push({
      goal: `${workload} >= ${GOALS.pgbench_ratio} x pgbench tps`,
      met: ratio === null ? null : ratio >= GOALS.pgbench_ratio,
      detail: ratio === null ? 'no pgbench figure' : `${ratio.toFixed(2)} = ${rate.toFixed(0)} / ${fixed(best?.pgbench_tps ?? null, 0)} tps${at}`,
    });
  }
  return result;
}

function printVerify(report: LedgerReport): void {
  out(`verifyLedger: ${report.transactions} transactions, ${report.entries} entries, ${report.accounts} accounts, ${report.breaks.length} break(s)`);
  for (const b of report.breaks.slice(0, LIMITS.breaks_printed_max)) out(`  BREAK ${b.kind} id=${b.id} currency=${b.currency} ${b.detail}`);
}

async function hotSellerCheck(ctx: Context, db: Knex): Promise<{ ok: boolean; posted_minor: string; expected_minor: string }> {
  const [account] = await accountBalances(db, `seller_payable:${ctx.merchant_id}:${HOT_SELLER}`, CURRENCY);
  const posted_minor = account?.posted_minor ?? 0n;
  const expected_minor = -ctx.hot_tally_minor; // a liability: credits (negative) grow it
  return { ok: account !== undefined && posted_minor === expected_minor, posted_minor: posted_minor.toString(), expected_minor: expected_minor.toString() };
}

function isoBasic(date: Date): string {
  return date.toISOString().replace(/[-:]/g, ''); // 20260101T120000.000Z: ISO 8601 basic format, no colons in file names
}

function writeJson(started_at: Date, report: object): string {
  const dir = path.resolve(__dirname, '..', 'bench-results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `ledger-${isoBasic(started_at)}.json`);
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

// ---------------------------------------------------------------------------------------------
// Main

/**
 * All ledger runs first, then pgbench: pgbench's scale-10 tables are larger than a small
 * shared_buffers, so running it in between would evict the ledger's pages before each ledger run.
 */
async function runAll(ctx: Context): Promise<Row[]> {
  const rows: Row[] = [];
  for (const workload of WORKLOADS) {
    for (const clients of ctx.options.clients) {
      for (const mode of MODES) {
        const row = await runLedger(ctx, workload, clients, mode);
        rows.push(row);
        progress(`${workload} ${clients} clients ${mode}: ${row.postings_per_s.toFixed(0)} postings/s, ${row.errors} error(s)`);
      }
    }
  }
  const hot_script = await preparePgbench(ctx);
  for (const workload of WORKLOADS) {
    for (const clients of ctx.options.clients) {
      const tps = await pgbenchTps(ctx, workload, clients, hot_script);
      progress(`${workload} ${clients} clients pgbench: ${tps.toFixed(0)} tps`);
      for (const row of rows) {
        if (row.workload !== workload || row.clients !== clients) continue;
        row.pgbench_tps = tps;
        row.ratio = tps > 0 ? row.postings_per_s / tps : null;
      }
    }
  }
  return rows;
}

async function bench(ctx: Context): Promise<number> {
  const started_at = new Date();
  const { duration_s, clients } = ctx.options;
  const runs = WORKLOADS.length * clients.length * (MODES.length * (duration_s + LIMITS.warmup_s) + duration_s);
  progress(`database ${new URL(ctx.database_url).pathname.slice(1)}; ${runs} s of timed runs ahead`);
  await createFreshDatabase(ctx, ctx.database_url);
  const db = openPool(ctx, 2);
  await migrateLatest(db);
  await seed(ctx, db);
  const server = (await db.raw<{ rows: { version: string; synchronous_commit: string }[] }>(`select version(), current_setting('synchronous_commit') as synchronous_commit`)).rows[0];

  const rows = await runAll(ctx);
  const report = await verifyLedger(db);
  const hot = await hotSellerCheck(ctx, db);
  const goal_lines = goals(rows);

  out(`ledger bench: ${os.cpus().length} CPUs, node ${process.version}, ${server?.version.split(' on ')[0] ?? 'PostgreSQL ?'}, synchronous_commit=${server?.synchronous_commit ?? '?'}`);
  out(`${duration_s} s measured per run after ${LIMITS.warmup_s} s warm-up; pool min(C, ${LIMITS.pool_max}); ratio = postings/s / pgbench tps (same workload and clients)`);
  out();
  printTable(rows);
  out();
  printVerify(report);
  out(`hot seller ${HOT_SELLER} balance: ${hot.ok ? 'OK' : 'FAIL'} (posted ${hot.posted_minor}, expected ${hot.expected_minor})`);
  for (const g of goal_lines) out(`goal ${g.goal}: ${g.met === null ? 'unknown' : g.met ? 'met' : 'not met'} (${g.detail})`);
  const file = writeJson(started_at, {
    started_at: started_at.toISOString(),
    finished_at: new Date().toISOString(),
    options: { ...ctx.options, warmup_s: LIMITS.warmup_s, pool_max: LIMITS.pool_max, sellers: LIMITS.sellers, hot_share: LIMITS.hot_share, pgbench_scale: LIMITS.pgbench_scale },
    machine: { cpus: os.cpus().length, node: process.version, postgres: server?.version ?? null, synchronous_commit: server?.synchronous_commit ?? null },
    rows,
    verify: { transactions: report.transactions, entries: report.entries, accounts: report.accounts, breaks: report.breaks.length, first_breaks: report.breaks.slice(0, LIMITS.breaks_printed_max) },
    hot_seller: { seller_id: HOT_SELLER, ...hot },
    goals: goal_lines,
  });
  out(`results: ${path.relative(process.cwd(), file)}`);

  const errors = rows.reduce((n, r) => n + r.errors, 0);
  return report.breaks.length === 0 && hot.ok && errors === 0 ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench:ledger: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    out(USAGE);
    return 0;
  }
  const ctx = newContext(options);
  onSignals(ctx);
  try {
    return await bench(ctx);
  } catch (err) {
    if (ctx.interrupted) return 130;
    throw err;
  } finally {
    await cleanup(ctx);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:ledger: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
