/**
 * End-to-end load benchmark: an open-loop generator against the production path (API →
 * admission → payment workflow → activities → PSP, PostgreSQL). It assumes no workflow shape:
 * per-payment Temporal costs are summed over every execution carrying the payment's PaymentId.
 *
 *   npm run bench -- --rate R --duration S --orders K [--tokens MIX] [--find-max] [--ceiling [--ceiling-shape S]]
 *                    [--overload [M] [--sustainable R]] [--url URL --key KEY]
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
import { createDb, type Knex } from '../src/db';
import { ROOT } from '../src/dev/run-ts';
import { TERMINAL_PAYMENT_STATUSES } from '../src/domain/status';
import { measureCeiling, type CeilingResult } from './ceiling/run';
import { LIMITS, USAGE, UsageError, parseArgs, type Options } from './e2e/args';
import { temporalCosts } from './e2e/costs';
import { runStep, type Plan, type StepOutcome, type Target } from './e2e/load';
import { humanTable, writeReports, type OverloadReport, type Report, type StepReport } from './e2e/report';
import { emptyStack, startStack, stopStack, type Stack } from './e2e/stack';
import { ProcSampler, cpuMsPerPayment, postgresPids, round1, type ProcessUsage } from './e2e/stats';

const URL_CHECK_TIMEOUT_MS = 3_000;
const POLL_POOL_MAX = 2;
const IDS_PER_QUERY = 1_000;

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

async function oneStep(run: Run, target: Target, rate_per_s: number, phase: StepReport['phase'] = 'load'): Promise<StepOutcome & { step: StepReport }> {
  const o = run.options;
  // An overload step waits for its backlog to drain (bounded); a load step keeps load.ts's default.
  const drain_timeout_ms = phase === 'overload' ? LIMITS.overload_drain_max_s * 1_000 : undefined;
  const plan: Plan = { rate_per_s, warmup_s: o.warmup_s, duration_s: o.duration_s, orders: o.orders, tokens: o.tokens, drain_timeout_ms };
  const procs = sampler(run.stack);
  let processes: Record<string, ProcessUsage> = {};
  progress(`${phase === 'overload' ? 'overload: ' : ''}rate ${rate_per_s}/s for ${o.warmup_s} s warm-up + ${o.duration_s} s`);
  const outcome = await runStep(target, plan, { windowStart: () => procs.start(), windowEnd: () => (processes = procs.stop()) });
  const result = outcome.result;
  const errors = Object.keys(result.errors_by_code).length > 0;
  // Refusals mean the door is shedding load: past capacity, so not a sustainable rate either.
  const sustainable = !errors && result.refused === 0 && result.not_completed === 0 && (result.completion_latency_ms.p99 ?? Infinity) <= LIMITS.find_max_p99_ms;
  progress(`  accepted ${result.accepted_per_s}/s, refused ${result.refused_per_s}/s, completed ${result.completed_per_s}/s, completion p99 ${result.completion_latency_ms.p99} ms, 5xx ${result.http_5xx}, errors ${JSON.stringify(result.errors_by_code)}`);
  const cpu_ms_per_payment = cpuMsPerPayment(processes, result.completed_in_window);
  return { ...outcome, step: { phase, rate_per_s, ...result, processes, cpu_ms_per_payment, sustainable } };
}

/** --find-max: x1.5 per step from --rate until a step is not sustainable (bounded in steps and rate). */
async function findMax(run: Run, target: Target): Promise<StepReport[]> {
  const steps: StepReport[] = [];
  let rate = run.options.rate_per_s;
  for (let i = 0; i < LIMITS.find_max_steps_max && rate <= LIMITS.rate_per_s_max; i++) {
    const { step } = await oneStep(run, target, round1(rate));
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

/** Accepted payments whose row is not in a terminal status (or missing: that would be a lost payment). */
async function notTerminal(db: Knex, ids: string[]): Promise<number> {
  let open = 0;
  for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
    const chunk = ids.slice(i, i + IDS_PER_QUERY);
    const row = await db('payment_event').whereIn('id', chunk).whereIn('status', TERMINAL_PAYMENT_STATUSES).count<{ n: string }[]>('* as n');
    open += chunk.length - Number(row[0]?.n ?? 0);
  }
  return open;
}

/**
 * --overload: MULTIPLE x the sustainable rate for --duration s, then the drain (bounded). The
 * base is the last sustainable --find-max step, --sustainable, or — when no step was sustainable —
 * the first step's rate, and the report says which.
 */
async function overloadStep(run: Run, target: Target, steps: StepReport[]): Promise<{ step: StepReport; overload: OverloadReport }> {
  const o = run.options;
  const multiple = o.overload_multiple ?? LIMITS.overload_multiple_default;
  const best = [...steps].reverse().find((s) => s.sustainable);
  const base = o.sustainable_per_s ?? best?.rate_per_s ?? o.rate_per_s;
  const sustainable_from = o.sustainable_per_s !== null ? 'flag' : best !== undefined ? 'find_max' : 'find_max_none_sustainable';
  const rate = Math.min(LIMITS.rate_per_s_max, round1(base * multiple));
  const { step, accepted_ids } = await oneStep(run, target, rate, 'overload');
  // From the database when the bench owns it (any status the app has, not just what load.ts polls for).
  const not_terminal = run.db === null ? step.not_completed : await notTerminal(run.db, accepted_ids);
  progress(`  drain ${step.drain_s ?? `not finished after ${LIMITS.overload_drain_max_s}`} s; ${not_terminal} of ${accepted_ids.length} accepted not terminal`);
  const { timeline, ...summary } = step;
  const overload: OverloadReport = {
    multiple,
    sustainable_rate_per_s: base,
    sustainable_from,
    ...summary,
    drain_max_s: LIMITS.overload_drain_max_s,
    accepted_total: accepted_ids.length,
    not_terminal_after_drain: not_terminal,
    all_terminal_after_drain: not_terminal === 0,
    terminal_source: run.db === null ? 'api' : 'database',
    timeline,
  };
  return { step, overload };
}

interface Extra {
  per_payment: Record<string, number> | null;
  ceiling: CeilingResult | null;
  overload: OverloadReport | null;
}

function buildReport(run: Run, run_id: string, steps: StepReport[], extra: Extra): Report {
  const o = run.options;
  const load = steps.filter((s) => s.phase === 'load');
  const best = o.find_max ? [...load].reverse().find((s) => s.sustainable) : undefined;
  // The top-level keys describe a load step; a --sustainable overload run has only its overload step.
  const shown = best ?? load[load.length - 1] ?? steps[steps.length - 1];
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
    ceiling_shape: extra.ceiling?.shape ?? null,
    ceiling_per_s,
    ratio_to_ceiling: ceiling_per_s === null || ceiling_per_s === 0 ? null : Math.round((summary.completed_per_s / ceiling_per_s) * 1000) / 1000,
    overload: extra.overload,
    timeline,
  };
}

