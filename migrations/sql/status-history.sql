-- The current definition of the triggers on payment and order statuses. Loaded by a migration with
-- CREATE OR REPLACE (triggers are dropped and re-created), so this file is what every database runs;
-- a change here ships in a new migration that loads this file again.

-- Every status change of a payment or an order is recorded in status_history, by a trigger so no
-- code path can forget it; the same trigger refuses a move status_move_allowed() refuses.
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

drop trigger if exists payment_event_status_insert on payment_event;
create trigger payment_event_status_insert after insert on payment_event
  for each row execute function record_status_change();
drop trigger if exists payment_event_status_update on payment_event;
create trigger payment_event_status_update after update of status on payment_event
  for each row when (old.status is distinct from new.status) execute function record_status_change();
drop trigger if exists payment_order_status_insert on payment_order;
create trigger payment_order_status_insert after insert on payment_order
  for each row execute function record_status_change();
drop trigger if exists payment_order_status_update on payment_order;
create trigger payment_order_status_update after update of status on payment_order
  for each row when (old.status is distinct from new.status) execute function record_status_change();

-- When an order was captured, for reconciliation (a capture the PSP never settled is found by
-- age): set here so every path that captures sets it.
create or replace function stamp_captured_at() returns trigger language plpgsql as $$
begin
  if new.status = 'succeeded' and old.status is distinct from 'succeeded' then
    new.captured_at := now();
  end if;
  return new;
end $$;
drop trigger if exists payment_order_captured_at on payment_order;
create trigger payment_order_captured_at before update of status on payment_order
  for each row execute function stamp_captured_at();
