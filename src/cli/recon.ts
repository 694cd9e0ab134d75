import { WorkflowFailedError, type Client } from '@temporalio/client';
import { withTemporalClient } from '../services/temporal-client';
import type { Knex } from '../db';
import { loadEnv, type Env } from '../config';
import { runnableDay, startReconciliation } from '../services/recon';
import { closeItem, listItems, listRuns, type ItemRow, type RunRow } from '../recon/queue';
import type { DifferenceClass, ItemStatus } from '../recon/classify';
import type { RunTotals } from '../recon/store';

/** payctl's reconciliation commands: run a day (with a progress bar), report it, work the queue. */
type Out = (line: string) => void;

const PROGRESS_EVERY_MS = 500;
const BAR_CHARS = 30;

function progressLine(run: Pick<RunRow, 'settlement_date' | 'lines_read' | 'lines_expected'>, elapsed_ms: number): string {
  const read = Number(run.lines_read);
  const rate = elapsed_ms > 0 ? Math.round((read / elapsed_ms) * 1000) : 0;
  const expected = run.lines_expected === null ? null : Number(run.lines_expected);
  if (expected === null || expected === 0) return `reconciling ${run.settlement_date}: ${read.toLocaleString('en')} lines (${rate.toLocaleString('en')}/s)`;
  const share = Math.min(1, read / expected);
  const filled = Math.round(share * BAR_CHARS);
  return `reconciling ${run.settlement_date} [${'#'.repeat(filled)}${'-'.repeat(BAR_CHARS - filled)}] ${Math.round(share * 100)}% ${read.toLocaleString('en')}/${expected.toLocaleString('en')} lines (${rate.toLocaleString('en')}/s)`;
}

async function latestRunOf(db: Knex, workflow_id: string, since: Date): Promise<RunRow | undefined> {
  const { data } = await listRuns(db, { limit: 5 });
  return data.find((r) => r.workflow_id === workflow_id && r.started_at >= new Date(since.getTime() - 1_000));
}

/** Waits for the day's workflow, drawing progress on a terminal; the failure's message, or null. */
async function follow(db: Knex, temporal: Client, workflow_id: string, since: Date, tty: boolean): Promise<string | null> {
  const timer = tty
    ? setInterval(() => {
        void latestRunOf(db, workflow_id, since).then((run) => {
          if (run !== undefined) process.stderr.write(`\r${progressLine(run, Date.now() - run.started_at.getTime())}\u001b[K`);
        });
      }, PROGRESS_EVERY_MS)
    : null;
  try {
    await temporal.workflow.getHandle(workflow_id).result();
    return null;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    return err.cause?.message ?? err.message;
  } finally {
    if (timer !== null) {
      clearInterval(timer);
      process.stderr.write('\r\u001b[K');
    }
  }
}

/** `recon run --date D`: starts (or joins) the day's workflow, draws progress on a terminal, prints the report. */
export async function reconRun(db: Knex, env: Env, opts: { date: string; fix_wait_ms?: number; json: boolean }, out: Out): Promise<number> {
  const date = runnableDay(opts.date);
  const asked_at = new Date();
  const { started, failed } = await withTemporalClient(env, async (temporal) => {
    const started = await startReconciliation({ temporal, task_queue: env.TEMPORAL_TASK_QUEUE }, date, opts.fix_wait_ms);
    if (started.already_running && !opts.json) out(`a run of ${date} is already going (${started.workflow_id}): following it`);
    const since = started.already_running ? new Date(0) : asked_at;
    return { started: { ...started, since }, failed: await follow(db, temporal, started.workflow_id, since, process.stderr.isTTY === true && !opts.json) };
  });
  if (failed === null) return await reconReport(db, { date, json: opts.json }, out);
  const run = await latestRunOf(db, started.workflow_id, started.since);
  if (opts.json) out(JSON.stringify({ status: 'failed', reason: failed, run: run ?? null }));
  else out(`recon ${date}: FAILED — ${failed}${run?.error_line ? ` (line ${run.error_line})` : ''}; nothing was applied, fix the file and run again`);
  return 1;
}

