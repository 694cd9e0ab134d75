import type { Knex } from 'knex';

/**
 * Posting cost no longer grows with the number of accounts (measured by bench:ledger):
 * - ledger_post_batch resolves account ids once per batch, while locking them, into a map, instead
 *   of joining ledger_account for every posting (that join was a sequential scan per posting);
 * - the balance check runs once per transaction at commit (it is a row trigger, so it used to run
 *   once per entry) and in one query instead of two. (Replaced by 004: the marker used here
 *   leaked settings on long-lived connections, and explicit entry ids or an early
 *   SET CONSTRAINTS could sidestep it.)
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
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

create or replace function ledger_check_balanced() returns trigger language plpgsql as $$
declare
  marker text := 'ledger.checked_' || new.transaction_id;
  entries integer := 0;
  last_id bigint := 0;
  bucket record;
begin
  -- A row trigger fires once per entry; one check of a transaction covers every entry it saw.
  -- The marker holds the highest entry id checked, so entries added later (e.g. under
  -- SET CONSTRAINTS ... IMMEDIATE, statement by statement) are still checked.
  if new.id <= coalesce(nullif(current_setting(marker, true), '')::bigint, 0) then
    return null;
  end if;
  for bucket in
    select e.currency, e.phase, sum(e.amount_minor) as total, count(*) as n, max(e.id) as max_id
    from ledger_entry e where e.transaction_id = new.transaction_id group by e.currency, e.phase
  loop
    if bucket.total <> 0 then
      raise exception 'ledger transaction % is unbalanced: % % entries sum to %', new.transaction_id, bucket.currency, bucket.phase, bucket.total
        using errcode = '23514';
    end if;
    entries := entries + bucket.n;
    last_id := greatest(last_id, bucket.max_id);
  end loop;
  if entries < 2 then
    raise exception 'ledger transaction % has fewer than two entries', new.transaction_id using errcode = '23514';
  end if;
  perform set_config(marker, last_id::text, true);
  return null;
end $$;
  `);
}

export async function down(): Promise<void> {
  throw new Error('003 replaces function bodies only: restore the 002 versions from a backup');
}
