import type { Knex } from '../db';
import { AppError } from '../domain/errors';
import type { DifferenceClass, ItemDraft, ItemStatus } from './classify';

/** Reads of reconciliation runs and the finance queue, and closing an item, for the ops API and payctl. */
export const RECON_READ_LIMITS = { page_max: 500, note_chars_max: 2_000 } as const;

export interface RunRow {
  id: string;
  settlement_date: string;
  workflow_id: string;
  status: 'running' | 'succeeded' | 'failed';
  lines_read: string;
  lines_expected: string | null;
  totals: unknown;
  error_line: string | null;
  error_reason: string | null;
  started_at: Date;
  finished_at: Date | null;
}

/** A queue row: the difference as classified (src/recon/classify.ts) plus its queue life. */
export interface ItemRow extends Omit<ItemDraft, 'note'> {
  id: string;
  auto_fixed: boolean;
  note: string | null;
  run_id: string;
  created_at: Date;
  updated_at: Date;
  resolved_at: Date | null;
}

const RUN_COLUMNS = ['id', 'workflow_id', 'status', 'lines_read', 'lines_expected', 'totals', 'error_line', 'error_reason', 'started_at', 'finished_at'];
const day = (conn: Knex, column: string) => conn.raw(`to_char(${column}, 'YYYY-MM-DD') as settlement_date`);

export async function listRuns(db: Knex, opts: { limit: number; starting_after?: string; date?: string }): Promise<{ data: RunRow[]; has_more: boolean; next_cursor: string | null }> {
  let query = db('recon_run').select(...RUN_COLUMNS, day(db, 'settlement_date')).orderBy([{ column: 'started_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(opts.limit + 1);
  if (opts.date !== undefined) query = query.where({ settlement_date: opts.date });
  if (opts.starting_after !== undefined) {
    const cursor = await db('recon_run').where({ id: opts.starting_after }).first('id');
    if (cursor === undefined) throw new AppError('invalid_cursor', 'starting_after must be the id of a run', 'starting_after');
    query = query.whereRaw('(started_at, id) < (select started_at, id from recon_run where id = ?)', [opts.starting_after]);
  }
  const rows = (await query) as RunRow[];
  const data = rows.slice(0, opts.limit);
  const has_more = rows.length > opts.limit;
  return { data, has_more, next_cursor: has_more ? (data[data.length - 1]?.id ?? null) : null };
}

export async function getRun(db: Knex, run_id: string): Promise<RunRow> {
  const run = (await db('recon_run').where({ id: run_id }).first(...RUN_COLUMNS, day(db, 'settlement_date'))) as RunRow | undefined;
  if (run === undefined) throw new AppError('resource_missing', `no reconciliation run ${run_id}`, 'id');
  return run;
}

export interface ItemFilter {
  date?: string;
  status?: ItemStatus;
  class?: DifferenceClass;
  limit: number;
  starting_after?: string;
}

/** Items oldest first (the order finance works them), by id cursor. */
export async function listItems(db: Knex, filter: ItemFilter): Promise<{ data: ItemRow[]; has_more: boolean; next_cursor: string | null }> {
  let query = db('recon_item')
    .select('*', day(db, 'settlement_date'))
    .orderBy('recon_item.id')
    .limit(filter.limit + 1);
  if (filter.date !== undefined) query = query.where({ settlement_date: filter.date });
  if (filter.status !== undefined) query = query.where({ status: filter.status });
  if (filter.class !== undefined) query = query.where({ class: filter.class });
  if (filter.starting_after !== undefined) {
    if (!/^[1-9][0-9]{0,17}$/.test(filter.starting_after)) throw new AppError('invalid_cursor', 'starting_after must be the id of an item', 'starting_after');
    query = query.where('recon_item.id', '>', filter.starting_after);
  }
  const rows = ((await query) as ItemRow[]).map((r) => ({ ...r, currency: r.currency?.trim() ?? null }));
  const data = rows.slice(0, filter.limit);
  const has_more = rows.length > filter.limit;
  return { data, has_more, next_cursor: has_more ? (data[data.length - 1]?.id ?? null) : null };
}

/** Finance closes an open item: resolved (explained or fixed by hand) or written off, with a note. */
export async function closeItem(db: Knex, item_id: string, status: Exclude<ItemStatus, 'open'>, note: string, by: string): Promise<ItemRow> {
  if (!/^[1-9][0-9]{0,17}$/.test(item_id)) throw new AppError('resource_missing', `no reconciliation item ${item_id}`, 'id');
  if (note.trim().length === 0 || note.length > RECON_READ_LIMITS.note_chars_max) throw new AppError('parameter_invalid', `note must be 1..${RECON_READ_LIMITS.note_chars_max} characters`, 'note');
  const updated = await db('recon_item')
    .where({ id: item_id, status: 'open' })
    .update({ status, note: db.raw("coalesce(note, '') || ' — ' || ?", [`${status} by ${by}: ${note.trim()}`]), resolved_at: db.fn.now(), updated_at: db.fn.now() });
  if (updated === 0) {
    const exists = await db('recon_item').where({ id: item_id }).first('status');
    if (exists === undefined) throw new AppError('resource_missing', `no reconciliation item ${item_id}`, 'id');
    throw new AppError('recon_item_closed', `item ${item_id} is already ${String(exists.status)}`, 'id');
  }
  const row = (await db('recon_item').where({ id: item_id }).first('*', day(db, 'settlement_date'))) as ItemRow;
  return { ...row, currency: row.currency?.trim() ?? null };
}
