import { randomUUID } from 'node:crypto';
import { accountBalances } from '../../src/ledger/store';
import { startAsyncStack, type AsyncStack } from '../support/async-stack';
import { createPayment, until } from '../support/flows';
import { keepHistory } from '../support/histories';
import { call, settled, waitForPayment } from '../support/stack';

/**
 * Disputes on a stack of its own with webhooks on: the sandbox PSP opens
 * and decides disputes (its test-only admin routes), the `charge.dispute.*` webhooks start and
 * drive each dispute's workflow, which holds and then releases or debits the seller.
 */
let stack: AsyncStack;
beforeAll(async () => {
  stack = await startAsyncStack('disputes', { api_env: {}, worker_env: {} });
});
afterAll(async () => {
  await stack?.close();
});

async function sale(seller_id: string, amount: string) {
  const created = await createPayment(stack.api.url, stack.key, { buyer: { id: `b_${randomUUID()}` }, currency: 'USD', orders: [{ seller_id, amount }], payment_method: 'tok_success' });
  const done = await waitForPayment(stack.api, stack.key, created.body.id, (p) => settled(p) && p.orders[0].ledger_updated);
  expect(done.status).toBe('succeeded');
  return done;
}

async function admin(path: string, body: unknown) {
  const res = await fetch(`${stack.psp_url}/_sandbox${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function ourDispute(id: string, status: string) {
  return await until(`dispute ${id} ${status}`, async () => {
    const got = await call(`${stack.api.url}/v1/disputes/${id}`, { key: stack.key });
    return got.status === 200 && got.body.status === status ? got.body : null;
  });
}

const balanceOf = async (seller_id: string) => (await call(`${stack.api.url}/v1/balances?seller_id=${seller_id}`, { key: stack.key })).body.data[0];
const posted = async (code: string) => (await accountBalances(stack.api.db, code, 'USD'))[0]?.posted_minor ?? 0n;

describe('disputes', () => {
  it('opened → held; evidence taken; lost → the seller is debited and the order ends refunded', async () => {
    const seller = `s_${randomUUID()}`;
    const payment = await sale(seller, '10.00');
    const opened = await admin('/disputes', { charge: payment.orders[0].psp_reference, reason: 'fraudulent' });
    expect(opened.status).toBe(201);
    const id = String(opened.body['id']);
    const held = await ourDispute(id, 'needs_response');
    expect(held).toMatchObject({ payment_id: payment.id, order_id: payment.orders[0].id, amount: '10.00', reason: 'fraudulent' });
    const now = (await call(`${stack.api.url}/v1/payments/${payment.id}`, { key: stack.key })).body;
    expect(now.status).toBe('disputed');
    expect(now.orders[0].status).toBe('disputed');
    // The seller's 9.70 is held, the PSP took the 10.00 back.
    expect(await balanceOf(seller)).toMatchObject({ available: '0.00' });
    expect(await posted('dispute_hold')).toBe(-970n);
    expect(await posted('disputes_pending')).toBe(1000n);
    const evidence = await call(`${stack.api.url}/v1/disputes/${id}/evidence`, { key: stack.key, body: { text: 'signed delivery receipt' } });
    expect(evidence).toMatchObject({ status: 200, body: { status: 'under_review' } });
    expect(evidence.body.evidence_submitted_at).not.toBeNull();
    expect((await admin(`/disputes/${id}/close`, { outcome: 'lost' })).status).toBe(200);
    await ourDispute(id, 'lost');
    const after = (await call(`${stack.api.url}/v1/payments/${payment.id}`, { key: stack.key })).body;
    expect(after.orders[0]).toMatchObject({ status: 'refunded', amount_refunded: '10.00' });
    expect(after.status).toBe('refunded');
    expect(await balanceOf(seller)).toMatchObject({ available: '0.00', negative_balance: '0.00' });
    expect(await posted('dispute_hold')).toBe(0n);
    expect(await posted('disputes_pending')).toBe(0n);
    expect(await call(`${stack.api.url}/v1/disputes/${id}/evidence`, { key: stack.key, body: { text: 'more' } })).toMatchObject({ status: 409, body: { error: { code: 'dispute_closed' } } });
    await keepHistory(stack.api.temporal, String(held.workflow_id), 'dispute-v1', 'lost.dispute.json');
  });

  it('won → the hold is released and the order is back to succeeded', async () => {
    const seller = `s_${randomUUID()}`;
    const payment = await sale(seller, '20.00');
    const opened = await admin('/disputes', { charge: payment.orders[0].psp_reference });
    const id = String(opened.body['id']);
    await ourDispute(id, 'needs_response');
    expect(await balanceOf(seller)).toMatchObject({ available: '0.00' });
    await admin(`/disputes/${id}/close`, { outcome: 'won' });
    await ourDispute(id, 'won');
    const after = (await call(`${stack.api.url}/v1/payments/${payment.id}`, { key: stack.key })).body;
    expect(after.status).toBe('succeeded');
    expect(after.orders[0].status).toBe('succeeded');
    expect(await balanceOf(seller)).toMatchObject({ available: '19.40' });
    const listed = (await call(`${stack.api.url}/v1/disputes`, { key: stack.key })).body.data;
    expect(listed[0]).toMatchObject({ id, status: 'won' });
  });

  it('refuses evidence after the deadline (409), for an unknown dispute (404), and refunds of a disputed order (409)', async () => {
    const payment = await sale(`s_${randomUUID()}`, '5.00');
    const opened = await admin('/disputes', { charge: payment.orders[0].psp_reference, evidence_due_in_s: 0 });
    const id = String(opened.body['id']);
    await ourDispute(id, 'needs_response');
    expect(await call(`${stack.api.url}/v1/disputes/${id}/evidence`, { key: stack.key, body: { text: 'late' } })).toMatchObject({ status: 409, body: { error: { code: 'dispute_evidence_closed' } } });
    expect(await call(`${stack.api.url}/v1/disputes/dp_nope/evidence`, { key: stack.key, body: { text: 'x' } })).toMatchObject({ status: 404 });
    const refund = await call(`${stack.api.url}/v1/payments/${payment.id}/refunds`, { key: stack.key, idempotency_key: randomUUID(), body: { order_id: payment.orders[0].id, amount: '1.00' } });
    expect(refund).toMatchObject({ status: 409, body: { error: { code: 'order_not_refundable' } } });
    expect(await call(`${stack.api.url}/v1/disputes/${id}/evidence`, { key: stack.key, body: {} })).toMatchObject({ status: 400 });
  });
});
