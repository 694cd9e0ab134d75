import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import type { AdmissionSettings } from '../config';
import { startPaymentWorkflow, type StarterDeps } from './workflow-starter';
import { claimUnstarted, countBacklog, paymentStatuses, type ClaimedPayment } from '../aggregates/payment';

/**
 * Admission control. Accepting a payment stays cheap (its rows and a 201); the
 * dispatcher here is the one way payment workflows start, paced to what Temporal and the workers
 * sustain: it keeps at most `window` payments it started in `processing`, oldest first and
 * round-robin across merchants, and adapts the window AIMD-style to how long payments take to
 * leave `processing`. Past a bounded backlog of unstarted payments the door answers 429
 * `capacity_exceeded`, so a flash sale waits in a queue of known size instead of slowing every
 * payment at once.
 *
 * Safe with several API processes: rows are claimed with FOR UPDATE SKIP LOCKED, and a workflow
 * id refuses a second run (REJECT_DUPLICATE), which startPaymentWorkflow counts as started.
 */

// Starts per claim transaction: bounds how long claimed rows stay locked while Temporal answers.
const START_BATCH_MAX = 32;
// Claim transactions per pass: a pass ends even while every start keeps failing.
const CLAIM_ROUNDS_MAX = 8;
// Multiplicative decrease when latency is over target (gentler than halving: latency is a noisy signal).
const DECREASE_FACTOR = 0.7;
// Additive increase: one slot per window's worth of payments that left processing under target.
const INCREASE_PER_WINDOW = 1;
// A payment still processing after this many latency targets no longer holds a slot (a stuck
// payment must not shrink capacity for ever; its lateness has already shrunk the window).
const INFLIGHT_EXPIRY_TARGETS = 30;
const RETRY_AFTER_MAX_S = 60;
// The start rate assumed when none was measured yet (idle, or Temporal down): Retry-After stays finite.
const START_RATE_FLOOR_PER_S = 1;
const START_RATE_HALF_LIFE_MS = 5_000;
// Merchants whose last start this process remembers (for round-robin); the least recent are forgotten first.
const SERVED_MERCHANTS_MAX = 10_000;

/**
 * The in-flight bound, adapted from latency (additive increase, multiplicative decrease): it grows
 * while payments leave processing under the target and the window was what held starts back; it
 * shrinks when one takes longer, at most once per target interval (a smaller window needs about
 * that long to show in the latency).
 */
export class AimdWindow {
  private value: number;
  private last_decrease_ms = Number.NEGATIVE_INFINITY;

  constructor(private readonly s: Pick<AdmissionSettings, 'window_min' | 'window_initial' | 'window_max' | 'latency_target_ms'>) {
    this.value = s.window_initial;
  }

  get size(): number {
    return Math.floor(this.value);
  }

  /** One latency sample: a payment left processing after `latency_ms`, or is still in it after that long. */
  observe(latency_ms: number, now_ms: number, limited: boolean): void {
    if (latency_ms > this.s.latency_target_ms) {
      if (now_ms - this.last_decrease_ms < this.s.latency_target_ms) return;
      this.value = Math.max(this.s.window_min, this.value * DECREASE_FACTOR);
      this.last_decrease_ms = now_ms;
      return;
    }
    // Growing while the window is not what limits starts would only make a later burst hit harder.
    if (limited) this.value = Math.min(this.s.window_max, this.value + INCREASE_PER_WINDOW / this.value);
  }
}

/** Seconds until a backlog drains at the measured start rate: at least 1, at most RETRY_AFTER_MAX_S. */
export function retryAfterSeconds(backlog: number, start_rate_per_s: number): number {
  const rate = Math.max(START_RATE_FLOOR_PER_S, start_rate_per_s);
  return Math.min(RETRY_AFTER_MAX_S, Math.max(1, Math.ceil(backlog / rate)));
}

/**
 * How many unstarted payments may wait: what starts at the measured rate within the promised
 * wait, never fewer than a full window (a cold start has no rate yet), never more than the hard bound.
 */
export function backlogBound(s: Pick<AdmissionSettings, 'backlog_max' | 'backlog_wait_max_s' | 'window_max'>, start_rate_per_s: number): number {
  const by_wait = Math.ceil(s.backlog_wait_max_s * Math.max(START_RATE_FLOOR_PER_S, start_rate_per_s));
  return Math.min(s.backlog_max, Math.max(s.window_max, by_wait));
}

