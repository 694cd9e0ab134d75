import type { Server } from 'node:http';
import { createDb, ensureDatabase, type Knex } from './db';
import { createLogger, type Logger } from './logger';
import { createSandboxApp, type Deps } from './app';
import { chargeEvent } from './charges';
import { loadSandboxConfig } from './config';
import { FaultKnobState } from './faults';
import { createSchema } from './store';
import { decideDuePayouts } from './money-out';
import { startBackgroundLoop, WebhookKnobState, type BackgroundLoop } from './webhooks';

/** Entry point of the sandbox PSP process: `tsx packages/sandbox-psp/src/main.ts`. */

const DB_POOL_MAX = 10;
// In-flight requests (a latency-knob POST can take up to a minute, a timeout-fault one is held
// for minutes) get this long to finish on shutdown; after that their connections are cut so
// SIGTERM always ends the process.
const SHUTDOWN_GRACE_MS = 5_000;

async function listen(app: ReturnType<typeof createSandboxApp>, port: number, host: string): Promise<Server> {
  return await new Promise((resolve, reject) => {
    const server = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(server)));
  });
}

function boundPort(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  return address.port;
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const cutoff = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  await closed;
  clearTimeout(cutoff);
}

function onShutdownSignal(server: Server, db: Knex, loop: BackgroundLoop, log: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'sandbox-psp stopping');
    void closeServer(server)
      .then(() => loop.stop())
      .then(() => db.destroy())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'sandbox-psp shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(): Promise<void> {
  const log = createLogger('sandbox-psp', { buffered: true });
  const config = loadSandboxConfig();
  await ensureDatabase(config.database_url, log);
  const db = createDb(config.database_url, DB_POOL_MAX, log);
  await createSchema(db);
  const knobs = new WebhookKnobState(config.webhook_knobs);
  // The public URL needs the bound port (SANDBOX_PORT may be 0), so it is filled in after listen.
  const faults = new FaultKnobState(config.fault_knobs);
  const deps: Deps = { db, config, log, knobs, faults, public_url: config.public_url ?? '' };
  const server = await listen(createSandboxApp(deps), config.port, config.host);
  // Loopback, not SANDBOX_HOST: a bind address such as 0.0.0.0 is no URL a browser can open.
  deps.public_url = config.public_url ?? `http://127.0.0.1:${boundPort(server)}`;
  const loop = startBackgroundLoop(deps, log, (charge) => chargeEvent(charge, deps), [() => decideDuePayouts(deps)]);
  onShutdownSignal(server, db, loop, log);
  const mode = config.ignore_idempotency ? 'ignore_idempotency' : 'normal';
  const fields = {
    port: boundPort(server),
    host: config.host,
    mode,
    fault_knobs: config.fault_knobs,
    review_delay_ms: config.review_delay_ms,
    payout_delay_ms: config.payout_delay_ms,
    webhook_knobs: config.webhook_knobs,
  };
  log.info(fields, 'sandbox-psp listening');
}

main().catch((err: unknown) => {
  createLogger('sandbox-psp', { buffered: false }).fatal({ err }, 'sandbox-psp failed to start');
  process.exit(1);
});
