/**
 * Chaos run: N payments through a stack of its own while the PSP misbehaves, webhooks are
 * dropped, duplicated and reordered, the worker is SIGKILLed every few seconds, and the Temporal
 * server and the API are each restarted once. Then faults go off, parked orders are retried by
 * the operator API, and once everything is quiet the invariants are checked:
 *
 *   npm run chaos -- [--payments N] [--seed S] [--kill-every-s S] [--duration-max-s S] [--rate R] [--quiet] [--keep]
 *
 * One PASS/FAIL line per invariant and a summary on stdout (also as JSON under bench-results/);
 * progress on stderr. Exit 0 when every invariant holds, 1 on a FAIL or a broken run, 2 on a
 * usage error. Every process it starts is stopped at the end, on failure and on Ctrl-C.
 * See docs/CHAOS.md.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createDb, type Knex } from '../src/db';
import { assert } from '../src/domain/assert';
import { ROOT } from '../src/dev/run-ts';
import { USAGE, UsageError, parseArgs, seededRandom, type Options } from './chaos/args';
import { checkInvariants, invariantLine, summaryCounts, type Invariant } from './chaos/checks';
import { callApi, Driver, planPayments, TERMINAL } from './chaos/driver';
import { Chaos, PSP_FAULTS_ON, setPspFaults, WEBHOOKS_ON } from './chaos/faults';
import { machine, seconds, summaryTable, writeJson, type ChaosReport } from './chaos/report';
import { emptyStack, STACK_SETTINGS, startStack, stopStack, tmpDirFor, type ChaosStack } from './chaos/stack';

const OUT_DIR = path.join(ROOT, 'bench-results');
const PROGRESS_EVERY_MS = 10_000;
const OPS_ROUNDS_MAX = 3; // operator retries per parked order once faults are off
const QUIESCE_POLL_MS = 1_000;
const OPS_RETRY_SPACING_MS = 60_000; // a retried order gets this long (a backlog may delay the signal) before it is retried again
const STALL_MS = 60_000; // after faults are off, this long without any change ends the wait
const GETS_DRAIN_MS = 10_000;

interface Run {
  options: Options;
  stack: ChaosStack;
  chaos: Chaos | null;
  db: Knex | null;
  psp: Knex | null;
  timers: NodeJS.Timeout[];
  cleaning: Promise<void> | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cleanup(run: Run, note: (l: string) => void): Promise<void> {
  run.cleaning ??= (async () => {
    run.chaos?.halt();
    for (const t of run.timers) clearInterval(t);
    await run.db?.destroy().catch(() => undefined);
    await run.psp?.destroy().catch(() => undefined);
    await stopStack(run.stack, run.options.keep, note);
  })();
  return run.cleaning;
}

/** The two one-off restarts, a third and two thirds of the way through the sending. */
async function scenario(driver: Driver, chaos: Chaos, total: number, deadline_ms: number): Promise<void> {
  const reached = async (sent: number) => {
    while (driver.stats.sent < sent && Date.now() < deadline_ms) await sleep(100);
  };
  await reached(Math.max(1, Math.ceil(total / 3)));
  await chaos.restartTemporal();
  await reached(Math.max(1, Math.ceil((2 * total) / 3)));
  await chaos.restartApi();
}

/**
 * Faults are off: wait until every payment is terminal. An order parked as needs_attention is
 * retried through the operator API (up to OPS_ROUNDS_MAX times). Gives up at the deadline, or
 * when nothing has moved for STALL_MS (a stuck workflow would otherwise hold the run for the
 * whole --duration-max-s).
 */
