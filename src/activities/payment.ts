import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { assert } from '../domain/assert';
import { derivePaymentStatus, type OrderStatus, type PaymentStatus } from '../domain/status';
import type { RiskProvider } from '../domain/risk';
import type { PaymentSummary, RiskOutcome } from './types';

export interface PaymentDeps {
  db: Knex;
  log: Logger;
  risk: RiskProvider;
}

interface PaymentRow {
  id: string;
  merchant_id: string;
  buyer_id: string;
  currency: string;
  amount_minor: string;
  status: PaymentStatus;
}

async function loadPayment(db: Knex, payment_id: string): Promise<PaymentRow> {
  const row = await db<PaymentRow>('payment_event').where({ id: payment_id }).first();
  assert(row !== undefined, `payment ${payment_id} exists`);
  return row;
}

export function createPaymentActivities({ db, log, risk }: PaymentDeps) {
  return {
    /** The seeds' AML/CFT + fraud step, run before any money moves. */
    async riskCheck(payment_id: string): Promise<RiskOutcome> {
      const p = await loadPayment(db, payment_id);
      const decision = await risk.assess({
        payment_id,
        merchant_id: p.merchant_id,
        buyer_id: p.buyer_id,
        currency: p.currency,
        amount_minor: BigInt(p.amount_minor),
      });
      log.info({ payment_id, merchant_id: p.merchant_id, approved: decision.approved }, 'risk assessed');
      return decision;
    },

    /** A rejected payment fails as a whole: every order that never started fails with the code. */
    async rejectPayment(payment_id: string, code: string, reason: string): Promise<PaymentSummary> {
      return await db.transaction(async (trx) => {
        await trx('payment_order')
          .where({ payment_id, status: 'not_started' })
          .update({ status: 'failed', failure_code: code, failure_message: reason, updated_at: trx.fn.now() });
        return await settle(trx, payment_id, { failure_code: code, failure_message: reason });
      });
    },

    /** Derives the event's status from its orders and stores it. Safe to repeat. */
    async completePayment(payment_id: string): Promise<PaymentSummary> {
      return await db.transaction(async (trx) => await settle(trx, payment_id, {}));
    },
  };

  async function settle(trx: Knex.Transaction, payment_id: string, failure: { failure_code?: string; failure_message?: string }): Promise<PaymentSummary> {
    await trx('payment_event').where({ id: payment_id }).forUpdate().first();
    const orders = await trx('payment_order').where({ payment_id }).select<{ status: OrderStatus }[]>('status');
    const status = derivePaymentStatus(orders.map((o) => o.status));
    await trx('payment_event')
      .where({ id: payment_id })
      .update({ status, ...failure, updated_at: trx.fn.now() });
    log.info({ payment_id, status }, 'payment settled');
    return { payment_id, status };
  }
}
