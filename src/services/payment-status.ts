import type { Knex } from 'knex';
import { derivePaymentStatus, isMoveAllowed, PAYMENT_STATUSES, type OrderStatus, type PaymentStatus } from '../domain/status';

/**
 * Stores the payment's status as derived from its orders, only ever forward: a payment shown as
 * `pending` stays `pending` (not `processing`) while another order is still being charged, and a
 * terminal payment never changes. The status-history trigger (migration 005) is the backstop.
 */
export async function storeDerivedStatus(
  trx: Knex.Transaction,
  payment_id: string,
  failure: { failure_code?: string; failure_message?: string } = {},
): Promise<PaymentStatus> {
  await trx('payment_event').where({ id: payment_id }).forUpdate().first();
  const orders = await trx('payment_order').where({ payment_id }).select<{ status: OrderStatus }[]>('status');
  const status = derivePaymentStatus(orders.map((o) => o.status));
  const movable = PAYMENT_STATUSES.filter((s) => isMoveAllowed(s, status));
  await trx('payment_event')
    .where({ id: payment_id })
    .whereIn('status', movable)
    .update({ status, ...failure, updated_at: trx.fn.now() });
  const row = await trx('payment_event').where({ id: payment_id }).first<{ status: PaymentStatus }>('status');
  return row.status;
}
