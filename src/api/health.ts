import type { Knex } from 'knex';
import type { Client } from '@temporalio/client';
import { defineRoute, type RouteDef } from './registry';
import { HealthResource, MetricsText, OpenApiDocumentResource } from './resources';

const CHECK_TIMEOUT_MS = 2_000;

async function withTimeout<T>(work: Promise<T>, timeout_ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout_ms} ms`)), timeout_ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function probe(check: () => Promise<unknown>): Promise<{ ok: boolean; error?: string }> {
  try {
    await check();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** 200 when PostgreSQL and Temporal both answer, else 503 naming the one that did not. */
async function health(db: Knex, temporal: Client) {
  const [postgres, temporal_check] = await Promise.all([
    probe(() => withTimeout(db.raw('select 1'), CHECK_TIMEOUT_MS)),
    // A gRPC deadline, not a race: the call itself ends, leaving no retry running behind us.
    probe(() => temporal.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () => temporal.workflowService.getSystemInfo({}))),
  ]);
  const ok = postgres.ok && temporal_check.ok;
  return { ok, body: { status: ok ? 'ok' : 'degraded', checks: { postgres, temporal: temporal_check } } };
}

const healthRoute = defineRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'getHealth',
  tag: 'service',
  summary: 'PostgreSQL and Temporal reachability',
  auth: 'none',
  success: { status: 200, description: 'Healthy', schema: HealthResource },
  errors: { 503: 'A dependency is down: the body names it' },
  error_schema: HealthResource,
  async handle({ deps, res }) {
    const { ok, body } = await health(deps.db, deps.temporal);
    res.status(ok ? 200 : 503).json(body);
  },
});

const metricsRoute = defineRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  tag: 'service',
  summary: 'Prometheus metrics',
  auth: 'none',
  success: { status: 200, description: 'Metrics text', schema: MetricsText, content_type: 'text/plain' },
  errors: {},
  async handle({ deps, res }) {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  },
});

const documentRoute = defineRoute({
  method: 'get',
  path: '/openapi.json',
  operationId: 'getOpenApiDocument',
  tag: 'service',
  summary: 'This OpenAPI 3.1 document (rendered at /docs)',
  auth: 'none',
  success: { status: 200, description: 'The document', schema: OpenApiDocumentResource },
  errors: {},
  async handle({ deps, res }) {
    res.json(deps.openapi);
  },
});

/** Health, metrics and the API's own description: no key, for probes, Prometheus and people. */
export const SERVICE_ROUTES: readonly RouteDef[] = [healthRoute, metricsRoute, documentRoute];
