import type { Knex } from 'knex';
import { z } from 'zod';
import { assert } from '../domain/assert';
import { AppError } from '../domain/errors';
import { newId } from '../domain/ids';
import { currencyExponent, formatAmount, parseAmount } from '../domain/money';
import { paymentWorkflowId } from '../domain/workflow-ids';
import type { OrderStatus, PaymentStatus } from '../domain/status';
import { LIMITS } from '../config';
import { commissionFor, type FeeRule } from '../domain/fees';
import { findMerchantPayment, insertPaymentRow, merchantPaymentsPage, setCheckoutSession, type CaptureMethod, type PaymentRow } from '../aggregates/payment';
import { insertOrders, ordersOfPayments, type OrderRow } from '../aggregates/order';
import { PspError, type PspClient } from '../psp/client';

/** A payment request as the API validated it (its zod schema's output has this shape). */
export interface CreatePaymentBody {
  buyer: { id: string; email?: string };
  currency: string;
  orders: { seller_id: string; amount: string }[];
  payment_method?: string;
  return_url?: string;
  capture_method?: CaptureMethod;
  metadata?: Record<string, string>;
}

export interface OrderResource {
  id: string;
  object: 'payment_order';
  seller_id: string;
  amount: string;
  currency: string;
  status: OrderStatus;
  amount_refunded: string;
  wallet_updated: boolean;
  ledger_updated: boolean;
  psp_reference: string | null;
  failure_code: string | null;
  failure_message: string | null;
  next_action: { type: 'redirect_to_url'; redirect_url: string } | null;
  created_at: string;
  updated_at: string;
}

export interface PaymentResource {
  id: string;
  object: 'payment';
  status: PaymentStatus;
  currency: string;
  amount: string;
  buyer: { id: string; email: string | null };
  metadata: Record<string, string>;
  failure_code: string | null;
  failure_message: string | null;
  workflow_id: string;
  checkout_url: string | null;
  capture_method: CaptureMethod;
  return_url: string | null;
  orders: OrderResource[];
  created_at: string;
  updated_at: string;
}

// A payment method that looks like a card number (13-19 digits, spaces/dashes allowed) is refused:
// card data must never reach us (PCI scope stays SAQ-A).
function looksLikeCardNumber(value: string): boolean {
  return /^[0-9 -]+$/.test(value) && /^[0-9]{13,19}$/.test(value.replace(/[ -]/g, ''));
}

export interface ValidPayment {
  body: CreatePaymentBody;
  currency: string;
  amounts_minor: bigint[];
  total_minor: bigint;
}

/** Rules zod cannot say: currency exponents, positive amounts, one order per seller, no card data. */
export function validatePayment(body: CreatePaymentBody): ValidPayment {
  const currency = body.currency;
  currencyExponent(currency);
  const amounts_minor = body.orders.map((o, i) => {
    const amount_minor = parseAmount(o.amount, currency, `orders[${i}].amount`);
    if (amount_minor <= 0n) throw new AppError('invalid_amount', 'amount must be greater than zero', `orders[${i}].amount`);
    return amount_minor;
  });
  const sellers = new Set<string>();
  body.orders.forEach((o, i) => {
    if (sellers.has(o.seller_id)) throw new AppError('duplicate_seller', 'a payment holds one order per seller', `orders[${i}].seller_id`);
    sellers.add(o.seller_id);
  });
  const pm = body.payment_method;
  if (pm !== undefined && looksLikeCardNumber(pm)) {
    throw new AppError('card_data_not_allowed', 'send a PSP token, never a card number', 'payment_method');
  }
  if (pm === undefined && body.return_url === undefined) {
    throw new AppError('return_url_required', 'without payment_method the buyer pays on the hosted checkout page, which needs a return_url to send them back to', 'return_url');
  }
  if (Object.keys(body.metadata ?? {}).length > LIMITS.metadata_keys_max) {
    throw new AppError('parameter_invalid', `metadata holds at most ${LIMITS.metadata_keys_max} keys`, 'metadata');
  }
  const total_minor = amounts_minor.reduce((a, b) => a + b, 0n);
  if (total_minor.toString().length > LIMITS.amount_digits_max) throw new AppError('invalid_amount', 'total amount is too large', 'orders');
  return { body, currency, amounts_minor, total_minor };
}

/** The merchant's rule for this currency, else its default rule, else the platform default. */
export async function feeRuleFor(conn: Knex | Knex.Transaction, merchant_id: string, currency: string, default_bps: number): Promise<FeeRule> {
  const rule = await conn('merchant_fee_rule')
    .where({ merchant_id })
    .andWhere((q) => q.where({ currency }).orWhereNull('currency'))
    .orderByRaw('currency is null') // the currency's own rule first
    .first<{ percent_bps: number; fixed_minor: string } | undefined>('percent_bps', 'fixed_minor');
  return rule === undefined ? { percent_bps: default_bps, fixed_minor: 0n } : { percent_bps: rule.percent_bps, fixed_minor: BigInt(rule.fixed_minor) };
}

/**
 * Inserts the event and its orders (`not_started`) in the caller's transaction; fees are frozen
 * here. `task_queue` is the accepting API's: only that queue's dispatcher starts the workflow.
 */