/** Starts per second, smoothed (exponential decay with a half-life), from counts per tick. */
class RateMeter {
  per_s = 0;
  private at_ms = Date.now();
  private count = 0;

  add(n: number): void {
    this.count += n;
  }

  update(now_ms: number): void {
    const dt_ms = now_ms - this.at_ms;
    if (dt_ms <= 0) return;
    const weight = 1 - Math.pow(0.5, dt_ms / START_RATE_HALF_LIFE_MS);
    this.per_s += weight * ((this.count * 1000) / dt_ms - this.per_s);
    this.count = 0;
    this.at_ms = now_ms;
  }
}

/** Unstarted payments of this task queue by merchant: counted each tick, kept current in between by this process's own accepts and starts. */
class BacklogCount {
  total = 0;
  private by_merchant = new Map<string, number>();

  of(merchant_id: string): number {
    return this.by_merchant.get(merchant_id) ?? 0;
  }

  add(merchant_id: string, n: number): void {
    const next = Math.max(0, this.of(merchant_id) + n);
    this.total = Math.max(0, this.total + next - this.of(merchant_id));
    if (next === 0) this.by_merchant.delete(merchant_id);
    else this.by_merchant.set(merchant_id, next);
  }

  replace(rows: { merchant_id: string; n: number }[]): void {
    this.by_merchant = new Map(rows.map((r) => [r.merchant_id, r.n]));
    this.total = rows.reduce((sum, r) => sum + r.n, 0);
  }
}

/** What the metrics show (src/api/metrics.ts); this process's view. */
export interface AdmissionView {
  backlog(): number;
  inflight(): number;
  window(): number;
}

export type CapacityBound = 'backlog' | 'merchant_backlog';

export interface AdmissionObserver {
  started(lag_s: number): void;
  refused(bound: CapacityBound): void;
}

const NO_OBSERVER: AdmissionObserver = { started() {}, refused() {} };

