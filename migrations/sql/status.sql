-- Generated from src/domain/status.ts by `npm run sql:generate`: edit the TypeScript tables, not
-- this file. Loaded by a migration with CREATE OR REPLACE; a change ships in a new migration that
-- loads this file again. test/unit/status-sql.test.ts keeps the two in step.

-- 0 before any work, 1 working, 2 waiting (on the buyer, the PSP or an operator), 9 terminal,
-- after a sale 10 partially refunded or disputed and 11 refunded. A status not listed counts as
-- terminal, so nothing moves it.
create or replace function status_rank(status text) returns integer language sql immutable as $$
  select case
    when status in ('requires_payment_method', 'not_started') then 0
    when status in ('processing', 'executing') then 1
    when status in ('requires_action', 'pending', 'needs_attention', 'authorized') then 2
    when status in ('succeeded', 'failed', 'partially_succeeded', 'canceled') then 9
    when status in ('partially_refunded', 'disputed') then 10
    when status in ('refunded') then 11
    else 9 end
$$;

-- Forward only, terminal stays; the ways out are a dispute (opens on a captured order or payment,
-- closes back to it or to refunded), a refund of a captured one, and an operator's retry of a
-- parked order.
create or replace function status_move_allowed(from_status text, to_status text) returns boolean language sql immutable as $$
  select case
    when to_status = 'disputed' then from_status in ('succeeded', 'partially_succeeded', 'partially_refunded', 'disputed')
    when from_status = 'disputed' then to_status in ('succeeded', 'partially_succeeded', 'partially_refunded', 'refunded')
    when from_status in ('succeeded', 'partially_succeeded', 'partially_refunded') and to_status in ('partially_refunded', 'refunded')
      then status_rank(to_status) >= status_rank(from_status)
    when status_rank(from_status) >= 9 then false
    else status_rank(to_status) >= status_rank(from_status)
      or (from_status = 'needs_attention' and to_status in ('executing', 'processing'))
  end
$$;
