import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { assert } from '../domain/assert';
import { disputePosting, type DisputedOrder } from '../domain/ledger';
import type { OrderStatus } from '../domain/status';
import { disputeWorkflowId } from '../domain/workflow-ids';
import { postInTransaction } from '../ledger/poster';
import type { PspClient, PspDispute } from '../psp/client';
import { storeDerivedStatus } from '../services/payment-status';
import { rethrowPsp, withHeartbeat } from './order';

export interface DisputeDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
}

interface OrderRow {
  id: string;
  payment_id: string;
  merchant_id: string;
  seller_id: string;
  currency: string;
  amount_minor: string;
  commission_minor: string;
  status: OrderStatus;
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
        if ((await trx('dispute').where({ id: dispute.id }).first('id')) !== undefined) return;
        const order = (await trx('payment_order').where({ psp_reference: dispute.charge }).forUpdate().first()) as OrderRow | undefined;
        assert(order !== undefined, `dispute ${dispute.id} is about one of our charges`);
        const amount_minor = BigInt(dispute.amount) > BigInt(order.amount_minor) ? order.amount_minor : dispute.amount;
        await trx('dispute').insert({
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
          workflow_id: disputeWorkflowId(dispute.id),
        });
        await postInTransaction(trx, [disputePosting(draftOf(order, { id: dispute.id, amount_minor }), 'open')]);
        await trx('payment_order').where({ id: order.id }).update({ status: 'disputed', updated_at: trx.fn.now() });
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
        const row = (await trx('dispute').where({ id: dispute.id }).forUpdate().first()) as
          | { id: string; order_id: string; amount_minor: string; status: string; order_status_before: OrderStatus }
          | undefined;
        assert(row !== undefined, `dispute ${dispute.id} was opened`);
        if (row.status === 'won' || row.status === 'lost') return;
        const order = (await trx('payment_order').where({ id: row.order_id }).forUpdate().first()) as OrderRow;
        await postInTransaction(trx, [disputePosting(draftOf(order, { id: row.id, amount_minor: row.amount_minor }), dispute.status === 'won' ? 'won' : 'lost')]);
        await trx('dispute').where({ id: row.id }).update({ status: dispute.status, updated_at: trx.fn.now() });
        const back = dispute.status === 'won' ? { status: row.order_status_before } : { status: 'refunded', refunded_minor: order.amount_minor };
        await trx('payment_order').where({ id: order.id }).update({ ...back, updated_at: trx.fn.now() });
        await storeDerivedStatus(trx, order.payment_id);
        log.info({ dispute_id: row.id, order_id: order.id, status: dispute.status }, 'dispute closed');
      });
    },
  };
}
