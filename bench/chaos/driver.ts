import type { Knex } from '../../src/db';
import { TERMINAL_PAYMENT_STATUSES } from '../../src/domain/status';

/**
 * Drives N payments through the API at a steady rate, with at most `sending_max` being sent at
 * once and at most `open_max` not yet settled (accepted but neither terminal nor parked, or still
 * being sent): past either bound the next payment waits. Every request has its own
 * Idempotency-Key; a network error, 409 (key in use), 429 or 5xx is retried with the same key.
 * Some payments are sent twice on purpose (after the answer, or both at once) and must come
 * back as the same payment. Every answer the API gives is tallied by status.
 */

export const DRIVER_LIMITS = {
  // Work piles up while the worker is killed every few seconds (little completes then): the bound
  // is high enough that sending keeps its rate through that, low enough to keep the backlog finite.
  open_max: 200,
  sending_max: 16,
  request_timeout_ms: 15_000,
  retry_initial_ms: 250,
  retry_max_ms: 4_000,
  track_interval_ms: 500,
  track_ids_per_query: 1_000,
  gets_in_flight: 4,
  sellers: 200,
  buyers: 100,
  amount_minor_min: 100,
  amount_minor_max: 25_000,
  orders_max: 5,
  server_errors_kept: 20,
} as const;

// Weights out of 100: mostly successes, some declines and some delayed (review) outcomes.
const TOKENS: [string, number][] = [
  ['tok_success', 70],
  ['tok_decline', 8],
  ['tok_insufficient_funds', 7],
  ['tok_review_approve', 10],
  ['tok_review_decline', 5],
];
const REPLAY_AFTER_SHARE = 0.08; // sent again once the first answer is in
const REPLAY_CONCURRENT_SHARE = 0.04; // sent twice at once (one of them may meet 409 first)

export const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_PAYMENT_STATUSES);

export type Replay = 'none' | 'after' | 'concurrent';

export interface PaymentPlan {
  n: number;
  key: string;
  body: string;
  token: string;
  orders: number;
  replay: Replay;
}

export function planPayments(count: number, rand: () => number, run: string): PaymentPlan[] {
  const plans: PaymentPlan[] = [];
  for (let n = 0; n < count; n++) {
    const orders = 1 + Math.floor(rand() * DRIVER_LIMITS.orders_max);
    const sellers = new Set<number>();
    while (sellers.size < orders) sellers.add(Math.floor(rand() * DRIVER_LIMITS.sellers));
    const items = [...sellers].map((s) => {
      const minor = DRIVER_LIMITS.amount_minor_min + Math.floor(rand() * (DRIVER_LIMITS.amount_minor_max - DRIVER_LIMITS.amount_minor_min + 1));
      return { seller_id: `chaos_seller_${s}`, amount: `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}` };
    });
    let pick = rand() * 100;
    let token = TOKENS[0]?.[0] ?? 'tok_success';
    for (const [t, w] of TOKENS) {
      if (pick < w) {
        token = t;
        break;
      }
      pick -= w;
    }
    const r = rand();
    const replay: Replay = r < REPLAY_AFTER_SHARE ? 'after' : r < REPLAY_AFTER_SHARE + REPLAY_CONCURRENT_SHARE ? 'concurrent' : 'none';
    const body = JSON.stringify({ buyer: { id: `chaos_buyer_${n % DRIVER_LIMITS.buyers}` }, currency: 'USD', payment_method: token, orders: items, metadata: { chaos_run: run, n: String(n) } });
    plans.push({ n, key: `chaos-${run}-${n}`, body, token, orders, replay });
  }
  return plans;
}

export interface HttpTally {
  requests: number;
  by_status: Record<string, number>;
  network_errors: number;
  server_errors: { method: string; path: string; status: number; code: string | null; at: string }[];
  server_errors_total: number;
}

export function emptyTally(): HttpTally {
  return { requests: 0, by_status: {}, network_errors: 0, server_errors: [], server_errors_total: 0 };
}

export interface Answer {
  status: number;
  json: Record<string, unknown>;
  replayed: boolean;
}

