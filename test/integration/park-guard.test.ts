import { randomBytes } from 'node:crypto';
import { createDb, type Knex } from '../../src/db';
import { directActivities, insertOneOrderPayment, type DirectActivities } from '../support/direct-activities';

/**
 * Found by the chaos run: an attempt of chargeOrder wrote `succeeded` and died before reporting
 * it, the attempts then ran out, and parking the order tripped over the already-charged row. The
 * park step now answers the stored outcome instead, so the workflow goes on to the books.
 */
let db: Knex;
let activities: DirectActivities;
beforeAll(() => {
  db = createDb(String(process.env.DATABASE_URL), 2);
  activities = directActivities(db, 'park-test', 2_000);
});
afterAll(async () => {
  await db.destroy();
});

async function orderIn(status: string): Promise<string> {
  const order_id = await insertOneOrderPayment(db);
  if (status !== 'not_started') await db('payment_order').where({ id: order_id }).update({ status: 'executing', charge_attempts: 1 });
  if (status !== 'not_started' && status !== 'executing') await db('payment_order').where({ id: order_id }).update({ status, psp_reference: 'ch_x', psp_fee_minor: status === 'succeeded' ? '45' : null });
  return order_id;
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
