import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { PaymentWorkflowV7, SA } from '../../src/workflows';
import { call, newMerchant, settled, startTestApi, waitForPayment, type TestApi, useTestApi } from '../support/stack';
import { freePort } from '../support/processes';

let api: TestApi;
let key: string;
useTestApi((a, k) => {
  api = a;
  key = k;
});

const body = (amounts = ['10.00']) => ({
  buyer: { id: `buyer_${randomUUID()}` },
  currency: 'USD',
  orders: amounts.map((amount, i) => ({ seller_id: `seller_${i}`, amount })),
  payment_method: 'tok_success',
});

/** An API whose Temporal or PostgreSQL address is a closed port: that dependency is really down. */
async function apiWith(down: 'temporal' | 'postgres') {
  const dead = `127.0.0.1:${await freePort()}`;
  return await startTestApi({
    rate_limit: { per_s: 100, burst: 100 },
    log_level: 'silent',
    ...(down === 'postgres' ? { database_url: `postgres://postgres@${dead}/none` } : { temporal_address: dead }),
  });
}

describe('health', () => {
  it('answers 200 when PostgreSQL and Temporal are up', async () => {
    const reply = await call(`${api.url}/healthz`);
    expect(reply.status).toBe(200);
    expect(reply.body.checks).toEqual({ postgres: { ok: true }, temporal: { ok: true } });
  });

  it.each(['temporal', 'postgres'] as const)('answers 503 when %s is down', async (down) => {
    const broken = await apiWith(down);
    try {
      const reply = await call(`${broken.url}/healthz`);
      expect(reply.status).toBe(503);
      expect(reply.body.checks[down].ok).toBe(false);
    } finally {
      await broken.close();
    }
  });
});

