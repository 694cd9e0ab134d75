import { randomUUID } from 'node:crypto';
import type { Knex } from '../../src/db';
import { tokenFor, type TokenWeight } from './args';
import { maxOf, percentile, round1 } from './stats';

/**
 * The open-loop generator: request n is due at start + n / rate, and is sent then whatever the
 * earlier ones are doing. Latency counts from that due time, so a stalled server shows up as
 * latency instead of silently lowering the offered rate (no coordinated omission).
 */
const LIMITS = {
  request_timeout_ms: 10_000,
  in_flight_max: 5_000, // beyond this the generator itself is the bottleneck: counted as an error
  drain_timeout_ms: 60_000, // after the window: how long accepted payments get to finish (Plan can raise it)
  poll_interval_ms: 250,
  poll_ids_per_query: 1_000,
  api_polls_in_flight: 16,
  sellers: 1_000,
  buyers: 1_000,
} as const;

const ORDER_AMOUNT = '10.00'; // decimal string, as the API takes it
const TERMINAL = new Set(['succeeded', 'failed', 'partially_succeeded']);
// Admission control's answer past capacity: the door refusing, not the system failing. Counted as
// refused, apart from errors; the generator does not retry it (an open loop keeps its offered rate).
const REFUSED = { status: 429, code: 'capacity_exceeded' } as const;

export interface Target {
  api_url: string;
  api_key: string;
  db: Knex | null; // when the bench owns the stack: completions read from the database
}

export interface Plan {
  rate_per_s: number;
  warmup_s: number;
  duration_s: number;
  orders: number;
  tokens: TokenWeight[];
  drain_timeout_ms?: number; // default LIMITS.drain_timeout_ms
}

interface Request {
  n: number;
  due_ms: number;
  measured: boolean;
  answered_ms: number | null;
  http_status: number | null;
  payment_id: string | null;
  refused: boolean;
  error_code: string | null;
  done_ms: number | null;
  status: string | null;
}

export interface TimelinePoint {
  t_s: number;
  sent: number;
  accepted: number;
  refused: number;
  completed: number;
  accept_p99_ms: number | null;
  completion_p99_ms: number | null;
}

export interface StepResult {
  offered_per_s: number;
  sent: number;
  accepted: number;
  rejected: number; // every measured request not accepted: refused + errors
  accepted_per_s: number;
  refused: number; // 429 capacity_exceeded (admission control), not in errors_by_code
  refused_per_s: number;
  http_5xx: number;
  completed: number;
  completed_per_s: number;
  completed_in_window: number; // terminal inside the window, whenever sent: what completed_per_s counts
  not_completed: number;
  /** End of the offered load (the last request's due time) → the last accepted payment terminal; null while some were never seen terminal. */
  drain_s: number | null;
  accept_latency_ms: { p50: number | null; p90: number | null; p99: number | null; max: number | null };
  completion_latency_ms: { p50: number | null; p99: number | null };
  errors_by_code: Record<string, number>;
  statuses: Record<string, number>;
  timeline: TimelinePoint[];
}

const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function body(plan: Plan, n: number): string {
  const orders = Array.from({ length: plan.orders }, (_, j) => ({ seller_id: `bench_seller_${(n * plan.orders + j) % LIMITS.sellers}`, amount: ORDER_AMOUNT }));
  return JSON.stringify({ buyer: { id: `bench_buyer_${n % LIMITS.buyers}` }, currency: 'USD', payment_method: tokenFor(plan.tokens, n), orders });
}

