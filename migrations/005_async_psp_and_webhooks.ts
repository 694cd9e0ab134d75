import type { Knex } from 'knex';

/**
 * Hosted checkout, delayed PSP results and webhooks:
 * - statuses grow: requires_payment_method, requires_action, pending, canceled;
 * - the payment keeps its checkout session and return URL; an order keeps the PSP charge's
 *   version (to apply only newer news) and the 3-D Secure URL the buyer must visit;
 * - `psp_event` is the webhook inbox: one row per PSP event id, with where it was routed and
 *   when it was applied (null = still to apply; the sweeper retries those);
 * - `status_history` records every status change of payments and orders, written by a trigger
 *   (so no code path can forget it), and the same trigger refuses a move backwards.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
alter table payment_event drop constraint payment_event_status_check;
alter table payment_event add constraint payment_event_status_check check (status in
  ('requires_payment_method', 'processing', 'requires_action', 'pending', 'succeeded', 'failed', 'partially_succeeded', 'canceled'));
alter table payment_event add column return_url text check (length(return_url) <= 2048);
alter table payment_event add column checkout_session_id text unique;
alter table payment_event add column checkout_url text check (length(checkout_url) <= 2048);

alter table payment_order drop constraint payment_order_status_check;
alter table payment_order add constraint payment_order_status_check check (status in
  ('not_started', 'executing', 'requires_action', 'pending', 'succeeded', 'failed', 'canceled'));
alter table payment_order add column psp_version integer check (psp_version >= 0);
alter table payment_order add column next_action_url text check (length(next_action_url) <= 2048);

create table psp_event (
  id text primary key check (length(id) between 1 and 255),
  type text not null check (length(type) between 1 and 100),
  object_id text not null check (length(object_id) between 1 and 255),
  object_version integer,
  -- order | payment: to signal that workflow; unknown: no such object here (kept for operators);
  -- ignored: nothing to do (already terminal, or a type we do not act on).
  route text not null check (route in ('order', 'payment', 'unknown', 'ignored')),
  payment_id text references payment_event(id),
  order_id text references payment_order(id),
  note text,
  payload jsonb not null,
  received_at timestamptz not null default now(),
  deliveries integer not null default 1 check (deliveries >= 1),
  applied_at timestamptz,
  apply_attempts integer not null default 0 check (apply_attempts >= 0),
  check ((route in ('order', 'payment')) = (payment_id is not null))
);
create index psp_event_unapplied on psp_event (received_at) where applied_at is null and route in ('order', 'payment');
create index psp_event_order on psp_event (order_id);
create index psp_event_unknown on psp_event (received_at) where route = 'unknown';

create table status_history (
  id bigserial primary key,
  payment_id text not null,
  order_id text,
  from_status text,
  to_status text not null,
  changed_at timestamptz not null default clock_timestamp()
);
create index status_history_payment on status_history (payment_id, id);

-- 0 before any work, 1 working, 2 waiting on the buyer or the PSP, 9 terminal.
create function status_rank(status text) returns integer language sql immutable as $$
  select case status
    when 'requires_payment_method' then 0 when 'not_started' then 0
    when 'processing' then 1 when 'executing' then 1
    when 'requires_action' then 2 when 'pending' then 2
    else 9 end
$$;

create function record_status_change() returns trigger language plpgsql as $$
declare
  -- One function for both tables: fields are read by name through jsonb, since plpgsql would
  -- reject new.payment_id on payment_event even in a branch that never runs there.
  p_id text := case when tg_table_name = 'payment_order' then to_jsonb(new) ->> 'payment_id' else new.id end;
  o_id text := case when tg_table_name = 'payment_order' then new.id else null end;
begin
  if tg_op = 'UPDATE' then
    if status_rank(old.status) = 9 or status_rank(new.status) < status_rank(old.status) then
      raise exception '% % status may not move from % to %', tg_table_name, new.id, old.status, new.status
        using errcode = '23514';
    end if;
    insert into status_history (payment_id, order_id, from_status, to_status) values (p_id, o_id, old.status, new.status);
  else
    insert into status_history (payment_id, order_id, from_status, to_status) values (p_id, o_id, null, new.status);
  end if;
  return null;
end $$;

create trigger payment_event_status_insert after insert on payment_event
  for each row execute function record_status_change();
create trigger payment_event_status_update after update of status on payment_event
  for each row when (old.status is distinct from new.status) execute function record_status_change();
create trigger payment_order_status_insert after insert on payment_order
  for each row execute function record_status_change();
create trigger payment_order_status_update after update of status on payment_order
  for each row when (old.status is distinct from new.status) execute function record_status_change();
`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
drop trigger payment_order_status_update on payment_order;
drop trigger payment_order_status_insert on payment_order;
drop trigger payment_event_status_update on payment_event;
drop trigger payment_event_status_insert on payment_event;
drop function record_status_change();
drop function status_rank(text);
drop table status_history;
drop table psp_event;
alter table payment_order drop column next_action_url, drop column psp_version;
alter table payment_event drop column checkout_url, drop column checkout_session_id, drop column return_url;
`);
}
