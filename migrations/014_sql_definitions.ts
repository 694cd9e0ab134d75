import type { Knex } from 'knex';
import { loadSqlDefinitions } from './sql';

/**
 * Every SQL function and trigger from one place: migrations/sql/*.sql hold the current definitions
 * (status.sql generated from src/domain/status.ts), loaded here with CREATE OR REPLACE. The status
 * rule changes in one respect, to agree with the TypeScript one: a status that is not terminal can
 * no longer move to `disputed` (a dispute opens on a captured order or payment only).
 */
export async function up(knex: Knex): Promise<void> {
  await loadSqlDefinitions(knex);
}

export async function down(): Promise<void> {
  throw new Error('014 replaces function bodies only: restore the earlier versions from a backup');
}
