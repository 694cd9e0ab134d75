import http from 'node:http';
import { withTemporalClient } from '../services/temporal-client';
import { NativeConnection, Worker, type ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { chargeLeaseMsOf, loadEnv } from '../config';
import { createLogger, type Logger } from '../logger';
import { createDb } from '../db';
import { createPspClient } from '../psp/client';
import { runPeriodically } from '../services/periodic';
import { createRulesRiskProvider, parseRiskRules } from '../domain/risk';
import { createActivities } from '../activities';
import { activityMetrics, createMetricsRegistry, errorClassOf, FailureMemory, UNSEEN_ERROR_CLASS } from '../metrics';
import { installSdkLogging } from './sdk-logging';
import { ensurePayoutSchedule, ensureReconSchedule } from './schedules';
import { parseCurrencyAmounts } from '../domain/money';
import { LedgerPoster } from '../ledger/poster';
import { expireHolds } from '../ledger/holds';

const HOLD_SWEEP_BATCH = 100;

/**
 * Counts attempts, retries (by the class of the failure that caused them) and failures (by error
 * class), and times every activity; /metrics shows them as activity_* series.
 */
function metricsInterceptor(registry: Registry): ActivityInterceptorsFactory {
  const m = activityMetrics(registry);
  const last_failure = new FailureMemory();
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const { activityType: activity, attempt, activityId, isLocal, workflowExecution } = ctx.info;
        // One activity execution across its attempts: the same workflow run and activity id.
        const key = `${workflowExecution?.workflowId ?? ''}/${workflowExecution?.runId ?? ''}/${isLocal ? 'local' : 'remote'}/${activityId}`;
        m.attempts.inc({ activity, retry: attempt > 1 ? 'yes' : 'no' });
        if (attempt > 1) m.retries.inc({ activity, error_class: last_failure.take(key) ?? UNSEEN_ERROR_CLASS });
        const end = m.duration.startTimer({ activity });
        try {
          const result = await next(input);
          end({ outcome: 'ok' });
          return result;
        } catch (err) {
          end({ outcome: 'error' });
          const error_class = errorClassOf(err);
          m.failures.inc({ activity, error_class });
          last_failure.remember(key, error_class);
          throw err;
        }
      },
    },
  });
}

function serveMetrics(registry: Registry, port: number, log: Logger): http.Server | null {
  if (port === 0) return null;
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  server.on('error', (err) => log.warn({ err, port }, 'worker metrics port unavailable'));
  server.listen(port, '127.0.0.1');
  return server;
}

async function main(): Promise<void> {
  const env = loadEnv();
  const log = createLogger('worker', env.LOG_LEVEL, { buffered: true });
  installSdkLogging(log, env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace' ? 'DEBUG' : 'INFO');
  const db = createDb(env.DATABASE_URL, env.DB_POOL_MAX);
  const psp = createPspClient({ base_url: env.PSP_URL, api_key: env.PSP_API_KEY, timeout_ms: env.PSP_TIMEOUT_MS });
  const risk = createRulesRiskProvider(parseRiskRules(env.RISK_MAX_AMOUNT, env.RISK_BLOCKED_BUYERS));
  const registry = createMetricsRegistry('worker');
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const bundle_path = process.env.WORKFLOW_BUNDLE_PATH;
  const worker = await Worker.create({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE,
    ...(bundle_path ? { workflowBundle: { codePath: bundle_path } } : { workflowsPath: require.resolve('../workflows') }),
    activities: createActivities({ db, psp, risk, log, ledger: new LedgerPoster(db), charge_lease_ms: chargeLeaseMsOf(env.PSP_TIMEOUT_MS), settlement_download_timeout_ms: env.RECON_DOWNLOAD_TIMEOUT_MS, payout_minimums: parseCurrencyAmounts(env.PAYOUT_MINIMUMS, 'PAYOUT_MINIMUMS') }),
    interceptors: { activity: [metricsInterceptor(registry)] },
  });
  // A short-lived client for start-up work (the worker itself uses a NativeConnection).
  await withTemporalClient(env, async (client) => {
    await ensureReconSchedule(client, { task_queue: env.TEMPORAL_TASK_QUEUE, cron: env.RECON_SCHEDULE_CRON, fix_wait_ms: env.RECON_FIX_WAIT_MS }, log);
    const poll = { initial_ms: env.PSP_POLL_INITIAL_MS, max_ms: env.PSP_POLL_MAX_MS };
    await ensurePayoutSchedule(client, { task_queue: env.TEMPORAL_TASK_QUEUE, cron: env.PAYOUT_SCHEDULE_CRON, poll }, log);
  });
  const metrics_server = serveMetrics(registry, env.WORKER_METRICS_PORT, log);
  const hold_sweep = runPeriodically('hold_expiry_sweep', env.HOLD_SWEEP_INTERVAL_MS, log, () => expireHolds(db, HOLD_SWEEP_BATCH));
  log.info({ task_queue: env.TEMPORAL_TASK_QUEUE, address: env.TEMPORAL_ADDRESS }, 'worker running');
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal, state: worker.getState() }, 'worker stopping');
    if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await worker.run(); // returns after shutdown() once in-flight tasks finish
  } finally {
    await hold_sweep.stop();
    metrics_server?.close();
    await connection.close();
    await db.destroy();
    log.info('worker stopped');
  }
}

main().catch((err: unknown) => {
  createLogger('worker').fatal({ err }, 'worker crashed');
  process.exit(1);
});
