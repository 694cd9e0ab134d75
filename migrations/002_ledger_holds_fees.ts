import type { Knex } from 'knex';

/**
 * The money core (issue "Ledger, wallets and money"):
 * - accounts carry their type's normal balance and separate posted and pending balances;
 * - entries carry a phase (pending | posted) so two-phase holds stay append-only;
 * - PostgreSQL itself rejects an unbalanced transaction at commit (deferred constraint trigger);
 * - a hold is resolved (posted or voided) at most once: unique pending_id;
 * - the wallet is no longer a second number kept in step: it is a view over seller-payable accounts;
 * - per-merchant commission rules; the commission and the PSP's fee are frozen on each order.
 * Postings go through one SQL function, ledger_post_batch, so a batch of postings is one round
 * trip and one commit.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table ledger_account rename column balance_minor to posted_minor;
    alter table ledger_account
      add column pending_minor bigint not null default 0,
      add column normal_balance text,
      add column merchant_id text references merchant(id),
      add column seller_id text;
    update ledger_account set normal_balance = case when type in ('asset', 'expense') then 'debit' else 'credit' end;
    update ledger_account set merchant_id = split_part(code, ':', 2), seller_id = substr(code, length(split_part(code, ':', 1)) + length(split_part(code, ':', 2)) + 3)
      where code like 'seller_payable:%';
    alter table ledger_account alter column normal_balance set not null;
    alter table ledger_account add constraint ledger_account_normal_balance check (
      normal_balance = case when type in ('asset', 'expense') then 'debit' else 'credit' end);
    create index ledger_account_merchant on ledger_account (merchant_id, seller_id, currency) where merchant_id is not null;

    alter table ledger_entry add column phase text not null default 'posted' check (phase in ('pending', 'posted'));

    alter table ledger_transaction
      add column kind text not null default 'posting' check (kind in ('posting', 'hold', 'post_pending', 'void_pending')),
      add column merchant_id text references merchant(id),
      add column pending_id bigint references ledger_transaction(id),
      add column expires_at timestamptz;
    -- Backfilling a new column is a schema change, not an edit of the record: lift the guard for it.
    alter table ledger_transaction disable trigger ledger_transaction_append_only;
    update ledger_transaction t set merchant_id = p.merchant_id from payment_event p where p.id = t.payment_id;
    alter table ledger_transaction enable trigger ledger_transaction_append_only;
    -- A hold is resolved once: posted or voided, never both, never twice.
    create unique index ledger_transaction_resolves_once on ledger_transaction (pending_id) where pending_id is not null;
    alter table ledger_transaction add constraint ledger_transaction_pending_shape check (
      (kind in ('post_pending', 'void_pending')) = (pending_id is not null) and (kind = 'hold') = (expires_at is not null));
    create index ledger_transaction_merchant_page on ledger_transaction (merchant_id, id desc);
    create index ledger_transaction_payment on ledger_transaction (payment_id);
    create index ledger_transaction_open_holds on ledger_transaction (expires_at) where kind = 'hold';

    -- Balanced per currency and phase, with at least two entries: checked at commit, so a
    -- transaction's entries can be inserted in any order but never committed unbalanced.
    create function ledger_check_balanced() returns trigger language plpgsql as $$
    declare
      broken record;
    begin
      select e.currency, e.phase, sum(e.amount_minor) as total into broken
        from ledger_entry e where e.transaction_id = new.transaction_id
        group by e.currency, e.phase having sum(e.amount_minor) <> 0 limit 1;
      if found then
        raise exception 'ledger transaction % is unbalanced: % % entries sum to %', new.transaction_id, broken.currency, broken.phase, broken.total
          using errcode = '23514';
      end if;
      if (select count(*) from ledger_entry e where e.transaction_id = new.transaction_id) < 2 then
        raise exception 'ledger transaction % has fewer than two entries', new.transaction_id using errcode = '23514';
      end if;
      return null;
    end $$;
    create constraint trigger ledger_entry_balanced after insert on ledger_entry
      deferrable initially deferred for each row execute function ledger_check_balanced();

    drop table wallet;
    create view wallet as
      select merchant_id, seller_id, currency, -posted_minor as balance_minor, -pending_minor as pending_minor
      from ledger_account where code like 'seller_payable:%';

    create table merchant_fee_rule (
      id bigserial primary key,
      merchant_id text not null references merchant(id),
      currency char(3),
      percent_bps integer not null default 0 check (percent_bps between 0 and 10000),
      fixed_minor bigint not null default 0 check (fixed_minor >= 0),
      created_at timestamptz not null default now(),
      check (fixed_minor = 0 or currency is not null)
    );
    create unique index merchant_fee_rule_one on merchant_fee_rule (merchant_id, coalesce(currency, '*'));

    alter table payment_order
      add column commission_minor bigint check (commission_minor >= 0),
      add column psp_fee_minor bigint check (psp_fee_minor >= 0);
    alter table payment_order alter column commission_bps drop not null;
    update payment_order set commission_minor =
      (amount_minor * commission_bps) / 10000 + case
        when (amount_minor * commission_bps) % 10000 * 2 > 10000 then 1
        when (amount_minor * commission_bps) % 10000 * 2 < 10000 then 0
        else ((amount_minor * commission_bps) / 10000) % 2 end;
    alter table payment_order alter column commission_minor set not null;
    alter table payment_order add constraint payment_order_commission_le_amount check (commission_minor <= amount_minor);
  `);
  await knex.raw(LEDGER_POST_BATCH);
}

/**
 * Posts a batch of postings in one statement. Input: a JSON array of
 *   { reference, description, kind, currency, merchant_id?, payment_id?, order_id?, pending_id?,
 *     expires_at?, entries: [{ account_code, account_type, merchant_id?, seller_id?, amount_minor, phase }] }
 * Output: one row per posting: (reference, transaction_id, created). A reference posted before
 * (or earlier in the same batch) is not posted again: created = false.
 * Accounts are created first, then locked in id order (no deadlocks between batches), and each
 * account's balances move once per batch by the sum of its new entries.
 */
