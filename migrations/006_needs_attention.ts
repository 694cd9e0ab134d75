import type { Knex } from 'knex';

/**
 * Dead letters: an order whose PSP retries ran out is parked as `needs_attention` (and
 * its payment with it) until an operator retries or cancels it. The status trigger learns one
 * deliberate step back: an operator's retry moves `needs_attention` to `executing` (`processing`
 * for the payment); it is recorded in status_history like every change.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
alter table payment_event drop constraint payment_event_status_check;
alter table payment_event add constraint payment_event_status_check check (status in
  ('requires_payment_method', 'processing', 'requires_action', 'pending', 'needs_attention',
   'succeeded', 'failed', 'partially_succeeded', 'canceled'));
alter table payment_order drop constraint payment_order_status_check;
alter table payment_order add constraint payment_order_status_check check (status in
  ('not_started', 'executing', 'requires_action', 'pending', 'needs_attention', 'succeeded', 'failed', 'canceled'));
create index payment_order_needs_attention on payment_order (updated_at) where status = 'needs_attention';

create or replace function status_rank(status text) returns integer language sql immutable as $$
  select case status
    when 'requires_payment_method' then 0 when 'not_started' then 0
    when 'processing' then 1 when 'executing' then 1
    when 'requires_action' then 2 when 'pending' then 2 when 'needs_attention' then 2
    else 9 end
$$;

create or replace function status_move_allowed(from_status text, to_status text) returns boolean language sql immutable as $$
  select status_rank(from_status) <> 9 and (
    status_rank(to_status) >= status_rank(from_status)
    -- an operator's retry of a parked order
    or (from_status = 'needs_attention' and to_status in ('executing', 'processing')))
$$;

create or replace function record_status_change() returns trigger language plpgsql as $$
declare
  -- One function for both tables: fields are read by name through jsonb, since plpgsql would
  -- reject new.payment_id on payment_event even in a branch that never runs there.
  p_id text := case when tg_table_name = 'payment_order' then to_jsonb(new) ->> 'payment_id' else new.id end;
  o_id text := case when tg_table_name = 'payment_order' then new.id else null end;
begin
  if tg_op = 'UPDATE' then
    if not status_move_allowed(old.status, new.status) then
      raise exception '% % status may not move from % to %', tg_table_name, new.id, old.status, new.status
        using errcode = '23514';
    end if;
    insert into status_history (payment_id, order_id, from_status, to_status) values (p_id, o_id, old.status, new.status);
  else
    insert into status_history (payment_id, order_id, from_status, to_status) values (p_id, o_id, null, new.status);
  end if;
  return null;
end $$;
`);
}

export async function down(): Promise<void> {
  throw new Error('006 is not reversible: needs_attention rows would violate the old constraints');
}
