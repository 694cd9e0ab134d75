import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';

/**
 * The current definition of every SQL function and trigger, one file per area, in load order
 * (status-history calls the status functions). Each file is idempotent (CREATE OR REPLACE, triggers
 * dropped and re-created), so loading it again is how a migration ships a change to it: an existing
 * database upgrades, and a fresh one, running every migration, ends on the same text. For that,
 * a definition never depends on a table or column that a later migration adds: a fresh database
 * loads today's text at the first migration that loads the file (plpgsql bodies are checked when
 * they run, but a `language sql` body that reads a table is checked when it is created; today's
 * `language sql` functions read no table).
 */
export const SQL_DEFINITIONS = ['ledger', 'status', 'status-history'] as const;
export type SqlDefinition = (typeof SQL_DEFINITIONS)[number];

export function sqlDefinitionPath(name: SqlDefinition): string {
  return join(__dirname, `${name}.sql`);
}

export function readSqlDefinition(name: SqlDefinition): string {
  return readFileSync(sqlDefinitionPath(name), 'utf8');
}

export async function loadSqlDefinitions(knex: Knex, names: readonly SqlDefinition[] = SQL_DEFINITIONS): Promise<void> {
  for (const name of names) await knex.raw(readSqlDefinition(name));
}
