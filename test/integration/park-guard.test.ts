import { randomBytes } from 'node:crypto';
import { createActivities } from '../../src/activities';
import { createDb, type Knex } from '../../src/db';
import { createRulesRiskProvider, parseRiskRules } from '../../src/domain/risk';
import { LedgerPoster } from '../../src/ledger/poster';
import { createLogger } from '../../src/logger';
import { createPspClient } from '../../src/psp/client';

/**
 * Found by the chaos run: an attempt of chargeOrder wrote `succeeded` and died before reporting
 * it, the attempts then ran out, and parking the order tripped over the already-charged row. The
 * park step now answers the stored outcome instead, so the workflow goes on to the books.
 */
let db: Knex;
let activities: ReturnType<typeof createActivities>;
beforeAll(() => {
  db = createDb(String(process.env.DATABASE_URL), 2);
  const psp = createPspClient({ base_url: String(process.env.PSP_URL), api_key: 'psk_test_sandbox', timeout_ms: 2_000 });
  activities = createActivities({ db, psp, risk: createRulesRiskProvider(parseRiskRules('', '')), log: createLogger('park-test', 'silent'), ledger: new LedgerPoster(db), charge_lease_ms: 60_000, settlement_download_timeout_ms: 60_000, payout_minimums: new Map() });
});
afterAll(async () => {
  await db.destroy();
});

async function orderIn(status: string): Promise<string> {
  const suffix = randomBytes(6).toString('hex');
  const merchant_id = `mer_${suffix}`;
  await db('merchant').insert({ id: merchant_id, name: 'park' });
  await db('payment_event').insert({ id: `pay_${suffix}`, merchant_id, buyer_id: 'b', currency: 'USD', amount_minor: '500', status: 'processing', payment_method: 'tok_success', workflow_id: `payment-pay_${suffix}` });
  await db('payment_order').insert({ id: `ord_${suffix}`, payment_id: `pay_${suffix}`, merchant_id, seller_id: 's', amount_minor: '500', currency: 'USD', status: 'not_started', commission_bps: 300, commission_minor: '15' });
  if (status !== 'not_started') await db('payment_order').where({ id: `ord_${suffix}` }).update({ status: 'executing', charge_attempts: 1 });
  if (status !== 'not_started' && status !== 'executing') await db('payment_order').where({ id: `ord_${suffix}` }).update({ status, psp_reference: 'ch_x', psp_fee_minor: status === 'succeeded' ? '45' : null });
  return `ord_${suffix}`;
}

it('answers the stored outcome when the charge was made after all, and parks nothing', async () => {
  const order_id = await orderIn('succeeded');
  const outcome = await activities.parkOrder(order_id, 'attempts ran out', 'charge');
  expect(outcome).toMatchObject({ order_id, status: 'succeeded', psp_reference: 'ch_x' });
  expect((await db('payment_order').where({ id: order_id }).first()).status).toBe('succeeded');
});

it('parks an order whose charge has no outcome, and one whose decision is still pending', async () => {
  const uncharged = await orderIn('executing');
  expect(await activities.parkOrder(uncharged, 'psp_unavailable: down', 'charge')).toBeNull();
  expect(await db('payment_order').where({ id: uncharged }).first()).toMatchObject({ status: 'needs_attention', failure_code: 'retries_exhausted', failure_message: 'psp_unavailable: down' });
  const waiting = await orderIn('pending');
  expect(await activities.parkOrder(waiting, 'polls failed', 'decision')).toBeNull();
  expect((await db('payment_order').where({ id: waiting }).first()).status).toBe('needs_attention');
  // …but a pending order is past the charge step: a lost charge result answers `pending`.
  const charged_pending = await orderIn('pending');
  expect(await activities.parkOrder(charged_pending, 'lost', 'charge')).toMatchObject({ status: 'pending' });
});

it('books a dispute only once the order\'s capture is booked: before that it waits, retryable, holding nothing', async () => {
  const order_id = await orderIn('pending');
  const psp_reference = `ch_${randomBytes(6).toString('hex')}`;
  await db('payment_order').where({ id: order_id }).update({ psp_reference });
  const dispute = { id: `dp_${randomBytes(6).toString('hex')}`, charge: psp_reference, amount: '500', currency: 'USD', reason: 'fraudulent', status: 'needs_response' as const, evidence_due_by: Math.floor(Date.now() / 1000) + 86_400, version: 1 };
  await expect(activities.openDispute(dispute)).rejects.toMatchObject({ type: 'DisputeBeforeCapture', nonRetryable: false });
  expect(await db('dispute').where({ id: dispute.id }).first()).toBeUndefined();
  expect((await db('payment_order').where({ id: order_id }).first()).status).toBe('pending');
  expect(await db('ledger_transaction').where({ order_id })).toHaveLength(0);
});
