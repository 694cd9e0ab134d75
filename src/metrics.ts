import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process; each process exposes its own /metrics. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function activityMetrics(registry: Registry) {
  return {
    attempts: new Counter({
      name: 'activity_attempts_total',
      help: 'Activity executions started, by activity type and whether it was a retry',
      labelNames: ['activity', 'retry'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'activity_duration_seconds',
      help: 'Activity execution time',
      labelNames: ['activity', 'outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}
