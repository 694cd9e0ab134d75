import { randomBytes } from 'node:crypto';
import type { Knex } from './db';

/**
 * The sandbox PSP's durable store: its own PostgreSQL database, so charges survive a restart of
 * the process exactly as they would at a real PSP. Amounts are bigint here and digit strings in
 * the database driver (pg returns int8 as text); nothing in between is a JS number.
 */

export const CHARGE_LIST_LIMIT = 100;
const CHARGE_ID_BYTES = 12;
// Two-key advisory lock namespace for schema creation, distinct from the one-key locks taken
// per idempotency key, so the two can never block each other.
const SCHEMA_LOCK_NAMESPACE = 0x5350; // "SP"
const SCHEMA_LOCK_ID = 1;

/**
 * `requires_action`: waiting for the buyer's 3-D Secure click, which decides it.
 * `authorized`: created with capture false, money held until capture (→ succeeded) or void
 * (→ canceled). `refunded`: a succeeded charge given back in full.
 */
export type ChargeStatus =
  | 'pending'
  | 'requires_action'
  | 'authorized'
  | 'succeeded'
  | 'failed'
  | 'canceled'
  | 'refunded';
/** What a charge under review turns into once its decide_at passes. */
export type ReviewDecision = 'approve' | 'decline';
export const DECIDE_BATCH_MAX = 50;

export interface NewCharge {
  idempotency_key: string;
  request_hash: string;
  order_reference: string;
  amount_minor: bigint;
  currency: string;
  payment_method: string;
  status: ChargeStatus;
  failure_code: string | null;
  failure_message: string | null;
  fee_minor: bigint;
  review_decision: ReviewDecision | null;
  decide_at: Date | null;
}

export interface StoredCharge extends NewCharge {
  id: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

interface ChargeRow extends Omit<StoredCharge, 'amount_minor' | 'fee_minor'> {
  amount_minor: string;
  fee_minor: string;
}

export type ChargeFilter = { idempotency_key: string } | { order_reference: string };

export interface ChargeCounts {
  charges_total: number;
  charges_succeeded: number;
}

const SCHEMA_SQL = `
  create table if not exists sandbox_charge (
    id text primary key,
    idempotency_key text not null,
    request_hash text not null,
    order_reference text not null,
    amount_minor bigint not null check (amount_minor > 0),
    currency char(3) not null,
    payment_method text not null,
    status text not null,
    failure_code text null,
    failure_message text null,
    fee_minor bigint not null check (fee_minor >= 0 and fee_minor <= amount_minor),
    version int not null default 1,
    created_at timestamptz not null default now()
  );
  -- Not unique: in ignore-idempotency mode duplicates must be storable, that is the point.
  create index if not exists sandbox_charge_idempotency_key_idx on sandbox_charge (idempotency_key);
  create index if not exists sandbox_charge_order_reference_idx on sandbox_charge (order_reference);
  -- Added with review outcomes; written to upgrade a database created before them.
  alter table sandbox_charge add column if not exists review_decision text null
    check (review_decision in ('approve', 'decline'));
  alter table sandbox_charge add column if not exists decide_at timestamptz null;
  alter table sandbox_charge add column if not exists updated_at timestamptz not null default now();
  alter table sandbox_charge drop constraint if exists sandbox_charge_status_check;
  alter table sandbox_charge add constraint sandbox_charge_status_check
    check (status in ('pending', 'requires_action', 'authorized', 'succeeded', 'failed', 'canceled', 'refunded'));
  create index if not exists sandbox_charge_decide_at_idx on sandbox_charge (decide_at) where status = 'pending';
  -- One row per Idempotency-Key used on capture, void or refund: the request it was used for and
  -- the charge as answered, so a retry with the key gets the same answer.
  create table if not exists sandbox_charge_action (
    idempotency_key text primary key,
    request_hash text not null,
    charge_id text not null references sandbox_charge (id),
    action text not null check (action in ('capture', 'void', 'refund')),
    charge_snapshot jsonb not null,
    created_at timestamptz not null default clock_timestamp()
  );
`;

/** Extra schemas (checkout, events) register here so one locked transaction creates them all. */
const EXTRA_SCHEMA_SQL: string[] = [];

export function registerSchema(sql: string): void {
  EXTRA_SCHEMA_SQL.push(sql);
}

/**
 * Idempotent. Several sandbox processes may share one database and start together; concurrent
 * `create table if not exists` can still collide in the catalog, so creation is serialised.
 */
export async function createSchema(db: Knex): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?, ?)', [SCHEMA_LOCK_NAMESPACE, SCHEMA_LOCK_ID]);
    await trx.raw(SCHEMA_SQL);
    for (const sql of EXTRA_SCHEMA_SQL) await trx.raw(sql);
  });
}

