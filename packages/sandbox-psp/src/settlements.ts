import express, { type Request, type Response } from 'express';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { z } from 'zod';
import type { Knex } from './db';
import type { Logger } from './logger';
import { SandboxError } from './errors';
import { KnobState, mountKnobRoutes } from './knobs';

/**
 * The settlement file: what the PSP says it moved on one UTC day, for nightly reconciliation.
 * `GET /v1/settlements/:date` answers CSV, one line per money movement:
 *
 *   psp_id,idempotency_key,order_reference,type,amount,currency,fee,net,created_at,settled_at
 *   ch_…,key,ord_…,charge,1000,USD,59,941,2026-01-02T10:00:00.000Z,2026-01-02T10:00:00.000Z
 *   ch_…,key,ord_…,refund,-1000,USD,0,-1000,2026-01-02T09:00:00.000Z,2026-01-02T11:00:00.000Z
 *   #summary,<line count>,<sum of amounts>,<sum of fees>,<sum of net>
 *
 * A movement is a status change recorded in the event outbox (events.ts): `charge.succeeded`
 * (a charge line, settled when the charge succeeded; a `capture` line when the charge was
 * authorized first and captured later), `charge.refunded` and `refund.succeeded` (refund lines:
 * the whole charge, or part of it) and `payout.paid` (a payout line: money sent to a seller's bank).
 * The outbox, not the charge's updated_at, dates them: updated_at is overwritten by the next
 * change, so a charge refunded a day after it succeeded would vanish from its first day's file.
 * Failed, pending, authorized and canceled charges move no money and have no line.
 *
 * Knobs (POST /_sandbox/settlements, in memory) make the file disagree with our ledger in one
 * chosen way each, for the reconciliation tests. The summary always sums the lines actually
 * emitted, except with `bad_summary`.
 */

export const SETTLEMENT_LIMITS = {
  /** Movements read per query while streaming; the file is never held whole in memory. */
  batch_max: 1_000,
  order_reference_chars_max: 255,
  amount_digits_max: 18,
  /** The amount of the `extra_line` charge, in minor units. */
  extra_line_amount_minor: 1_000n,
} as const;

export const SETTLEMENT_HEADER =
  'psp_id,idempotency_key,order_reference,type,amount,currency,fee,net,created_at,settled_at';

const MS_PER_DAY = 86_400_000;
/** The events that move money, each a line: charges, captures, refunds (whole or partial), payouts. */
const MOVEMENT_EVENT_TYPES = ['charge.succeeded', 'charge.refunded', 'refund.succeeded', 'payout.paid', 'charge.dispute.created', 'charge.dispute.closed'] as const;
type LineType = 'charge' | 'capture' | 'refund' | 'payout' | 'dispute' | 'dispute_reversal';

export interface SettlementKnobs {
  extra_line: boolean;
  drop_order_reference: string | null;
  amount_delta_order_reference: string | null;
  amount_delta_minor: string | null;
  currency_order_reference: string | null;
  currency: string | null;
  duplicate_order_reference: string | null;
  late_order_reference: string | null;
  allow_open_day: boolean;
  bad_summary: boolean;
}

export const DEFAULT_SETTLEMENT_KNOBS: Readonly<SettlementKnobs> = {
  extra_line: false,
  drop_order_reference: null,
  amount_delta_order_reference: null,
  amount_delta_minor: null,
  currency_order_reference: null,
  currency: null,
  duplicate_order_reference: null,
  late_order_reference: null,
  allow_open_day: false,
  bad_summary: false,
};

export class SettlementKnobState extends KnobState<SettlementKnobs> {
  constructor() {
    super(DEFAULT_SETTLEMENT_KNOBS);
  }
}

// ---------------------------------------------------------------------------------------------
// Lines.

interface SettlementLine {
  psp_id: string;
  idempotency_key: string;
  order_reference: string;
  type: LineType;
  amount_minor: bigint;
  currency: string;
  fee_minor: bigint;
  created_at: Date;
  settled_at: Date;
}

