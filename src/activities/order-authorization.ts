import type { Knex } from 'knex';
import { assert } from '../domain/assert';
import { ACCOUNTS, capturePosting, voidPendingPosting, type TransferDraft } from '../domain/ledger';
import { postInTransaction } from '../ledger/poster';
import { createHold, findHold, voidHold } from '../ledger/holds';
import { isOrderTerminal } from '../domain/status';
import { loadChargeableOrder, loadOrder, resolveAuthorized, type AuthorizationEnd, type OrderRow } from '../aggregates/order';
import { capturedOrder, FAILURE_MESSAGE_CHARS_MAX, outcomeOf, type OrderDeps } from './order-outcome';
import { rethrowPsp, withHeartbeat } from './psp-call';
import type { ChargeOutcome } from './types';

// Card authorizations last about a week; an authorization not captured or voided by then is
// released by the hold-expiry sweep (src/ledger/holds.ts), as the PSP would drop it.
const AUTHORIZATION_TTL_MS = 7 * 24 * 3_600_000;

const authorizationReference = (order_id: string): string => `order:${order_id}:authorization`;

function authorizationTransfer(order: OrderRow): TransferDraft {
  return {
    reference: authorizationReference(order.id),
    description: 'order authorized (all or nothing)',
    currency: order.currency,
    debit: ACCOUNTS.psp_receivable,
    credit: ACCOUNTS.sellerPayable(order.merchant_id, order.seller_id),
    amount_minor: BigInt(order.amount_minor),
    merchant_id: order.merchant_id,
    payment_id: order.payment_id,
    order_id: order.id,
  };
}

/**
 * Moves an authorized order on (captured or voided) and writes its books in one transaction;
 * only the transaction that moved it writes them, so a repeat after a crash books nothing twice.
 */
async function resolveAuthorization({ db }: Pick<OrderDeps, 'db'>, order_id: string, change: AuthorizationEnd, book: (trx: Knex.Transaction, moved: OrderRow) => Promise<void>): Promise<ChargeOutcome> {
  const row = await db.transaction(async (trx) => {
    const moved = await resolveAuthorized(trx, order_id, change);
    if (moved === undefined) return await loadOrder(trx, order_id);
    await book(trx, moved);
    return moved;
  });
  return outcomeOf(row);
}

/** The all-or-nothing steps: hold an authorization, capture it, void it. */
export function createAuthorizationActivities(deps: OrderDeps) {
  const { db, psp, log } = deps;
  return {
    /** The authorization in the books: the amount held in pending balances (psp_receivable / seller). */
    async recordAuthorization(order_id: string): Promise<void> {
      const order = await loadChargeableOrder(db, order_id);
      assert(order.status === 'authorized', `order ${order_id} is authorized before its hold is written`);
      const result = await createHold(db, authorizationTransfer(order), AUTHORIZATION_TTL_MS);
      log.info({ order_id, transaction_id: result.transaction_id, created: result.created }, 'authorization held');
    },

    /**
     * Takes the money of an authorized order: PSP capture (its key is per order), then in one
     * database transaction the order's status, the hold's release and the capture posting.
     */
    async captureOrder(order_id: string): Promise<ChargeOutcome> {
      const order = await loadChargeableOrder(db, order_id);
      if (order.status === 'succeeded') return outcomeOf(order);
      assert(order.status === 'authorized' && order.psp_reference !== null, `order ${order_id} is authorized before capture`);
      const charge = await withHeartbeat(psp.captureCharge(order.psp_reference, `${order_id}:capture`)).catch(rethrowPsp);
      assert(charge.status === 'succeeded', `capture of ${charge.id} answered ${charge.status}`);
      const change: AuthorizationEnd = { status: 'succeeded', psp_fee_minor: charge.fee, psp_version: charge.version, wallet_updated: true, ledger_updated: true };
      const outcome = await resolveAuthorization(deps, order_id, change, async (trx, captured) => {
        const hold = await findHold(trx, authorizationReference(order_id));
        await postInTransaction(trx, [voidPendingPosting(hold, `${hold.reference}:released`, 'authorization captured'), capturePosting(capturedOrder(captured))]);
      });
      log.info({ order_id, psp_reference: charge.id }, 'authorization captured');
      return outcome;
    },

    /** Releases an authorized order: PSP void, then the order (canceled) and the hold's void together. */
    async voidOrder(order_id: string, reason: string): Promise<ChargeOutcome> {
      const order = await loadChargeableOrder(db, order_id);
      if (isOrderTerminal(order.status)) return outcomeOf(order);
      assert(order.status === 'authorized' && order.psp_reference !== null, `order ${order_id} is authorized before a void`);
      const charge = await withHeartbeat(psp.voidCharge(order.psp_reference, `${order_id}:void`)).catch(rethrowPsp);
      assert(charge.status === 'canceled', `void of ${charge.id} answered ${charge.status}`);
      const change: AuthorizationEnd = { status: 'canceled', failure_code: 'authorization_voided', failure_message: reason.slice(0, FAILURE_MESSAGE_CHARS_MAX), psp_version: charge.version };
      const outcome = await resolveAuthorization(deps, order_id, change, async (trx) => {
        await voidHold(trx, authorizationReference(order_id), `${authorizationReference(order_id)}:void`);
      });
      log.info({ order_id, psp_reference: charge.id }, 'authorization voided');
      return outcome;
    },
  };
}