async function send(target: Target, plan: Plan, req: Request): Promise<void> {
  try {
    const res = await fetch(`${target.api_url}/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.api_key}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      body: body(plan, req.n),
      signal: AbortSignal.timeout(LIMITS.request_timeout_ms),
    });
    const json = (await res.json().catch(() => ({}))) as { id?: string; error?: { code?: string } };
    req.answered_ms = nowMs();
    req.http_status = res.status;
    const code = json.error?.code ?? `http_${res.status}`;
    if (res.status === 201 && typeof json.id === 'string') req.payment_id = json.id;
    else if (res.status === REFUSED.status && code === REFUSED.code) req.refused = true;
    else req.error_code = code;
  } catch (err) {
    req.answered_ms = nowMs();
    req.error_code = (err as Error).name === 'TimeoutError' ? 'client_timeout' : 'network_error';
  }
}

/** Fires every request on its schedule; resolves once all are answered (each is time-bounded). */
async function fireSchedule(target: Target, plan: Plan, start_ms: number, requests: Request[]): Promise<void> {
  const window_start_ms = start_ms + plan.warmup_s * 1_000;
  const total = Math.ceil(plan.rate_per_s * (plan.warmup_s + plan.duration_s));
  const pending = new Set<Promise<void>>();
  for (let n = 0; n < total; ) {
    const now = nowMs();
    for (; n < total && start_ms + (n * 1_000) / plan.rate_per_s <= now; n++) {
      const due_ms = start_ms + (n * 1_000) / plan.rate_per_s;
      const req: Request = { n, due_ms, measured: due_ms >= window_start_ms, answered_ms: null, http_status: null, payment_id: null, refused: false, error_code: null, done_ms: null, status: null };
      requests.push(req);
      if (pending.size >= LIMITS.in_flight_max) {
        req.answered_ms = now;
        req.error_code = 'bench_in_flight_limit';
        continue;
      }
      const p = send(target, plan, req).finally(() => pending.delete(p));
      pending.add(p);
    }
    if (n < total) await sleep(Math.max(0, Math.min(5, start_ms + (n * 1_000) / plan.rate_per_s - nowMs())));
  }
  await Promise.all(pending);
}

async function pollDatabase(db: Knex, waiting: Map<string, Request>): Promise<void> {
  const ids = [...waiting.keys()].slice(0, LIMITS.poll_ids_per_query);
  const rows = await db('payment_event')
    .whereIn('id', ids)
    .whereNot('status', 'processing')
    .select<{ id: string; status: string; updated_ms: string }[]>('id', 'status', db.raw('extract(epoch from updated_at) * 1000 as updated_ms'));
  for (const row of rows) settle(waiting, row.id, row.status, Number(row.updated_ms));
}

async function pollApi(target: Target, waiting: Map<string, Request>): Promise<void> {
  const ids = [...waiting.keys()].slice(0, LIMITS.api_polls_in_flight);
  await Promise.all(ids.map(async (id) => {
    const res = await fetch(`${target.api_url}/v1/payments/${id}`, { headers: { authorization: `Bearer ${target.api_key}` }, signal: AbortSignal.timeout(LIMITS.request_timeout_ms) });
    const json = (await res.json()) as { status?: string; updated_at?: string };
    if (json.status !== undefined && TERMINAL.has(json.status)) settle(waiting, id, json.status, Date.parse(json.updated_at ?? '') || nowMs());
  }).map((p) => p.catch(() => undefined)));
}

function settle(waiting: Map<string, Request>, id: string, status: string, done_ms: number): void {
  const req = waiting.get(id);
  if (req === undefined) return;
  req.status = status;
  req.done_ms = done_ms;
  waiting.delete(id);
}

/** Watches accepted payments (warm-up ones too: they finish inside the window) until each is terminal, the sender is done and drained, or time is up. */
async function trackCompletions(target: Target, requests: Request[], sending: { done: boolean }, drain_timeout_ms: number): Promise<void> {
  const waiting = new Map<string, Request>();
  let deadline_ms = Infinity;
  while (nowMs() < deadline_ms) {
    // Every pass looks at all requests: answers arrive out of order, after their request was queued.
    for (const req of requests) if (req.payment_id !== null && req.done_ms === null && !waiting.has(req.payment_id)) waiting.set(req.payment_id, req);
    if (sending.done && deadline_ms === Infinity) deadline_ms = nowMs() + drain_timeout_ms;
    if (sending.done && waiting.size === 0) return;
    if (waiting.size > 0) await (target.db !== null ? pollDatabase(target.db, waiting) : pollApi(target, waiting)).catch(() => undefined);
    await sleep(LIMITS.poll_interval_ms);
  }
}

export interface StepOutcome {
  result: StepResult;
  accepted_ids: string[]; // every payment the API accepted in this step, warm-up included
}

/**
 * One step. The hooks bracket the measured window exactly (not the drain after it), so CPU
 * sampled between them divided by the payments completed in the window is a cost per payment.
 */
export async function runStep(target: Target, plan: Plan, hooks: { windowStart(): void; windowEnd(): void }): Promise<StepOutcome> {
  const requests: Request[] = [];
  const start_ms = nowMs() + 50;
  const window_ms = start_ms + plan.warmup_s * 1_000;
  const sending = { done: false };
  const window_end = { fired: false };
  const start_timer = setTimeout(hooks.windowStart, Math.max(0, window_ms - nowMs()));
  const end_timer = setTimeout(() => {
    window_end.fired = true;
    hooks.windowEnd();
  }, Math.max(0, window_ms + plan.duration_s * 1_000 - nowMs()));
  const tracking = trackCompletions(target, requests, sending, plan.drain_timeout_ms ?? LIMITS.drain_timeout_ms);
  try {
    await fireSchedule(target, plan, start_ms, requests);
  } finally {
    sending.done = true;
  }
  await tracking;
  clearTimeout(start_timer);
  clearTimeout(end_timer);
  if (!window_end.fired) hooks.windowEnd(); // everything finished before the window closed (a timer drift)
  const schedule_end_ms = start_ms + (Math.ceil(plan.rate_per_s * (plan.warmup_s + plan.duration_s)) * 1_000) / plan.rate_per_s;
  const accepted_ids = requests.flatMap((r) => (r.payment_id === null ? [] : [r.payment_id]));
  return { result: summarize(plan, window_ms, schedule_end_ms, requests), accepted_ids };
}

/** Seconds from the end of the offered load until the last accepted payment (warm-up ones too) was terminal. */
function drainSeconds(all: Request[], schedule_end_ms: number): number | null {
  let last_ms = schedule_end_ms;
  for (const r of all) {
    if (r.payment_id === null) continue;
    if (r.done_ms === null) return null;
    last_ms = Math.max(last_ms, r.done_ms);
  }
  return round1((last_ms - schedule_end_ms) / 1_000);
}

function countBy(items: (string | null)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) if (item !== null) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

function summarize(plan: Plan, window_ms: number, schedule_end_ms: number, all: Request[]): StepResult {
  const window_end_ms = window_ms + plan.duration_s * 1_000;
  // Throughput: payments that reached a terminal status inside the window, whenever sent.
  const done_in_window = all.filter((r) => r.done_ms !== null && r.done_ms >= window_ms && r.done_ms < window_end_ms).length;
  const measured = all.filter((r) => r.measured);
  const accepted = measured.filter((r) => r.payment_id !== null);
  const done = accepted.filter((r) => r.done_ms !== null);
  const accept_ms = accepted.map((r) => (r.answered_ms ?? 0) - r.due_ms);
  const done_ms = done.map((r) => (r.done_ms ?? 0) - r.due_ms);
  const last = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), window_end_ms);
  const accept_span_s = (last(accepted.map((r) => r.answered_ms ?? 0)) - window_ms) / 1_000;
  const refused = measured.filter((r) => r.refused);
  return {
    offered_per_s: round1(measured.length / plan.duration_s),
    sent: measured.length,
    accepted: accepted.length,
    rejected: measured.length - accepted.length,
    accepted_per_s: round1(accepted.length / accept_span_s),
    refused: refused.length,
    refused_per_s: round1(refused.length / ((last(refused.map((r) => r.answered_ms ?? 0)) - window_ms) / 1_000)),
    http_5xx: measured.filter((r) => (r.http_status ?? 0) >= 500).length,
    completed: done.length,
    completed_per_s: round1(done_in_window / plan.duration_s),
    completed_in_window: done_in_window,
    not_completed: accepted.length - done.length,
    drain_s: drainSeconds(all, schedule_end_ms),
    accept_latency_ms: { p50: percentile(accept_ms, 50), p90: percentile(accept_ms, 90), p99: percentile(accept_ms, 99), max: maxOf(accept_ms) },
    completion_latency_ms: { p50: percentile(done_ms, 50), p99: percentile(done_ms, 99) },
    errors_by_code: countBy(measured.map((r) => r.error_code)),
    statuses: countBy(done.map((r) => r.status)),
    timeline: timeline(window_ms, measured),
  };
}

/** Per-second buckets from the window start: what was sent, accepted and completed in each second. */
function timeline(window_ms: number, measured: Request[]): TimelinePoint[] {
  const bucket = (ms: number | null) => (ms === null ? -1 : Math.floor((ms - window_ms) / 1_000));
  const points: { sent: number; refused: number; accept_ms: number[]; done_ms: number[] }[] = [];
  const at = (t: number) => {
    for (let i = points.length; i <= t; i++) points.push({ sent: 0, refused: 0, accept_ms: [], done_ms: [] });
    return points[t] ?? { sent: 0, refused: 0, accept_ms: [], done_ms: [] };
  };
  for (const r of measured) {
    if (bucket(r.due_ms) >= 0) at(bucket(r.due_ms)).sent++;
    if (r.refused && bucket(r.answered_ms) >= 0) at(bucket(r.answered_ms)).refused++;
    if (r.payment_id !== null && bucket(r.answered_ms) >= 0) at(bucket(r.answered_ms)).accept_ms.push((r.answered_ms ?? 0) - r.due_ms);
    if (r.done_ms !== null && bucket(r.done_ms) >= 0) at(bucket(r.done_ms)).done_ms.push(r.done_ms - r.due_ms);
  }
  return points.map((p, t) => ({
    t_s: t,
    sent: p.sent,
    accepted: p.accept_ms.length,
    refused: p.refused,
    completed: p.done_ms.length,
    accept_p99_ms: percentile(p.accept_ms, 99),
    completion_p99_ms: percentile(p.done_ms, 99),
  }));
}
