import { randomBytes } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, migrateLatest, type Knex } from '../../src/db';
import { loadSqlDefinitions } from '../../migrations/sql';
import { PSP_EVENT_ROUTES } from '../../src/domain/psp-events';
import {
  DISPUTE_STATUSES,
  ORDER_STATUSES,
  PAYMENT_STATUSES,
  PAYOUT_STATUSES,
  REFUND_STATUSES,
  isMoveAllowed,
  statusRank,
  type OrderStatus,
  type PaymentStatus,
} from '../../src/domain/status';

/**
 * The database's status rule against the TypeScript one, on a freshly migrated database of its own:
 * every pair of statuses of each kind the trigger guards, and every table's list of statuses.
 */

const database_url = (() => {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/status_sql_${randomBytes(6).toString('hex')}`;
  return url.toString();
})();

let db: Knex;

beforeAll(async () => {
  await ensureDatabase(database_url);
  db = createDb(database_url, 2);
  await migrateLatest(db);
});

afterAll(async () => {
  await db?.destroy();
  await dropDatabase(database_url);
});

interface PairRow {
  from_status: string;
  to_status: string;
  from_rank: number;
  allowed: boolean;
}

async function sqlPairs(statuses: readonly string[]): Promise<PairRow[]> {
  const { rows } = await db.raw<{ rows: PairRow[] }>(
    `select f.s as from_status, t.s as to_status, status_rank(f.s) as from_rank, status_move_allowed(f.s, t.s) as allowed
       from unnest(?::text[]) f(s), unnest(?::text[]) t(s) order by 1, 2`,
    [[...statuses], [...statuses]],
  );
  return rows;
}

describe.each([
  ['order', ORDER_STATUSES],
  ['payment', PAYMENT_STATUSES],
] as const)('%s statuses', (_kind, statuses: readonly (OrderStatus | PaymentStatus)[]) => {
  it('rank and allowed moves agree between status_rank/status_move_allowed and src/domain/status.ts for every pair', async () => {
    const rows = await sqlPairs(statuses);
    expect(rows).toHaveLength(statuses.length ** 2);
    const disagreements = rows
      .filter((r) => r.allowed !== isMoveAllowed(r.from_status as OrderStatus, r.to_status as OrderStatus) || r.from_rank !== statusRank(r.from_status as OrderStatus))
      .map((r) => `${r.from_status} -> ${r.to_status}: sql ${r.allowed} (rank ${r.from_rank})`);
    expect(disagreements).toEqual([]);
  });
});

/** The values a column's own check constraint (`<table>_<column>_check`) accepts. */
async function checkedValues(table: string, column: string): Promise<string[]> {
  const { rows } = await db.raw<{ rows: { def: string }[] }>(
    `select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = ?::regclass and conname = ?`,
    [table, `${table}_${column}_check`],
  );
  expect(rows).toHaveLength(1);
  return [...(rows[0] as { def: string }).def.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1] as string).sort();
}

it.each([
  ['payment_order', ORDER_STATUSES],
  ['payment_event', PAYMENT_STATUSES],
  ['refund', REFUND_STATUSES],
  ['payout', PAYOUT_STATUSES],
  ['dispute', DISPUTE_STATUSES],
] as const)('the %s table accepts exactly the statuses of src/domain/status.ts', async (table, statuses) => {
  expect(await checkedValues(table, 'status')).toEqual([...statuses].sort());
});

it('psp_event accepts exactly the routes of src/domain/psp-events.ts', async () => {
  expect(await checkedValues('psp_event', 'route')).toEqual([...PSP_EVENT_ROUTES].sort());
});

async function definitions(executor: Knex): Promise<string[]> {
  const { rows } = await executor.raw<{ rows: { def: string }[] }>(`
    select pg_get_functiondef(p.oid) as def from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and p.prokind = 'f'
    union all
    select pg_get_triggerdef(t.oid) from pg_trigger t join pg_class c on c.oid = t.tgrelid
      join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and not t.tgisinternal
    order by 1`);
  return rows.map((r) => r.def);
}

it('a migrated database runs exactly the definitions of migrations/sql (no later migration overrides them)', async () => {
  const migrated = await definitions(db);
  const trx = await db.transaction();
  try {
    await loadSqlDefinitions(trx);
    expect(await definitions(trx)).toEqual(migrated);
  } finally {
    await trx.rollback();
  }
});