const LEDGER_POST_BATCH = `
create function ledger_post_batch(batch jsonb) returns table (reference text, transaction_id bigint, created boolean)
language plpgsql as $$
declare
  p jsonb;
  tx_id bigint;
  created_ids bigint[] := '{}';
begin
  insert into ledger_account (code, currency, type, normal_balance, merchant_id, seller_id)
    select distinct e->>'account_code', p2->>'currency', e->>'account_type',
      case when e->>'account_type' in ('asset', 'expense') then 'debit' else 'credit' end,
      e->>'merchant_id', e->>'seller_id'
    from jsonb_array_elements(batch) p2, jsonb_array_elements(p2->'entries') e
    order by 1, 2
    on conflict (code, currency) do nothing;

  perform 1 from ledger_account a
    where (a.code, a.currency) in (
      select e->>'account_code', p2->>'currency' from jsonb_array_elements(batch) p2, jsonb_array_elements(p2->'entries') e)
    order by a.id for update;

  for p in select value from jsonb_array_elements(batch) loop
    insert into ledger_transaction as t (reference, description, kind, merchant_id, payment_id, order_id, pending_id, expires_at)
      values (p->>'reference', p->>'description', p->>'kind', p->>'merchant_id', p->>'payment_id', p->>'order_id',
              (p->>'pending_id')::bigint, (p->>'expires_at')::timestamptz)
      on conflict on constraint ledger_transaction_reference_key do nothing
      returning t.id into tx_id;
    if tx_id is null then
      reference := p->>'reference';
      transaction_id := (select t.id from ledger_transaction t where t.reference = p->>'reference');
      created := false;
      return next;
      continue;
    end if;
    insert into ledger_entry (transaction_id, account_id, amount_minor, currency, phase)
      select tx_id, a.id, (e->>'amount_minor')::bigint, p->>'currency', e->>'phase'
      from jsonb_array_elements(p->'entries') e
      join ledger_account a on a.code = e->>'account_code' and a.currency = p->>'currency';
    created_ids := created_ids || tx_id;
    reference := p->>'reference';
    transaction_id := tx_id;
    created := true;
    return next;
  end loop;

  update ledger_account a
    set posted_minor = a.posted_minor + d.posted, pending_minor = a.pending_minor + d.pending
    from (
      select e.account_id,
        coalesce(sum(e.amount_minor) filter (where e.phase = 'posted'), 0) as posted,
        coalesce(sum(e.amount_minor) filter (where e.phase = 'pending'), 0) as pending
      from ledger_entry e where e.transaction_id = any(created_ids) group by e.account_id
    ) d
    where a.id = d.account_id;
end $$;
`;

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop function if exists ledger_post_batch(jsonb);
    drop view if exists wallet;
    drop table if exists merchant_fee_rule;
    drop trigger if exists ledger_entry_balanced on ledger_entry;
    drop function if exists ledger_check_balanced();
  `);
  throw new Error('002 is not reversible past dropping its functions: restore from a backup');
}
