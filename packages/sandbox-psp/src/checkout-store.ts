import { randomBytes } from 'node:crypto';
import type { Knex } from './db';
import { registerSchema } from './store';

/**
 * Hosted checkout sessions and the payment-method tokens they produce. A token row holds brand,
 * last4 and the outcome token name: never the card number, the CVC or the expiry.
 */

const ID_BYTES = 12;

export type SessionStatus = 'open' | 'complete';

export interface NewSession {
  idempotency_key: string;
  request_hash: string;
  client_reference: string;
  return_url: string;
  webhook_url: string | null;
}

export interface SessionRow extends NewSession {
  id: string;
  status: SessionStatus;
  payment_method_id: string | null;
  created_at: Date;
}

export interface PaymentMethodRow {
  id: string;
  checkout_session_id: string;
  brand: string;
  last4: string;
  outcome_token: string;
  created_at: Date;
}

registerSchema(`
  create table if not exists sandbox_checkout_session (
    id text primary key,
    idempotency_key text not null,
    request_hash text not null,
    client_reference text not null,
    return_url text not null,
    webhook_url text null,
    status text not null check (status in ('open', 'complete')),
    payment_method_id text null,
    created_at timestamptz not null default now()
  );
  create index if not exists sandbox_checkout_session_idem_idx on sandbox_checkout_session (idempotency_key);
  create table if not exists sandbox_payment_method (
    id text primary key,
    checkout_session_id text not null references sandbox_checkout_session (id),
    brand text not null,
    last4 char(4) not null check (last4 ~ '^[0-9]{4}$'),
    outcome_token text not null,
    created_at timestamptz not null default now()
  );
`);

function newId(prefix: string): string {
  return `${prefix}_${randomBytes(ID_BYTES).toString('hex')}`;
}

/** Same locking as charges: one advisory lock per key makes check-then-insert race free. */
export async function findOrInsertSession(
  db: Knex,
  session: NewSession,
): Promise<{ session: SessionRow; replayed: boolean }> {
  return await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`cs:${session.idempotency_key}`]);
    const existing = (await trx('sandbox_checkout_session')
      .where({ idempotency_key: session.idempotency_key })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .first()) as SessionRow | undefined;
    if (existing !== undefined) return { session: existing, replayed: true };
    const row = { ...session, id: newId('cs'), status: 'open' };
    const [inserted] = (await trx('sandbox_checkout_session').insert(row).returning('*')) as SessionRow[];
    if (inserted === undefined) throw new Error('insert returned no row');
    return { session: inserted, replayed: false };
  });
}

export async function getSession(db: Knex, id: string): Promise<SessionRow | null> {
  const row = (await db('sandbox_checkout_session').where({ id }).first()) as SessionRow | undefined;
  return row ?? null;
}

/** Locks the session row for the rest of the transaction, so two submits make one token. */
export async function lockSession(trx: Knex.Transaction, id: string): Promise<SessionRow | null> {
  const row = (await trx('sandbox_checkout_session').where({ id }).forUpdate().first()) as SessionRow | undefined;
  return row ?? null;
}

export async function completeSession(
  trx: Knex.Transaction,
  session_id: string,
  card: { brand: string; last4: string; outcome_token: string },
): Promise<PaymentMethodRow> {
  const [pm] = (await trx('sandbox_payment_method')
    .insert({ id: newId('pm'), checkout_session_id: session_id, ...card })
    .returning('*')) as PaymentMethodRow[];
  if (pm === undefined) throw new Error('insert returned no row');
  const updated = await trx('sandbox_checkout_session')
    .where({ id: session_id, status: 'open' })
    .update({ status: 'complete', payment_method_id: pm.id });
  if (updated !== 1) throw new Error(`assertion: session ${session_id} was not open`);
  return pm;
}

export async function getPaymentMethod(db: Knex, id: string): Promise<PaymentMethodRow | null> {
  const row = (await db('sandbox_payment_method').where({ id }).first()) as PaymentMethodRow | undefined;
  return row ?? null;
}
