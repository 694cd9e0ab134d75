import { DEFAULT_KNOBS, startAsyncStack, type AsyncStack } from '../support/async-stack';
import { checkoutBody, createPayment, expectForwardOnly, postWebhook, sandboxEvents, sequenceOf, statusHistory, submitCheckoutForm, until } from '../support/flows';
import { freePort } from '../support/processes';
import { call, settled, startTestApi, waitForPayment } from '../support/stack';

/**
 * Delayed PSP results and signed webhooks against a stack of its own (its sandbox's knobs touch
 * no other suite). Polling starts late here (30 s), so every result below arrives by webhook;
 * test/integration/polling.test.ts covers lost webhooks.
 */
let stack: AsyncStack;
beforeAll(async () => {
  // The sweeper looks every second, but only at events unapplied for 15 s, so a test can
  // redeliver an unapplied event well before the sweeper would take it.
  stack = await startAsyncStack('webhooks', { api_env: { CHECKOUT_TIMEOUT_MS: '4000', PSP_POLL_INITIAL_MS: '30000', PSP_POLL_MAX_MS: '60000', WEBHOOK_SWEEP_INTERVAL_MS: '1000', WEBHOOK_SWEEP_MIN_AGE_MS: '15000' } });
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  await stack.setKnobs({ ...DEFAULT_KNOBS, reorder_hold_ms: 300 });
});

async function eventRows(where: Record<string, string>) {
  return await stack.api.db('psp_event').where(where).orderBy('received_at');
}

async function countEvents(): Promise<number> {
  const [row] = await stack.api.db('psp_event').count<{ n: string }[]>('* as n');
  return Number(row?.n);
}

const order0 = (p: { orders: { id: string }[] }): string => {
  const id = p.orders[0]?.id;
  if (id === undefined) throw new Error('payment has no order');
  return id;
};

describe('POST /webhooks/psp refuses what it cannot trust, and stores nothing', () => {
  const event = JSON.stringify({ id: 'evt_test_refused', object: 'event', type: 'charge.succeeded', created: 1, data: { object: { id: 'ch_x' } } });
  const now = () => Math.floor(Date.now() / 1000);

  it.each([
    ['a wrong secret', { secret: 'whsec_not_the_right_one' }],
    ['a stale timestamp (replayed after the 300 s tolerance)', { t_unix: now() - 301 }],
    ['a timestamp from the future', { t_unix: now() + 3_600 }],
    ['no signature header', { header: null }],
    ['a signature of the wrong length', { header: `t=${now()},v1=abcd` }],
    ['a malformed header', { header: 'v1' }],
  ])('%s → 400 webhook_signature_invalid', async (_name, opts) => {
    const before = await countEvents();
    const reply = await postWebhook(stack.api.url, event, opts);
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe('webhook_signature_invalid');
    expect(await countEvents()).toBe(before);
  });

  it('a body altered after signing → 400', async () => {
    const before = await countEvents();
    const t = now();
    const { signPayload } = await import('../../src/psp/signature');
    const header = signPayload('whsec_test_sandbox', event, t);
    const reply = await postWebhook(stack.api.url, event.replace('ch_x', 'ch_y'), { header });
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe('webhook_signature_invalid');
    expect(await countEvents()).toBe(before);
  });

  it('signed but malformed JSON → 400 invalid_json; signed but not an event → 400 webhook_event_invalid', async () => {
    const before = await countEvents();
    const bad_json = await postWebhook(stack.api.url, '{"id": "evt_', {});
    expect(bad_json.status).toBe(400);
    expect(bad_json.body.error.code).toBe('invalid_json');
    const not_event = await postWebhook(stack.api.url, JSON.stringify({ type: 'charge.succeeded' }), {});
    expect(not_event.status).toBe(400);
    expect(not_event.body.error.code).toBe('webhook_event_invalid');
    expect(await countEvents()).toBe(before);
  });

  it('an oversized body → 413 body_too_large', async () => {
    const before = await countEvents();
    const big = JSON.stringify({ id: 'evt_big', type: 'charge.succeeded', created: 1, data: { object: { pad: 'x'.repeat(70_000) } } });
    const reply = await postWebhook(stack.api.url, big, {});
    expect(reply.status).toBe(413);
    expect(reply.body.error.code).toBe('body_too_large');
    expect(await countEvents()).toBe(before);
  });

  it('an event for an unknown order → 200, kept as `unknown` for operators', async () => {
    const id = `evt_unknown_${Date.now()}`;
    const charge = { id: 'ch_unknown', amount: '100', currency: 'USD', status: 'succeeded', failure_code: null, failure_message: null, fee: '3', order_reference: 'ord_not_ours', idempotency_key: 'ord_not_ours', version: 2 };
    const reply = await postWebhook(stack.api.url, JSON.stringify({ id, type: 'charge.succeeded', created: now(), data: { object: charge } }));
    expect(reply.status).toBe(200);
    expect(reply.body.route).toBe('unknown');
    const [row] = await eventRows({ id });
    expect(row).toMatchObject({ route: 'unknown', applied_at: null, object_id: 'ch_unknown' });
  });
});

