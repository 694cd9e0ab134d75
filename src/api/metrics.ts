import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { PAYMENT_STATUSES } from '../domain/status';
import type { AdmissionObserver, AdmissionView } from '../services/admission';
import { readMonitoringSnapshot, type DatabaseSnapshot } from '../services/monitoring';

export function httpMetrics(registry: Registry): RequestHandler {
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'API request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return (req, res, next) => {
    const end = latency.startTimer();
    res.on('finish', () => {
      // The matched route pattern, not the raw path, keeps label cardinality bounded.
      const route = (req.route as { path?: string } | undefined)?.path;
      end({ method: req.method, route: route === undefined ? 'unmatched' : `${req.baseUrl}${route}`, status: String(res.statusCode) });
    });
    next();
  };
}

export interface DatabaseGaugeOptions {
  /** PostgreSQL's statement_timeout for the scrape queries; the whole read (pool wait included) gets this plus a margin. */
  timeout_ms?: number;
}

const DEFAULT_TIMEOUT_MS = 2_000;
const POOL_WAIT_MARGIN_MS = 500;

/**
 * One database read shared by every gauge of a scrape (prom-client collects them concurrently),
 * and by any scrape that comes while it is still running: a slow database never piles up queries.
 * Each scrape waits at most the deadline; after that it reports the read as failed.
 */
function snapshotReader(db: Knex, timeout_ms: number): () => Promise<DatabaseSnapshot | null> {
  let running: Promise<DatabaseSnapshot | null> | null = null;
  return async () => {
    if (running === null) {
      const read = readMonitoringSnapshot(db, timeout_ms).catch(() => null);
      running = read;
      void read.finally(() => {
        if (running === read) running = null;
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeout_ms + POOL_WAIT_MARGIN_MS);
    });
    try {
      return await Promise.race([running, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The gauges read from PostgreSQL at scrape time, so every API process reports the same truth:
 * payments by status and what an operator must look at (parked orders, the oldest payment still
 * open, PSP webhooks not applied or matching nothing). The read is bounded (statement timeout and
 * a deadline): when it fails, `payments_metrics_db_up` is 0 and the other gauges show no number
 * (NaN, or no series for the labelled one) rather than a stale or made-up one.
 */
export function databaseGauges(registry: Registry, db: Knex, options: DatabaseGaugeOptions = {}): void {
  const read = snapshotReader(db, options.timeout_ms ?? DEFAULT_TIMEOUT_MS);
  new Gauge({
    name: 'payments',
    help: 'Payments by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const snapshot = await read();
      this.reset();
      if (snapshot === null) return;
      for (const status of PAYMENT_STATUSES) this.set({ status }, 0);
      for (const [status, count] of snapshot.payments_by_status) this.set({ status }, count);
    },
  });
  const single = (name: string, help: string, value: (s: DatabaseSnapshot) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const snapshot = await read();
        this.set(snapshot === null ? Number.NaN : value(snapshot));
      },
    });
  new Gauge({
    name: 'payments_metrics_db_up',
    help: 'Whether the scrape-time PostgreSQL read behind the payments_* gauges answered in time (1) or not (0)',
    registers: [registry],
    async collect() {
      this.set((await read()) === null ? 0 : 1);
    },
  });
  single('payments_orders_needs_attention', 'Orders parked as needs_attention (PSP retries ran out) waiting for an operator', (s) => s.orders_needs_attention);
  single(
    'payments_oldest_open_payment_age_seconds',
    'Age of the oldest payment not yet succeeded, failed, partially_succeeded or canceled (0 when none is open)',
    (s) => s.oldest_open_payment_age_s,
  );
  single('payments_psp_events_unapplied', 'PSP webhook events routed to an order or payment and not yet applied', (s) => s.psp_events_unapplied);
  new Gauge({
    name: 'payments_recon_items',
    help: 'Reconciliation differences by class (missing_internally, missing_at_psp, amount_mismatch, …) and queue status (open, resolved, written_off)',
    labelNames: ['class', 'status'] as const,
    registers: [registry],
    async collect() {
      const snapshot = await read();
      this.reset();
      if (snapshot === null) return;
      for (const r of snapshot.recon_items) this.set({ class: r.class, status: r.status }, r.count);
    },
  });
  single('payments_recon_last_success_timestamp_seconds', 'When the last successful reconciliation run finished (0: never)', (s) => s.recon_last_success_s ?? 0);
  single('payments_psp_events_unknown', 'PSP webhook events that matched no order or payment here (kept for operators)', (s) => s.psp_events_unknown);
}

/** Kept for src/api/app.ts: registers every scrape-time database gauge (see databaseGauges). */
export function paymentStatusGauge(registry: Registry, db: Knex, options: DatabaseGaugeOptions = {}): void {
  databaseGauges(registry, db, options);
}

/**
 * Admission control (src/services/admission.ts), as this API process sees it: the backlog of
 * payments accepted but not started (its task queue; every process counts the same rows each
 * tick, so rules take max()), its in-flight payments and window, the lag from acceptance to
 * workflow start, and the 429 capacity_exceeded answers by the bound that was full.
 */
export function admissionMetrics(registry: Registry, view: AdmissionView): AdmissionObserver {
  const gauge = (name: string, help: string, value: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  gauge('payments_start_backlog', 'Payments accepted whose workflow has not started yet (this task queue, as last counted by this process)', () => view.backlog());
  gauge('payments_start_inflight', 'Payments this process started that are still processing (bounded by payments_start_window)', () => view.inflight());
  gauge('payments_start_window', "This process's bound on in-flight payments, adapted to how long payments take to leave processing", () => view.window());
  const lag = new Histogram({
    name: 'payments_start_lag_seconds',
    help: "From a payment's acceptance (created_at) to its workflow start by the dispatcher",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'payments_capacity_exceeded_total',
    help: 'POST /v1/payments answered 429 capacity_exceeded, by the bound that was full (backlog: all merchants; merchant_backlog: this merchant)',
    labelNames: ['bound'] as const,
    registers: [registry],
  });
  return {
    started: (lag_s) => lag.observe(lag_s),
    refused: (bound) => refused.inc({ bound }),
  };
}
