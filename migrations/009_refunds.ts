import type { Knex } from 'knex';

/**
 * Refunds. A captured order can be refunded in parts; `refunded_minor` is
 * the amount reserved by refunds not failed, so the total never exceeds the captured amount even
 * under concurrent requests (the reservation is one guarded UPDATE). After a sale an order moves
 * forward only: succeeded → partially_refunded → refunded (ranks 10 and 11 after the terminal 9);
 * a payment follows its orders the same way.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
alter table payment_order add column refunded_minor bigint not null default 0 check (refunded_minor >= 0);
alter table payment_order add constraint payment_order_refund_le_amount check (refunded_minor <= amount_minor);
alter table payment_order drop constraint payment_order_status_check;
alter table payment_order add constraint payment_order_status_check check (status in
  ('not_started', 'executing', 'requires_action', 'pending', 'needs_attention', 'authorized', 'succeeded', 'failed', 'canceled',
   'partially_refunded', 'refunded'));
alter table payment_order drop constraint payment_order_check;
alter table payment_order add constraint payment_order_books_after_capture
  check (not (wallet_updated or ledger_updated) or status in ('succeeded', 'partially_refunded', 'refunded'));
alter table payment_event drop constraint payment_event_status_check;
alter table payment_event add constraint payment_event_status_check check (status in
  ('requires_payment_method', 'processing', 'requires_action', 'pending', 'needs_attention', 'succeeded', 'failed',
   'partially_succeeded', 'canceled', 'partially_refunded', 'refunded'));

create or replace function status_rank(status text) returns integer language sql immutable as $$
  select case status
    when 'requires_payment_method' then 0 when 'not_started' then 0
    when 'processing' then 1 when 'executing' then 1
    when 'requires_action' then 2 when 'pending' then 2 when 'needs_attention' then 2 when 'authorized' then 2
    when 'partially_refunded' then 10 when 'refunded' then 11
    else 9 end
$$;

create or replace function status_move_allowed(from_status text, to_status text) returns boolean language sql immutable as $$
  select (status_rank(from_status) < 9 and (
      status_rank(to_status) >= status_rank(from_status)
      -- an operator's retry of a parked order
      or (from_status = 'needs_attention' and to_status in ('executing', 'processing'))))
    -- after a sale: refunds move a captured order (or payment) forward, never back
    or (from_status in ('succeeded', 'partially_succeeded', 'partially_refunded')
        and to_status in ('partially_refunded', 'refunded') and status_rank(to_status) >= status_rank(from_status))
$$;

create table refund (
  id text primary key,
  merchant_id text not null references merchant(id),
  payment_id text not null references payment_event(id),
  order_id text not null references payment_order(id),
  amount_minor bigint not null check (amount_minor > 0),
  currency char(3) not null,
  reason text check (length(reason) <= 500),
  status text not null check (status in ('pending', 'succeeded', 'failed')),
  psp_refund_id text,
  failure_code text,
  failure_message text check (length(failure_message) <= 1000),
  workflow_id text not null unique,
  workflow_started_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((status = 'succeeded') = (psp_refund_id is not null))
);
create index refund_order on refund (order_id);
create index refund_merchant_page on refund (merchant_id, created_at desc, id desc);
create index refund_unstarted on refund (created_at) where workflow_started_at is null;
create unique index refund_psp on refund (psp_refund_id) where psp_refund_id is not null;
`);
}

export async function down(): Promise<void> {
  throw new Error('009 is not reversible: refunded orders would violate the old constraints');
}
