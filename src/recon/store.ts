import type { Knex } from '../db';
import { assert } from '../domain/assert';
import { settlementPosting } from '../domain/ledger';
import { postInTransaction } from '../ledger/poster';
import { itemOfLine, itemOfUnsettled, PAY_IN_TYPES, type DifferenceRow, type ItemDraft, type UnsettledRow } from './classify';
import { SettlementFileReader, type SettlementLine } from './file';
import { dayBounds } from '../domain/dates';
import { orderSignalWorkflowId } from '../domain/workflow-ids';

/**
 * Reconciliation in the database. One run of a settlement day is one transaction: the file is
 * streamed into `settlement_line` (each line classified against our orders as it is inserted),
 * duplicates are marked, differences become `recon_item` rows, and the day's net is posted to the
 * ledger. A bad line anywhere rolls all of it back, so a failed run leaves nothing half-applied
 * and the previous run's results stand until a rerun succeeds.
 */
export const RECON_LIMITS = {
  insert_batch_lines: 2_000,
  item_page: 1_000,
  progress_every_lines: 20_000,
  auto_fix_max: 500,
} as const;

export interface RunTotals {
  lines: number;
  matched: { count: number; amount_by_currency: Record<string, string> };
  differences: Record<string, { count: number; amount_by_currency: Record<string, string> }>;
  settlement_net_by_currency: Record<string, string>;
  posted_now_by_currency: Record<string, string>;
}

export async function beginRun(db: Knex, run: { run_id: string; settlement_date: string; workflow_id: string }): Promise<void> {
  await db('recon_run')
    .insert({ id: run.run_id, settlement_date: run.settlement_date, workflow_id: run.workflow_id, status: 'running' })
    .onConflict('id')
    .ignore();
}

export async function failRun(db: Knex, run_id: string, error: { line_no: number | null; reason: string }): Promise<void> {
  await db('recon_run')
    .where({ id: run_id })
    .update({ status: 'failed', error_line: error.line_no, error_reason: error.reason.slice(0, 1_000), finished_at: db.fn.now() });
}

// Classified as inserted; the order of the cases is the order of precedence.
const INSERT_LINES_SQL = `
insert into settlement_line (settlement_date, line_no, psp_id, idempotency_key, order_reference, type,
  amount_minor, currency, fee_minor, net_minor, created_at, settled_at, result, order_id)
select ?::date, l.line_no, l.psp_id, l.idempotency_key, l.order_reference, l.type,
  l.amount_minor, l.currency, l.fee_minor, l.amount_minor - l.fee_minor, l.created_at, l.settled_at,
  case
    when l.type not in ('charge', 'capture', 'refund', 'payout') then 'unclassified'
    -- A payout line is ours when the PSP's payout id or our key (the payout id) names a payout here.
    when l.type = 'payout' and p.id is null then 'missing_internally'
    when l.type = 'payout' and p.currency <> l.currency then 'currency_mismatch'
    when l.type = 'payout' and p.amount_minor <> -l.amount_minor then 'amount_mismatch'
    when l.type = 'payout' and p.status <> 'paid' then 'missing_internally'
    when l.type = 'payout' then 'matched'
    -- A refund line is ours when the PSP's refund id or our key (the refund id) names a refund here.
    when l.type = 'refund' and r.id is null then 'missing_internally'
    when l.type = 'refund' and r.currency <> l.currency then 'currency_mismatch'
    when l.type = 'refund' and r.amount_minor <> -l.amount_minor then 'amount_mismatch'
    when l.type = 'refund' and r.status <> 'succeeded' then 'missing_internally'
    when l.type = 'refund' then 'matched'
    when o.id is null then 'missing_internally'
    when o.status in ('failed', 'canceled') then 'status_mismatch'
    when o.status not in ('succeeded', 'partially_refunded', 'refunded') then 'missing_internally'
    when o.currency <> l.currency then 'currency_mismatch'
    when o.amount_minor <> l.amount_minor or o.psp_fee_minor is distinct from l.fee_minor then 'amount_mismatch'
    when o.psp_reference is distinct from l.psp_id then 'unclassified'
    when o.captured_at < ?::timestamptz then 'timing'
    else 'matched'
  end,
  coalesce(o.id, r.order_id)
from unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::timestamptz[], ?::timestamptz[])
  as l(line_no, psp_id, idempotency_key, order_reference, type, amount_minor, currency, fee_minor, created_at, settled_at)
left join payment_order o on o.id = l.idempotency_key and l.type not in ('refund', 'payout')
-- Our refund: by the PSP's refund id (recorded when it succeeded), else by our key.
left join lateral (select * from refund x where l.type = 'refund' and (x.psp_refund_id = l.psp_id or x.id = l.idempotency_key) limit 1) r on true
left join lateral (select * from payout y where l.type = 'payout' and (y.psp_payout_id = l.psp_id or y.id = l.idempotency_key) limit 1) p on true`;

