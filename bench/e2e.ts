/**
 * End-to-end load benchmark: an open-loop generator against the production path (API →
 * PaymentWorkflow → PaymentOrderWorkflow → activities → PSP, PostgreSQL).
 *
 *   npm run bench -- --rate R --duration S --orders K [--tokens MIX] [--find-max] [--ceiling] [--url URL --key KEY]
 *
 * By default it starts its own stack (Temporal dev server in memory, sandbox PSP, worker, API as
 * separate processes; fresh databases and merchant), and gives it all back at the end, on
 * failure and on Ctrl-C. Reports (JSON, table, SVG) go to bench-results/. It prints numbers, it
 * does not judge them: exit 0 after a run, 1 when the run itself broke, 2 on a usage error.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createDb, type Knex } from '../src/db';
import { ROOT } from '../src/dev/run-ts';
import { orderWorkflowId, paymentWorkflowId } from '../src/domain/workflow-ids';
import { measureCeiling, type CeilingResult } from './ceiling/run';
import { LIMITS, USAGE, UsageError, parseArgs, type Options } from './e2e/args';
import { runStep, type Plan, type Target } from './e2e/load';
import { humanTable, writeReports, type Report, type StepReport } from './e2e/report';
import { emptyStack, startStack, stopStack, type Stack } from './e2e/stack';
import { ProcSampler, postgresPids, round1 } from './e2e/stats';

const URL_CHECK_TIMEOUT_MS = 3_000;
const POLL_POOL_MAX = 2;

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

interface Run {
  options: Options;
  stack: Stack;
  db: Knex | null;
  cleaning: Promise<void> | null;
}

async function checkUrl(url: string): Promise<void> {
  const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(URL_CHECK_TIMEOUT_MS) }).then((r) => r.ok, () => false);
  if (!ok) throw new UsageError(`--url ${url}: no healthy API answers there (GET /healthz)`);
}

function cleanup(run: Run): Promise<void> {
  run.cleaning ??= (async () => {
    await run.db?.destroy().catch(() => undefined);
    await stopStack(run.stack);
  })();
  return run.cleaning;
}

function sampler(stack: Stack): ProcSampler {
  const pid = (name: string) => () => {
    const p = stack.children.get(name)?.pid;
    return p === undefined ? [] : [p];
  };
  const owned = stack.database_url !== null;
  return new ProcSampler({
    ...(owned ? { api: pid('api'), worker: pid('worker'), temporal: pid('temporal'), sandbox_psp: pid('sandbox_psp') } : {}),
    postgres: postgresPids,
    bench: () => [process.pid], // the generator shares the cores: its cost is part of the picture
  });
}

async function oneStep(run: Run, target: Target, rate_per_s: number): Promise<StepReport> {
  const o = run.options;
  const plan: Plan = { rate_per_s, warmup_s: o.warmup_s, duration_s: o.duration_s, orders: o.orders, tokens: o.tokens };
  const procs = sampler(run.stack);
  let processes = {};
  progress(`rate ${rate_per_s}/s for ${o.warmup_s} s warm-up + ${o.duration_s} s`);
  const result = await runStep(target, plan, { windowStart: () => procs.start(), windowEnd: () => (processes = procs.stop()) });
  const errors = Object.keys(result.errors_by_code).length > 0;
  const sustainable = !errors && result.not_completed === 0 && (result.completion_latency_ms.p99 ?? Infinity) <= LIMITS.find_max_p99_ms;
  progress(`  accepted ${result.accepted_per_s}/s, completed ${result.completed_per_s}/s, completion p99 ${result.completion_latency_ms.p99} ms, errors ${JSON.stringify(result.errors_by_code)}`);
  return { rate_per_s, ...result, processes, sustainable };
}

/** --find-max: x1.5 per step from --rate until a step is not sustainable (bounded in steps and rate). */
async function findMax(run: Run, target: Target): Promise<StepReport[]> {
  const steps: StepReport[] = [];
  let rate = run.options.rate_per_s;
  for (let i = 0; i < LIMITS.find_max_steps_max && rate <= LIMITS.rate_per_s_max; i++) {
    const step = await oneStep(run, target, round1(rate));
    steps.push(step);
    if (!step.sustainable) break;
    rate *= LIMITS.find_max_growth;
  }
  return steps;
}

async function pgStats(db: Knex): Promise<Record<string, number>> {
  const r = await db.raw('select xact_commit, tup_inserted, tup_updated, tup_deleted from pg_stat_database where datname = current_database()');
  const row = (r.rows as Record<string, string>[])[0] ?? {};
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));
}

