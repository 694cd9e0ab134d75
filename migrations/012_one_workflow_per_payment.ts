import type { Knex } from 'knex';

/**
 * One workflow per payment (v7). Orders of a payment started on the earlier shape have their own
 * workflows (`order-<id>`), which keep receiving that order's signals until they finish; new
 * payments' orders live inside the payment's workflow. `workflow_type` says which: set when the
 * workflow starts; every payment already started when this runs was started on the legacy type.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
alter table payment_event add column workflow_type text check (workflow_type is null or length(workflow_type) between 1 and 200);
update payment_event set workflow_type = 'PaymentWorkflow' where workflow_started_at is not null;
`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table payment_event drop column workflow_type');
}