/** One HTTP call to our API; every answer is counted, a 5xx kept with its code. Null: no answer. */
export async function callApi(tally: HttpTally, method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: string): Promise<Answer | null> {
  tally.requests++;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(DRIVER_LIMITS.request_timeout_ms) });
  } catch {
    tally.network_errors++;
    return null;
  }
  const text = await res.text().catch(() => '');
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // a non-JSON answer: its status still counts
  }
  tally.by_status[String(res.status)] = (tally.by_status[String(res.status)] ?? 0) + 1;
  if (res.status >= 500) {
    tally.server_errors_total++;
    const error = json.error as { code?: string } | undefined;
    if (tally.server_errors.length < DRIVER_LIMITS.server_errors_kept) tally.server_errors.push({ method, path: new URL(url).pathname, status: res.status, code: error?.code ?? null, at: new Date().toISOString() });
  }
  return { status: res.status, json, replayed: res.headers.get('idempotent-replayed') === 'true' };
}

export interface PaymentRecord {
  plan: PaymentPlan;
  /** Every payment id a 201 for this key carried: exactly one is right. */
  ids: Set<string>;
  payment_id: string | null;
  sends: number;
  /** The deliberate second send: the same id came back, marked as a replay. */
  replay_same_id: boolean | null;
  replay_marked: boolean | null;
  gave_up: string | null;
  status: string | null;
  settled: boolean;
}