async function insertLines(trx: Knex.Transaction, date: string, day_start: string, lines: SettlementLine[]): Promise<void> {
  if (lines.length === 0) return;
  const col = <K extends keyof SettlementLine>(k: K) => lines.map((l) => String(l[k]));
  // Bindings in the order the statement names them: the day, its start, then one array per column.
  await trx.raw(INSERT_LINES_SQL, [
    date,
    day_start,
    col('line_no'),
    col('psp_id'),
    col('idempotency_key'),
    col('order_reference'),
    col('type'),
    col('amount_minor'),
    col('currency'),
    col('fee_minor'),
    col('created_at'),
    col('settled_at'),
  ]);
}

/** A line that repeats an earlier line of the same file (same PSP id, type and key) is a duplicate. */
async function markDuplicates(trx: Knex.Transaction, date: string): Promise<void> {
  await trx.raw(
    `update settlement_line s set result = 'duplicate'
       from (select line_no, row_number() over (partition by psp_id, type, idempotency_key order by line_no) as n
               from settlement_line where settlement_date = ?::date) d
      where s.settlement_date = ?::date and s.line_no = d.line_no and d.n > 1`,
    [date, date],
  );
}

const ITEM_COLUMNS = [
  'subject', 'settlement_date', 'class', 'status', 'auto_fixable', 'line_no', 'line_type', 'psp_id', 'idempotency_key',
  'order_id', 'payment_id', 'workflow_id', 'field', 'our_value', 'psp_value', 'currency', 'amount_minor', 'note',
] as const;

/**
 * Adds new differences to the queue. A movement already in the queue keeps its item (a rerun
 * changes nothing), except that a capture first reported missing at the PSP and now found in a
 * later file becomes a resolved timing difference.
 */
async function upsertItems(trx: Knex.Transaction, run_id: string, items: ItemDraft[]): Promise<void> {
  if (items.length === 0) return;
  const rows = items.map((i) => ({ ...Object.fromEntries(ITEM_COLUMNS.map((c) => [c, i[c]])), run_id }));
  await trx.raw(
    `insert into recon_item (${ITEM_COLUMNS.join(', ')}, run_id, resolved_at)
     select ${ITEM_COLUMNS.map((c) => `x.${c}`).join(', ')}, x.run_id, case when x.status = 'open' then null else now() end
       from jsonb_to_recordset(?::jsonb) as x(subject text, settlement_date date, class text, status text, auto_fixable boolean,
         line_no bigint, line_type text, psp_id text, idempotency_key text, order_id text, payment_id text, workflow_id text,
         field text, our_value text, psp_value text, currency text, amount_minor bigint, note text, run_id text)
     on conflict (subject) do update set class = excluded.class, status = excluded.status, settlement_date = excluded.settlement_date,
         line_no = excluded.line_no, field = excluded.field, our_value = excluded.our_value, psp_value = excluded.psp_value,
         note = excluded.note || ' (first reported missing at the PSP on ' || recon_item.settlement_date || ')',
         run_id = excluded.run_id, resolved_at = now(), updated_at = now()
       where recon_item.class = 'missing_at_psp' and recon_item.status = 'open' and excluded.class = 'timing'`,
    [JSON.stringify(rows)],
  );
}

