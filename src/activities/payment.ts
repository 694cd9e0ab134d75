import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { assert } from '../domain/assert';
import type { RiskProvider } from '../domain/risk';
import { PspError, type PspClient } from '../psp/client';
import { attachPaymentMethod, loadPayment, storeDerivedStatus } from '../aggregates/payment';
import { endUnstartedOrders } from '../aggregates/order';
import type { PaymentSummary, RiskOutcome } from './types';

export interface PaymentDeps {
  db: Knex;
  log: Logger;
  risk: RiskProvider;
  psp: PspClient;
}

const PAYMENT_METHOD_TOKEN = /^pm_[A-Za-z0-9_]{1,200}$/;

/** The token of the payment's hosted checkout if the buyer completed it; null if not, or if the PSP knows no such session. */
async function completedCheckout({ db, log, psp }: Pick<PaymentDeps, 'db' | 'log' | 'psp'>, payment_id: string): Promise<string | null> {
  const p = await loadPayment(db, payment_id);
  assert(p.checkout_session_id !== null, `payment ${payment_id} has a checkout session`);
  let session;
  try {
    session = await psp.getCheckoutSession(p.checkout_session_id);
  } catch (err) {
    // The PSP says the session does not exist: nothing can have been paid through it.
    if (!(err instanceof PspError) || err.kind !== 'definitive') throw err;
    log.warn({ payment_id, code: err.code }, 'checkout session unknown at the PSP');
    return null;
  }
  log.info({ payment_id, checkout_session: session.id, session_status: session.status }, 'checkout looked up');
  return session.status === 'complete' ? session.payment_method : null;
}

export function createPaymentActivities({ db, log, risk, psp }: PaymentDeps) {
  /** Ends a payment before any charge: every order that never started takes `order_status`. */
  async function endBeforeCharging(payment_id: string, order_status: 'failed' | 'canceled', code: string, reason: string): Promise<PaymentSummary> {
    return await db.transaction(async (trx) => {
      await endUnstartedOrders(trx, payment_id, order_status, { failure_code: code, failure_message: reason });
      const status = await storeDerivedStatus(trx, payment_id, { failure_code: code, failure_message: reason });
      log.info({ payment_id, status, code }, 'payment ended before charging');
      return { payment_id, status };
    });
  }

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
      // Every payment passes here: only a rejection is news at info level.
      log[decision.approved ? 'debug' : 'info']({ payment_id, merchant_id: p.merchant_id, approved: decision.approved }, 'risk assessed');
      return decision;
    },

    /** A rejected payment fails as a whole: every order that never started fails with the code. */
    async rejectPayment(payment_id: string, code: string, reason: string): Promise<PaymentSummary> {
      return await endBeforeCharging(payment_id, 'failed', code, reason);
    },

    /** The buyer never finished the hosted checkout: nothing was charged, the payment is canceled. */
    async cancelPayment(payment_id: string, code: string, reason: string): Promise<PaymentSummary> {
      return await endBeforeCharging(payment_id, 'canceled', code, reason);
    },

    /** Stores the token the hosted checkout produced; the payment moves on to `processing`. */
    async attachPaymentMethod(payment_id: string, payment_method: string): Promise<void> {
      assert(PAYMENT_METHOD_TOKEN.test(payment_method), `payment method of ${payment_id} is a pm_ token`);
      const p = await loadPayment(db, payment_id);
      // A repeat (retry after a crash) finds its own token already there.
      if (p.payment_method === payment_method) return;
      assert(p.payment_method === null && p.status === 'requires_payment_method', `payment ${payment_id} awaits a payment method`);
      await attachPaymentMethod(db, payment_id, payment_method);
      log.info({ payment_id, payment_method }, 'payment method attached');
    },

    /**
     * Asks the PSP whether the buyer finished the checkout: the last look before the payment is
     * canceled, so a lost `payment_method.attached` webhook never cancels a paid-for checkout.
     */
    async lookupCheckout(payment_id: string): Promise<string | null> {
      return await completedCheckout({ db, log, psp }, payment_id);
    },

    /** Derives the event's status from its orders and stores it. Safe to repeat. */
    async completePayment(payment_id: string): Promise<PaymentSummary> {
      const status = await db.transaction(async (trx) => await storeDerivedStatus(trx, payment_id));
      log.info({ payment_id, status }, 'payment settled');
      return { payment_id, status };
    },
  };
}