const fmtAmounts = (by: Record<string, string>): string =>
  Object.entries(by)
    .map(([c, a]) => `${c} ${a}`)
    .join(', ') || '-';

/** The workflow's page in the Temporal UI, so an operator goes from the difference to the order's history. */
function workflowLink(workflow_id: string): string {
  const env = loadEnv();
  return `${env.TEMPORAL_UI_URL.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(env.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(workflow_id)}`;
}

function itemLine(i: ItemRow): string {
  const where = [i.order_id ? `order ${i.order_id}` : null, i.workflow_id ? `workflow ${i.workflow_id}` : null, i.line_no ? `line ${i.line_no}` : null].filter(Boolean).join(', ');
  const link = i.workflow_id ? ` ${workflowLink(i.workflow_id)}` : '';
  return `#${i.id} ${i.class} [${i.status}] ${i.field ?? '?'}: ours ${i.our_value ?? '-'}, PSP ${i.psp_value ?? '-'}${where ? ` (${where})` : ''} — ${i.note ?? ''}${link}`;
}

/** `recon report --date D`: the day's latest run, its totals, and the day's differences. */
export async function reconReport(db: Knex, opts: { date: string; json: boolean }, out: Out): Promise<number> {
  const date = runnableDay(opts.date);
  const run = (await listRuns(db, { limit: 1, date })).data[0];
  const items = await listItems(db, { date, limit: 500 });
  if (opts.json) {
    out(JSON.stringify({ run: run ?? null, items: items.data, items_truncated: items.has_more }));
    return run?.status === 'succeeded' ? 0 : 1;
  }
  if (run === undefined) {
    out(`recon ${date}: never run (payctl recon run --date ${date})`);
    return 1;
  }
  out(`recon ${date}: run ${run.id} ${run.status}, ${Number(run.lines_read).toLocaleString('en')} lines read, workflow ${run.workflow_id}`);
  if (run.status === 'failed') out(`  failed at line ${run.error_line ?? '?'}: ${run.error_reason ?? '?'}`);
  const totals = run.totals as (RunTotals & { auto_fixed?: number; auto_fix_open?: number }) | null;
  if (totals !== null) {
    out(`  matched: ${totals.matched.count} lines, ${fmtAmounts(totals.matched.amount_by_currency)}`);
    for (const [cls, t] of Object.entries(totals.differences)) out(`  ${cls}: ${t.count}, ${fmtAmounts(t.amount_by_currency)}`);
    if (Object.keys(totals.differences).length === 0) out('  differences: none');
    out(`  settlement net: ${fmtAmounts(totals.settlement_net_by_currency)} (posted by this run: ${fmtAmounts(totals.posted_now_by_currency)})`);
    out(`  auto-fixed: ${totals.auto_fixed ?? 0}, auto-fix still open: ${totals.auto_fix_open ?? 0}`);
  }
  const open = items.data.filter((i) => i.status === 'open');
  out(`open queue (${open.length}${items.has_more ? '+' : ''}):`);
  for (const i of open) out(`  ${itemLine(i)}`);
  return run.status === 'succeeded' ? 0 : 1;
}

export async function reconItems(db: Knex, opts: { date?: string; status?: ItemStatus; class?: DifferenceClass; limit: number; json: boolean }, out: Out): Promise<number> {
  const { data } = await listItems(db, { ...opts, date: opts.date === undefined ? undefined : runnableDay(opts.date), limit: Math.min(opts.limit, 500) });
  for (const i of data) out(opts.json ? JSON.stringify(i) : itemLine(i));
  if (data.length === 0 && !opts.json) out('no items');
  return 0;
}

export async function reconClose(db: Knex, item_id: string, status: 'resolved' | 'written_off', note: string, out: Out): Promise<number> {
  const item = await closeItem(db, item_id, status, note, `payctl:${process.env.USER ?? 'unknown'}`);
  out(itemLine(item));
  return 0;
}

