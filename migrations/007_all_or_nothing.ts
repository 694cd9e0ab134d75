import type { Knex } from 'knex';

/**
 * Authorize then capture: a payment's `capture_method` is `automatic` (each order is
 * charged on its own) or `all_or_nothing` (every order is authorized first; all are captured, or
 * the authorized ones are voided). An order between the two steps is `authorized`: money held at
 * the PSP and in the ledger's pending balances, nothing yet owed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
alter table payment_event add column capture_method text not null default 'automatic'
  check (capture_method in ('automatic', 'all_or_nothing'));
alter table payment_order drop constraint payment_order_status_check;
alter table payment_order add constraint payment_order_status_check check (status in
  ('not_started', 'executing', 'requires_action', 'pending', 'needs_attention', 'authorized', 'succeeded', 'failed', 'canceled'));

create or replace function status_rank(status text) returns integer language sql immutable as $$
  select case status
    when 'requires_payment_method' then 0 when 'not_started' then 0
    when 'processing' then 1 when 'executing' then 1
    when 'requires_action' then 2 when 'pending' then 2 when 'needs_attention' then 2 when 'authorized' then 2
    else 9 end
$$;

-- Idempotency keys expire after a day (IDEMPOTENCY_KEY_TTL_MS); the clean-up scans by age.
create index idempotency_key_created on idempotency_key (created_at);
`);
}

export async function down(): Promise<void> {
  throw new Error('007 is not reversible: authorized orders would violate the old constraint');
}
