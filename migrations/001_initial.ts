import type { Knex } from 'knex';

/**
 * The pay-in schema of the primer §5. Money is bigint minor units plus char(3) currency.
 * Statuses are lowercase snake_case and guarded by check constraints so a bad write fails loudly.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table merchant (
      id text primary key,
      name text not null check (length(name) between 1 and 200),
      created_at timestamptz not null default now()
    );

    create table api_key (
      id text primary key,
      merchant_id text not null references merchant(id),
      key_hash text not null unique,
      key_prefix text not null,
      created_at timestamptz not null default now(),
      revoked_at timestamptz
    );

    create table payment_event (
      id text primary key,
      merchant_id text not null references merchant(id),
      buyer_id text not null,
      buyer_email text,
      currency char(3) not null,
      amount_minor bigint not null check (amount_minor > 0),
      status text not null check (status in ('processing', 'succeeded', 'failed', 'partially_succeeded')),
      payment_method text,
      metadata jsonb not null default '{}'::jsonb,
      failure_code text,
      failure_message text,
      workflow_id text not null unique,
      workflow_started_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index payment_event_merchant_page on payment_event (merchant_id, created_at desc, id desc);
    -- The relay scans for payments whose workflow start is not yet confirmed.
    create index payment_event_unstarted on payment_event (created_at) where workflow_started_at is null;

    create table payment_order (
      id text primary key,
      payment_id text not null references payment_event(id),
      merchant_id text not null references merchant(id),
      seller_id text not null,
      amount_minor bigint not null check (amount_minor > 0),
      currency char(3) not null,
      status text not null check (status in ('not_started', 'executing', 'succeeded', 'failed')),
      psp_reference text,
      failure_code text,
      failure_message text,
      charge_attempts integer not null default 0 check (charge_attempts >= 0),
      -- Frozen at creation so the wallet and ledger steps agree even if the config changes.
      commission_bps integer not null check (commission_bps between 0 and 10000),
      wallet_updated boolean not null default false,
      ledger_updated boolean not null default false,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (payment_id, seller_id),
      -- Money moves in our books only after the PSP captured it.
      check (not (wallet_updated or ledger_updated) or status = 'succeeded')
    );
    create index payment_order_payment on payment_order (payment_id);

    create table idempotency_key (
      merchant_id text not null references merchant(id),
      key text not null check (length(key) between 1 and 255),
      request_hash text not null,
      status text not null check (status in ('in_flight', 'completed')),
      locked_until timestamptz,
      response_status integer,
      response_body jsonb,
      payment_id text references payment_event(id),
      created_at timestamptz not null default now(),
      primary key (merchant_id, key)
    );

    create table wallet (
      merchant_id text not null references merchant(id),
      seller_id text not null,
      currency char(3) not null,
      balance_minor bigint not null default 0,
      updated_at timestamptz not null default now(),
      primary key (merchant_id, seller_id, currency)
    );

    create table ledger_account (
      id bigserial primary key,
      code text not null,
      currency char(3) not null,
      type text not null check (type in ('asset', 'liability', 'revenue', 'expense')),
      -- Signed, debit-positive: sum of this account's entries.
      balance_minor bigint not null default 0,
      unique (code, currency)
    );

    create table ledger_transaction (
      id bigserial primary key,
      reference text not null unique,
      description text not null,
      payment_id text references payment_event(id),
      order_id text references payment_order(id),
      created_at timestamptz not null default now()
    );

    create table ledger_entry (
      id bigserial primary key,
      transaction_id bigint not null references ledger_transaction(id),
      account_id bigint not null references ledger_account(id),
      -- Debit positive, credit negative; a transaction's entries sum to zero per currency.
      amount_minor bigint not null check (amount_minor <> 0),
      currency char(3) not null,
      created_at timestamptz not null default now()
    );
    create index ledger_entry_transaction on ledger_entry (transaction_id);
    create index ledger_entry_account on ledger_entry (account_id);

    -- The ledger is append-only: corrections are new transactions, never edits.
    create function ledger_forbid_change() returns trigger language plpgsql as $$
    begin
      raise exception 'ledger rows are append-only (% on %)', tg_op, tg_table_name;
    end $$;
    create trigger ledger_entry_append_only before update or delete on ledger_entry
      for each row execute function ledger_forbid_change();
    create trigger ledger_transaction_append_only before update or delete on ledger_transaction
      for each row execute function ledger_forbid_change();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists ledger_entry, ledger_transaction, ledger_account, wallet, idempotency_key,
      payment_order, payment_event, api_key, merchant cascade;
    drop function if exists ledger_forbid_change();
  `);
}
