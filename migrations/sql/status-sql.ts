import { MOVE_RULES, STATUS_RANK, TERMINAL_RANK } from '../../src/domain/status';

/**
 * The text of migrations/sql/status.sql, generated from the tables of src/domain/status.ts so the
 * database trigger and the TypeScript code apply one rule. Pure: the unit test compares it with the
 * committed file, `npm run sql:generate` writes it.
 */

const STATUS_PATTERN = /^[a-z_]+$/;

function literal(status: string): string {
  if (!STATUS_PATTERN.test(status)) throw new Error(`status ${JSON.stringify(status)} is not a plain name`);
  return `'${status}'`;
}

function list(statuses: readonly string[]): string {
  return `(${statuses.map(literal).join(', ')})`;
}

function rankFunction(): string {
  const byRank = new Map<number, string[]>();
  for (const [status, rank] of Object.entries(STATUS_RANK)) byRank.set(rank, [...(byRank.get(rank) ?? []), status]);
  const lines = [...byRank.entries()]
    .sort(([a], [b]) => a - b)
    .map(([rank, statuses]) => `    when status in ${list(statuses)} then ${rank}`);
  return [
    '-- 0 before any work, 1 working, 2 waiting (on the buyer, the PSP or an operator), 9 terminal,',
    '-- after a sale 10 partially refunded or disputed and 11 refunded. A status not listed counts as',
    '-- terminal, so nothing moves it.',
    'create or replace function status_rank(status text) returns integer language sql immutable as $$',
    '  select case',
    ...lines,
    `    else ${TERMINAL_RANK} end`,
    '$$;',
  ].join('\n');
}

function moveFunction(): string {
  const r = MOVE_RULES;
  return [
    '-- Forward only, terminal stays; the ways out are a dispute (opens on a captured order or payment,',
    '-- closes back to it or to refunded), a refund of a captured one, and an operator\'s retry of a',
    '-- parked order.',
    'create or replace function status_move_allowed(from_status text, to_status text) returns boolean language sql immutable as $$',
    '  select case',
    `    when to_status = ${literal(r.dispute)} then from_status in ${list(r.disputable_from)}`,
    `    when from_status = ${literal(r.dispute)} then to_status in ${list(r.dispute_closes_to)}`,
    `    when from_status in ${list(r.refundable_from)} and to_status in ${list(r.refunded)}`,
    '      then status_rank(to_status) >= status_rank(from_status)',
    `    when status_rank(from_status) >= ${TERMINAL_RANK} then false`,
    '    else status_rank(to_status) >= status_rank(from_status)',
    `      or (from_status = ${literal(r.retry_from)} and to_status in ${list(r.retry_to)})`,
    '  end',
    '$$;',
  ].join('\n');
}

export function statusSql(): string {
  return [
    '-- Generated from src/domain/status.ts by `npm run sql:generate`: edit the TypeScript tables, not',
    '-- this file. Loaded by a migration with CREATE OR REPLACE; a change ships in a new migration that',
    '-- loads this file again. test/unit/status-sql.test.ts keeps the two in step.',
    '',
    rankFunction(),
    '',
    moveFunction(),
    '',
  ].join('\n');
}
