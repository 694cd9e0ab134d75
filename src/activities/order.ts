import { capturePosting } from '../domain/ledger';
import { assert } from '../domain/assert';
import { loadChargeableOrder, markBooked } from '../aggregates/order';
import { createAuthorizationActivities } from './order-authorization';
import { createChargeActivities } from './order-charge';
import { createOperatorActivities } from './order-operator';
import { capturedOrder, type OrderDeps } from './order-outcome';

export type { OrderDeps } from './order-outcome';

/** The books step of legacy order workflows. */
function createBookActivities({ db, log, ledger }: OrderDeps) {
  /**
   * The books of a capture as a step of their own, for legacy order workflows (v1–v6; a capture
   * charged since is booked with its outcome, so this finds the posting and changes nothing). One
   * balanced posting; its unique reference makes a repeat a no-op, and the flags follow it.
   */
  async function recordCapture(order_id: string): Promise<void> {
    const order = await loadChargeableOrder(db, order_id);
    assert(order.status === 'succeeded', `order ${order_id} is captured before its books are written`);
    const result = await ledger.post(capturePosting(capturedOrder(order)));
    await markBooked(db, order_id);
    // The ledger transaction is the record; the line is for debugging (one per order, hot path).
    log.debug({ order_id, payment_id: order.payment_id, seller_id: order.seller_id, transaction_id: result.transaction_id, created: result.created }, 'capture recorded');
  }
  return {
    recordCapture,
    // The two steps of workflows started before the books became one posting (see the patch in
    // PaymentOrderWorkflow): each does the whole step, which is idempotent.
    creditWallet: recordCapture,
    postLedger: recordCapture,
  };
}

/** Every order activity, by the names workflows call them (recorded histories replay against these names). */
export function createOrderActivities(deps: OrderDeps) {
  return {
    ...createChargeActivities(deps),
    ...createOperatorActivities(deps),
    ...createAuthorizationActivities(deps),
    ...createBookActivities(deps),
  };
}