function newChargeId(): string {
  return `ch_${randomBytes(CHARGE_ID_BYTES).toString('hex')}`;
}

function fromRow(row: ChargeRow): StoredCharge {
  return { ...row, amount_minor: BigInt(row.amount_minor), fee_minor: BigInt(row.fee_minor) };
}

async function insertWith(db: Knex, charge: NewCharge): Promise<StoredCharge> {
  if (charge.amount_minor <= 0n) throw new Error('assertion: charge amount must be positive');
  if (charge.fee_minor < 0n || charge.fee_minor > charge.amount_minor) {
    throw new Error('assertion: fee must lie between zero and the amount');
  }
  const row = {
    ...charge,
    id: newChargeId(),
    amount_minor: charge.amount_minor.toString(),
    fee_minor: charge.fee_minor.toString(),
  };
  const [inserted] = await db<ChargeRow>('sandbox_charge').insert(row).returning('*');
  if (inserted === undefined) throw new Error('insert returned no row');
  return fromRow(inserted as ChargeRow);
}

/** Runs in the transaction that stores or changes a charge (to record its webhook event). */
export type OnChargeStored = (trx: Knex.Transaction, charge: StoredCharge) => Promise<void>;

/** Always inserts: the ignore-idempotency mode, where each request is a new charge. */
export async function insertCharge(db: Knex, charge: NewCharge, on_inserted: OnChargeStored): Promise<StoredCharge> {
  return await db.transaction(async (trx) => {
    const inserted = await insertWith(trx, charge);
    await on_inserted(trx, inserted);
    return inserted;
  });
}

export type FindOrInsertResult =
  | { kind: 'inserted' | 'replayed'; charge: StoredCharge }
  /** The key was already used on a capture, void or refund: a different request. */
  | { kind: 'key_reused' };

/**
 * Normal mode. The advisory lock serialises every request carrying the same key (across
 * processes too, and with capture/void/refund using it), so the check-then-insert cannot race;
 * a request that waited sees the charge the first one committed. The oldest charge wins should
 * ignore mode have stored several. `on_inserted` runs only for a new charge: a replay reports
 * nothing new.
 */
export async function findOrInsertCharge(
  db: Knex,
  charge: NewCharge,
  on_inserted: OnChargeStored,
): Promise<FindOrInsertResult> {
  return await db.transaction(async (trx): Promise<FindOrInsertResult> => {
    await lockIdempotencyKey(trx, charge.idempotency_key);
    const existing = await trx<ChargeRow>('sandbox_charge')
      .where({ idempotency_key: charge.idempotency_key })
      .orderBy([{ column: 'created_at' }, { column: 'id' }])
      .first();
    if (existing !== undefined) return { kind: 'replayed', charge: fromRow(existing as ChargeRow) };
    if ((await findActionRecord(trx, charge.idempotency_key)) !== null) return { kind: 'key_reused' };
    const inserted = await insertWith(trx, charge);
    await on_inserted(trx, inserted);
    return { kind: 'inserted', charge: inserted };
  });
}

/** One key, one lock: charge creation and capture/void/refund share the key space, as at Stripe. */
async function lockIdempotencyKey(trx: Knex.Transaction, idempotency_key: string): Promise<void> {
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [idempotency_key]);
}

export async function getCharge(db: Knex, id: string): Promise<StoredCharge | null> {
  const row = await db<ChargeRow>('sandbox_charge').where({ id }).first();
  return row === undefined ? null : fromRow(row as ChargeRow);
}

/** Oldest first, bounded by CHARGE_LIST_LIMIT. */
export async function listCharges(db: Knex, filter: ChargeFilter): Promise<StoredCharge[]> {
  const rows = await db<ChargeRow>('sandbox_charge')
    .where(filter)
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .limit(CHARGE_LIST_LIMIT);
  return (rows as ChargeRow[]).map(fromRow);
}

export async function countCharges(db: Knex, filter: ChargeFilter): Promise<ChargeCounts> {
  const row = (await db('sandbox_charge')
    .where(filter)
    .select(
      db.raw('count(*)::int as total'),
      db.raw("count(*) filter (where status = 'succeeded')::int as succeeded"),
    )
    .first()) as { total: number; succeeded: number } | undefined;
  return { charges_total: row?.total ?? 0, charges_succeeded: row?.succeeded ?? 0 };
}