interface MovementRow {
  event_id: string;
  line_type: LineType;
  settled_at: Date;
  /** The event's timestamp as PostgreSQL prints it: microseconds kept, so the cursor is exact. */
  cursor_at: string;
  psp_id: string;
  idempotency_key: string;
  order_reference: string;
  amount_minor: string;
  currency: string;
  fee_minor: string;
  created_at: Date;
}

/**
 * Money in (charge, capture) is positive and carries the fee; a dispute's reversal (won) is
 * positive, fee 0; money out (refund, payout, dispute) is negative, fee 0.
 */
function toLine(row: MovementRow): SettlementLine {
  const with_fee = row.line_type === 'charge' || row.line_type === 'capture';
  const money_in = with_fee || row.line_type === 'dispute_reversal';
  const amount_minor = BigInt(row.amount_minor);
  return {
    psp_id: row.psp_id,
    idempotency_key: row.idempotency_key,
    order_reference: row.order_reference,
    type: row.line_type,
    amount_minor: money_in ? amount_minor : -amount_minor,
    currency: row.currency.trim(),
    fee_minor: with_fee ? BigInt(row.fee_minor) : 0n,
    created_at: row.created_at,
    settled_at: row.settled_at,
  };
}

function netOf(line: SettlementLine): bigint {
  return line.amount_minor - line.fee_minor;
}

/** RFC 4180 quoting, and a field starting with `#` is quoted so no line passes for the summary. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) || value.startsWith('#') ? `"${value.replaceAll('"', '""')}"` : value;
}

function csvLine(line: SettlementLine): string {
  const fields = [
    line.psp_id,
    line.idempotency_key,
    line.order_reference,
    line.type,
    line.amount_minor.toString(),
    line.currency,
    line.fee_minor.toString(),
    netOf(line).toString(),
    line.created_at.toISOString(),
    line.settled_at.toISOString(),
  ];
  return `${fields.map(csvField).join(',')}\n`;
}

interface Day {
  date: string;
  start: Date;
  end: Date;
}

function dayOf(start_ms: number): Day {
  const start = new Date(start_ms);
  return { date: start.toISOString().slice(0, 10), start, end: new Date(start_ms + MS_PER_DAY) };
}

/** `YYYY-MM-DD` naming a real calendar day (no 2026-02-30), as its UTC bounds. */
export function parseSettlementDate(value: string): Day {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const start_ms = match === null ? NaN : Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  const day = Number.isNaN(start_ms) ? null : dayOf(start_ms);
  if (day === null || day.date !== value) {
    throw new SandboxError('parameter_invalid', 'date must be a calendar day as YYYY-MM-DD (UTC)', 'date');
  }
  return day;
}

// One union over the money-moving events; every branch yields the same columns. A charge that
// was authorized first (it has a charge.authorized event) settles as a `capture` line. In
// ignore-idempotency mode refunds and payouts have no key: their own id stands in.
const MOVEMENTS_SQL = `
  select e.id as event_id, e.created_at as settled_at, e.created_at::text as cursor_at,
         case when e.type = 'charge.refunded' then 'refund'
              when exists (select 1 from sandbox_event a where a.object_id = c.id and a.type = 'charge.authorized') then 'capture'
              else 'charge' end as line_type,
         c.id as psp_id, c.idempotency_key, c.order_reference, c.amount_minor, c.currency, c.fee_minor, c.created_at
    from sandbox_event e join sandbox_charge c on c.id = e.object_id
   where e.type in ('charge.succeeded', 'charge.refunded')
  union all
  select e.id, e.created_at, e.created_at::text, 'refund', r.id, coalesce(r.idempotency_key, r.id), c.order_reference,
         r.amount_minor, r.currency, 0, r.created_at
    from sandbox_event e join sandbox_refund r on r.id = e.object_id join sandbox_charge c on c.id = r.charge_id
   where e.type = 'refund.succeeded'
  union all
  select e.id, e.created_at, e.created_at::text, 'payout', p.id, coalesce(p.idempotency_key, p.id), p.reference,
         p.amount_minor, p.currency, 0, p.created_at
    from sandbox_event e join sandbox_payout p on p.id = e.object_id
   where e.type = 'payout.paid'
  union all
  -- A dispute takes the money when it opens and gives it back when won (the closing event of a
  -- won dispute); its key is the dispute id, its reference the charge's order reference.
  select e.id, e.created_at, e.created_at::text,
         case when e.type = 'charge.dispute.created' then 'dispute' else 'dispute_reversal' end,
         d.id, d.id, c.order_reference, d.amount_minor, d.currency, 0, d.created_at
    from sandbox_event e join sandbox_dispute d on d.id = e.object_id join sandbox_charge c on c.id = d.charge_id
   where e.type = 'charge.dispute.created'
      or (e.type = 'charge.dispute.closed' and (e.payload::jsonb #>> '{data,object,status}') = 'won')`;

