import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { assert } from '../domain/assert';
import { refundPosting } from '../domain/ledger';
import { postInTransaction } from '../ledger/poster';
import { PspError, type PspClient } from '../psp/client';
import { storeDerivedStatus } from '../aggregates/payment';
import { loadOrder, markRefunded, releaseRefund } from '../aggregates/order';
import { loadRefund, markRefundFailed, markRefundSucceeded, succeededRefundsOfOrder, type RefundRow } from '../aggregates/refund';
import { rethrowPsp, withHeartbeat } from './psp-call';

export interface RefundDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
}

/** What the PSP decided about a refund (crosses the workflow boundary: strings only). */
export interface RefundOutcome {
  refund_id: string;
  status: 'succeeded' | 'failed';
  psp_refund_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
}

const FAILURE_MESSAGE_CHARS_MAX = 1_000;

const outcomeOf = (r: RefundRow): RefundOutcome => {
  assert(r.status !== 'pending', `refund ${r.id} is decided`);
  return { refund_id: r.id, status: r.status, psp_refund_id: r.psp_refund_id, failure_code: r.failure_code, failure_message: r.failure_message };
};

export function createRefundActivities({ db, psp, log }: RefundDeps) {
  /** Succeeded: the ledger posting, the refund row and the order's (and payment's) status, together. */
  async function recordSucceeded(trx: Knex.Transaction, refund: RefundRow, psp_refund_id: string): Promise<void> {
    // The order row lock orders this against other refunds of the order finishing at the same time.
    const order = await loadOrder(trx, refund.order_id, { lock: true });
    const refunded_before_minor = await succeededRefundsOfOrder(trx, order.id);
    const refund_minor = BigInt(refund.amount_minor);
    await postInTransaction(trx, [
      refundPosting({
        refund_id: refund.id,
        order_id: order.id,
        payment_id: order.payment_id,
        merchant_id: order.merchant_id,
        seller_id: order.seller_id,
        currency: refund.currency.trim(),
        amount_minor: BigInt(order.amount_minor),
        commission_minor: BigInt(order.commission_minor),
        refunded_before_minor,
        refund_minor,
      }),
    ]);
    await markRefundSucceeded(trx, refund.id, psp_refund_id);
    const status = refunded_before_minor + refund_minor === BigInt(order.amount_minor) ? 'refunded' : 'partially_refunded';
    if (status !== order.status) await markRefunded(trx, order.id, status);
    await storeDerivedStatus(trx, order.payment_id);
  }

  return {
    /** The PSP refund, keyed by our refund id. A definitive refusal is an outcome, not an error. */
    async refundAtPsp(refund_id: string): Promise<RefundOutcome> {
      const refund = await loadRefund(db, refund_id);
      if (refund.status !== 'pending') return outcomeOf(refund);
      const order = await loadOrder(db, refund.order_id);
      assert(order.psp_reference !== null, `order ${refund.order_id} of refund ${refund_id} has a PSP charge`);
      try {
        const given = await withHeartbeat(psp.createRefund({ charge_id: order.psp_reference, amount_minor: BigInt(refund.amount_minor), reason: refund.reason, idempotency_key: refund.id }));
        return { refund_id, status: 'succeeded', psp_refund_id: given.id, failure_code: null, failure_message: null };
      } catch (err) {
        if (err instanceof PspError && err.kind === 'definitive') {
          return { refund_id, status: 'failed', psp_refund_id: null, failure_code: err.code, failure_message: err.message.slice(0, FAILURE_MESSAGE_CHARS_MAX) };
        }
        return rethrowPsp(err);
      }
    },

    /** Records the PSP's decision once (a repeat finds the refund decided). A failure frees the amount it reserved. */
    async recordRefund(outcome: RefundOutcome): Promise<RefundOutcome> {
      return await db.transaction(async (trx) => {
        const refund = await loadRefund(trx, outcome.refund_id, true);
        if (refund.status !== 'pending') return outcomeOf(refund);
        if (outcome.status === 'succeeded') {
          assert(outcome.psp_refund_id !== null, 'a succeeded refund has its PSP id');
          await recordSucceeded(trx, refund, outcome.psp_refund_id);
        } else {
          await markRefundFailed(trx, refund.id, { failure_code: outcome.failure_code, failure_message: outcome.failure_message });
          await releaseRefund(trx, refund.order_id, refund.amount_minor);
        }
        log.info({ refund_id: refund.id, order_id: refund.order_id, payment_id: refund.payment_id, status: outcome.status, failure_code: outcome.failure_code }, 'refund recorded');
        return outcome;
      });
    },
  };
}
