import { Client, Connection } from '@temporalio/client';
import { loadEnv } from '../config';
import { createLogger } from '../logger';
import { createDb } from '../db';
import { createMetricsRegistry } from '../metrics';
import { runRelay } from '../services/workflow-starter';
import { createApp } from './app';

async function main(): Promise<void> {
  const env = loadEnv();
  const log = createLogger('api', env.LOG_LEVEL);
  const db = createDb(env.DATABASE_URL, env.DB_POOL_MAX);
  // lazy: the API serves GETs and accepts payments while Temporal is down (the relay catches up).
  const connection = Connection.lazy({ address: env.TEMPORAL_ADDRESS });
  const temporal = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE });
  const app = createApp({
    db,
    temporal,
    task_queue: env.TEMPORAL_TASK_QUEUE,
    log,
    registry: createMetricsRegistry('api'),
    commission_bps: env.COMMISSION_BPS,
    rate_limit: { per_s: env.RATE_LIMIT_PER_S, burst: env.RATE_LIMIT_BURST },
  });
  const relay = runRelay({ db, temporal, task_queue: env.TEMPORAL_TASK_QUEUE, log }, { interval_ms: env.RELAY_INTERVAL_MS, grace_ms: env.RELAY_GRACE_MS });
  const server = app.listen(env.API_PORT, env.API_HOST, () => log.info({ port: env.API_PORT, host: env.API_HOST }, 'api listening'));

  const shutdown = (signal: string) => {
    log.info({ signal }, 'api stopping');
    server.close(() => {
      void relay
        .stop()
        .then(() => connection.close())
        .then(() => db.destroy())
        .then(() => process.exit(0));
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  createLogger('api').fatal({ err }, 'api crashed');
  process.exit(1);
});
