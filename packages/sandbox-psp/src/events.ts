import { randomBytes, randomInt } from 'node:crypto';
import type { Knex } from './db';
import { registerSchema } from './store';
import type { WebhookKnobs } from './config';

/**
 * The sandbox's webhook outbox. An event is written in the same transaction as the change it
 * reports, then a delivery loop (webhooks.ts) sends it. The knobs that decide an event's fate
 * (drop, duplicate, delay) are applied when it is recorded, so the listing shows what happened.
 */

export const EVENT_LIMITS = {
  list_max: 100,
  claim_batch_max: 20,
  error_chars_max: 500,
  // A claimed event is invisible to other loops this long; longer than one delivery attempt.
  claim_lease_ms: 30_000,
  // Reorder: an older event becomes due this long after the newer one, a few delivery ticks, so
  // the newer one is normally sent alone first; a tick slow enough to find both due claims them
  // in one batch, which reorder sends newest first.
  reorder_gap_ms: 200,
} as const;

const EVENT_ID_BYTES = 12;
const RATE_SCALE = 1_000_000;

export type EventStatus = 'pending' | 'delivered' | 'failed' | 'dropped' | 'no_endpoint';

export interface EventRow {
  id: string;
  type: string;
  object_id: string;
  payload: string;
  target_url: string | null;
  status: EventStatus;
  duplicate: boolean;
  attempts: number;
  deliveries: number;
  next_attempt_at: Date;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

registerSchema(`
  create table if not exists sandbox_event (
    id text primary key,
    type text not null,
    object_id text not null,
    payload text not null,
    target_url text null,
    status text not null check (status in ('pending', 'delivered', 'failed', 'dropped', 'no_endpoint')),
    duplicate boolean not null default false,
    attempts int not null default 0 check (attempts >= 0),
    deliveries int not null default 0 check (deliveries >= 0),
    next_attempt_at timestamptz not null default now(),
    last_error text null,
    created_at timestamptz not null default clock_timestamp(),
    delivered_at timestamptz null
  );
  create index if not exists sandbox_event_due_idx on sandbox_event (next_attempt_at) where status = 'pending';
  create index if not exists sandbox_event_object_idx on sandbox_event (object_id);
`);

/** A fair coin weighted by `rate` (0..1), from the CSPRNG so it needs no seed handling. */
export function chance(rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  return randomInt(RATE_SCALE) < rate * RATE_SCALE;
}

export interface NewEvent {
  type: string;
  object_id: string;
  object: unknown;
  target_url: string | null;
}

/**
 * Wire shape: `{ id, object: 'event', type, created, data: { object } }`. With the reorder knob
 * on, every event is held `reorder_hold_ms` and the object's older events still waiting are
 * pushed behind this one, so the endpoint sees the newer state first.
 */
export async function recordEvent(db: Knex, event: NewEvent, knobs: WebhookKnobs): Promise<EventRow> {
  const id = `evt_${randomBytes(EVENT_ID_BYTES).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const payload = JSON.stringify({ id, object: 'event', type: event.type, created, data: { object: event.object } });
  const status: EventStatus = event.target_url === null ? 'no_endpoint' : chance(knobs.drop_rate) ? 'dropped' : 'pending';
  const hold_ms = knobs.reorder ? knobs.reorder_hold_ms : 0;
  const row = {
    id,
    type: event.type,
    object_id: event.object_id,
    payload,
    target_url: event.target_url,
    status,
    duplicate: chance(knobs.duplicate_rate),
    next_attempt_at: new Date(Date.now() + knobs.delay_ms + hold_ms),
  };
  const [inserted] = (await db<EventRow>('sandbox_event').insert(row).returning('*')) as EventRow[];
  if (inserted === undefined) throw new Error('insert returned no row');
  // A dropped or endpoint-less event is never sent, so there is nothing to overtake.
  if (knobs.reorder && inserted.status === 'pending') await holdOlderEvents(db, inserted);
  return inserted;
}

/**
 * Moves the object's not-yet-tried events to just after `newer`. Only ever later: an event
 * already due after that point (a long delay knob) keeps its time. Attempted events are left
 * alone, their retry schedule is the backoff's. One being sent right now may have its lease
 * moved; harmless, as the outcome of that send overwrites next_attempt_at or ends the event.
 */
async function holdOlderEvents(db: Knex, newer: EventRow): Promise<void> {
  const after = new Date(newer.next_attempt_at.getTime() + EVENT_LIMITS.reorder_gap_ms);
  await db('sandbox_event')
    .where({ object_id: newer.object_id, status: 'pending', attempts: 0 })
    .andWhereNot({ id: newer.id })
    .andWhere('next_attempt_at', '<', after)
    .update({ next_attempt_at: after });
}

/**
 * Takes due events off the queue for this loop by pushing their next attempt past the lease.
 * `newest_first` is the reorder knob: a batch that became due together goes out in reverse.
 */
export async function claimDueEvents(db: Knex, newest_first: boolean): Promise<EventRow[]> {
  return await db.transaction(async (trx) => {
    const due = (await trx<EventRow>('sandbox_event')
      .where({ status: 'pending' })
      .andWhere('next_attempt_at', '<=', trx.fn.now())
      .orderBy([{ column: 'created_at', order: newest_first ? 'desc' : 'asc' }, { column: 'id' }])
      .limit(EVENT_LIMITS.claim_batch_max)
      .forUpdate()
      .skipLocked()) as EventRow[];
    if (due.length === 0) return [];
    const lease_until = new Date(Date.now() + EVENT_LIMITS.claim_lease_ms);
    await trx('sandbox_event')
      .whereIn(
        'id',
        due.map((e) => e.id),
      )
      .update({ next_attempt_at: lease_until });
    return due;
  });
}

export async function markDelivered(db: Knex, id: string, deliveries: number): Promise<void> {
  await db('sandbox_event')
    .where({ id })
    .update({ status: 'delivered', delivered_at: db.fn.now(), last_error: null, deliveries, attempts: db.raw('attempts + 1') });
}

/** `next_attempt_at` null means the attempts are used up: the event is `failed` for good. */
export async function markAttemptFailed(db: Knex, id: string, error: string, next_attempt_at: Date | null): Promise<void> {
  const last_error = error.slice(0, EVENT_LIMITS.error_chars_max);
  const attempts = db.raw('attempts + 1');
  const update =
    next_attempt_at === null
      ? { status: 'failed', last_error, attempts }
      : { status: 'pending', last_error, next_attempt_at, attempts };
  await db('sandbox_event').where({ id }).update(update);
}

export interface EventFilter {
  type?: string;
  object_id?: string;
}

/** Oldest first, bounded by EVENT_LIMITS.list_max. */
export async function listEvents(db: Knex, filter: EventFilter): Promise<EventRow[]> {
  const query = db<EventRow>('sandbox_event')
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .limit(EVENT_LIMITS.list_max);
  if (filter.type !== undefined) query.where({ type: filter.type });
  if (filter.object_id !== undefined) query.where({ object_id: filter.object_id });
  return (await query) as EventRow[];
}

export function toEventListItem(event: EventRow): Record<string, unknown> {
  return {
    id: event.id,
    type: event.type,
    object_id: event.object_id,
    status: event.status,
    duplicate: event.duplicate,
    attempts: event.attempts,
    deliveries: event.deliveries,
    last_error: event.last_error,
    target_url: event.target_url,
    created: Math.floor(event.created_at.getTime() / 1000),
    event: JSON.parse(event.payload) as unknown,
  };
}
