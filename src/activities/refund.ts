import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { assert } from '../domain/assert';
import { refundPosting } from '../domain/ledger';
import { postInTransaction } from '../ledger/poster';
import { PspError, type PspClient } from '../psp/client';
import { storeDerivedStatus } from '../services/payment-status';
import { rethrowPsp, withHeartbeat } from './order';

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

interface RefundRow {
  id: string;
  merchant_id: string;
  payment_id: string;
  order_id: string;
  amount_minor: string;
  currency: string;
  reason: string | null;
  status: 'pending' | 'succeeded' | 'failed';
  psp_refund_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
}

const FAILURE_MESSAGE_CHARS_MAX = 1_000;

async function loadRefund(conn: Knex, refund_id: string, lock = false): Promise<RefundRow> {
  const query = conn('refund').where({ id: refund_id });
  const row = (await (lock ? query.forUpdate() : query).first()) as RefundRow | undefined;
  assert(row !== undefined, `refund ${refund_id} exists`);
  return row;
}

const outcomeOf = (r: RefundRow): RefundOutcome => {
  assert(r.status !== 'pending', `refund ${r.id} is decided`);
  return { refund_id: r.id, status: r.status, psp_refund_id: r.psp_refund_id, failure_code: r.failure_code, failure_message: r.failure_message };
};

export function createRefundActivities({ db, psp, log }: RefundDeps) {
  /** Succeeded: the ledger posting, the refund row and the order's (and payment's) status, together. */
  async function recordSucceeded(trx: Knex.Transaction, refund: RefundRow, psp_refund_id: string): Promise<void> {
    // The order row lock orders this against other refunds of the order finishing at the same time.
    const order = (await trx('payment_order').where({ id: refund.order_id }).forUpdate().first()) as {
      id: string; payment_id: string; merchant_id: string; seller_id: string; amount_minor: string; commission_minor: string; status: string;
    };
    const [done] = (await trx('refund').where({ order_id: order.id, status: 'succeeded' }).sum({ total: 'amount_minor' })) as { total: string | null }[];
    const refunded_before_minor = BigInt(done?.total ?? 0);
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
    await trx('refund').where({ id: refund.id }).update({ status: 'succeeded', psp_refund_id, updated_at: trx.fn.now() });
    const status = refunded_before_minor + refund_minor === BigInt(order.amount_minor) ? 'refunded' : 'partially_refunded';
    if (status !== order.status) await trx('payment_order').where({ id: order.id }).update({ status, updated_at: trx.fn.now() });
    await storeDerivedStatus(trx, order.payment_id);
  }

  return {
    /** The PSP refund, keyed by our refund id. A definitive refusal is an outcome, not an error. */
    async refundAtPsp(refund_id: string): Promise<RefundOutcome> {
      const refund = await loadRefund(db, refund_id);
      if (refund.status !== 'pending') return outcomeOf(refund);
      const order = (await db('payment_order').where({ id: refund.order_id }).first('psp_reference')) as { psp_reference: string | null };
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
          await trx('refund').where({ id: refund.id }).update({ status: 'failed', failure_code: outcome.failure_code, failure_message: outcome.failure_message, updated_at: trx.fn.now() });
          await trx('payment_order').where({ id: refund.order_id }).update({ refunded_minor: trx.raw('refunded_minor - ?', [refund.amount_minor]), updated_at: trx.fn.now() });
        }
        log.info({ refund_id: refund.id, order_id: refund.order_id, payment_id: refund.payment_id, status: outcome.status, failure_code: outcome.failure_code }, 'refund recorded');
        return outcome;
      });
    },
  };
}
