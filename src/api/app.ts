import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Knex } from 'knex';
import type { Client } from '@temporalio/client';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger';
import { LIMITS, loadEnv } from '../config';
import { authenticate } from './auth';
import { errorHandler, notFound } from './errors';
import { healthRouter } from './health';
import { httpMetrics, paymentStatusGauge } from './metrics';
import { openApiDocument } from './openapi';
import { paymentsRouter, refundsRouter } from './payments';
import { payoutsRouter, sellersRouter } from './payouts';
import { disputesRouter } from './disputes';
import { parseCurrencyAmounts } from '../domain/money';
import { balancesRouter, ledgerRouter } from './ledger';
import { rateLimit } from './rate-limit';
import { requestLog } from './request-log';
import { webhooksRouter } from './webhooks';
import { opsRouter } from './ops';
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

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(helmet());
  app.use(requestLog(deps.log));
  app.use(httpMetrics(deps.registry));
  paymentStatusGauge(deps.registry, deps.db);

  app.use('/healthz', healthRouter(deps.db, deps.temporal));
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  const starter = starterDepsOf(deps);
  // Before /v1 and its JSON parser: the webhook route reads the raw bytes it verifies.
  app.use('/webhooks', webhooksRouter({ db: deps.db, temporal: deps.temporal, starter, log: deps.log, secrets: deps.webhook_secrets }));

  app.use('/v1/ops', opsRouter({ db: deps.db, temporal: deps.temporal, log: deps.log, admin_api_key: deps.admin_api_key, task_queue: deps.task_queue }));

  const v1 = express.Router();
  v1.use(authenticate(deps.db));
  v1.use(rateLimit(deps.rate_limit));
  v1.use(express.json({ limit: LIMITS.body_bytes_max, strict: true, type: () => true }));
  v1.use('/payments', paymentsRouter({ db: deps.db, log: deps.log, commission_bps: deps.commission_bps, starter, psp: deps.psp, admission: deps.admission }));
  v1.use('/refunds', refundsRouter({ db: deps.db }));
  v1.use('/disputes', disputesRouter({ db: deps.db, psp: deps.psp }));
  v1.use('/sellers', sellersRouter({ db: deps.db, psp: deps.psp, log: deps.log }));
  const payout_minimums = deps.payout_minimums ?? parseCurrencyAmounts(loadEnv({}).PAYOUT_MINIMUMS, 'PAYOUT_MINIMUMS');
  v1.use('/payouts', payoutsRouter({ db: deps.db, log: deps.log, psp: deps.psp, starter, payout_minimums }));
  v1.use('/balances', balancesRouter(deps.db));
  v1.use('/ledger', ledgerRouter(deps.db));
  app.use('/v1', v1);

  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}
