import type { Knex } from 'knex';
import { PspChargeSchema, PspError, type PspCharge } from '../psp/client';
import { assert } from '../domain/assert';
import { assertOrderMove, isOrderTerminal } from '../domain/status';
import { capturePosting } from '../domain/ledger';
import { postInTransaction } from '../ledger/poster';
import { storeDerivedStatus } from '../aggregates/payment';
import { claimCharge, loadChargeableOrder, loadOrder, moveToChargeOutcome, releaseCharge, type ChargeableOrder, type OrderRow } from '../aggregates/order';
import { capturedOrder, chargeInFlight, isWaiting, outcomeOf, type OrderDeps } from './order-outcome';
import { toActivityFailure, withHeartbeat } from './psp-call';
import type { ChargeOutcome } from './types';

/** Charge statuses an order takes over as they are; the others only follow our own void/refund. */
const CHARGE_TO_ORDER_STATUS = { succeeded: 'succeeded', failed: 'failed', pending: 'pending', requires_action: 'requires_action', authorized: 'authorized' } as const;

function outcomeOfCharge(order: OrderRow, charge: PspCharge): ChargeOutcome {
  assert(charge.order_reference === order.id, `PSP charge ${charge.id} belongs to order ${order.id}`);
  assert(BigInt(charge.amount) === BigInt(order.amount_minor), `PSP charge ${charge.id} amount matches the order`);
  assert(charge.status in CHARGE_TO_ORDER_STATUS, `PSP charge ${charge.id} is ${charge.status}, which an automatic-capture order never asks for`);
  const status = CHARGE_TO_ORDER_STATUS[charge.status as keyof typeof CHARGE_TO_ORDER_STATUS];
  return { order_id: order.id, status, psp_reference: charge.id, failure_code: charge.failure_code, failure_message: charge.failure_message, psp_version: charge.version };
}

/**
 * Moves the order to the outcome, forward only: a terminal order, or news older than what is
 * stored (by the PSP's charge version), changes nothing and the stored state is answered.
 * The PSP's fee is recorded once, from the figure it returns with the capture. A capture is
 * booked in the same transaction (wallet = seller payable, one balanced posting): only the
 * transaction that moved the order books, so the money and the status never disagree.
 */
export async function applyOutcome({ db, log }: Pick<OrderDeps, 'db' | 'log'>, order: OrderRow, outcome: ChargeOutcome, extra: { psp_fee_minor?: string; next_action_url?: string | null } = {}): Promise<ChargeOutcome> {
  assertOrderMove(order.status, outcome.status);
  const { status, psp_reference, failure_code, failure_message } = outcome;
  const row = await db.transaction(async (trx: Knex.Transaction) => {
    const moved = await moveToChargeOutcome(trx, order.id, {
      status,
      psp_reference,
      failure_code,
      failure_message,
      psp_fee_minor: extra.psp_fee_minor ?? null,
      next_action_url: extra.next_action_url ?? null,
      psp_version: outcome.psp_version ?? null,
    });
    if (moved?.status === 'succeeded') await postInTransaction(trx, [capturePosting(capturedOrder(moved))]);
    // Nothing updated: a concurrent attempt or newer news came first; the stored state wins.
    const current = moved ?? (await loadOrder(trx, order.id));
    // The payment shows the wait (and its end) while it lasts, not only once it completes.
    if (isWaiting(order.status) || isWaiting(current.status)) await storeDerivedStatus(trx, order.payment_id);
    return current;
  });
  log.info({ order_id: order.id, payment_id: order.payment_id, psp_reference: row.psp_reference, status: row.status, psp_version: row.psp_version }, 'order charge outcome');
  return outcomeOf(row);
}

/** Applies a PSP charge (from a webhook or a poll) to its order, if it is news. */
async function applyCharge(deps: Pick<OrderDeps, 'db' | 'log'>, order: OrderRow, charge: PspCharge): Promise<ChargeOutcome> {
  if (isOrderTerminal(order.status)) return outcomeOf(order);
  const outcome = outcomeOfCharge(order, charge);
  if (order.psp_version !== null && charge.version < order.psp_version) return outcomeOf(order);
  return await applyOutcome(deps, order, outcome, {
    psp_fee_minor: charge.status === 'succeeded' ? charge.fee : undefined,
    next_action_url: charge.next_action?.redirect_url ?? null,
  });
}

