import type { Knex } from 'knex';
import { ApplicationFailure } from '@temporalio/activity';
import { CAPTURED_ORDER_STATUSES } from '../domain/status';
import { FAILURE_TYPES } from '../workflows/contract';
import type { Logger } from '../logger';
import { assert } from '../domain/assert';
import { disputePosting, type DisputedOrder } from '../domain/ledger';
import { postInTransaction } from '../ledger/poster';
import type { PspClient, PspDispute } from '../psp/client';
import { storeDerivedStatus } from '../aggregates/payment';
import { endDispute, findOrder, loadOrder, markDisputed, type OrderRow } from '../aggregates/order';
import { decideDispute, disputeExists, insertDispute, lockDispute } from '../aggregates/dispute';
import { rethrowPsp, withHeartbeat } from './psp-call';

export interface DisputeDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
}

const draftOf = (o: OrderRow, d: { id: string; amount_minor: string }): DisputedOrder => ({
  dispute_id: d.id,
  order_id: o.id,
  payment_id: o.payment_id,
  merchant_id: o.merchant_id,
  seller_id: o.seller_id,
  currency: o.currency.trim(),
  amount_minor: BigInt(o.amount_minor),
  commission_minor: BigInt(o.commission_minor),
  dispute_minor: BigInt(d.amount_minor),
});

export function createDisputeActivities({ db, psp, log }: DisputeDeps) {
  return {
    /** Records a dispute once: its row, the hold in the ledger, the order and payment `disputed`. */
    async openDispute(dispute: PspDispute): Promise<void> {
      await db.transaction(async (trx) => {
        if (await disputeExists(trx, dispute.id)) return;
        const order = await findOrder(trx, { psp_reference: dispute.charge }, { lock: true });
        assert(order !== undefined, `dispute ${dispute.id} is about one of our charges`);
        // The bank disputes captured money; if our books have not seen the capture yet (its webhook
        // lost, the poll not due), the dispute waits for it rather than holding money never booked.
        if (!(CAPTURED_ORDER_STATUSES as readonly string[]).includes(order.status)) {
          throw ApplicationFailure.retryable(`dispute ${dispute.id}: order ${order.id} is ${order.status}; booked once its capture is`, FAILURE_TYPES.dispute_before_capture);
        }
        const amount_minor = BigInt(dispute.amount) > BigInt(order.amount_minor) ? order.amount_minor : dispute.amount;
        await insertDispute(trx, {
          id: dispute.id,
          merchant_id: order.merchant_id,
          payment_id: order.payment_id,
          order_id: order.id,
          amount_minor,
          currency: order.currency,
          reason: dispute.reason,
          status: dispute.status === 'under_review' ? 'under_review' : 'needs_response',
          evidence_due_by: new Date(dispute.evidence_due_by * 1000),
          order_status_before: order.status,
        });
        await postInTransaction(trx, [disputePosting(draftOf(order, { id: dispute.id, amount_minor }), 'open')]);
        await markDisputed(trx, order.id);
        await storeDerivedStatus(trx, order.payment_id);
        log.info({ dispute_id: dispute.id, order_id: order.id, payment_id: order.payment_id, amount_minor }, 'dispute opened');
      });
    },

    /** Asks the PSP for a dispute whose decision did not reach us (a lost webhook). */
    async fetchDispute(dispute_id: string): Promise<PspDispute> {
      return await withHeartbeat(psp.getDispute(dispute_id)).catch(rethrowPsp);
    },

    /** Books the decision once: won releases the hold and the order goes back; lost, the held share pays and the order ends refunded. */
    async closeDispute(dispute: PspDispute): Promise<void> {
      assert(dispute.status === 'won' || dispute.status === 'lost', `dispute ${dispute.id} is decided`);
      await db.transaction(async (trx) => {
        const row = await lockDispute(trx, dispute.id);
        assert(row !== undefined, `dispute ${dispute.id} was opened`);
        if (row.status === 'won' || row.status === 'lost') return;
        const order = await loadOrder(trx, row.order_id, { lock: true });
        await postInTransaction(trx, [disputePosting(draftOf(order, { id: row.id, amount_minor: row.amount_minor }), dispute.status === 'won' ? 'won' : 'lost')]);
        await decideDispute(trx, row.id, dispute.status === 'won' ? 'won' : 'lost');
        await endDispute(trx, order, dispute.status === 'won' ? { won: true, status_before: row.order_status_before } : { won: false });
        await storeDerivedStatus(trx, order.payment_id);
        log.info({ dispute_id: row.id, order_id: order.id, status: dispute.status }, 'dispute closed');
      });
    },
  };
}
