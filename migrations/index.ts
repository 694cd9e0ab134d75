import type { Knex } from 'knex';
import * as m001 from './001_initial';
import * as m002 from './002_ledger_holds_fees';
import * as m003 from './003_faster_posting';
import * as m004 from './004_balance_check_per_transaction';
import * as m005 from './005_async_psp_and_webhooks';
import * as m006 from './006_needs_attention';
import * as m007 from './007_all_or_nothing';
import * as m008 from './008_reconciliation';
import * as m009 from './009_refunds';
import * as m010 from './010_payouts';
import * as m011 from './011_disputes';
import * as m012 from './012_one_workflow_per_payment';
import * as m013 from './013_admission';
import * as m014 from './014_sql_definitions';
import * as m015 from './015_charge_lease';

/**
 * Migrations are listed here and imported statically, so the same code runs under tsx, jest and
 * a bundler without knex having to load .ts files from disk by itself.
 */
const MIGRATIONS: ReadonlyArray<[string, Knex.Migration]> = [
  ['001_initial', m001],
  ['002_ledger_holds_fees', m002],
  ['003_faster_posting', m003],
  ['004_balance_check_per_transaction', m004],
  ['005_async_psp_and_webhooks', m005],
  ['006_needs_attention', m006],
  ['007_all_or_nothing', m007],
  ['008_reconciliation', m008],
  ['009_refunds', m009],
  ['010_payouts', m010],
  ['011_disputes', m011],
  ['012_one_workflow_per_payment', m012],
  ['013_admission', m013],
  ['014_sql_definitions', m014],
  ['015_charge_lease', m015],
];

export const migrationSource: Knex.MigrationSource<[string, Knex.Migration]> = {
  getMigrations: async () => [...MIGRATIONS],
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};