const REVIEW_RESULTS = {
  approve: { status: 'succeeded', failure_code: null, failure_message: null },
  decline: { status: 'failed', failure_code: 'card_declined', failure_message: 'Your card was declined.' },
} as const;

/**
 * Settles pending charges whose decide_at has passed. Rows are locked with skip locked, so
 * several sandbox processes on one database never settle a charge twice; `on_decided` runs in
 * the same transaction (to record the webhook event atomically with the status change).
 */
export async function decideDueCharges(db: Knex, on_decided: OnChargeStored): Promise<number> {
  return await db.transaction(async (trx) => {
    const due = (await trx<ChargeRow>('sandbox_charge')
      .where({ status: 'pending' })
      .andWhere('decide_at', '<=', trx.fn.now())
      .orderBy('decide_at')
      .limit(DECIDE_BATCH_MAX)
      .forUpdate()
      .skipLocked()) as ChargeRow[];
    for (const row of due) {
      if (row.review_decision === null) throw new Error(`assertion: pending charge ${row.id} has no decision`);
      const [decided] = (await trx<ChargeRow>('sandbox_charge')
        .where({ id: row.id, status: 'pending' })
        .update({
          ...REVIEW_RESULTS[row.review_decision],
          version: row.version + 1,
          updated_at: trx.fn.now() as unknown as Date,
          decide_at: null,
        })
        .returning('*')) as ChargeRow[];
      if (decided === undefined) throw new Error(`assertion: locked charge ${row.id} vanished`);
      await on_decided(trx, fromRow(decided));
    }
    return due.length;
  });
}

/** The buyer's answer on the 3-D Secure page. */
export type AuthenticationAction = 'approve' | 'fail';

const AUTHENTICATION_RESULTS = {
  approve: { status: 'succeeded', failure_code: null, failure_message: null },
  fail: {
    status: 'failed',
    failure_code: 'authentication_failed',
    failure_message: 'The card holder failed 3-D Secure authentication.',
  },
} as const;

export type AuthenticationResult =
  | { kind: 'missing' }
  | { kind: 'already_decided'; charge: StoredCharge }
  | { kind: 'decided'; charge: StoredCharge };

/**
 * Applies the buyer's 3-D Secure answer. The row lock makes two clicks (or two tabs) decide
 * once: the second waits, then finds the charge no longer `requires_action`. `on_decided` runs
 * in the same transaction, as in decideDueCharges.
 */
export async function authenticateCharge(
  db: Knex,
  id: string,
  action: AuthenticationAction,
  on_decided: OnChargeStored,
): Promise<AuthenticationResult> {
  return await db.transaction(async (trx): Promise<AuthenticationResult> => {
    const row = (await trx<ChargeRow>('sandbox_charge').where({ id }).forUpdate().first()) as ChargeRow | undefined;
    if (row === undefined) return { kind: 'missing' };
    if (row.status !== 'requires_action') return { kind: 'already_decided', charge: fromRow(row) };
    const [decided] = (await trx<ChargeRow>('sandbox_charge')
      .where({ id, status: 'requires_action' })
      .update({
        ...AUTHENTICATION_RESULTS[action],
        version: row.version + 1,
        updated_at: trx.fn.now() as unknown as Date,
      })
      .returning('*')) as ChargeRow[];
    if (decided === undefined) throw new Error(`assertion: locked charge ${id} vanished`);
    const charge = fromRow(decided);
    await on_decided(trx, charge);
    return { kind: 'decided', charge };
  });
}

export async function ping(db: Knex): Promise<void> {
  await db.raw('select 1');
}

// ---------------------------------------------------------------------------------------------
// Capture, void, refund: one status change each, decided under the charge's row lock.

export type ChargeAction = 'capture' | 'void' | 'refund';

/** From which status an action moves a charge, and to which; any other status refuses it. */
export const CHARGE_ACTION_RULES: Readonly<Record<ChargeAction, { from: ChargeStatus; to: ChargeStatus }>> = {
  capture: { from: 'authorized', to: 'succeeded' },
  void: { from: 'authorized', to: 'canceled' },
  refund: { from: 'succeeded', to: 'refunded' },
};

export interface ActionRequest {
  charge_id: string;
  action: ChargeAction;
  /** null in ignore-idempotency mode: the key is neither recorded nor looked up. */
  idempotency_key: string | null;
  request_hash: string;
}

/**
 * `changed`: this request moved the charge. `unchanged`: it was already where the action leads
 * (idempotent by state). `replayed`: the key was used before for this same request; the charge
 * is as answered then. `refused`: the charge's status does not allow the action.
 */