async function quiesce(run: Run, driver: Driver, deadline_ms: number, note: (l: string) => void): Promise<{ ok: boolean; detail: string; retries_sent: number }> {
  const db = run.db as Knex;
  const retried = new Map<string, { times: number; at_ms: number }>();
  let retries_sent = 0;
  let last_change_ms = Date.now();
  let last_signature = '';
  const started_ms = Date.now();
  driver.stopSettlingParked();
  while (Date.now() < deadline_ms) {
    await driver.refresh();
    const [counted] = (await db.raw(`select count(*) as n from payment_event where status not in (${[...TERMINAL].map(() => '?').join(', ')}, 'needs_attention')`, [...TERMINAL])).rows as { n: string }[];
    const open = Number(counted?.n ?? 0);
    const parked = await db('payment_order').where({ status: 'needs_attention' }).select<{ id: string; payment_id: string }[]>('id', 'payment_id');
    const to_retry = parked.filter((p) => {
      const r = retried.get(p.id);
      return r === undefined || (r.times < OPS_ROUNDS_MAX && Date.now() - r.at_ms > OPS_RETRY_SPACING_MS);
    });
    // Just retried: still needs_attention until its workflow takes the command.
    const retrying = parked.filter((p) => Date.now() - (retried.get(p.id)?.at_ms ?? 0) <= OPS_RETRY_SPACING_MS);
    if (open === 0 && to_retry.length === 0 && retrying.length === 0) {
      return { ok: true, detail: `quiet ${seconds(Date.now() - started_ms)} s after faults went off`, retries_sent };
    }
    if (to_retry.length > 0) note(`${to_retry.length} orders parked as needs_attention: retrying them through POST /v1/ops/orders/:id/retry`);
    for (const p of to_retry) {
      retried.set(p.id, { times: (retried.get(p.id)?.times ?? 0) + 1, at_ms: Date.now() });
      retries_sent++;
      const answer = await callApi(driver.tally, 'POST', `${run.stack.api_url}/v1/ops/orders/${p.id}/retry`, { authorization: `Bearer ${run.stack.admin_key}`, 'content-type': 'application/json' }, JSON.stringify({ reason: 'chaos run: faults are off' }));
      if (answer?.status !== 202) note(`operator retry of ${p.id}: ${answer === null ? 'no answer' : `HTTP ${answer.status} ${JSON.stringify(answer.json)}`}`);
    }
    const [sig] = (await db.raw(`select (select count(*) || ':' || coalesce(max(id), 0) from status_history) || '/' || (select count(*) from ledger_transaction) as s`)).rows as { s: string }[];
    if (sig?.s !== last_signature || to_retry.length > 0) {
      last_signature = sig?.s ?? '';
      last_change_ms = Date.now();
    } else if (Date.now() - last_change_ms > STALL_MS) {
      return { ok: false, detail: `stalled: ${open} payments still open and nothing changed for ${seconds(STALL_MS)} s (no status change, no posting) after faults went off`, retries_sent };
    }
    await sleep(QUIESCE_POLL_MS);
  }
  return { ok: false, detail: `not quiet within --duration-max-s ${run.options.duration_max_s}`, retries_sent };
}

async function execute(run: Run, seed: number, started_ms: number, note: (l: string) => void, progress: (l: string) => void): Promise<number> {
  const o = run.options;
  const stack = run.stack;
  const deadline_ms = started_ms + o.duration_max_s * 1_000;
  progress(`run ${stack.hex}, seed ${seed}: ${o.payments} payments at ${o.rate_per_s}/s, worker SIGKILLed every ${o.kill_every_s} s; logs in ${path.relative(process.cwd(), stack.log_dir)}`);
  await startStack(stack, note);
  const setup_done_ms = Date.now();
  progress(`stack up in ${seconds(setup_done_ms - started_ms)} s (Temporal ${stack.temporal_address}, API ${stack.api_url}, PSP ${stack.psp_url})`);
  run.db = createDb(stack.app_db_url, 4);
  run.psp = createDb(stack.psp_db_url, 2);

  const driver = new Driver(() => stack.api_url, stack.merchant_key, run.db, planPayments(o.payments, seededRandom(seed), stack.hex), deadline_ms);
  const chaos = new Chaos(stack, note);
  run.chaos = chaos;
  await setPspFaults(stack, true);
  chaos.startKilling(o.kill_every_s);
  let tracking_on = true;
  const tracking = driver.track(() => !tracking_on);
  run.timers.push(
    setInterval(() => {
      const s = driver.stats;
      progress(`t=${seconds(Date.now() - started_ms)}s sent ${s.sent}/${o.payments}, accepted ${s.accepted}, settled ${s.settled}; worker kills ${chaos.counts.worker_kills}, Temporal restarts ${chaos.counts.temporal_restarts}, API restarts ${chaos.counts.api_restarts}; 5xx ${driver.tally.server_errors_total}, no answer ${driver.tally.network_errors}`);
    }, PROGRESS_EVERY_MS),
  );
  const restarts = scenario(driver, chaos, o.payments, deadline_ms);
  restarts.catch(() => undefined); // awaited below; a failure before then must not count as unhandled
  await driver.sendAll(o.rate_per_s);
  await restarts;
  if (chaos.failure !== null) throw chaos.failure;
  const drive_done_ms = Date.now();
  progress(`all ${driver.stats.sent} payments sent in ${seconds(drive_done_ms - setup_done_ms)} s; faults off, kills stop; waiting for quiescence`);
  await setPspFaults(stack, false);
  await chaos.stopKilling();
  const quiet = await quiesce(run, driver, deadline_ms, progress);
  tracking_on = false;
  await tracking;
  await driver.drainGets(GETS_DRAIN_MS);
  const quiet_done_ms = Date.now();
  progress(`${quiet.detail}; checking`);

  return await checkAndReport(run, seed, driver, chaos, quiet, { started_ms, setup_done_ms, drive_done_ms, quiet_done_ms });
}

