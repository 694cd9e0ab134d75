import type { Knex } from 'knex';

/**
 * The balance check without loopholes (found by the property tests) and once per write:
 * - every INSERT statement into ledger_entry leaves each ledger transaction it touched balanced
 *   per currency and phase with at least two entries (a statement trigger over the inserted rows:
 *   one check per posting, not per entry; not deferrable, so SET CONSTRAINTS cannot postpone it
 *   past a later, unbalancing insert). A transaction's entries are therefore written in one
 *   statement, as ledger_post_batch does;
 * - a ledger transaction with no entries at all fails at commit (a deferred trigger on
 *   ledger_transaction);
 * - no per-transaction settings (003's marker grew PostgreSQL's settings list on long-lived
 *   connections and slowed every commit) and no reliance on entry ids.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
create function ledger_assert_balanced(tx_id bigint) returns void language plpgsql as $$
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

drop trigger ledger_entry_balanced on ledger_entry;
drop function ledger_check_balanced();

create function ledger_entries_check() returns trigger language plpgsql as $$
declare
  tx_id bigint;
begin
  for tx_id in select distinct n.transaction_id from new_entries n loop
    perform ledger_assert_balanced(tx_id);
  end loop;
  return null;
end $$;
create trigger ledger_entry_balanced after insert on ledger_entry
  referencing new table as new_entries for each statement execute function ledger_entries_check();

create function ledger_transaction_check() returns trigger language plpgsql as $$
begin
  perform ledger_assert_balanced(new.id);
  return null;
end $$;
create constraint trigger ledger_transaction_balanced after insert on ledger_transaction
  deferrable initially deferred for each row execute function ledger_transaction_check();
  `);
}

export async function down(): Promise<void> {
  throw new Error('004 replaces the balance triggers: restore from a backup');
}