export type ActionResult =
  | { kind: 'missing' }
  | { kind: 'key_reused' }
  | { kind: 'replayed' | 'changed' | 'unchanged' | 'refused'; charge: StoredCharge };

interface ActionRecordRow {
  request_hash: string;
  charge_snapshot: SnapshotJson;
}

/** A charge row as JSON (bigints as digit strings, times as ISO strings). */
type SnapshotJson = Omit<ChargeRow, 'created_at' | 'updated_at' | 'decide_at'> & {
  created_at: string;
  updated_at: string;
  decide_at: string | null;
};

function toSnapshot(charge: StoredCharge): SnapshotJson {
  return {
    ...charge,
    amount_minor: charge.amount_minor.toString(),
    fee_minor: charge.fee_minor.toString(),
    created_at: charge.created_at.toISOString(),
    updated_at: charge.updated_at.toISOString(),
    decide_at: charge.decide_at?.toISOString() ?? null,
  };
}

function fromSnapshot(snapshot: SnapshotJson): StoredCharge {
  return {
    ...snapshot,
    amount_minor: BigInt(snapshot.amount_minor),
    fee_minor: BigInt(snapshot.fee_minor),
    created_at: new Date(snapshot.created_at),
    updated_at: new Date(snapshot.updated_at),
    decide_at: snapshot.decide_at === null ? null : new Date(snapshot.decide_at),
  };
}

async function findActionRecord(trx: Knex.Transaction, idempotency_key: string): Promise<ActionRecordRow | null> {
  const row = (await trx('sandbox_charge_action')
    .where({ idempotency_key })
    .first('request_hash', 'charge_snapshot')) as ActionRecordRow | undefined;
  return row ?? null;
}

/** Same key, same request: the recorded answer. A key from a charge creation is another request. */
async function replayByKey(trx: Knex.Transaction, request: ActionRequest): Promise<ActionResult | null> {
  if (request.idempotency_key === null) return null;
  await lockIdempotencyKey(trx, request.idempotency_key);
  const record = await findActionRecord(trx, request.idempotency_key);
  if (record !== null) {
    if (record.request_hash !== request.request_hash) return { kind: 'key_reused' };
    return { kind: 'replayed', charge: fromSnapshot(record.charge_snapshot) };
  }
  const used_by_charge = await trx('sandbox_charge').where({ idempotency_key: request.idempotency_key }).first('id');
  return used_by_charge === undefined ? null : { kind: 'key_reused' };
}

async function recordAction(trx: Knex.Transaction, request: ActionRequest, charge: StoredCharge): Promise<void> {
  if (request.idempotency_key === null) return;
  await trx('sandbox_charge_action').insert({
    idempotency_key: request.idempotency_key,
    request_hash: request.request_hash,
    charge_id: charge.id,
    action: request.action,
    charge_snapshot: JSON.stringify(toSnapshot(charge)),
  });
}

/**
 * Applies capture, void or refund. The row lock makes two concurrent actions on one charge
 * decide once: the second waits, then finds the status already moved. Only answers that carry
 * the charge as a success (changed, unchanged) are recorded under the key; a refusal is not,
 * so a retry after the charge has moved on is decided afresh. `on_changed` runs in the same
 * transaction (to record the webhook event atomically with the status change).
 */
export async function applyChargeAction(
  db: Knex,
  request: ActionRequest,
  on_changed: OnChargeStored,
): Promise<ActionResult> {
  return await db.transaction(async (trx): Promise<ActionResult> => {
    const replay = await replayByKey(trx, request);
    if (replay !== null) return replay;
    const row = (await trx<ChargeRow>('sandbox_charge').where({ id: request.charge_id }).forUpdate().first()) as
      | ChargeRow
      | undefined;
    if (row === undefined) return { kind: 'missing' };
    const { from, to } = CHARGE_ACTION_RULES[request.action];
    if (row.status === to) {
      const charge = fromRow(row);
      await recordAction(trx, request, charge);
      return { kind: 'unchanged', charge };
    }
    if (row.status !== from) return { kind: 'refused', charge: fromRow(row) };
    const [moved] = (await trx<ChargeRow>('sandbox_charge')
      .where({ id: row.id, status: from })
      .update({ status: to, version: row.version + 1, updated_at: trx.fn.now() as unknown as Date })
      .returning('*')) as ChargeRow[];
    if (moved === undefined) throw new Error(`assertion: locked charge ${row.id} vanished`);
    const charge = fromRow(moved);
    await on_changed(trx, charge);
    await recordAction(trx, request, charge);
    return { kind: 'changed', charge };
  });
}
