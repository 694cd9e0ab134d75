import type { Knex } from 'knex';

/**
 * Nightly reconciliation. The PSP's settlement file for a UTC day is loaded into
 * `settlement_line` (one row per line, classified against our orders as it is loaded), the
 * differences go to the finance queue `recon_item`, and each run is a `recon_run` row.
 *
 * `payment_order.captured_at` is when we learned the money was taken (the order became
 * `succeeded`): it decides which of our captures belong to a settlement day, so a capture the PSP
 * never settled is found (`missing_at_psp`). A trigger sets it, so every path that captures
 * (charge, authorization capture, webhook, poll, operator) stamps it the same way.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
alter table payment_order add column captured_at timestamptz;
update payment_order set captured_at = updated_at where status = 'succeeded';
create index payment_order_captured on payment_order (captured_at) where captured_at is not null;

create function stamp_captured_at() returns trigger language plpgsql as $$
begin
  if new.status = 'succeeded' and old.status is distinct from 'succeeded' then
    new.captured_at := now();
  end if;
  return new;
end $$;
create trigger payment_order_captured_at before update of status on payment_order
  for each row execute function stamp_captured_at();

create table recon_run (
  id text primary key,
  settlement_date date not null,
  workflow_id text not null,
  status text not null check (status in ('running', 'succeeded', 'failed')),
  lines_read bigint not null default 0 check (lines_read >= 0),
  -- The PSP's count of the day's movements when it sends one: for a progress bar only.
  lines_expected bigint check (lines_expected >= 0),
  totals jsonb,
  error_line bigint,
  error_reason text check (length(error_reason) <= 1000),
  started_at timestamptz not null default now(),
  finished_at timestamptz
);
create index recon_run_page on recon_run (started_at desc, id desc);
create index recon_run_date on recon_run (settlement_date, started_at desc);

create table settlement_line (
  settlement_date date not null,
  line_no bigint not null check (line_no >= 2),
  psp_id text not null,
  idempotency_key text not null,
  order_reference text not null,
  type text not null,
  amount_minor bigint not null,
  currency char(3) not null,
  fee_minor bigint not null,
  net_minor bigint not null check (net_minor = amount_minor - fee_minor),
  created_at timestamptz not null,
  settled_at timestamptz not null,
  -- What matching found for this line: 'matched' or a difference class.
  result text not null check (result in ('matched', 'missing_internally', 'amount_mismatch',
    'currency_mismatch', 'status_mismatch', 'duplicate', 'timing', 'unclassified')),
  order_id text,
  primary key (settlement_date, line_no)
);
create index settlement_line_key on settlement_line (idempotency_key);

create table recon_item (
  id bigserial primary key,
  -- The money movement the item is about: a second run over the same file finds the same subject.
  subject text not null unique,
  settlement_date date not null,
  class text not null check (class in ('missing_internally', 'missing_at_psp', 'amount_mismatch',
    'currency_mismatch', 'status_mismatch', 'duplicate', 'timing', 'unclassified')),
  status text not null check (status in ('open', 'resolved', 'written_off')),
  auto_fixable boolean not null default false,
  auto_fixed boolean not null default false,
  line_no bigint,
  line_type text,
  psp_id text,
  idempotency_key text,
  order_id text,
  payment_id text,
  workflow_id text,
  field text,
  our_value text,
  psp_value text,
  currency char(3),
  amount_minor bigint,
  note text check (length(note) <= 2000),
  run_id text not null references recon_run(id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  resolved_at timestamptz,
  check ((status = 'open') = (resolved_at is null))
);
-- What the settlement files of a day moved to our bank, as posted to the ledger: a rerun posts
-- only the difference to what is already posted (nothing, for the same file).
create table settlement_posting (
  settlement_date date not null,
  currency char(3) not null,
  seq integer not null check (seq >= 1),
  net_minor bigint not null check (net_minor <> 0),
  ledger_reference text not null unique,
  run_id text not null references recon_run(id),
  created_at timestamptz not null default now(),
  primary key (settlement_date, currency, seq)
);

create index recon_item_date on recon_item (settlement_date, class);
create index recon_item_queue on recon_item (status, id);
`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
drop table recon_item, settlement_posting, settlement_line, recon_run;
drop trigger payment_order_captured_at on payment_order;
drop function stamp_captured_at();
drop index payment_order_captured;
alter table payment_order drop column captured_at;
`);
}
