import { defineQuery, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities, ChargeOutcome } from '../activities';
import { DATABASE_STEP, PSP_CALL } from './retry-policies';
import { SA } from './search-attributes';

const psp = proxyActivities<Pick<Activities, 'chargeOrder'>>(PSP_CALL);
const books = proxyActivities<Pick<Activities, 'creditWallet' | 'postLedger'>>(DATABASE_STEP);

export interface PaymentOrderInput {
  order_id: string;
  payment_id: string;
}

export type OrderStep = 'charging' | 'crediting_wallet' | 'posting_ledger' | 'done';
export const orderStepQuery = defineQuery<{ order_id: string; step: OrderStep; outcome: ChargeOutcome | null }>('status');

/**
 * One seller's part of a checkout: PSP charge → wallet credit → ledger post. Each activity
 * re-reads the order and flips its own flag in the same database transaction as its write, so a
 * crash anywhere repeats nothing and skips nothing.
 */
export async function PaymentOrderWorkflow(input: PaymentOrderInput): Promise<ChargeOutcome> {
  let step: OrderStep = 'charging';
  let outcome: ChargeOutcome | null = null;
  setHandler(orderStepQuery, () => ({ order_id: input.order_id, step, outcome }));

  outcome = await psp.chargeOrder(input.order_id);
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: outcome.status }]);
  if (outcome.status === 'succeeded') {
    step = 'crediting_wallet';
    await books.creditWallet(input.order_id);
    step = 'posting_ledger';
    await books.postLedger(input.order_id);
  }
  step = 'done';
  return outcome;
}