interface Marks {
  started_ms: number;
  setup_done_ms: number;
  drive_done_ms: number;
  quiet_done_ms: number;
}

type Quiet = Awaited<ReturnType<typeof quiesce>>;

/** Checks the invariants on the quiet system, prints them with the summary and writes the report; 0 when every invariant held. */
async function checkAndReport(run: Run, seed: number, driver: Driver, chaos: Chaos, quiet: Quiet, t: Marks): Promise<number> {
  const o = run.options;
  const stack = run.stack;
  assert(run.db !== null && run.psp !== null, 'the run has its databases');
  const in_time = { ok: quiet.ok, detail: quiet.ok ? `${quiet.detail}, ${seconds(t.quiet_done_ms - t.started_ms)} s into the run (limit ${o.duration_max_s} s)` : quiet.detail };
  const invariants: Invariant[] = await checkInvariants(run.db, run.psp, driver, in_time);
  const counts = await summaryCounts(run.db, run.psp);
  const done_ms = Date.now();
  const unexpected_exits = Object.fromEntries([...stack.services.entries()].map(([name, s]) => [name, s.unexpected_exits]));
  const report: ChaosReport = {
    run_id: stack.hex,
    seed,
    command: `npm run chaos -- ${process.argv.slice(2).join(' ')}`.trim(),
    finished_at: new Date().toISOString(),
    machine: machine(),
    options: { ...o, seed },
    settings: { stack: STACK_SETTINGS, psp_faults: PSP_FAULTS_ON, webhook_knobs: WEBHOOKS_ON },
    passed: invariants.every((i) => i.ok),
    invariants,
    summary: {
      ...counts,
      driver: { ...driver.stats, http: driver.tally },
      chaos: chaos.counts,
      unexpected_exits,
      operator_retries_sent: quiet.retries_sent,
      timings: {
        setup_s: seconds(t.setup_done_ms - t.started_ms),
        drive_s: seconds(t.drive_done_ms - t.setup_done_ms),
        quiesce_s: seconds(t.quiet_done_ms - t.drive_done_ms),
        checks_s: seconds(done_ms - t.quiet_done_ms),
        wall_s: seconds(done_ms - t.started_ms),
      },
    },
  };
  process.stdout.write(`${invariants.map(invariantLine).join('\n')}\n\n${summaryTable(report)}\n`);
  const file = writeJson(OUT_DIR, report);
  process.stdout.write(`\nreport: ${path.relative(process.cwd(), file)}\n${report.passed ? 'chaos: every invariant held' : `chaos: ${invariants.filter((i) => !i.ok).length} invariant(s) FAILED`}\n`);
  return report.passed ? 0 : 1;
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`chaos: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const started_ms = Date.now();
  const seed = options.seed ?? randomBytes(4).readUInt32BE(0);
  const hex = randomBytes(4).toString('hex');
  const note = (line: string) => {
    if (!options.quiet) process.stderr.write(`chaos: ${line}\n`);
  };
  const run: Run = { options, stack: emptyStack(hex, path.join(OUT_DIR, 'logs', `chaos-${hex}`), tmpDirFor(hex)), chaos: null, db: null, psp: null, timers: [], cleaning: null };
  const onSignal = (signal: string) => {
    process.stderr.write(`chaos: ${signal}: stopping every process and dropping the databases\n`);
    void cleanup(run, note).finally(() => process.exit(130));
  };
  // on, not once: npm passes Ctrl-C on and then sends SIGTERM too; cleanup() is one shared promise.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Whatever breaks, the children go first.
  const onCrash = (err: unknown) => {
    process.stderr.write(`chaos: failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    void cleanup(run, note).finally(() => process.exit(1));
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  try {
    return await execute(run, seed, started_ms, note, note);
  } finally {
    await cleanup(run, note);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
