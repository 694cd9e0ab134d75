import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { loadEnv, type Env } from '../config';
import { createLogger } from '../logger';
import { createDb, ensureDatabase, migrateLatest } from '../db';
import { ensureMerchantWithKey } from '../services/merchants';
import { ensureTemporalCli, startDevServer, waitForTemporal } from './temporal';
import { prefixOutput, stopProcess, supervise, type Supervised } from './supervisor';
import { TERMINAL_PAYMENT_STATUSES } from '../domain/status';

/**
 * `npm start`: the whole local stack in one terminal — Temporal dev server (SQLite under .data/),
 * sandbox PSP, worker and API, each supervised — then one demo payment end to end.
 */
const ROOT = path.resolve(__dirname, '../..');
const log = createLogger('start');
const DEMO_TIMEOUT_MS = 120_000;

async function startTemporal(env: Env): Promise<ChildProcess | null> {
  if (process.env.TEMPORAL_ADDRESS !== undefined) {
    log.info({ address: env.TEMPORAL_ADDRESS }, 'TEMPORAL_ADDRESS is set: using that cluster, starting none');
    return null;
  }
  try {
    await waitForTemporal(env.TEMPORAL_ADDRESS, 1_000);
    log.info({ address: env.TEMPORAL_ADDRESS }, 'a Temporal server already answers there: reusing it');
    return null;
  } catch {
    // nothing there yet: start our own
  }
  const cli = ensureTemporalCli((m) => log.info(m));
  const port = Number(env.TEMPORAL_ADDRESS.split(':').pop());
  const ui_port = Number(new URL(env.TEMPORAL_UI_URL).port || 8233);
  const child = startDevServer({ cli, port, ui_port, db_filename: path.join(ROOT, '.data/temporal.db'), pipe: true });
  prefixOutput('temporal', child);
  await waitForTemporal(env.TEMPORAL_ADDRESS);
  log.info({ address: env.TEMPORAL_ADDRESS, ui: env.TEMPORAL_UI_URL }, 'temporal dev server ready');
  return child;
}

async function waitHealthy(url: string, timeout_ms: number): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} not healthy after ${timeout_ms} ms`);
}

async function demoPayment(env: Env): Promise<void> {
  const api = `http://${env.API_HOST}:${env.API_PORT}`;
  const headers = { authorization: `Bearer ${env.DEMO_MERCHANT_API_KEY}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() };
  const body = {
    buyer: { id: 'demo_buyer', email: 'buyer@example.com' },
    currency: 'USD',
    orders: [
      { seller_id: 'demo_seller_books', amount: '42.00' },
      { seller_id: 'demo_seller_lamps', amount: '17.50' },
    ],
    payment_method: 'tok_success',
  };
  const created = await fetch(`${api}/v1/payments`, { method: 'POST', headers, body: JSON.stringify(body) });
  const payment = (await created.json()) as { id: string; status: string; workflow_id: string };
  if (created.status !== 201) throw new Error(`demo payment refused: ${created.status} ${JSON.stringify(payment)}`);
  const deadline = Date.now() + DEMO_TIMEOUT_MS;
  let current = payment;
  while (!TERMINAL.has(current.status) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    current = (await (await fetch(`${api}/v1/payments/${payment.id}`, { headers })).json()) as typeof payment;
  }
  const link = `${env.TEMPORAL_UI_URL}/namespaces/${env.TEMPORAL_NAMESPACE}/workflows/${payment.workflow_id}`;
  process.stdout.write(`\n  demo payment ${payment.id}: ${current.status}\n  Temporal UI: ${link}\n  API: ${api} (key ${env.DEMO_MERCHANT_API_KEY}), reference ${api}/docs\n\n`);
  if (current.status !== 'succeeded') throw new Error(`demo payment ended ${current.status}`);
  await demoHostedCheckout(api, headers);
}

const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_PAYMENT_STATUSES);

/** A second payment without a token: its PSP-hosted page is printed for a person to try. */
async function demoHostedCheckout(api: string, headers: Record<string, string>): Promise<void> {
  const body = {
    buyer: { id: 'demo_buyer' },
    currency: 'USD',
    orders: [{ seller_id: 'demo_seller_books', amount: '9.99' }],
    return_url: `${api}/healthz`,
  };
  const created = await fetch(`${api}/v1/payments`, { method: 'POST', headers: { ...headers, 'idempotency-key': randomUUID() }, body: JSON.stringify(body) });
  const payment = (await created.json()) as { id: string; checkout_url?: string };
  if (created.status !== 201) throw new Error(`demo checkout refused: ${created.status} ${JSON.stringify(payment)}`);
  process.stdout.write(`  hosted checkout ${payment.id}: open ${payment.checkout_url} and pay with test card 4242 4242 4242 4242

`);
}

const running: { temporal: ChildProcess | null; children: Supervised[] } = { temporal: null, children: [] };

async function stopAll(): Promise<void> {
  // All at once: each stop() marks its child as stopping before any exit can trigger a restart
  // (Ctrl-C signals the whole process group, so children may already be exiting).
  await Promise.all(running.children.map((child) => child.stop()));
  await stopProcess(running.temporal);
}

let stopping: Promise<void> | null = null;

/** Once, whatever asks first: Ctrl-C reaches npm and us together, and npm then sends SIGTERM too. */
function shutdown(signal: string, code: number): Promise<void> {
  stopping ??= (async () => {
    log.info({ signal }, 'stopping every child');
    await stopAll();
    process.exit(code);
  })();
  return stopping;
}

async function main(): Promise<void> {
  process.once('SIGINT', () => void shutdown('SIGINT', 0));
  process.once('SIGTERM', () => void shutdown('SIGTERM', 0));
  const started_ms = Date.now();
  const env = loadEnv();
  if (env.NODE_ENV === 'production') {
    throw new Error('npm start runs the local demo stack with a demo merchant key; it refuses NODE_ENV=production');
  }
  await ensureDatabase(env.DATABASE_URL);
  const db = createDb(env.DATABASE_URL, 2);
  await migrateLatest(db);
  await ensureMerchantWithKey(db, 'Demo merchant', env.DEMO_MERCHANT_API_KEY);
  await db.destroy();

  running.temporal = await startTemporal(env);
  // The sandbox sends its webhooks to this API, as a PSP account's dashboard setting would.
  const webhook_url = `http://${env.API_HOST}:${env.API_PORT}/webhooks/psp`;
  const child_env = { ...process.env, TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS, SANDBOX_WEBHOOK_URL: process.env.SANDBOX_WEBHOOK_URL ?? webhook_url };
  running.children.push(
    supervise('sandbox-psp', 'packages/sandbox-psp/src/main.ts', child_env, log),
    supervise('worker', 'src/workers/main.ts', child_env, log),
    supervise('api', 'src/api/main.ts', child_env, log),
  );

  await waitHealthy(`http://${env.API_HOST}:${env.API_PORT}/healthz`, 120_000);
  await demoPayment(env);
  log.info({ elapsed_ms: Date.now() - started_ms }, 'stack up and demo payment succeeded; Ctrl-C to stop');
}

main().catch((err: unknown) => {
  log.fatal({ err: (err as Error).message }, 'npm start failed');
  void shutdown('startup-failure', 1);
});