describe('delayed PSP results arrive as workflow signals', () => {
  it('review_approve: pending, then succeeded by the charge.succeeded webhook', async () => {
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_review_approve' }));
    expect(created.status).toBe(201);
    const pending = await waitForPayment(stack.api, stack.key, created.body.id, (p) => p.status === 'pending', 20_000);
    expect(pending.orders[0].status).toBe('pending');
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled);
    expect(done.status).toBe('succeeded');
    const order_id = order0(done);
    const [succeeded] = await eventRows({ order_id, type: 'charge.succeeded' });
    // Applied by signalling the waiting workflow (no note), not ignored as news after the fact.
    expect(succeeded).toMatchObject({ route: 'order', note: null });
    expect(succeeded.applied_at).not.toBeNull();
    const history = await statusHistory(stack.api.db, created.body.id);
    expect(sequenceOf(history, order_id)).toEqual(['not_started', 'executing', 'pending', 'succeeded']);
    expect(sequenceOf(history, null)).toEqual(['processing', 'pending', 'succeeded']);
    expectForwardOnly(history);
  });

  it('review_decline: pending, then failed by the charge.failed webhook', async () => {
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_review_decline' }));
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled);
    expect(done.status).toBe('failed');
    expect(done.orders[0]).toMatchObject({ status: 'failed', failure_code: 'card_declined' });
    const [failed] = await eventRows({ order_id: order0(done), type: 'charge.failed' });
    expect(failed).toMatchObject({ route: 'order', note: null });
    expectForwardOnly(await statusHistory(stack.api.db, created.body.id));
  });

  it('duplicated and reordered webhooks: succeeded, each event stored once, no status moved backwards', async () => {
    // Every event is sent twice; the pending event (version 1) is held back until after the
    // succeeded one (version 2), so the stale news arrives last.
    await stack.setKnobs({ duplicate_rate: 1, reorder: true, reorder_hold_ms: 7_000 });
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_review_approve', sellers: 2 }));
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 45_000);
    expect(done.status).toBe('succeeded');
    for (const order of done.orders as { id: string; psp_reference: string }[]) {
      const sent = await until('the sandbox delivered both events twice', async () => {
        const events = await sandboxEvents(stack.psp_url, order.psp_reference);
        return events.length === 2 && events.every((e) => e.status === 'delivered') ? events : null;
      });
      expect(sent.map((e) => e.deliveries)).toEqual([2, 2]);
      const stored = await until('both events are stored', async () => {
        const rows = await eventRows({ order_id: order.id });
        return rows.length === 2 && rows.every((r) => r.deliveries === 2) ? rows : null;
      });
      // Arrival order: the newer event first, the stale one last. It changed nothing: either the
      // order was already terminal (ignored at the door) or the workflow dropped it as older news.
      expect(stored.map((r) => [r.type, r.object_version])).toEqual([['charge.succeeded', 2], ['charge.pending', 1]]);
      expect(['ignored', 'order']).toContain(stored[1].route);
    }
    const history = await statusHistory(stack.api.db, created.body.id);
    expectForwardOnly(history);
    for (const order of done.orders as { id: string }[]) expect(sequenceOf(history, order.id)).toEqual(['not_started', 'executing', 'pending', 'succeeded']);
  });

  it('requires_action: the buyer passes 3-D Secure on the PSP, the webhook completes the payment', async () => {
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_requires_action' }));
    const waiting = await waitForPayment(stack.api, stack.key, created.body.id, (p) => p.status === 'requires_action', 20_000);
    const next_action = waiting.orders[0].next_action!;
    expect(next_action.type).toBe('redirect_to_url');
    expect(next_action.redirect_url.startsWith(`${stack.psp_url}/3ds/`)).toBe(true);
    const page = await fetch(next_action.redirect_url);
    expect(await page.text()).toContain('id="approve"');
    const click = await fetch(next_action.redirect_url, { method: 'POST', body: new URLSearchParams({ action: 'approve' }) });
    expect(click.status).toBe(200);
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled);
    expect(done.status).toBe('succeeded');
    expect(done.orders[0].next_action).toBeNull();
    const history = await statusHistory(stack.api.db, created.body.id);
    expect(sequenceOf(history, null)).toEqual(['processing', 'requires_action', 'succeeded']);
    expectForwardOnly(history);
  });

  it('requires_action failed by the buyer → failed with authentication_failed', async () => {
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_requires_action' }));
    const waiting = await waitForPayment(stack.api, stack.key, created.body.id, (p) => p.status === 'requires_action', 20_000);
    await fetch(waiting.orders[0].next_action!.redirect_url, { method: 'POST', body: new URLSearchParams({ action: 'fail' }) });
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled);
    expect(done.status).toBe('failed');
    expect(done.orders[0].failure_code).toBe('authentication_failed');
  });
});