export async function insertPayment(trx: Knex.Transaction, merchant_id: string, valid: ValidPayment, default_commission_bps: number, task_queue: string): Promise<string> {
  const payment_id = newId('pay');
  const rule = await feeRuleFor(trx, merchant_id, valid.currency, default_commission_bps);
  await insertPaymentRow(trx, {
    id: payment_id,
    merchant_id,
    buyer_id: valid.body.buyer.id,
    buyer_email: valid.body.buyer.email ?? null,
    currency: valid.currency,
    amount_minor: valid.total_minor.toString(),
    // Without a token the buyer first pays on the PSP's hosted page.
    status: valid.body.payment_method === undefined ? 'requires_payment_method' : 'processing',
    payment_method: valid.body.payment_method ?? null,
    return_url: valid.body.return_url ?? null,
    capture_method: valid.body.capture_method ?? 'automatic',
    metadata: valid.body.metadata ?? {},
    workflow_id: paymentWorkflowId(payment_id),
    task_queue,
  });
  await insertOrders(
    trx,
    valid.body.orders.map((o, i) => ({
      id: newId('ord'),
      payment_id,
      merchant_id,
      seller_id: o.seller_id,
      amount_minor: (valid.amounts_minor[i] ?? 0n).toString(),
      currency: valid.currency,
      commission_bps: rule.percent_bps,
      commission_minor: commissionFor(valid.amounts_minor[i] ?? 0n, rule).toString(),
    })),
  );
  return payment_id;
}

/**
 * Opens the PSP's hosted checkout for a payment without a token, server to server (the URL is the
 * PSP's answer, never one we compose). Runs inside the payment's insert transaction: if the PSP
 * cannot be reached the payment is not created and the client's retry (same key) starts afresh.
 */
export async function openCheckout(trx: Knex.Transaction, psp: PspClient, payment_id: string, return_url: string): Promise<void> {
  let session;
  try {
    session = await psp.createCheckoutSession({ idempotency_key: `checkout-${payment_id}`, client_reference: payment_id, return_url });
  } catch (err) {
    if (!(err instanceof PspError)) throw err;
    throw new AppError('psp_unavailable', `the payment provider could not open a checkout (${err.code}); retry with the same Idempotency-Key`, undefined, 5);
  }
  assert(session.client_reference === payment_id, `checkout session ${session.id} belongs to payment ${payment_id}`);
  await setCheckoutSession(trx, payment_id, session);
}

/** Reads the primary (never a replica): the API's answers decide what clients do next. */
export async function getPayment(db: Knex, merchant_id: string, payment_id: string): Promise<PaymentResource> {
  const row = await findMerchantPayment(db, merchant_id, payment_id);
  if (row === undefined) throw new AppError('resource_missing', `no payment ${payment_id}`, 'id');
  const orders = await ordersOfPayments(db, [payment_id]);
  return toResource(row, orders);
}

export async function listPayments(db: Knex, merchant_id: string, limit: number, starting_after?: string) {
  assert(limit >= 1 && limit <= LIMITS.page_size_max, 'page size within limits');
  if (starting_after !== undefined && (await findMerchantPayment(db, merchant_id, starting_after)) === undefined) {
    throw new AppError('invalid_cursor', 'starting_after must be the id of one of your payments', 'starting_after');
  }
  const rows = await merchantPaymentsPage(db, merchant_id, limit + 1, starting_after);
  const page = rows.slice(0, limit);
  const orders = await ordersOfPayments(db, page.map((p) => p.id));
  const data = page.map((p) => toResource(p, orders.filter((o) => o.payment_id === p.id)));
  const has_more = rows.length > limit;
  return { object: 'list' as const, data, has_more, next_cursor: has_more ? (page[page.length - 1]?.id ?? null) : null };
}

function toResource(row: PaymentRow, orders: OrderRow[]): PaymentResource {
  return {
    id: row.id,
    object: 'payment',
    status: row.status,
    currency: row.currency,
    amount: formatAmount(BigInt(row.amount_minor), row.currency),
    buyer: { id: row.buyer_id, email: row.buyer_email },
    metadata: z.record(z.string(), z.string()).parse(row.metadata),
    failure_code: row.failure_code,
    failure_message: row.failure_message,
    workflow_id: row.workflow_id,
    checkout_url: row.checkout_url,
    return_url: row.return_url,
    capture_method: row.capture_method,
    orders: orders.map((o) => ({
      id: o.id,
      object: 'payment_order',
      seller_id: o.seller_id,
      amount: formatAmount(BigInt(o.amount_minor), o.currency),
      currency: o.currency,
      status: o.status,
      amount_refunded: formatAmount(BigInt(o.refunded_minor), o.currency),
      wallet_updated: o.wallet_updated,
      ledger_updated: o.ledger_updated,
      psp_reference: o.psp_reference,
      failure_code: o.failure_code,
      failure_message: o.failure_message,
      next_action: o.status === 'requires_action' && o.next_action_url !== null ? { type: 'redirect_to_url' as const, redirect_url: o.next_action_url } : null,
      created_at: o.created_at.toISOString(),
      updated_at: o.updated_at.toISOString(),
    })),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