describe('operations endpoints', () => {
  it('exposes request latency and payments by status on /metrics', async () => {
    await call(`${api.url}/v1/payments`, { key });
    const reply = await call(`${api.url}/metrics`);
    expect(reply.status).toBe(200);
    expect(reply.body).toContain('http_request_duration_seconds_bucket');
    expect(reply.body).toMatch(/payments\{status="succeeded",service="api"\} \d+/);
  });

  it('serves an OpenAPI 3.1 document generated from the request schemas', async () => {
    const reply = await call(`${api.url}/openapi.json`);
    expect(reply.status).toBe(200);
    expect(reply.body.openapi).toBe('3.1.0');
    expect(Object.keys(reply.body.paths)).toEqual(expect.arrayContaining(['/v1/payments', '/v1/payments/{id}', '/v1/payments/{id}/refunds', '/v1/refunds/{id}', '/v1/ops/recon/runs']));
    expect(reply.body.components.schemas.CreateRefund.required).toEqual(expect.arrayContaining(['order_id', 'amount']));
    const create = reply.body.components.schemas.CreatePayment;
    expect(create.required).toEqual(expect.arrayContaining(['buyer', 'currency', 'orders']));
    expect(create.additionalProperties).toBe(false);
    expect(create.properties.orders.maxItems).toBe(100);
  });

  it('sets security headers (helmet)', async () => {
    const reply = await call(`${api.url}/healthz`);
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
    expect(reply.headers.get('strict-transport-security')).toMatch(/max-age/);
  });

  it('rate-limits per API key with 429 and Retry-After', async () => {
    const limited = await startTestApi({ rate_limit: { per_s: 1, burst: 2 } });
    try {
      const own = await newMerchant(limited.db);
      const statuses: number[] = [];
      let retry_after: string | null = null;
      for (let i = 0; i < 4; i++) {
        const reply = await call(`${limited.url}/v1/payments`, { key: own });
        statuses.push(reply.status);
        if (reply.status === 429) {
          retry_after = reply.headers.get('retry-after');
          expect(reply.body.error.code).toBe('rate_limited');
        }
      }
      expect(statuses.slice(0, 2)).toEqual([200, 200]);
      expect(statuses).toContain(429);
      expect(Number(retry_after)).toBeGreaterThanOrEqual(1);
      // Another key still has its own bucket.
      expect((await call(`${limited.url}/v1/payments`, { key: await newMerchant(limited.db) })).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('workflows in Temporal', () => {
  it('sets the five search attributes, keeps PaymentStatus current and answers the status query', async () => {
    const created = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: body(['10.00', '5.00']) });
    await waitForPayment(api, key, created.body.id, settled);
    const handle = api.temporal.workflow.getHandle(created.body.workflow_id);
    await handle.result();
    const described = await handle.describe();
    const sa = described.typedSearchAttributes;
    expect(sa.get(SA.PaymentId)).toBe(created.body.id);
    expect(sa.get(SA.PaymentStatus)).toBe('succeeded');
    expect(sa.get(SA.AmountMinor)).toBe(1500);
    expect(sa.get(SA.Currency)).toBe('USD');
    expect(typeof sa.get(SA.MerchantId)).toBe('string');
    const state = await handle.query<{ status: string; orders: Record<string, string> }>('status');
    expect(state.status).toBe('succeeded');
    expect(Object.values(state.orders)).toEqual(['succeeded', 'succeeded']);
    // One execution per payment: no order workflows.
    await expect(api.temporal.workflow.getHandle(`order-${created.body.orders[0].id}`).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('refuses a second run of a payment workflow id', async () => {
    const created = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: body() });
    await waitForPayment(api, key, created.body.id, settled);
    await expect(
      api.temporal.workflow.start(PaymentWorkflowV7, {
        workflowId: created.body.workflow_id,
        taskQueue: api.task_queue,
        args: [{ payment_id: created.body.id, merchant_id: 'x', order_ids: [] }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
  });

  it('accepts a payment while Temporal is down; the retried request replays it and a dispatcher starts it', async () => {
    const down = await apiWith('temporal');
    const idem = randomUUID();
    const request = body(['7.00']);
    try {
      const accepted = await call(`${down.url}/v1/payments`, { key, idempotency_key: idem, body: request });
      expect(accepted.status).toBe(201); // Temporal being down never fails the API call
      const replay = await call(`${api.url}/v1/payments`, { key, idempotency_key: idem, body: request });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      const done = await waitForPayment(api, key, accepted.body.id, settled);
      expect(done.status).toBe('succeeded');
    } finally {
      await down.close();
    }
  });

  it('heals a payment whose workflow never started: a dispatcher on its task queue that reaches Temporal starts it', async () => {
    // A task queue of its own, no worker: only this test's two dispatchers may start the payment.
    const task_queue = `operations-heal-${randomUUID()}`;
    const down = await startTestApi({ task_queue, temporal_address: `127.0.0.1:${await freePort()}`, log_level: 'silent' });
    let down_open = true;
    let healthy: TestApi | undefined;
    let workflow_id: string | undefined;
    try {
      const accepted = await call(`${down.url}/v1/payments`, { key, idempotency_key: randomUUID(), body: body(['8.00']) });
      expect(accepted.status).toBe(201);
      workflow_id = accepted.body.workflow_id as string;
      await down.admission?.tick(); // tries, and fails: Temporal is down for this process
      const unstarted = await api.db('payment_event').where({ id: accepted.body.id }).first();
      expect(unstarted).toMatchObject({ workflow_started_at: null, task_queue });
      await down.close(); // its dispatcher keeps trying, and would hold the row while it does
      down_open = false;
      healthy = await startTestApi({ task_queue, log_level: 'silent' });
      await healthy.admission?.tick();
      const row = await api.db('payment_event').where({ id: accepted.body.id }).first();
      expect(row.workflow_started_at).not.toBeNull();
      const description = await api.temporal.workflow.getHandle(workflow_id).describe();
      expect(description.taskQueue).toBe(task_queue);
    } finally {
      if (workflow_id !== undefined) await api.temporal.workflow.getHandle(workflow_id).terminate('operations test done').catch(() => undefined);
      await healthy?.close();
      if (down_open) await down.close();
    }
  });
});
