import knex, { type Knex } from 'knex';
import { createLogger } from '../logger';
import { migrationSource } from '../../migrations';

export type { Knex };

// pg returns int8 as strings by default; we keep that (never a JS number) and convert to bigint
// at the edges of the domain code.
const knexLog = createLogger('db');

export function createDb(database_url: string, pool_max = 10): Knex {
  return knex({
    // knex prints with console by default; route it through our JSON logs.
    log: {
      warn: (message: unknown) => knexLog.warn({ message }, 'knex warning'),
      error: (message: unknown) => knexLog.error({ message }, 'knex error'),
      deprecate: (method: string, alternative: string) => knexLog.warn({ method, alternative }, 'knex deprecation'),
      debug: () => undefined,
    },
    client: 'pg',
    connection: database_url,
    pool: { min: 0, max: pool_max },
    acquireConnectionTimeout: 10_000,
  });
}

export async function migrateLatest(db: Knex): Promise<void> {
  await db.migrate.latest({ migrationSource });
}

function splitUrl(database_url: string): { admin_url: string; name: string } {
  const url = new URL(database_url);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unsupported database name: ${name}`);
  url.pathname = '/postgres';
  return { admin_url: url.toString(), name };
}

/** Creates the database named in the URL if it does not exist (connects to `postgres` to do so). */
export async function ensureDatabase(database_url: string): Promise<boolean> {
  const { admin_url, name } = splitUrl(database_url);
  const admin = createDb(admin_url, 1);
  try {
    const found = await admin.raw('select 1 from pg_database where datname = ?', [name]);
    if (found.rows.length > 0) return false;
    await admin.raw(`create database "${name}"`);
    return true;
  } finally {
    await admin.destroy();
  }
}

export async function dropDatabase(database_url: string): Promise<void> {
  const { admin_url, name } = splitUrl(database_url);
  const admin = createDb(admin_url, 1);
  try {
    await admin.raw(`drop database if exists "${name}" with (force)`);
  } finally {
    await admin.destroy();
  }
}
