import type { Knex } from 'knex';

/**
 * Pay-outs. A seller's payout destination is the PSP's token for their
 * bank account (we keep the token and the last four digits only). A payout reserves the seller's
 * available balance in the ledger (seller_payable → seller_payout_clearing) in the same
 * transaction that writes its row, so a balance never goes below zero through a payout; one
 * scheduled payout per seller, currency and run day (unique), whatever reruns the schedule does.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
create table seller_bank_account (
  merchant_id text not null references merchant(id),
  seller_id text not null check (length(seller_id) between 1 and 255),
  psp_token text not null check (length(psp_token) between 1 and 255),
  last4 text not null check (last4 ~ '^[0-9]{4}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (merchant_id, seller_id)
);

create table payout (
  id text primary key,
  merchant_id text not null references merchant(id),
  seller_id text not null,
  currency char(3) not null,
  amount_minor bigint not null check (amount_minor > 0),
  status text not null check (status in ('pending', 'paid', 'failed')),
  destination_token text not null,
  last4 text not null,
  psp_payout_id text,
  failure_code text,
  -- The nominal day of the scheduled run that made it; null for an on-demand payout.
  run_date date,
  workflow_id text not null unique,
  -- Set once the workflow is known to run (the relay starts any left unstarted, as for payments).
  workflow_started_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index payout_unstarted on payout (created_at) where workflow_started_at is null;
create unique index payout_per_run on payout (merchant_id, seller_id, currency, run_date) where run_date is not null;
create index payout_merchant_page on payout (merchant_id, created_at desc, id desc);
`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table payout, seller_bank_account');
}
