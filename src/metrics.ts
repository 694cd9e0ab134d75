import { ApplicationFailure } from '@temporalio/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PspError } from './psp/client';
import { FAILURE_TYPES } from './workflows/contract';

/** One registry per process; each process exposes its own /metrics. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The closed set of `error_class` label values: the ApplicationFailure types our activities throw
 * (`Psp_<kind>` from src/activities/psp-call.ts, `ChargeUndecided`, `ChargeInFlight`), a raw PspError by its kind, and
 * the error names that reach an activity boundary (database, pool, validation, cancellation, a
 * plain Error such as a failed assertion). Anything else is `other`, so a new error type can
 * never grow the number of series on its own.
 */
export const ERROR_CLASSES = [
  FAILURE_TYPES.psp_definitive,
  FAILURE_TYPES.psp_retryable,
  FAILURE_TYPES.psp_unknown_outcome,
  FAILURE_TYPES.charge_undecided,
  FAILURE_TYPES.charge_in_flight,
  FAILURE_TYPES.dispute_before_capture,
  'CancelledFailure',
  'DatabaseError',
  'KnexTimeoutError',
  'ZodError',
  'Error',
  'other',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** `error_class` of a retry whose previous attempt failed out of this process's sight (a timeout, another worker, a restart). */
export const UNSEEN_ERROR_CLASS = 'unseen';

const KNOWN_CLASSES: ReadonlySet<string> = new Set(ERROR_CLASSES);

function known(name: unknown): ErrorClass | null {
  return typeof name === 'string' && KNOWN_CLASSES.has(name) ? (name as ErrorClass) : null;
}

/** The bounded `error_class` label of an error thrown by an activity. */
export function errorClassOf(err: unknown): ErrorClass {
  if (err instanceof ApplicationFailure) return known(err.type) ?? 'other';
  if (err instanceof PspError) return known(`Psp_${err.kind}`) ?? 'other';
  if (!(err instanceof Error)) return 'other';
  // pg's DatabaseError carries the protocol message name ('error') in `name`: ask the class too.
  return known(err.name) ?? known(err.constructor.name) ?? 'other';
}

/**
 * Remembers, per activity execution, the class of its last failed attempt in this process, so the
 * next attempt's retry can be labelled with its cause. Bounded: the oldest entries go first (a
 * failure that is never retried — non-retryable, out of attempts — is simply forgotten later).
 */
export class FailureMemory {
  private readonly classes = new Map<string, ErrorClass>();

  constructor(private readonly capacity = 10_000) {}

  remember(key: string, error_class: ErrorClass): void {
    this.classes.delete(key);
    this.classes.set(key, error_class);
    while (this.classes.size > this.capacity) {
      const oldest = this.classes.keys().next().value;
      if (oldest === undefined) break;
      this.classes.delete(oldest);
    }
  }

  /** The remembered class, once: it belongs to the one retry that follows the failure. */
  take(key: string): ErrorClass | undefined {
    const error_class = this.classes.get(key);
    this.classes.delete(key);
    return error_class;
  }

  get size(): number {
    return this.classes.size;
  }
}

export function activityMetrics(registry: Registry) {
  return {
    attempts: new Counter({
      name: 'activity_attempts_total',
      help: 'Activity executions started, by activity type and whether it was a retry',
      labelNames: ['activity', 'retry'] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: 'activity_retries_total',
      help: `Activity attempts after the first, by activity type and the error class of the failed attempt before it (${UNSEEN_ERROR_CLASS}: it failed out of this process's sight, e.g. timed out)`,
      labelNames: ['activity', 'error_class'] as const,
      registers: [registry],
    }),
    failures: new Counter({
      name: 'activity_failures_total',
      help: 'Activity attempts that ended with an error, by activity type and error class (ApplicationFailure type or error name; other: anything else)',
      labelNames: ['activity', 'error_class'] as const,
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