describe('hosted checkout', () => {
  const return_url = 'https://shop.example/thanks?cart=42';

  it('without payment_method: requires_payment_method and a checkout_url from the PSP; paying there completes it', async () => {
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ return_url }));
    expect(created.status).toBe(201);
    expect(created.body.status).toBe('requires_payment_method');
    expect(created.body.return_url).toBe(return_url);
    expect(created.body.checkout_url!.startsWith(`${stack.psp_url}/checkout/cs_`)).toBe(true);
    const paid = await submitCheckoutForm(created.body.checkout_url!, '4242 4242 4242 4242');
    expect(paid.status).toBe(303);
    const back = new URL(String(paid.headers.get('location')));
    expect(`${back.origin}${back.pathname}`).toBe('https://shop.example/thanks');
    expect(back.searchParams.get('cart')).toBe('42');
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled);
    expect(done.status).toBe('succeeded');
    const history = await statusHistory(stack.api.db, created.body.id);
    expect(sequenceOf(history, null)).toEqual(['requires_payment_method', 'processing', 'succeeded']);
    const [attached] = await eventRows({ payment_id: created.body.id, type: 'payment_method.attached' });
    expect(attached).toMatchObject({ route: 'payment', note: null });
  });

  it('a checkout nobody completes is canceled with checkout_expired, nothing charged', async () => {
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ return_url, sellers: 2 }));
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
    expect(done).toMatchObject({ status: 'canceled', failure_code: 'checkout_expired' });
    expect(done.orders.map((o: { status: string }) => o.status)).toEqual(['canceled', 'canceled']);
    expect(done.orders.every((o: { psp_reference: string | null }) => o.psp_reference === null)).toBe(true);
    // A late submit on the PSP's page no longer revives it.
    const late = await submitCheckoutForm(done.checkout_url!, '4242424242424242');
    expect(late.status).toBe(303);
    await until('the late event is recorded', async () => (await eventRows({ type: 'payment_method.attached', route: 'ignored' })).find((r) => r.note === 'payment already canceled'));
    expect((await waitForPayment(stack.api, stack.key, created.body.id, settled)).status).toBe('canceled');
  });

  it('a lost payment_method.attached webhook: the last look at the PSP before expiring finds the payment', async () => {
    await stack.setKnobs({ drop_rate: 1 });
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ return_url }));
    expect((await submitCheckoutForm(created.body.checkout_url!, '4242424242424242')).status).toBe(303);
    const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
    expect(done.status).toBe('succeeded');
    expect(await eventRows({ payment_id: created.body.id, type: 'payment_method.attached' })).toEqual([]);
  });

  it('without payment_method and without return_url → 400 return_url_required', async () => {
    const reply = await createPayment(stack.api.url, stack.key, checkoutBody());
    expect(reply.status).toBe(400);
    expect(reply.body.error).toMatchObject({ code: 'return_url_required', param: 'return_url' });
  });
});