export interface DriverStats {
  sent: number; // payments whose first request went out
  accepted: number;
  settled: number;
  posts: number;
  post_retries: number;
  replays_sent: number;
  gets: number;
  get_status_mismatch: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Driver {
  readonly records: PaymentRecord[];
  readonly tally = emptyTally();
  readonly stats: DriverStats = { sent: 0, accepted: 0, settled: 0, posts: 0, post_retries: 0, replays_sent: 0, gets: 0, get_status_mismatch: 0 };
  /** While faults are on, a parked payment counts as settled (it waits for the operator, who comes later). */
  settle_parked = true;
  private sending = 0;
  private readonly get_queue: PaymentRecord[] = [];
  private gets_running = 0;

  constructor(
    private readonly api_url: () => string,
    private readonly key: string,
    private readonly db: Knex,
    plans: PaymentPlan[],
    private readonly deadline_ms: number,
  ) {
    this.records = plans.map((plan) => ({ plan, ids: new Set(), payment_id: null, sends: 0, replay_same_id: null, replay_marked: null, gave_up: null, status: null, settled: false }));
  }

  private open(): number {
    return this.sending + this.stats.accepted - this.stats.settled;
  }

  /** Sends every payment on its schedule; resolves once each is accepted or given up. */
  async sendAll(rate_per_s: number): Promise<void> {
    const interval_ms = 1_000 / rate_per_s;
    const pending = new Set<Promise<void>>();
    let next_at = Date.now();
    for (const record of this.records) {
      const blocked = () => this.open() >= DRIVER_LIMITS.open_max || this.sending >= DRIVER_LIMITS.sending_max;
      while (Date.now() < this.deadline_ms && (Date.now() < next_at || blocked())) await sleep(Math.min(50, Math.max(1, next_at - Date.now())));
      if (Date.now() >= this.deadline_ms) {
        record.gave_up = 'deadline before it was sent';
        continue;
      }
      // No catching up after a stall: the rate stays steady rather than bursting.
      next_at = Math.max(next_at + interval_ms, Date.now() - interval_ms);
      this.stats.sent++;
      const p = this.submit(record).finally(() => pending.delete(p));
      pending.add(p);
    }
    await Promise.all(pending);
  }

  private async submit(record: PaymentRecord): Promise<void> {
    this.sending++;
    try {
      const replay = record.plan.replay;
      if (replay === 'concurrent') {
        this.stats.replays_sent++;
        const [a, b] = await Promise.all([this.post(record), this.post(record)]);
        if (a !== null && b !== null) {
          record.replay_same_id = a.id === b.id;
          record.replay_marked = a.replayed || b.replayed; // the later of the two was answered as a replay
        }
      } else {
        const first = await this.post(record);
        if (first !== null && replay === 'after') {
          this.stats.replays_sent++;
          const again = await this.post(record);
          if (again !== null) {
            record.replay_same_id = again.id === first.id;
            record.replay_marked = again.replayed;
          }
        }
      }
      record.payment_id = [...record.ids][0] ?? null;
      if (record.payment_id !== null) this.stats.accepted++;
    } finally {
      this.sending--;
    }
  }

  /** POST until a 201 (retrying with the same key) or a refusal that no retry can change. */
  private async post(record: PaymentRecord): Promise<{ id: string; replayed: boolean } | null> {
    let wait_ms: number = DRIVER_LIMITS.retry_initial_ms;
    for (let attempt = 0; Date.now() < this.deadline_ms; attempt++) {
      if (attempt > 0) this.stats.post_retries++;
      this.stats.posts++;
      record.sends++;
      const headers = { authorization: `Bearer ${this.key}`, 'content-type': 'application/json', 'idempotency-key': record.plan.key };
      const answer = await callApi(this.tally, 'POST', `${this.api_url()}/v1/payments`, headers, record.plan.body);
      if (answer !== null && answer.status === 201 && typeof answer.json.id === 'string') {
        record.ids.add(answer.json.id);
        return { id: answer.json.id, replayed: answer.replayed };
      }
      const retryable = answer === null || answer.status === 409 || answer.status === 429 || answer.status >= 500;
      if (!retryable) {
        const error = answer.json.error as { code?: string } | undefined;
        record.gave_up = `HTTP ${answer.status} ${error?.code ?? ''}`.trim();
        return null;
      }
      await sleep(wait_ms);
      wait_ms = Math.min(wait_ms * 2, DRIVER_LIMITS.retry_max_ms);
    }
    record.gave_up ??= 'deadline while retrying';
    return null;
  }

  /** Reads the statuses of accepted, unsettled payments from the database until `done()`. */
  async track(done: () => boolean): Promise<void> {
    while (!done()) {
      await this.refresh().catch(() => undefined);
      await sleep(DRIVER_LIMITS.track_interval_ms);
    }
  }

  /** One pass: statuses of accepted, unsettled payments; newly terminal ones are read once through the API too. */
  async refresh(): Promise<void> {
    const waiting = this.records.filter((r) => r.payment_id !== null && !r.settled);
    for (let i = 0; i < waiting.length; i += DRIVER_LIMITS.track_ids_per_query) {
      const chunk = waiting.slice(i, i + DRIVER_LIMITS.track_ids_per_query);
      const by_id = new Map(chunk.map((r) => [r.payment_id ?? '', r]));
      const rows = await this.db('payment_event').whereIn('id', [...by_id.keys()]).select<{ id: string; status: string }[]>('id', 'status');
      for (const row of rows) {
        const record = by_id.get(row.id);
        if (record === undefined) continue;
        record.status = row.status;
        // Two passes may overlap (the tracker and the quiescence loop): count each settling once.
        if ((TERMINAL.has(row.status) || (this.settle_parked && row.status === 'needs_attention')) && !record.settled) {
          record.settled = true;
          this.stats.settled++;
          if (TERMINAL.has(row.status)) this.queueGet(record);
        }
      }
    }
  }

  /** From now on only a terminal status settles a payment: the parked ones are open again. */
  stopSettlingParked(): void {
    this.settle_parked = false;
    for (const record of this.records) {
      if (record.settled && record.status === 'needs_attention') {
        record.settled = false;
        this.stats.settled--;
      }
    }
  }

  private queueGet(record: PaymentRecord): void {
    this.get_queue.push(record);
    this.pumpGets();
  }

  private pumpGets(): void {
    while (this.gets_running < DRIVER_LIMITS.gets_in_flight && this.get_queue.length > 0) {
      const record = this.get_queue.shift();
      if (record === undefined) break;
      this.gets_running++;
      void this.getOnce(record).finally(() => {
        this.gets_running--;
        this.pumpGets();
      });
    }
  }

  /** The API's view of a terminal payment must be the database's: terminal stays terminal. */
  private async getOnce(record: PaymentRecord): Promise<void> {
    this.stats.gets++;
    const answer = await callApi(this.tally, 'GET', `${this.api_url()}/v1/payments/${record.payment_id}`, { authorization: `Bearer ${this.key}` });
    if (answer !== null && answer.status === 200 && answer.json.status !== record.status) this.stats.get_status_mismatch++;
  }

  async drainGets(timeout_ms: number): Promise<void> {
    const deadline = Date.now() + timeout_ms;
    while ((this.gets_running > 0 || this.get_queue.length > 0) && Date.now() < deadline) await sleep(50);
  }
}
