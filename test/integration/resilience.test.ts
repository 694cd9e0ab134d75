import { randomUUID } from 'node:crypto';
import { call, newMerchant, settled, startTestApi, waitForPayment, type TestApi } from '../support/stack';
import { freePort, sleep, spawnTs, waitForHttp, waitForPoller, type Service } from '../support/processes';

/**
 * Each test here runs its own worker (and sandbox PSP) processes on its own task queue, so it can
 * kill them or leave the PSP down without touching the suite's shared worker.
 */
const started: Service[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop('SIGKILL');
});

function stackEnv(task_queue: string, psp_port: number): Record<string, string> {
  return {
    TEMPORAL_TASK_QUEUE: task_queue,
    PSP_URL: `http://127.0.0.1:${psp_port}`,
    SANDBOX_PORT: String(psp_port),
    // Above the sandbox's 3 s latency below; a dead worker's charge lease (2 × this + 5 s) runs out sooner.
    PSP_TIMEOUT_MS: '4000',
  };
}

function spawn(name: string, entry: string, env: Record<string, string>): Service {
  const service = spawnTs(`${name}-${env.TEMPORAL_TASK_QUEUE}`, entry, env);
  started.push(service);
  return service;
}

async function statsAt(psp_url: string, order_id: string): Promise<{ charges_total: number; charges_succeeded: number }> {
  const res = await fetch(`${psp_url}/_sandbox/stats?order_reference=${order_id}`);
  return (await res.json()) as { charges_total: number; charges_succeeded: number };
}

async function until(what: string, check: () => Promise<boolean>, timeout_ms = 30_000): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting until ${what}`);
}

function checkout() {
  return {
    buyer: { id: `buyer_${randomUUID()}` },
    currency: 'USD',
    orders: [
      { seller_id: `seller_a_${randomUUID()}`, amount: '30.00' },
      { seller_id: `seller_b_${randomUUID()}`, amount: '12.00' },
    ],
    payment_method: 'tok_success',
  };
}

describe('crashes and outages', () => {
  let api: TestApi;
  let key: string;
  let task_queue: string;
  let psp_port: number;
  let env: Record<string, string>;

  beforeEach(async () => {
    task_queue = `resilience-${randomUUID()}`;
    psp_port = await freePort();
    env = stackEnv(task_queue, psp_port);
    api = await startTestApi({ task_queue });
    key = await newMerchant(api.db);
  });
  afterEach(async () => {
    await api.close();
  });

  it('charges each order once when the worker dies after the PSP holds the charge and before the ledger step', async () => {
    // The sandbox commits each charge, then waits 3 s before answering: a window to kill in.
    spawn('sandbox', 'packages/sandbox-psp/src/main.ts', { ...env, SANDBOX_LATENCY_MS: '3000' });
    await waitForHttp(`${env.PSP_URL}/healthz`);
    const first = spawn('worker', 'src/workers/main.ts', env);
    await waitForPoller(String(process.env.TEMPORAL_ADDRESS), task_queue);

    const created = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: checkout() });
    expect(created.status).toBe(201);
    const order_ids: string[] = created.body.orders.map((o: { id: string }) => o.id);
    await until('the sandbox holds both charges', async () => {
      const stats = await Promise.all(order_ids.map((id) => statsAt(String(env.PSP_URL), id)));
      return stats.every((s) => s.charges_total >= 1);
    });
    await first.stop('SIGKILL');
    const mid = await api.db('payment_order').whereIn('id', order_ids);
    expect(mid.every((o) => !o.ledger_updated && !o.wallet_updated)).toBe(true);

    spawn('worker-restarted', 'src/workers/main.ts', env);
    const done = await waitForPayment(api, key, created.body.id, (p) => settled(p) && p.orders.every((o: { ledger_updated: boolean }) => o.ledger_updated), 60_000);
    expect(done.status).toBe('succeeded');
    for (const id of order_ids) {
      expect(await statsAt(String(env.PSP_URL), id)).toEqual(expect.objectContaining({ charges_total: 1, charges_succeeded: 1 }));
      const txs = await api.db('ledger_transaction').where({ order_id: id });
      expect(txs).toHaveLength(1);
    }
  });

  it('keeps orders waiting and retrying while the PSP is down, then completes once it is back', async () => {
    const metrics_port = await freePort();
    spawn('worker', 'src/workers/main.ts', { ...env, WORKER_METRICS_PORT: String(metrics_port) }); // PSP_URL: nobody listens there yet
    await waitForPoller(String(process.env.TEMPORAL_ADDRESS), task_queue);
    const created = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: checkout() });
    expect(created.status).toBe(201);

    // The charge is a local activity: its retries show in the worker's metrics, not in Temporal.
    await until('the charge activity has been retried', async () => {
      const metrics = await fetch(`http://127.0.0.1:${metrics_port}/metrics`).then((r) => r.text(), () => '');
      const retries = /activity_attempts_total\{activity="chargeOrder",retry="yes",service="worker"\} (\d+)/.exec(metrics);
      return Number(retries?.[1] ?? 0) >= 2;
    });
    const waiting = await call(`${api.url}/v1/payments/${created.body.id}`, { key });
    expect(waiting.body.status).toBe('processing');

    spawn('sandbox', 'packages/sandbox-psp/src/main.ts', env);
    const done = await waitForPayment(api, key, created.body.id, settled, 60_000);
    expect(done.status).toBe('succeeded');
    for (const order of done.orders) expect((await statsAt(String(env.PSP_URL), order.id)).charges_total).toBe(1);
  });
});
