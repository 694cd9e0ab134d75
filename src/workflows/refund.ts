import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities, RefundOutcome } from '../activities';
import { DATABASE_STEP, PSP_CALL } from './retry-policies';

/**
 * The PSP refund is idempotent by our refund id, so it is retried for as long as it takes (a day
 * at most, then the workflow fails visibly and an operator looks): giving up earlier could leave a
 * refund done at the PSP but not in our books. Refusals (e.g. nothing left to refund) come back as
 * a failed outcome, not an error, and free the reserved amount.
 */
const PSP_REFUND_STEP: ActivityOptions = { ...PSP_CALL, scheduleToCloseTimeout: '24h', retry: { ...PSP_CALL.retry, maximumAttempts: undefined } };

const psp = proxyActivities<Pick<Activities, 'refundAtPsp'>>(PSP_REFUND_STEP);
const books = proxyActivities<Pick<Activities, 'recordRefund'>>(DATABASE_STEP);

export interface RefundInput {
  refund_id: string;
}

/** One refund of one order: PSP refund → books (ledger reversal, order and payment status) in one transaction. */
export async function RefundWorkflow(input: RefundInput): Promise<RefundOutcome> {
  const outcome = await psp.refundAtPsp(input.refund_id);
  return await books.recordRefund(outcome);
}
