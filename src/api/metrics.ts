import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { Gauge, Histogram, type Registry } from 'prom-client';
import { PAYMENT_STATUSES } from '../domain/status';

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

/** Payments by status, read from PostgreSQL at scrape time so every API process reports the truth. */
export function paymentStatusGauge(registry: Registry, db: Knex): void {
  new Gauge({
    name: 'payments',
    help: 'Payments by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const rows = await db('payment_event').select('status').count<{ status: string; count: string }[]>('* as count').groupBy('status');
      for (const status of PAYMENT_STATUSES) this.set({ status }, 0);
      for (const row of rows) this.set({ status: row.status }, Number(row.count));
    },
  });
}
