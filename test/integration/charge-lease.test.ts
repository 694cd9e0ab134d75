import { asyncLocalStorage, type Context } from '@temporalio/activity';
import { claimCharge, releaseCharge } from '../../src/aggregates/order';
import { createDb, type Knex } from '../../src/db';
import { directActivities, insertOneOrderPayment, type DirectActivities } from '../support/direct-activities';

/**
 * Two runs of one order's charge at once: under load a workflow task can time out while its local
 * activity is still waiting on the PSP, and the next task runs the activity again. The suite's
 * sandbox ignores idempotency keys, so only our side can keep the second run from charging.
 */
let db: Knex;
let activities: DirectActivities;
beforeAll(() => {
  db = createDb(String(process.env.DATABASE_URL), 4);
  activities = directActivities(db, 'lease-test', 5_000);
});
afterAll(async () => {
  await db.destroy();
});

/** What withHeartbeat reads of a local activity's context; the charge never touches the rest. */
function asLocalActivity<T>(work: () => Promise<T>): Promise<T> {
  return asyncLocalStorage.run({ info: { isLocal: true } } as unknown as Context, work);
}

async function chargesAtPsp(order_id: string): Promise<number> {
  const res = await fetch(`${process.env.PSP_URL}/_sandbox/stats?order_reference=${order_id}`);
  return ((await res.json()) as { charges_total: number }).charges_total;
}

it('sends one charge when two runs of the same order overlap; the other backs off, then reads the outcome', async () => {
  const order_id = await insertOneOrderPayment(db);
  const runs = await Promise.allSettled([asLocalActivity(() => activities.chargeOrder(order_id)), asLocalActivity(() => activities.chargeOrder(order_id))]);
  const done = runs.filter((r) => r.status === 'fulfilled');
  const refused = runs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  expect(done).toHaveLength(1);
  expect(done[0]).toMatchObject({ value: { order_id, status: 'succeeded' } });
  expect(refused).toHaveLength(1);
  expect(refused[0]?.reason).toMatchObject({ type: 'ChargeInFlight' });
  expect(await chargesAtPsp(order_id)).toBe(1);
  // The retry of the refused run answers the stored outcome without calling the PSP.
  await expect(asLocalActivity(() => activities.chargeOrder(order_id))).resolves.toMatchObject({ status: 'succeeded' });
  expect(await chargesAtPsp(order_id)).toBe(1);
  expect((await db('payment_order').where({ id: order_id }).first()).charge_lease_until).toBeNull();
});

it('hands the order to the next attempt when the lease is released or has expired, never to a stale release', async () => {
  const order_id = await insertOneOrderPayment(db);
  expect(await claimCharge(db, order_id, 60_000)).toBe(1);
  expect(await claimCharge(db, order_id, 60_000)).toBeNull();
  await releaseCharge(db, order_id, 1);
  expect(await claimCharge(db, order_id, 60_000)).toBe(2);
  // Attempt 2's worker died: its lease runs out, and only then may attempt 3 go.
  await db('payment_order').where({ id: order_id }).update({ charge_lease_until: db.raw("now() - interval '1 second'") });
  expect(await claimCharge(db, order_id, 60_000)).toBe(3);
  // Attempt 2 wakes up late and releases: attempt 3's lease stands.
  await releaseCharge(db, order_id, 2);
  expect(await claimCharge(db, order_id, 60_000)).toBeNull();
});

it('does not park an order while a charge attempt holds it, and asks to be retried when the lease ends', async () => {
  const order_id = await insertOneOrderPayment(db);
  expect(await claimCharge(db, order_id, 60_000)).toBe(1);
  const refused = await asLocalActivity(() => activities.chargeOrder(order_id)).catch((err: unknown) => err);
  expect(refused).toMatchObject({ type: 'ChargeInFlight' });
  // The retry waits out the lease (about 60 s here), not the PSP step's short backoff.
  expect(Number((refused as { nextRetryDelay?: unknown }).nextRetryDelay)).toBeGreaterThan(50_000);
  await expect(asLocalActivity(() => activities.parkOrder(order_id, 'attempts ran out', 'charge'))).rejects.toMatchObject({ type: 'ChargeInFlight' });
  expect((await db('payment_order').where({ id: order_id }).first()).status).toBe('executing');
  await releaseCharge(db, order_id, 1);
  expect(await asLocalActivity(() => activities.parkOrder(order_id, 'attempts ran out', 'charge'))).toBeNull();
  expect((await db('payment_order').where({ id: order_id }).first()).status).toBe('needs_attention');
});
