import type { Knex } from 'knex';
import { LIMITS } from '../config';
import { assert } from '../domain/assert';
import { AppError } from '../domain/errors';

export interface PageOptions {
  limit: number;
  starting_after?: string;
}

export interface Page<Out> {
  object: 'list';
  data: Out[];
  has_more: boolean;
  next_cursor: string | null;
}

/**
 * A page of one merchant's rows of a table, newest first, by a (created_at, id) cursor compared in
 * SQL (JS Dates would drop PostgreSQL's microseconds and skip or repeat rows).
 */
export async function merchantPage<Row, Out extends { id: string }>(
  db: Knex,
  spec: { table: 'refund' | 'payout' | 'dispute'; noun: string; columns?: (string | Knex.Raw)[] },
  merchant_id: string,
  opts: PageOptions & { where?: Record<string, string> },
  toResource: (row: Row) => Out,
): Promise<Page<Out>> {
  assert(opts.limit >= 1 && opts.limit <= LIMITS.page_size_max, 'page size within limits');
  let query = db(spec.table)
    .where({ merchant_id, ...opts.where })
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
    .limit(opts.limit + 1)
    .select(...(spec.columns ?? ['*']));
  if (opts.starting_after !== undefined) {
    const cursor = await db(spec.table).where({ id: opts.starting_after, merchant_id }).first('id');
    if (cursor === undefined) throw new AppError('invalid_cursor', `starting_after must be the id of one of your ${spec.noun}`, 'starting_after');
    query = query.whereRaw(`(created_at, id) < (select created_at, id from ${spec.table} where id = ?)`, [opts.starting_after]);
  }
  const rows = (await query) as Row[];
  const data = rows.slice(0, opts.limit).map(toResource);
  const has_more = rows.length > opts.limit;
  return { object: 'list', data, has_more, next_cursor: has_more ? (data[data.length - 1]?.id ?? null) : null };
}