/** Events in one real, succeeded payment's histories: the parent's and its children's. */
async function historyEvents(run: Run): Promise<Record<string, number>> {
  const db = run.db;
  const address = run.stack.temporal_address;
  if (db === null || address === null) return {};
  const payment = await db('payment_event').where({ status: 'succeeded' }).first<{ id: string } | undefined>('id');
  if (payment === undefined) return {};
  const orders = await db('payment_order').where({ payment_id: payment.id }).select<{ id: string }[]>('id');
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection });
    const count = async (id: string) => ((await client.workflow.getHandle(id).fetchHistory()).events ?? []).length;
    const parent = await count(paymentWorkflowId(payment.id));
    const children = await Promise.all(orders.map((o) => count(orderWorkflowId(o.id))));
    return { history_events_parent: parent, history_events_per_order: children[0] ?? 0, history_events_total: parent + children.reduce((a, b) => a + b, 0) };
  } finally {
    await connection.close();
  }
}

function buildReport(run: Run, run_id: string, steps: StepReport[], extra: { per_payment: Record<string, number> | null; ceiling: CeilingResult | null }): Report {
  const o = run.options;
  const best = o.find_max ? [...steps].reverse().find((s) => s.sustainable) : undefined;
  const shown = best ?? steps[steps.length - 1] ?? steps[0];
  if (shown === undefined) throw new Error('no step ran');
  const { timeline, ...summary } = shown;
  const ceiling_per_s = extra.ceiling?.ceiling_per_s ?? null;
  return {
    run_id,
    finished_at: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
    machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', mem_gb: round1(os.totalmem() / 2 ** 30) },
    target: o.url === null ? 'own_stack' : 'url',
    orders_per_payment: o.orders,
    duration_s: o.duration_s,
    warmup_s: o.warmup_s,
    tokens: o.tokens.map((t) => `${t.token}:${t.weight}`).join(','),
    ...summary,
    max_sustainable_rate_per_s: o.find_max ? (best?.rate_per_s ?? null) : null,
    steps: steps.map(({ timeline: _t, ...s }) => s),
    per_payment: extra.per_payment,
    ceiling_per_s,
    ratio_to_ceiling: ceiling_per_s === null || ceiling_per_s === 0 ? null : Math.round((summary.completed_per_s / ceiling_per_s) * 1000) / 1000,
    timeline,
  };
}

async function measure(run: Run, run_id: string): Promise<Report> {
  const o = run.options;
  const target: Target = { api_url: run.stack.api_url, api_key: run.stack.api_key ?? '', db: run.db };
  const before = run.db === null ? null : await pgStats(run.db);
  const steps = o.find_max ? await findMax(run, target) : [await oneStep(run, target, o.rate_per_s)];
  let per_payment: Record<string, number> | null = null;
  if (run.db !== null && before !== null) {
    const after = await pgStats(run.db);
    const payments = Math.max(1, await completedTotal(run.db));
    per_payment = { psp_charges: o.orders, ...(await historyEvents(run)), ...Object.fromEntries(Object.entries(after).map(([k, v]) => [`db_${k}`, round1((v - (before[k] ?? 0)) / payments)])) };
  }
  const ceiling = o.ceiling ? await ceilingStep(run) : null;
  return buildReport(run, run_id, steps, { per_payment, ceiling });
}

async function completedTotal(db: Knex): Promise<number> {
  const row = await db('payment_event').whereNot('status', 'processing').count<{ n: string }[]>('* as n');
  return Number(row[0]?.n ?? 0);
}

async function ceilingStep(run: Run): Promise<CeilingResult> {
  progress(`ceiling: no-op workflows of the same shape, ${run.options.warmup_s} s warm-up + ${run.options.duration_s} s`);
  const result = await measureCeiling(run.stack, run.options);
  progress(`  ceiling ${result.ceiling_per_s}/s (${result.completed} done, ${result.failed} failed)`);
  return result;
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
    if (options.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (options.url !== null) await checkUrl(options.url);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  const run_id = randomBytes(4).toString('hex');
  const out_dir = path.resolve(ROOT, options.out_dir);
  const log_dir = path.join(out_dir, 'logs', run_id);
  if (options.url === null) fs.mkdirSync(log_dir, { recursive: true });
  const run: Run = { options, stack: emptyStack(run_id, log_dir), db: null, cleaning: null };
  const onSignal = (signal: string) => {
    progress(`${signal}: stopping every process and dropping the databases`);
    void cleanup(run).finally(() => process.exit(130));
  };
  // on, not once: npm passes Ctrl-C on and then sends SIGTERM too; a second signal must not kill
  // us halfway through cleanup (cleanup() is one shared promise).
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await prepare(run);
    const report = await measure(run, run_id);
    const files = writeReports(out_dir, report);
    process.stdout.write(humanTable(report));
    process.stdout.write(`\nreport: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}\n`);
    return 0;
  } finally {
    await cleanup(run);
  }
}

async function prepare(run: Run): Promise<void> {
  const o = run.options;
  if (o.url !== null) {
    run.stack.api_url = o.url;
    run.stack.api_key = o.key;
    return;
  }
  progress(`starting the stack (logs in ${path.relative(process.cwd(), run.stack.log_dir)})`);
  await startStack(run.stack);
  run.db = createDb(run.stack.database_url ?? '', POLL_POOL_MAX);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    progress(`failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
