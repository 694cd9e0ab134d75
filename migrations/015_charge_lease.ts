import type { Knex } from 'knex';

/**
 * A charge attempt leases its order while it talks to the PSP (src/aggregates/order.ts,
 * claimCharge): a second attempt of the same order — a local activity run again while the first
 * run is still waiting on the PSP — finds the lease and backs off instead of sending a second
 * charge. Null when no attempt is in flight; an attempt whose worker died loses it by expiry.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table payment_order add column charge_lease_until timestamptz');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table payment_order drop column charge_lease_until');
}