async function differenceItems(trx: Knex.Transaction, run_id: string, date: string): Promise<void> {
  let after = '0';
  for (;;) {
    const rows = (await trx('settlement_line as l')
      .leftJoin('payment_order as o', 'o.id', 'l.order_id')
      .leftJoin('payment_event as pe', 'pe.id', 'o.payment_id')
      .joinRaw(`left join lateral (select x.amount_minor from refund x where l.type = 'refund' and (x.psp_refund_id = l.psp_id or x.id = l.idempotency_key) limit 1) r on true`)
      .where('l.settlement_date', date)
      .andWhereNot('l.result', 'matched')
      .andWhere('l.line_no', '>', after)
      .orderBy('l.line_no')
      .limit(RECON_LIMITS.item_page)
      .select(
        'l.line_no', 'l.psp_id', 'l.idempotency_key', 'l.type', 'l.amount_minor', 'l.currency', 'l.fee_minor', 'l.settled_at', 'l.result',
        'o.id as order_id', 'o.payment_id', 'o.status as order_status', 'o.amount_minor as order_amount_minor',
        trx.raw('trim(o.currency) as order_currency'), 'o.psp_fee_minor as order_fee_minor', 'o.psp_reference as order_psp_reference', 'o.captured_at',
        'r.amount_minor as refund_amount_minor', 'pe.workflow_type',
      )) as DifferenceRow[];
    await upsertItems(trx, run_id, rows.map((r) => itemOfLine({ ...r, currency: r.currency.trim() }, date)));
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < RECON_LIMITS.item_page) return;
    after = last.line_no;
  }
}

/** An open `missing_at_psp` item whose capture a (corrected) file now lists and matches is resolved. */
async function resolveFoundLater(trx: Knex.Transaction, run_id: string, date: string): Promise<void> {
  await trx.raw(
    `update recon_item i set status = 'resolved', resolved_at = now(), updated_at = now(), run_id = ?,
            note = i.note || ' — listed and matched by the file of ' || ?::text
       from settlement_line l
      where i.class = 'missing_at_psp' and i.status = 'open' and l.settlement_date = ?::date and l.result = 'matched'
        and l.idempotency_key = i.idempotency_key and l.type in ('charge', 'capture')`,
    [run_id, date, date],
  );
}

/** Our captures of the day that no settlement file (this day's or any other) lists. */
async function unsettledItems(trx: Knex.Transaction, run_id: string, date: string): Promise<void> {
  const { start, end } = dayBounds(date);
  let after = '';
  for (;;) {
    const rows = (await trx('payment_order as o')
      .join('payment_event as pe', 'pe.id', 'o.payment_id')
      .where('o.captured_at', '>=', start)
      .andWhere('o.captured_at', '<', end)
      .andWhere('o.id', '>', after)
      .whereNotExists(trx('settlement_line as l').whereRaw('l.idempotency_key = o.id').whereIn('l.type', [...PAY_IN_TYPES]))
      .orderBy('o.id')
      .limit(RECON_LIMITS.item_page)
      .select('o.id as order_id', 'o.payment_id', 'o.psp_reference', 'o.amount_minor', 'o.currency', 'o.captured_at', 'pe.workflow_type')) as UnsettledRow[];
    await upsertItems(trx, run_id, rows.map((r) => itemOfUnsettled(r, date)));
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < RECON_LIMITS.item_page) return;
    after = last.order_id;
  }
}