async function perPayment(run: Run, before: Record<string, number>): Promise<Record<string, number>> {
  const db = run.db;
  if (db === null) return {};
  const after = await pgStats(db);
  const payments = Math.max(1, await completedTotal(db));
  const address = run.stack.temporal_address;
  const temporal = address === null ? {} : await temporalCosts(db, address);
  const db_costs = Object.fromEntries(Object.entries(after).map(([k, v]) => [`db_${k}`, round1((v - (before[k] ?? 0)) / payments)]));
  return { psp_charges: run.options.orders, ...temporal, ...db_costs };
}

async function measure(run: Run, run_id: string): Promise<Report> {
  const o = run.options;
  const target: Target = { api_url: run.stack.api_url, api_key: run.stack.api_key ?? '', db: run.db };
  const before = run.db === null ? null : await pgStats(run.db);
  const steps = o.find_max ? await findMax(run, target) : o.sustainable_per_s === null ? [(await oneStep(run, target, o.rate_per_s)).step] : [];
  let overload: OverloadReport | null = null;
  if (o.overload_multiple !== null) {
    const result = await overloadStep(run, target, steps);
    steps.push(result.step);
    overload = result.overload;
  }
  const per_payment = before === null ? null : await perPayment(run, before);
  const ceiling = o.ceiling ? await ceilingStep(run) : null;
  return buildReport(run, run_id, steps, { per_payment, ceiling, overload });
}

async function completedTotal(db: Knex): Promise<number> {
  const row = await db('payment_event').whereNot('status', 'processing').count<{ n: string }[]>('* as n');
  return Number(row[0]?.n ?? 0);
}

async function ceilingStep(run: Run): Promise<CeilingResult> {
  progress(`ceiling: no-op workflows, shape ${run.options.ceiling_shape}, ${run.options.warmup_s} s warm-up + ${run.options.duration_s} s`);
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
