import { Client, Connection } from '@temporalio/client';
import { LIMITS, admissionSettingsOf, loadEnv, parseWebhookSecrets, waitTimingsOf } from '../config';
import { expireIdempotencyKeys } from '../services/idempotency';
import { createPspClient } from '../psp/client';
import { runPeriodically } from '../services/periodic';
import { sweepUnappliedEvents } from '../services/psp-events';
import { createLogger } from '../logger';
import { createDb } from '../db';
import { createMetricsRegistry } from '../metrics';
import { runRelay } from '../services/workflow-starter';
import { Admission } from '../services/admission';
import { admissionMetrics } from './metrics';
import { parseCurrencyAmounts } from '../domain/money';
import { createApp, starterDepsOf } from './app';

const TEST_WEBHOOK_SECRET = 'whsec_test_sandbox';
const SHUTDOWN_GRACE_MS = 5_000;

async function main(): Promise<void> {
  const env = loadEnv();
  const log = createLogger('api', env.LOG_LEVEL, { buffered: true });
  const db = createDb(env.DATABASE_URL, env.DB_POOL_MAX);
  // lazy: the API serves GETs and accepts payments while Temporal is down (the relay catches up).
  const connection = Connection.lazy({ address: env.TEMPORAL_ADDRESS });
  const temporal = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE });
  const webhook_secrets = parseWebhookSecrets(env.PSP_WEBHOOK_SECRETS);
  // The sandbox's well-known secret signs nothing real: refuse it where real money moves.
  if (env.NODE_ENV === 'production' && webhook_secrets.includes(TEST_WEBHOOK_SECRET)) throw new Error('invalid environment: PSP_WEBHOOK_SECRETS holds the sandbox test secret in production');
  const registry = createMetricsRegistry('api');
  const timings = waitTimingsOf(env);
  const starter = starterDepsOf({ db, temporal, task_queue: env.TEMPORAL_TASK_QUEUE, log, timings });
  // The one way payment workflows start: paced to what Temporal and the workers sustain.
  const admission = new Admission(starter, admissionSettingsOf(env), (view) => admissionMetrics(registry, view)).start();
  const deps = {
    db,
    temporal,
    task_queue: env.TEMPORAL_TASK_QUEUE,
    log,
    registry,
    commission_bps: env.COMMISSION_BPS,
    rate_limit: { per_s: env.RATE_LIMIT_PER_S, burst: env.RATE_LIMIT_BURST },
    psp: createPspClient({ base_url: env.PSP_URL, api_key: env.PSP_API_KEY, timeout_ms: env.PSP_TIMEOUT_MS }),
    timings,
    webhook_secrets,
    admin_api_key: env.ADMIN_API_KEY,
    payout_minimums: parseCurrencyAmounts(env.PAYOUT_MINIMUMS, 'PAYOUT_MINIMUMS'),
    admission,
  };
  const app = createApp(deps);
  const relay = runRelay(starter, { interval_ms: env.RELAY_INTERVAL_MS, grace_ms: env.RELAY_GRACE_MS });
  const key_sweeper = runPeriodically('idempotency_key_expiry', env.IDEMPOTENCY_SWEEP_INTERVAL_MS, log, () => expireIdempotencyKeys(db, env.IDEMPOTENCY_KEY_TTL_MS, LIMITS.idempotency_sweep_batch_max));
  const sweeper = runPeriodically('psp_event_sweep', env.WEBHOOK_SWEEP_INTERVAL_MS, log, () => sweepUnappliedEvents({ db, temporal, starter, log }, env.WEBHOOK_SWEEP_MIN_AGE_MS));
  const server = app.listen(env.API_PORT, env.API_HOST, () => log.info({ port: env.API_PORT, host: env.API_HOST }, 'api listening'));

  const shutdown = (signal: string) => {
    log.info({ signal }, 'api stopping');
    server.close(() => {
      clearTimeout(cutoff);
      void Promise.all([admission.stop(), relay.stop(), sweeper.stop(), key_sweeper.stop()])
        .then(() => connection.close())
        .then(() => db.destroy())
        .then(() => process.exit(0));
    });
    // Keep-alive connections would hold close() open for ever while clients keep sending: idle
    // ones go now, busy ones get SHUTDOWN_GRACE_MS to finish their request (found by the chaos run).
    server.closeIdleConnections();
    const cutoff = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  createLogger('api').fatal({ err }, 'api crashed');
  process.exit(1);
});
