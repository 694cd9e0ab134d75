import { ApplicationFailure } from '@temporalio/activity';
import type { PspCharge } from '../psp/client';
import { assert } from '../domain/assert';
import { assertOrderMove, isOrderTerminal, type OrderStatus } from '../domain/status';
import { storeDerivedStatus } from '../aggregates/payment';
import { cancelParked, loadChargeableOrder, moveForOperator, refreshParkReason, type FailureFields } from '../aggregates/order';
import { FAILURE_TYPES } from '../workflows/contract';
import { chargeInFlight, FAILURE_MESSAGE_CHARS_MAX, outcomeOf, type OrderDeps } from './order-outcome';
import { rethrowPsp, withHeartbeat } from './psp-call';
import type { ChargeOutcome } from './types';

/** Statuses in which an order has no charge outcome yet. */
const UNCHARGED: ReadonlySet<OrderStatus> = new Set(['not_started', 'executing', 'needs_attention']);

/** Moves a parked (or to-be-parked) order and refreshes its payment's status, in one transaction. */
async function moveParked({ db, charge_lease_ms }: Pick<OrderDeps, 'db' | 'charge_lease_ms'>, order_id: string, to: 'needs_attention' | 'executing', failure: FailureFields): Promise<void> {
  const order = await loadChargeableOrder(db, order_id);
  if (order.status === to) {
    // A repeat after a crash, or parked again (a failed cancel): keep the newest reason.
    if (to === 'needs_attention') await refreshParkReason(db, order_id, failure);
    return;
  }
  assertOrderMove(order.status, to);
  const moved = await db.transaction(async (trx) => {
    const done = await moveForOperator(trx, order_id, order.status, to, failure);
    if (done) await storeDerivedStatus(trx, order.payment_id);
    return done;
  });
  // Still in the status read, yet not moved: only a charge attempt's lease refuses that (the
  // database's clock decides, not ours). Retried once the attempt is over, when its outcome (if
  // any) is stored and the park step answers it instead.
  if (!moved && to === 'needs_attention') {
    const now = await loadChargeableOrder(db, order_id);
    if (now.status === order.status) throw chargeInFlight(now, charge_lease_ms, 'not parked while a charge attempt is in flight');
  }
}

/** Void an authorization, refund a capture; a decline or a void/refund already done needs nothing. */
async function giveBack({ psp }: Pick<OrderDeps, 'psp'>, charge: PspCharge, order_id: string): Promise<PspCharge> {
  const key = `${order_id}:cancel`;
  if (charge.status === 'authorized') return await withHeartbeat(psp.voidCharge(charge.id, key)).catch(rethrowPsp);
  if (charge.status === 'succeeded') return await withHeartbeat(psp.refundCharge(charge.id, key)).catch(rethrowPsp);
  if (charge.status === 'pending' || charge.status === 'requires_action') {
    throw ApplicationFailure.nonRetryable(`charge ${charge.id} is still ${charge.status} at the PSP; cancel once it is decided`, FAILURE_TYPES.charge_undecided);
  }
  return charge;
}

/** The dead-letter steps: park, an operator's retry, an operator's cancel. */
export function createOperatorActivities(deps: OrderDeps) {
  const { db, psp, log } = deps;
  return {
    /**
     * Dead letter: the PSP step ran out of retries. The order waits for an operator with the last
     * error as its reason; nothing about the charge is assumed (the PSP may or may not have it).
     * But an attempt may have done its work and died before reporting it (a worker killed after
     * the database write): if the order already moved past what the step was for — charged
     * (`charge`) or decided (`decision`) — that outcome is answered instead and nothing is parked.
     */
    async parkOrder(order_id: string, reason: string, step: 'charge' | 'decision' = 'charge'): Promise<ChargeOutcome | null> {
      const order = await loadChargeableOrder(db, order_id);
      const done = step === 'charge' ? !UNCHARGED.has(order.status) : isOrderTerminal(order.status);
      if (done) {
        log.info({ order_id, status: order.status, reason }, 'order not parked: the step had already done its work');
        return outcomeOf(order);
      }
      await moveParked(deps, order_id, 'needs_attention', { failure_code: 'retries_exhausted', failure_message: reason.slice(0, FAILURE_MESSAGE_CHARS_MAX) });
      log.warn({ order_id, reason }, 'order needs attention');
      return null;
    },

    /** An operator's retry: the parked order goes back to `executing` and is charged again (same key). */
    async resumeOrder(order_id: string): Promise<void> {
      await moveParked(deps, order_id, 'executing', { failure_code: null, failure_message: null });
      log.info({ order_id }, 'order retried by an operator');
    },

    /**
     * An operator's cancel. A charge the PSP may hold is given back first: an authorization is
     * voided, a capture refunded; an undecided charge cannot be cancelled yet (non-retryable).
     */
    async cancelOrder(order_id: string, reason: string): Promise<ChargeOutcome> {
      const order = await loadChargeableOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      assert(order.status === 'needs_attention', `order ${order_id} is parked before it is cancelled`);
      const charge = order.charge_attempts === 0 ? null : await withHeartbeat(psp.findChargeByIdempotencyKey(order.id)).catch(rethrowPsp);
      const given_back = charge === null ? null : await giveBack(deps, charge, order.id);
      await db.transaction(async (trx) => {
        await cancelParked(trx, order_id, reason.slice(0, FAILURE_MESSAGE_CHARS_MAX), given_back?.id ?? order.psp_reference);
        await storeDerivedStatus(trx, order.payment_id);
      });
      log.info({ order_id, psp_reference: given_back?.id ?? null, psp_status: given_back?.status ?? null }, 'order cancelled by an operator');
      return outcomeOf(await loadChargeableOrder(db, order_id));
    },
  };
}