/** Pages of movements in [start, end), oldest first, at most batch_max per query. */
async function* movementPages(
  db: Knex,
  day: Day,
  order_reference: string | null = null,
): AsyncGenerator<SettlementLine[]> {
  let cursor: { at: string; id: string } | null = null;
  for (;;) {
    const query = db
      .from(db.raw(`(${MOVEMENTS_SQL}) as m`))
      .select('*')
      .where('m.settled_at', '>=', day.start)
      .andWhere('m.settled_at', '<', day.end)
      .orderBy([{ column: 'm.settled_at' }, { column: 'm.event_id' }])
      .limit(SETTLEMENT_LIMITS.batch_max);
    if (order_reference !== null) query.andWhere('m.order_reference', order_reference);
    if (cursor !== null) query.andWhereRaw('(m.settled_at, m.event_id) > (?::timestamptz, ?)', [cursor.at, cursor.id]);
    const rows = (await query) as MovementRow[];
    if (rows.length > 0) yield rows.map(toLine);
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < SETTLEMENT_LIMITS.batch_max) return;
    cursor = { at: last.cursor_at, id: last.event_id };
  }
}

async function countMovements(db: Knex, day: Day): Promise<number> {
  const row = await db('sandbox_event')
    .whereIn('type', [...MOVEMENT_EVENT_TYPES])
    .andWhere('created_at', '>=', day.start)
    .andWhere('created_at', '<', day.end)
    .count<{ count: string }[]>('* as count');
  return Number(row[0]?.count ?? 0);
}

/** What the knobs make of one true line: nothing, the line (changed or not), or it twice. */
function applyKnobs(line: SettlementLine, knobs: SettlementKnobs): SettlementLine[] {
  const ref = line.order_reference;
  if (knobs.drop_order_reference === ref) return [];
  let out = line;
  if (knobs.amount_delta_order_reference === ref && knobs.amount_delta_minor !== null) {
    out = { ...out, amount_minor: out.amount_minor + BigInt(knobs.amount_delta_minor) };
  }
  if (knobs.currency_order_reference === ref && knobs.currency !== null) out = { ...out, currency: knobs.currency };
  return knobs.duplicate_order_reference === ref ? [out, out] : [out];
}

type FeeOf = (amount_minor: bigint) => bigint;

function extraLine(day: Day, fee_of: FeeOf): SettlementLine {
  const key = `ord_unknown_${randomBytes(8).toString('hex')}`;
  const amount_minor = SETTLEMENT_LIMITS.extra_line_amount_minor;
  return {
    psp_id: `ch_${randomBytes(12).toString('hex')}`,
    idempotency_key: key,
    order_reference: key,
    type: 'charge',
    amount_minor,
    currency: 'USD',
    fee_minor: fee_of(amount_minor),
    created_at: day.start,
    settled_at: day.start,
  };
}

