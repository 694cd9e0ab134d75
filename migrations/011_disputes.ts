import type { Knex } from 'knex';

/**
 * Disputes. A dispute opened by the buyer's bank holds the disputed amount
 * (ledger: the PSP took it back; the seller's share is held) and marks the order and payment
 * `disputed`; won, the order goes back to where it was; lost, it ends `refunded` (the money went
 * back to the buyer). PSP dispute webhooks are routed to the dispute's workflow (route `dispute`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
alter table payment_order drop constraint payment_order_status_check;
alter table payment_order add constraint payment_order_status_check check (status in
  ('not_started', 'executing', 'requires_action', 'pending', 'needs_attention', 'authorized', 'succeeded', 'failed', 'canceled',
   'partially_refunded', 'refunded', 'disputed'));
alter table payment_order drop constraint payment_order_books_after_capture;
alter table payment_order add constraint payment_order_books_after_capture
  check (not (wallet_updated or ledger_updated) or status in ('succeeded', 'partially_refunded', 'refunded', 'disputed'));
alter table payment_event drop constraint payment_event_status_check;
alter table payment_event add constraint payment_event_status_check check (status in
  ('requires_payment_method', 'processing', 'requires_action', 'pending', 'needs_attention', 'succeeded', 'failed',
   'partially_succeeded', 'canceled', 'partially_refunded', 'refunded', 'disputed'));

create or replace function status_rank(status text) returns integer language sql immutable as $$
  select case status
    when 'requires_payment_method' then 0 when 'not_started' then 0
    when 'processing' then 1 when 'executing' then 1
    when 'requires_action' then 2 when 'pending' then 2 when 'needs_attention' then 2 when 'authorized' then 2
    when 'partially_refunded' then 10 when 'disputed' then 10 when 'refunded' then 11
    else 9 end
$$;

create or replace function status_move_allowed(from_status text, to_status text) returns boolean language sql immutable as $$
  select (status_rank(from_status) < 9 and (
      status_rank(to_status) >= status_rank(from_status)
      or (from_status = 'needs_attention' and to_status in ('executing', 'processing'))))
    or (from_status in ('succeeded', 'partially_succeeded', 'partially_refunded')
        and to_status in ('partially_refunded', 'refunded') and status_rank(to_status) >= status_rank(from_status))
    -- a dispute opens on a captured order (or payment) and closes back to it, or to refunded (lost)
    or (from_status in ('succeeded', 'partially_succeeded', 'partially_refunded', 'disputed') and to_status = 'disputed')
    or (from_status = 'disputed' and to_status in ('succeeded', 'partially_succeeded', 'partially_refunded', 'refunded'))
$$;

alter table psp_event drop constraint psp_event_route_check;
alter table psp_event add constraint psp_event_route_check check (route in ('order', 'payment', 'dispute', 'unknown', 'ignored'));
alter table psp_event drop constraint psp_event_check;
alter table psp_event add constraint psp_event_check check ((route in ('order', 'payment', 'dispute')) = (payment_id is not null));
drop index psp_event_unapplied;
create index psp_event_unapplied on psp_event (received_at) where applied_at is null and route in ('order', 'payment', 'dispute');

create table dispute (
  id text primary key,
  merchant_id text not null references merchant(id),
  payment_id text not null references payment_event(id),
  order_id text not null references payment_order(id),
  amount_minor bigint not null check (amount_minor > 0),
  currency char(3) not null,
  reason text not null,
  status text not null check (status in ('needs_response', 'under_review', 'won', 'lost')),
  evidence_due_by timestamptz not null,
  evidence_submitted_at timestamptz,
  order_status_before text not null,
  workflow_id text not null unique,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index dispute_merchant_page on dispute (merchant_id, created_at desc, id desc);
-- Dispute webhooks name the charge: find its order.
create index payment_order_psp_reference on payment_order (psp_reference) where psp_reference is not null;
`);
}

export async function down(): Promise<void> {
  throw new Error('011 is not reversible: disputed rows would violate the old constraints');
}
