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
  drain_timeout_ms: 60_000, // after the window: how long accepted payments get to finish
  poll_interval_ms: 250,
  poll_ids_per_query: 1_000,
  api_polls_in_flight: 16,
  sellers: 1_000,
  buyers: 1_000,
} as const;

const ORDER_AMOUNT = '10.00'; // decimal string, as the API takes it
const TERMINAL = new Set(['succeeded', 'failed', 'partially_succeeded']);

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
}

interface Request {
  n: number;
  due_ms: number;
  measured: boolean;
  answered_ms: number | null;
  payment_id: string | null;
  error_code: string | null;
  done_ms: number | null;
  status: string | null;
}

export interface TimelinePoint {
  t_s: number;
  sent: number;
  accepted: number;
  completed: number;
  accept_p99_ms: number | null;
  completion_p99_ms: number | null;
}

export interface StepResult {
  offered_per_s: number;
  sent: number;
  accepted: number;
  rejected: number;
  accepted_per_s: number;
  completed: number;
  completed_per_s: number;
  not_completed: number;
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
    if (res.status === 201 && typeof json.id === 'string') req.payment_id = json.id;
    else req.error_code = json.error?.code ?? `http_${res.status}`;
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
      const req: Request = { n, due_ms, measured: due_ms >= window_start_ms, answered_ms: null, payment_id: null, error_code: null, done_ms: null, status: null };
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
async function trackCompletions(target: Target, requests: Request[], sending: { done: boolean }): Promise<void> {
  const waiting = new Map<string, Request>();
  let deadline_ms = Infinity;
  while (nowMs() < deadline_ms) {
    // Every pass looks at all requests: answers arrive out of order, after their request was queued.
    for (const req of requests) if (req.payment_id !== null && req.done_ms === null && !waiting.has(req.payment_id)) waiting.set(req.payment_id, req);
    if (sending.done && deadline_ms === Infinity) deadline_ms = nowMs() + LIMITS.drain_timeout_ms;
    if (sending.done && waiting.size === 0) return;
    if (waiting.size > 0) await (target.db !== null ? pollDatabase(target.db, waiting) : pollApi(target, waiting)).catch(() => undefined);
    await sleep(LIMITS.poll_interval_ms);
  }
}

export async function runStep(target: Target, plan: Plan, hooks: { windowStart(): void; windowEnd(): void }): Promise<StepResult> {
  const requests: Request[] = [];
  const start_ms = nowMs() + 50;
  const sending = { done: false };
  const window_timer = setTimeout(hooks.windowStart, Math.max(0, start_ms + plan.warmup_s * 1_000 - nowMs()));
  const tracking = trackCompletions(target, requests, sending);
  try {
    await fireSchedule(target, plan, start_ms, requests);
  } finally {
    sending.done = true;
  }
  await tracking;
  clearTimeout(window_timer);
  hooks.windowEnd();
  return summarize(plan, start_ms + plan.warmup_s * 1_000, requests);
}

function countBy(items: (string | null)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) if (item !== null) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

function summarize(plan: Plan, window_ms: number, all: Request[]): StepResult {
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
  return {
    offered_per_s: round1(measured.length / plan.duration_s),
    sent: measured.length,
    accepted: accepted.length,
    rejected: measured.length - accepted.length,
    accepted_per_s: round1(accepted.length / accept_span_s),
    completed: done.length,
    completed_per_s: round1(done_in_window / plan.duration_s),
    not_completed: accepted.length - done.length,
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
  const points: { sent: number; accept_ms: number[]; done_ms: number[] }[] = [];
  const at = (t: number) => {
    for (let i = points.length; i <= t; i++) points.push({ sent: 0, accept_ms: [], done_ms: [] });
    return points[t] ?? { sent: 0, accept_ms: [], done_ms: [] };
  };
  for (const r of measured) {
    if (bucket(r.due_ms) >= 0) at(bucket(r.due_ms)).sent++;
    if (r.payment_id !== null && bucket(r.answered_ms) >= 0) at(bucket(r.answered_ms)).accept_ms.push((r.answered_ms ?? 0) - r.due_ms);
    if (r.done_ms !== null && bucket(r.done_ms) >= 0) at(bucket(r.done_ms)).done_ms.push(r.done_ms - r.due_ms);
  }
  return points.map((p, t) => ({
    t_s: t,
    sent: p.sent,
    accepted: p.accept_ms.length,
    completed: p.done_ms.length,
    accept_p99_ms: percentile(p.accept_ms, 99),
    completion_p99_ms: percentile(p.done_ms, 99),
  }));
}