/** Lines in file order: the late line from the day before, the day's own, then the extra line. */
async function* fileLines(db: Knex, day: Day, knobs: SettlementKnobs, fee_of: FeeOf): AsyncGenerator<SettlementLine[]> {
  const late = knobs.late_order_reference;
  if (late !== null) {
    for await (const page of movementPages(db, dayOf(day.start.getTime() - MS_PER_DAY), late)) yield page;
  }
  for await (const page of movementPages(db, day)) {
    yield late === null ? page : page.filter((line) => line.order_reference !== late);
  }
  if (knobs.extra_line) yield [extraLine(day, fee_of)];
}

async function write(res: Response, chunk: string): Promise<void> {
  if (!res.write(chunk)) await once(res, 'drain');
}

export interface SettlementDeps {
  db: Knex;
  log: Logger;
  knobs: SettlementKnobState;
  fee_of: FeeOf;
}

/** GET /v1/settlements/:date, mounted behind the API key. */
export function getSettlement(deps: SettlementDeps) {
  return async (req: Request<{ date: string }>, res: Response): Promise<void> => {
    const day = parseSettlementDate(req.params.date);
    const knobs = deps.knobs.get();
    const now = Date.now();
    if (day.start.getTime() > now || (day.end.getTime() > now && !knobs.allow_open_day)) {
      throw new SandboxError('settlement_not_ready', `the settlement file for ${day.date} is not ready: the day is not over`, 'date');
    }
    // Nothing is sent before the first page is read: a database that is down is a plain 500.
    const pages = fileLines(deps.db, day, knobs, deps.fee_of);
    let next = await pages.next();
    res.status(200).type('text/csv; charset=utf-8');
    // The day's own movements, counted before streaming (knobs may add or drop a line): enough for
    // a reader's progress bar, never a promise about the file.
    res.set('X-Settlement-Lines', String(await countMovements(deps.db, day)));
    res.set('Content-Disposition', `attachment; filename="settlement-${day.date}.csv"`);
    await write(res, `${SETTLEMENT_HEADER}\n`);
    let count = 0n;
    let amount = 0n;
    let fee = 0n;
    let net = 0n;
    while (next.done !== true) {
      if (res.destroyed) return; // the caller hung up: stop reading
      let chunk = '';
      for (const line of next.value.flatMap((l) => applyKnobs(l, knobs))) {
        count += 1n;
        amount += line.amount_minor;
        fee += line.fee_minor;
        net += netOf(line);
        chunk += csvLine(line);
      }
      if (chunk.length > 0) await write(res, chunk);
      next = await pages.next();
    }
    if (knobs.bad_summary) {
      count += 1n;
      amount += 1n;
    }
    res.end(`#summary,${count},${amount},${fee},${net}\n`);
    deps.log.info({ date: day.date, lines: count.toString() }, 'settlement file sent');
  };
}

// ---------------------------------------------------------------------------------------------
// Test-only admin: /_sandbox/settlements.

const orderReference = z.string().min(1).max(SETTLEMENT_LIMITS.order_reference_chars_max).nullable().optional();

const SettlementKnobsBodySchema = z.strictObject({
  extra_line: z.boolean().optional(),
  drop_order_reference: orderReference,
  amount_delta_order_reference: orderReference,
  amount_delta_minor: z
    .string()
    .regex(
      new RegExp(`^-?[1-9][0-9]{0,${SETTLEMENT_LIMITS.amount_digits_max - 1}}$`),
      'must be a non-zero integer in minor units as a string, optionally negative, no leading zeros',
    )
    .nullable()
    .optional(),
  currency_order_reference: orderReference,
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter uppercase currency code').nullable().optional(),
  duplicate_order_reference: orderReference,
  late_order_reference: orderReference,
  allow_open_day: z.boolean().optional(),
  bad_summary: z.boolean().optional(),
});

/** Mounted at /_sandbox behind the JSON parser (app.ts). */
export function createSettlementAdminRouter(deps: Pick<SettlementDeps, 'knobs' | 'log'>): express.Router {
  const router = express.Router();
  mountKnobRoutes(router, 'settlements', deps.knobs, SettlementKnobsBodySchema, deps.log);
  return router;
}