describe('an event stored but never applied is not lost', () => {
  /** The same API, but its Temporal address is a closed port: signals fail after the commit. */
  async function apiWithTemporalDown() {
    return await startTestApi({ database_url: stack.database_url, temporal_address: `127.0.0.1:${await freePort()}`, task_queue: stack.api.task_queue, psp_url: stack.psp_url, log_level: 'silent' });
  }

  /** A review charge whose webhooks the sandbox dropped: we deliver its real events ourselves. */
  async function pendingWithDroppedEvents(): Promise<{ payment_id: string; order_id: string; raw: string }> {
    await stack.setKnobs({ drop_rate: 1 });
    const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: 'tok_review_approve' }));
    const pending = await waitForPayment(stack.api, stack.key, created.body.id, (p) => p.status === 'pending', 20_000);
    const charge_id = pending.orders[0].psp_reference as string;
    const decided = await until('the PSP decided the charge', async () => (await sandboxEvents(stack.psp_url, charge_id)).find((e) => e.type === 'charge.succeeded'), 20_000);
    return { payment_id: created.body.id, order_id: order0(pending), raw: JSON.stringify(decided.event) };
  }

  it('a redelivery applies an event whose signal failed the first time', async () => {
    const { payment_id, order_id, raw } = await pendingWithDroppedEvents();
    const down = await apiWithTemporalDown();
    try {
      const first = await postWebhook(down.url, raw);
      expect(first.status).toBe(200); // stored: the PSP must not keep redelivering
    } finally {
      await down.close();
    }
    const [stored] = await eventRows({ order_id, type: 'charge.succeeded' });
    expect(stored).toMatchObject({ route: 'order', applied_at: null });
    expect(stored.apply_attempts).toBeGreaterThanOrEqual(1);
    const again = await postWebhook(stack.api.url, raw);
    expect(again.body).toMatchObject({ duplicate: true, route: 'order' });
    expect((await waitForPayment(stack.api, stack.key, payment_id, settled)).status).toBe('succeeded');
    const [applied] = await eventRows({ order_id, type: 'charge.succeeded' });
    expect(applied.applied_at).not.toBeNull();
    expect(applied.deliveries).toBe(2);
  });

  it('the sweeper applies an event left unapplied, with no redelivery', async () => {
    const { payment_id, order_id, raw } = await pendingWithDroppedEvents();
    const down = await apiWithTemporalDown();
    try {
      expect((await postWebhook(down.url, raw)).status).toBe(200);
    } finally {
      await down.close();
    }
    // The stack's API process sweeps events unapplied for 15 s (WEBHOOK_SWEEP_MIN_AGE_MS).
    expect((await waitForPayment(stack.api, stack.key, payment_id, settled, 45_000)).status).toBe('succeeded');
    const [applied] = await eventRows({ order_id, type: 'charge.succeeded' });
    expect(applied).toMatchObject({ deliveries: 1 });
    expect(applied.applied_at).not.toBeNull();
  });
});

it('GET /v1/payments shows the new statuses to the merchant', async () => {
  const reply = await call(`${stack.api.url}/v1/payments?limit=100`, { key: stack.key });
  const statuses = new Set((reply.body.data as { status: string }[]).map((p) => p.status));
  expect(statuses.has('canceled')).toBe(true);
});