async function chargeAtPsp({ psp }: Pick<OrderDeps, 'psp'>, order: ChargeableOrder, attempt: number): Promise<PspCharge> {
  assert(order.payment_method !== null, `order ${order.id} has a payment method`);
  // A previous attempt may have reached the PSP (we crashed or timed out after sending): ask
  // first, and only a confirmed "no charge" allows sending again, with the same key.
  if (attempt > 1) {
    const existing = await psp.findChargeByIdempotencyKey(order.id);
    if (existing !== null) return existing;
  }
  return await psp.createCharge({
    idempotency_key: order.id,
    order_reference: order.id,
    amount_minor: BigInt(order.amount_minor),
    currency: order.currency,
    payment_method: order.payment_method,
    // All-or-nothing: authorize now, capture once every order of the payment is authorized.
    capture: order.capture_method !== 'all_or_nothing',
  });
}

/** The claim was refused: another attempt is charging (retry when its lease ends), the order is parked, or it moved on (its stored outcome). */
async function unclaimedCharge({ db, charge_lease_ms }: Pick<OrderDeps, 'db' | 'charge_lease_ms'>, order_id: string): Promise<ChargeOutcome> {
  const order = await loadOrder(db, order_id);
  if (order.status === 'needs_attention') throw chargeInFlight(order, charge_lease_ms, 'parked for an operator, who decides whether it is charged again');
  if (order.status === 'not_started' || order.status === 'executing') throw chargeInFlight(order, charge_lease_ms, 'another attempt is charging it');
  return outcomeOf(order);
}

/** The charge steps: charge, a webhook's news, a poll. */
export function createChargeActivities(deps: OrderDeps) {
  const { db, psp, log } = deps;
  return {
    /**
     * PSP charge for one order. Idempotent: a charged order answers from the database. The
     * outcome may be a wait (`pending`, `requires_action`), which the workflow then sits out.
     */
    async chargeOrder(order_id: string): Promise<ChargeOutcome> {
      const order = await loadChargeableOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      const attempt = await claimCharge(db, order_id, deps.charge_lease_ms);
      if (attempt === null) return await unclaimedCharge(deps, order_id);
      order.status = 'executing'; // keep the in-memory row in step: the outcome moves from here
      try {
        const charge = await withHeartbeat(chargeAtPsp(deps, order, attempt));
        return await applyCharge(deps, order, charge);
      } catch (err) {
        if (err instanceof PspError) log.warn({ order_id, payment_id: order.payment_id, kind: err.kind, code: err.code }, 'psp call failed');
        if (err instanceof PspError && err.kind === 'definitive') {
          // A definitive refusal (e.g. an unknown token) ends the order like a decline, with the PSP's code.
          return await applyOutcome(deps, order, { order_id, status: 'failed', psp_reference: null, failure_code: err.code, failure_message: err.message });
        }
        // The next attempt may start at once; it asks the PSP what this one did before sending.
        await releaseCharge(db, order_id, attempt).catch((release_err: unknown) => log.warn({ order_id, err: release_err }, 'charge lease not released; it expires'));
        throw err instanceof PspError ? toActivityFailure(err) : err;
      }
    },

    /** A verified webhook's charge, passed on by the workflow's `pspUpdate` signal. */
    async applyChargeUpdate(order_id: string, charge: PspCharge): Promise<ChargeOutcome> {
      return await applyCharge(deps, await loadChargeableOrder(db, order_id), PspChargeSchema.parse(charge));
    },

    /** No news for a while: ask the PSP (a lost webhook only delays the result). */
    async pollCharge(order_id: string): Promise<ChargeOutcome> {
      const order = await loadChargeableOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      try {
        const charge = await withHeartbeat(order.psp_reference === null ? psp.findChargeByIdempotencyKey(order.id) : psp.getCharge(order.psp_reference));
        assert(charge !== null, `order ${order_id} waits on a charge the PSP knows`);
        return await applyCharge(deps, order, charge);
      } catch (err) {
        if (!(err instanceof PspError)) throw err;
        log.warn({ order_id, kind: err.kind, code: err.code }, 'psp poll failed');
        throw toActivityFailure(err);
      }
    },
  };
}