export class Admission implements AdmissionView {
  private readonly window_: AimdWindow;
  private readonly backlog_ = new BacklogCount();
  private readonly rate = new RateMeter();
  /** Payments this process started that were processing then: id → start time. */
  private readonly inflight_ = new Map<string, number>();
  /** When this process last started a payment of each merchant (Map order: least recent first). */
  private readonly served = new Map<string, number>();
  private readonly observer: AdmissionObserver;
  /** Whether the last dispatch stopped at the window with payments still waiting. */
  private limited = false;
  private queue: Promise<void> = Promise.resolve();
  private kick_queued = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly starter: StarterDeps,
    private readonly settings: AdmissionSettings,
    observe: (view: AdmissionView) => AdmissionObserver = () => NO_OBSERVER,
  ) {
    this.window_ = new AimdWindow(settings);
    this.observer = observe(this);
  }

  backlog(): number {
    return this.backlog_.total;
  }

  inflight(): number {
    return this.inflight_.size;
  }

  window(): number {
    return this.window_.size;
  }

  /** Starts the periodic tick: it counts the backlog, frees slots and starts what the window allows. */
  start(): this {
    this.schedule();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.queue;
  }

  /**
   * The door, checked before a new Idempotency-Key is claimed: undefined when open; otherwise a
   * function that counts the refusal and throws 429 capacity_exceeded with a Retry-After.
   */
  refusal(merchant_id: string): (() => never) | undefined {
    const mine = this.backlog_.of(merchant_id);
    const bound: CapacityBound | null = this.backlog_.total >= backlogBound(this.settings, this.rate.per_s) ? 'backlog' : mine >= this.settings.merchant_backlog_max ? 'merchant_backlog' : null;
    if (bound === null) return undefined;
    const waiting = bound === 'backlog' ? this.backlog_.total : mine;
    const message =
      bound === 'backlog' ? 'payments are arriving faster than they can be started; retry after Retry-After seconds' : 'this merchant has too many payments waiting to start; retry after Retry-After seconds';
    return () => {
      this.observer.refused(bound);
      throw new AppError('capacity_exceeded', message, undefined, retryAfterSeconds(waiting, this.rate.per_s));
    };
  }

  /** A payment was committed by this process: counted at once, and started now if the window has room. */
  accepted(merchant_id: string): void {
    this.backlog_.add(merchant_id, 1);
    this.kick();
  }

  /** Runs a dispatch soon; kicks that come while one is queued fold into it. */
  kick(): void {
    if (this.kick_queued || this.stopped) return;
    this.kick_queued = true;
    this.queue = this.queue.then(async () => {
      this.kick_queued = false;
      await this.safely('dispatch', () => this.dispatch());
    });
  }

  /** One full pass now (for tests and tools), after any pass under way. */
  async tick(): Promise<void> {
    const pass = this.queue.then(() => this.safely('tick', () => this.pass()));
    this.queue = pass;
    await pass;
  }

  /** Frees the slots of payments that left processing, recounts the backlog, dispatches. */
  private async pass(): Promise<void> {
    await this.refreshInflight(Date.now());
    this.backlog_.replace(await countBacklog(this.starter.db, this.starter.task_queue));
    this.rate.update(Date.now());
    await this.dispatch();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // Chained after any running dispatch: passes never overlap, and a slow one delays the next.
      this.queue = this.queue.then(() => this.safely('tick', () => this.pass())).then(() => this.schedule());
    }, this.settings.tick_ms);
  }

  private async safely(what: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.starter.log.warn({ err, task: `admission_${what}` }, 'admission pass failed; the next tick retries');
    }
  }

  private async refreshInflight(now_ms: number): Promise<void> {
    if (this.inflight_.size === 0) return;
    const rows = await paymentStatuses(this.starter.db, [...this.inflight_.keys()]);
    const status = new Map(rows.map((r) => [r.id, r.status]));
    const expiry_ms = INFLIGHT_EXPIRY_TARGETS * this.settings.latency_target_ms;
    for (const [id, started_ms] of this.inflight_) {
      const age_ms = now_ms - started_ms;
      const still = status.get(id) === 'processing' && age_ms < expiry_ms;
      // A payment still processing past the target is a late sample already: waiting for it to finish would react late.
      if (still && age_ms <= this.settings.latency_target_ms) continue;
      if (!still) this.inflight_.delete(id);
      this.window_.observe(age_ms, now_ms, this.limited);
    }
  }

  private async dispatch(): Promise<void> {
    this.limited = false;
    for (let round = 0; round < CLAIM_ROUNDS_MAX; round++) {
      if (this.backlog_.total === 0) return;
      const room = this.window_.size - this.inflight_.size;
      if (room <= 0) {
        this.limited = true;
        return;
      }
      const want = Math.min(room, START_BATCH_MAX);
      const { claimed, started } = await this.claimAndStart(want);
      // Fewer rows than asked: none left that no one else holds. Failed starts: the next tick retries.
      if (claimed < want || started < claimed) return;
    }
  }

  private async claimAndStart(limit: number): Promise<{ claimed: number; started: number }> {
    return await this.starter.db.transaction(async (trx) => {
      const rows = await claimUnstarted(trx, this.starter.task_queue, limit, this.servedWithBacklog());
      if (rows.length === 0) this.backlog_.replace([]); // the count was stale: nothing is waiting
      // In parallel: each start is a round trip to Temporal; the transaction's queries queue on its connection.
      const results = await Promise.allSettled(rows.map((row) => this.startOne(trx, row)));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) this.starter.log.warn({ err: failed[0]?.reason, failed: failed.length, claimed: rows.length }, 'payment workflow starts failed; the next tick retries');
      return { claimed: rows.length, started: rows.length - failed.length };
    });
  }

  /** Only merchants with payments waiting matter to the claim's order. */
  private servedWithBacklog(): Map<string, number> {
    return new Map([...this.served].filter(([merchant_id]) => this.backlog_.of(merchant_id) > 0));
  }

  private markServed(merchant_id: string, now_ms: number): void {
    this.served.delete(merchant_id); // re-inserted last: Map order doubles as least-recently-served order
    this.served.set(merchant_id, now_ms);
    if (this.served.size > SERVED_MERCHANTS_MAX) this.served.delete(this.served.keys().next().value as string);
  }

  private async startOne(trx: Knex.Transaction, row: ClaimedPayment): Promise<void> {
    const t0_ms = Date.now();
    await startPaymentWorkflow(this.starter, row, trx);
    const now_ms = Date.now();
    this.observer.started((row.age_ms + now_ms - t0_ms) / 1000);
    // Waiting payments (hosted checkout) hold no slot: they cost nothing until the buyer pays.
    if (row.status === 'processing') this.inflight_.set(row.id, now_ms);
    this.backlog_.add(row.merchant_id, -1);
    this.markServed(row.merchant_id, now_ms);
    this.rate.add(1);
  }
}
