import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Knex } from 'knex';
import type { Client } from '@temporalio/client';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger';
import { LIMITS, loadEnv } from '../config';
import { authenticate, authenticateAdmin } from './auth';
import { errorHandler, notFound } from './errors';
import { httpMetrics, paymentStatusGauge } from './metrics';
import { apiReference, DOCS_CSP, DOCS_PATH, openApiDocument } from './openapi';
import { parseCurrencyAmounts } from '../domain/money';
import { rateLimit } from './rate-limit';
import { requestLog } from './request-log';
import { routerFor, type ApiDeps } from './registry';
import { API_ROUTES } from './routes';
import type { WaitTimings } from '../config';
import type { PspClient } from '../psp/client';
import type { StarterDeps } from '../services/workflow-starter';
import type { Admission } from '../services/admission';

export interface AppDeps {
  db: Knex;
  temporal: Client;
  task_queue: string;
  log: Logger;
  registry: Registry;
  commission_bps: number;
  rate_limit: { per_s: number; burst: number };
  psp: PspClient;
  timings: WaitTimings;
  webhook_secrets: readonly string[];
  admin_api_key?: string;
  /** The smallest payout per currency (PAYOUT_MINIMUMS); defaults to the env default. */
  payout_minimums?: ReadonlyMap<string, bigint>;
  /** Starts payment workflows and guards the door (src/services/admission.ts); its owner starts and stops its tick. */
  admission: Admission;
}

export function starterDepsOf(deps: Pick<AppDeps, 'db' | 'temporal' | 'task_queue' | 'log' | 'timings'>): StarterDeps {
  return { db: deps.db, temporal: deps.temporal, task_queue: deps.task_queue, log: deps.log, timings: deps.timings };
}

/** What every route handler may use (src/api/registry.ts), from the app's own deps. */
function apiDepsOf(deps: AppDeps): ApiDeps {
  const payout_minimums = deps.payout_minimums ?? parseCurrencyAmounts(loadEnv({}).PAYOUT_MINIMUMS, 'PAYOUT_MINIMUMS');
  return { ...deps, payout_minimums, starter: starterDepsOf(deps), openapi: openApiDocument(API_ROUTES) };
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(securityHeaders());
  app.use(requestLog(deps.log));
  app.use(httpMetrics(deps.registry));
  paymentStatusGauge(deps.registry, deps.db);

  const api = apiDepsOf(deps);
  app.use(DOCS_PATH, ...apiReference(api.openapi));
  app.use(routerFor(API_ROUTES, 'none', '', api));
  // Before /v1 and its JSON parser: the webhook route reads the raw bytes it verifies.
  app.use(routerFor(API_ROUTES, 'webhook_signature', '', api));
  app.use('/v1/ops', authenticateAdmin(deps.admin_api_key), jsonBody(), routerFor(API_ROUTES, 'operator', '/v1/ops', api));
  app.use('/v1', authenticate(deps.db), rateLimit(deps.rate_limit), jsonBody(), routerFor(API_ROUTES, 'merchant', '/v1', api));

  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}

/** helmet everywhere; the API reference page gets the content policy it needs (src/api/openapi.ts). */
function securityHeaders(): RequestHandler {
  const strict = helmet();
  const docs = helmet({ contentSecurityPolicy: { useDefaults: false, directives: DOCS_CSP } });
  return (req, res, next) => (req.path === DOCS_PATH || req.path.startsWith(`${DOCS_PATH}/`) ? docs : strict)(req, res, next);
}

/** Any content type is read as JSON (clients forget the header); strict: objects and arrays only. */
const jsonBody = () => express.json({ limit: LIMITS.body_bytes_max, strict: true, type: () => true });