/** Posts what the day's file moved to our bank, less what earlier runs of the day already posted. */
async function postSettlement(trx: Knex.Transaction, run_id: string, date: string): Promise<Record<string, string>> {
  const rows = (await trx.raw(
    `select trim(f.currency) as currency, f.net::text as file_net, coalesce(p.posted, 0)::text as posted, coalesce(p.seq, 0) as seq
       from (select currency, sum(net_minor) as net from settlement_line where settlement_date = ?::date group by currency) f
       left join (select currency, sum(net_minor) as posted, max(seq) as seq from settlement_posting where settlement_date = ?::date group by currency) p
         on p.currency = f.currency
      order by 1`,
    [date, date],
  )) as { rows: { currency: string; file_net: string; posted: string; seq: number }[] };
  const posted_now: Record<string, string> = {};
  for (const r of rows.rows) {
    const delta = BigInt(r.file_net) - BigInt(r.posted);
    if (delta === 0n) continue;
    const seq = r.seq + 1;
    const reference = `settlement:${date}:${r.currency}:${seq}`;
    await postInTransaction(trx, [settlementPosting({ reference, settlement_date: date, currency: r.currency, net_minor: delta })]);
    await trx('settlement_posting').insert({ settlement_date: date, currency: r.currency, seq, net_minor: delta.toString(), ledger_reference: reference, run_id });
    posted_now[r.currency] = delta.toString();
  }
  return posted_now;
}

export interface LoadProgress {
  (lines_read: number): Promise<void> | void;
}

/**
 * Loads and classifies one settlement file in one transaction (see the module comment). Runs of
 * the same day are serialised by an advisory lock, so two runs never interleave their writes.
 */
export async function reconcileFile(db: Knex, run: { run_id: string; settlement_date: string }, lines: AsyncIterable<string>, progress: LoadProgress): Promise<RunTotals> {
  const date = run.settlement_date;
  const { start } = dayBounds(date);
  return await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`recon:${date}`]);
    await trx('settlement_line').where({ settlement_date: date }).delete();
    const reader = new SettlementFileReader();
    let batch: SettlementLine[] = [];
    let read = 0;
    for await (const raw of lines) {
      const line = reader.push(raw);
      read++;
      if (line !== null) batch.push(line);
      if (batch.length >= RECON_LIMITS.insert_batch_lines) {
        await insertLines(trx, date, start, batch);
        batch = [];
      }
      if (read % RECON_LIMITS.progress_every_lines === 0) await progress(read);
    }
    reader.end();
    await insertLines(trx, date, start, batch);
    await progress(read);
    await markDuplicates(trx, date);
    await differenceItems(trx, run.run_id, date);
    await resolveFoundLater(trx, run.run_id, date);
    await unsettledItems(trx, run.run_id, date);
    const posted_now = await postSettlement(trx, run.run_id, date);
    return { ...(await dayTotals(trx, date)), posted_now_by_currency: posted_now };
  });
}

async function dayTotals(conn: Knex | Knex.Transaction, date: string): Promise<Omit<RunTotals, 'posted_now_by_currency'>> {
  const lines = (await conn('settlement_line')
    .where({ settlement_date: date })
    .groupBy('result', 'currency')
    .select('result', conn.raw('trim(currency) as currency'), conn.raw('count(*)::int as count'), conn.raw('sum(amount_minor)::text as amount'), conn.raw('sum(net_minor)::text as net'))) as {
    result: string;
    currency: string;
    count: number;
    amount: string;
    net: string;
  }[];
  const unsettled = (await conn('recon_item')
    .where({ settlement_date: date, class: 'missing_at_psp' })
    .groupBy('currency')
    .select(conn.raw('trim(currency) as currency'), conn.raw('count(*)::int as count'), conn.raw('sum(amount_minor)::text as amount'))) as { currency: string; count: number; amount: string }[];
  const totals: Omit<RunTotals, 'posted_now_by_currency'> = { lines: 0, matched: { count: 0, amount_by_currency: {} }, differences: {}, settlement_net_by_currency: {} };
  const add = (bucket: { count: number; amount_by_currency: Record<string, string> }, currency: string, count: number, amount: string) => {
    bucket.count += count;
    bucket.amount_by_currency[currency] = (BigInt(bucket.amount_by_currency[currency] ?? '0') + BigInt(amount)).toString();
  };
  for (const r of lines) {
    totals.lines += r.count;
    add(r.result === 'matched' ? totals.matched : (totals.differences[r.result] ??= { count: 0, amount_by_currency: {} }), r.currency, r.count, r.amount);
    totals.settlement_net_by_currency[r.currency] = (BigInt(totals.settlement_net_by_currency[r.currency] ?? '0') + BigInt(r.net)).toString();
  }
  for (const r of unsettled) add((totals.differences.missing_at_psp ??= { count: 0, amount_by_currency: {} }), r.currency, r.count, r.amount);
  return totals;
}

