import { defineQuery, patched, proxyActivities, proxyLocalActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities, ChargeOutcome } from '../activities';
import { DATABASE_STEP, LOCAL_DATABASE_STEP, PSP_CALL } from './retry-policies';
import { SA } from './search-attributes';

const psp = proxyActivities<Pick<Activities, 'chargeOrder'>>(PSP_CALL);
const books = proxyActivities<Pick<Activities, 'recordCapture' | 'creditWallet' | 'postLedger'>>(DATABASE_STEP);
const localBooks = proxyLocalActivities<Pick<Activities, 'recordCapture'>>(LOCAL_DATABASE_STEP);

export interface PaymentOrderInput {
  order_id: string;
  payment_id: string;
}

export type OrderStep = 'charging' | 'recording_capture' | 'crediting_wallet' | 'posting_ledger' | 'done';
export const orderStepQuery = defineQuery<{ order_id: string; step: OrderStep; outcome: ChargeOutcome | null }>('status');

/**
 * One seller's part of a checkout: PSP charge → wallet credit and ledger post. Each activity
 * re-reads the order and is idempotent (the charge by the PSP idempotency key, the books by the
 * posting's unique reference), so a crash anywhere repeats nothing and skips nothing.
 */
export async function PaymentOrderWorkflow(input: PaymentOrderInput): Promise<ChargeOutcome> {
  let step: OrderStep = 'charging';
  let outcome: ChargeOutcome | null = null;
  setHandler(orderStepQuery, () => ({ order_id: input.order_id, step, outcome }));

  outcome = await psp.chargeOrder(input.order_id);
  upsertSearchAttributes([{ key: SA.PaymentStatus, value: outcome.status }]);
  if (outcome.status === 'succeeded') {
    // v2: the wallet is the seller-payable balance, so crediting it and posting the ledger are
    // one balanced posting. Histories recorded before keep replaying the two-step path.
    if (patched('books-in-one-posting')) {
      step = 'recording_capture';
      // v3: a local activity (see LOCAL_DATABASE_STEP); the PSP call stays a regular activity,
      // with heartbeats and a server-side timeout, since it talks to the outside world.
      await (patched('local-database-steps') ? localBooks : books).recordCapture(input.order_id);
    } else {
      step = 'crediting_wallet';
      await books.creditWallet(input.order_id);
      step = 'posting_ledger';
      await books.postLedger(input.order_id);
    }
  }
  step = 'done';
  return outcome;
}
