-- The current definition of the ledger's SQL functions and triggers. Loaded by a migration with
-- CREATE OR REPLACE (triggers are dropped and re-created), so this file is what every database runs;
-- a change here ships in a new migration that loads this file again.

-- The ledger is append-only: corrections are new transactions, never edits.
create or replace function ledger_forbid_change() returns trigger language plpgsql as $$
begin
  raise exception 'ledger rows are append-only (% on %)', tg_op, tg_table_name;
end $$;
drop trigger if exists ledger_entry_append_only on ledger_entry;
create trigger ledger_entry_append_only before update or delete on ledger_entry
  for each row execute function ledger_forbid_change();
drop trigger if exists ledger_transaction_append_only on ledger_transaction;
create trigger ledger_transaction_append_only before update or delete on ledger_transaction
  for each row execute function ledger_forbid_change();

-- Every posting goes through here: a batch is one round trip. Account ids are resolved once per
-- batch, while locking the accounts in id order (no deadlocks between batches); a reference
-- already posted returns its transaction with created = false.
create or replace function ledger_post_batch(batch jsonb) returns table (reference text, transaction_id bigint, created boolean)
language plpgsql as $$
declare
  p jsonb;
  tx_id bigint;
  created_ids bigint[] := '{}';
  account_ids jsonb;
begin
  insert into ledger_account (code, currency, type, normal_balance, merchant_id, seller_id)
    select distinct e->>'account_code', p2->>'currency', e->>'account_type',
      case when e->>'account_type' in ('asset', 'expense') then 'debit' else 'credit' end,
      e->>'merchant_id', e->>'seller_id'
    from jsonb_array_elements(batch) p2, jsonb_array_elements(p2->'entries') e
    order by 1, 2
    on conflict (code, currency) do nothing;

  -- Lock every account of the batch in id order (no deadlocks between batches) and keep their ids.
  select jsonb_object_agg(l.code || '|' || l.currency, l.id) into account_ids from (
    select a.id, a.code, a.currency from ledger_account a
    where (a.code, a.currency) in (
      select e->>'account_code', (p2->>'currency')::char(3)
      from jsonb_array_elements(batch) p2, jsonb_array_elements(p2->'entries') e)
    order by a.id for update) l;

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
      select tx_id, (account_ids->>(e->>'account_code' || '|' || (p->>'currency')))::bigint,
             (e->>'amount_minor')::bigint, p->>'currency', e->>'phase'
      from jsonb_array_elements(p->'entries') e;
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

-- Balanced per currency and phase, with at least two entries.
create or replace function ledger_assert_balanced(tx_id bigint) returns void language plpgsql as $$
declare
  entries integer := 0;
  bucket record;
begin
  for bucket in
    select e.currency, e.phase, sum(e.amount_minor) as total, count(*) as n
    from ledger_entry e where e.transaction_id = tx_id group by e.currency, e.phase
  loop
    if bucket.total <> 0 then
      raise exception 'ledger transaction % is unbalanced: % % entries sum to %', tx_id, bucket.currency, bucket.phase, bucket.total
        using errcode = '23514';
    end if;
    entries := entries + bucket.n;
  end loop;
  if entries < 2 then
    raise exception 'ledger transaction % has fewer than two entries', tx_id using errcode = '23514';
  end if;
end $$;

-- Every INSERT statement into ledger_entry leaves each ledger transaction it touched balanced (a
-- statement trigger over the inserted rows, not deferrable, so SET CONSTRAINTS cannot postpone it
-- past a later, unbalancing insert): a transaction's entries are written in one statement.
create or replace function ledger_entries_check() returns trigger language plpgsql as $$
declare
  tx_id bigint;
begin
  for tx_id in select distinct n.transaction_id from new_entries n loop
    perform ledger_assert_balanced(tx_id);
  end loop;
  return null;
end $$;
drop trigger if exists ledger_entry_balanced on ledger_entry;
create trigger ledger_entry_balanced after insert on ledger_entry
  referencing new table as new_entries for each statement execute function ledger_entries_check();

-- A ledger transaction with no entries at all fails at commit.
create or replace function ledger_transaction_check() returns trigger language plpgsql as $$
begin
  perform ledger_assert_balanced(new.id);
  return null;
end $$;
drop trigger if exists ledger_transaction_balanced on ledger_transaction;
create constraint trigger ledger_transaction_balanced after insert on ledger_transaction
  deferrable initially deferred for each row execute function ledger_transaction_check();