export async function finishRun(db: Knex, run_id: string, totals: RunTotals): Promise<void> {
  const updated = await db('recon_run').where({ id: run_id, status: 'running' }).update({ status: 'succeeded', totals: JSON.stringify(totals), finished_at: db.fn.now() });
  assert(updated === 1, `recon run ${run_id} was running`);
}

export interface AutoFix {
  item_id: string;
  order_id: string;
  psp_id: string;
  /** The workflow the PSP's answer is signalled to (the payment's, or a legacy order's own). */
  workflow_id: string;
}

/** Open differences of the day that re-asking the PSP can fix (the order still waits for it). */
export async function autoFixesOf(db: Knex, date: string): Promise<AutoFix[]> {
  const rows = (await db('recon_item as i')
    .join('payment_order as o', 'o.id', 'i.order_id')
    .join('payment_event as pe', 'pe.id', 'o.payment_id')
    .where({ 'i.settlement_date': date, 'i.class': 'missing_internally', 'i.status': 'open', 'i.auto_fixable': true })
    .whereNotNull('i.psp_id')
    .orderBy('i.id')
    .limit(RECON_LIMITS.auto_fix_max)
    .select(db.raw('i.id::text as item_id'), 'i.order_id', 'i.psp_id', 'o.payment_id', 'pe.workflow_type')) as (AutoFix & { payment_id: string; workflow_type: string | null })[];
  return rows.map(({ payment_id, workflow_type, ...fix }) => ({ ...fix, workflow_id: orderSignalWorkflowId({ order_id: fix.order_id, payment_id, workflow_type }) }));
}

/**
 * Re-checks the day's auto-fixable differences: an order that now agrees with its line (captured,
 * same amount, currency and fee) resolves its item. Returns how many are still open.
 */
export async function recheckAutoFixes(db: Knex, date: string, note: string): Promise<{ resolved: number; open: number }> {
  const resolved = await db.raw(
    `update recon_item i set status = 'resolved', auto_fixed = true, resolved_at = now(), updated_at = now(), note = i.note || ' — ' || ?
       from settlement_line l, payment_order o
      where i.settlement_date = ?::date and i.class = 'missing_internally' and i.status = 'open' and i.auto_fixable
        and l.settlement_date = i.settlement_date and l.line_no = i.line_no and o.id = i.order_id
        and o.status = 'succeeded' and o.currency = l.currency and o.amount_minor = l.amount_minor
        and o.psp_fee_minor = l.fee_minor and o.psp_reference = l.psp_id`,
    [note, date],
  );
  const open = await db('recon_item').where({ settlement_date: date, class: 'missing_internally', status: 'open', auto_fixable: true }).count<{ count: string }[]>('* as count');
  return { resolved: (resolved as { rowCount: number }).rowCount, open: Number(open[0]?.count ?? 0) };
}

/** A fix that could not be tried (e.g. the order's workflow is gone): say so on the item. */
export async function noteItem(db: Knex, item_id: string, note: string): Promise<void> {
  await db('recon_item').where({ id: item_id }).update({ note: db.raw("note || ' — ' || ?", [note.slice(0, 500)]), updated_at: db.fn.now() });
}

export async function setProgress(db: Knex, run_id: string, progress: { lines_read: number; lines_expected?: number | null }): Promise<void> {
  await db('recon_run').where({ id: run_id }).update(progress);
}

