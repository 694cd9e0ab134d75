import knex, { type Knex } from 'knex';
import type { Logger } from './logger';

export type { Knex };

const ADMIN_DATABASE = 'postgres';
const ACQUIRE_TIMEOUT_MS = 10_000;

/** knex prints with console by default; its warnings go to our JSON logs instead. */
export function createDb(database_url: string, pool_max: number, log: Logger): Knex {
  if (!Number.isSafeInteger(pool_max) || pool_max < 1) throw new Error('assertion: pool_max must be a positive integer');
  return knex({
    log: {
      warn: (message: unknown) => log.warn({ message }, 'knex warning'),
      error: (message: unknown) => log.error({ message }, 'knex error'),
      deprecate: (method: string, alternative: string) => log.warn({ method, alternative }, 'knex deprecation'),
      debug: () => undefined,
    },
    client: 'pg',
    connection: database_url,
    pool: { min: 0, max: pool_max },
    acquireConnectionTimeout: ACQUIRE_TIMEOUT_MS,
  });
}

/** Creates the database named in the URL if it does not exist (connects to `postgres` to do so). */
export async function ensureDatabase(database_url: string, log: Logger): Promise<void> {
  const url = new URL(database_url);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  // The name is interpolated into DDL below, so only plain identifiers pass.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unsupported database name: ${name}`);
  url.pathname = `/${ADMIN_DATABASE}`;
  const admin = createDb(url.toString(), 1, log);
  try {
    const found = await admin.raw('select 1 from pg_database where datname = ?', [name]);
    if (found.rows.length === 0) await admin.raw(`create database "${name}"`);
  } finally {
    await admin.destroy();
  }
}
