import { z } from 'zod';
import { DIFFERENCE_CLASSES, ITEM_STATUSES } from '../recon/classify';
import { LIMITS } from '../config';
import { httpUrlSchema } from '../domain/http-url';
import { ORDER_STATUSES, PAYMENT_STATUSES, REFUND_STATUSES } from '../domain/status';

// Request and response shapes. The OpenAPI document is generated from these and the route
// registry (src/api/registry.ts, src/api/openapi.ts); `.meta({ id })` names a component schema.

const DecimalAmount = z.string().describe('Decimal string in the currency\'s units, e.g. "12.34" (USD) or "1000" (JPY); never a JSON number');

const HttpUrl = httpUrlSchema(LIMITS.url_chars_max);

export const CreatePaymentBody = z.strictObject({
  buyer: z.strictObject({
    id: z.string().min(1).max(255),
    email: z.email().max(320).optional(),
  }),
  currency: z.string().describe('ISO 4217 code, upper case'),
  orders: z
    .array(z.strictObject({ seller_id: z.string().min(1).max(255), amount: DecimalAmount }))
    .min(1)
    .max(LIMITS.orders_per_payment_max)
    .describe('One order per seller'),
  payment_method: z.string().min(1).max(255).optional().describe('A PSP token (e.g. tok_success); never a card number. Leave out to use the hosted checkout (then return_url is required)'),
  return_url: HttpUrl.optional().describe('Where the PSP sends the buyer back after the hosted checkout'),
  capture_method: z
    .enum(['automatic', 'all_or_nothing'])
    .optional()
    .describe('automatic (default): each order is charged on its own. all_or_nothing: every order is authorized first; all are captured, or the authorized ones are voided and the payment fails'),
  metadata: z.record(z.string().min(1).max(40), z.string().max(LIMITS.metadata_value_chars_max)).optional(),
});
export type CreatePaymentBody = z.infer<typeof CreatePaymentBody>;

export const ListPaymentsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(LIMITS.page_size_max).default(LIMITS.page_size_default),
  starting_after: z.string().min(1).max(100).optional().describe('Cursor: the id of the last payment of the previous page'),
});

export const OrderResource = z.object({
  id: z.string(),
  object: z.literal('payment_order'),
  seller_id: z.string(),
  amount: z.string(),
  currency: z.string(),
  status: z.enum(ORDER_STATUSES),
  amount_refunded: z.string().describe('Refunded or being refunded (decimal string): never more than amount'),
  wallet_updated: z.boolean(),
  ledger_updated: z.boolean(),
  psp_reference: z.string().nullable(),
  failure_code: z.string().nullable(),
  failure_message: z.string().nullable(),
  next_action: z
    .object({ type: z.literal('redirect_to_url'), redirect_url: z.string() })
    .nullable()
    .describe('Set while the order is requires_action: send the buyer to redirect_url (3-D Secure on the PSP)'),
  created_at: z.string(),
  updated_at: z.string(),
}).meta({ id: 'Order' });

export const PaymentResource = z.object({
  id: z.string(),
  object: z.literal('payment'),
  status: z.enum(PAYMENT_STATUSES),
  currency: z.string(),
  amount: z.string(),
  buyer: z.object({ id: z.string(), email: z.string().nullable() }),
  metadata: z.record(z.string(), z.string()),
  failure_code: z.string().nullable(),
  failure_message: z.string().nullable(),
  workflow_id: z.string(),
  checkout_url: z.string().nullable().describe('The PSP-hosted page where the buyer enters the card (hosted checkout only)'),
  capture_method: z.enum(['automatic', 'all_or_nothing']),
  return_url: z.string().nullable(),
  orders: z.array(OrderResource).min(1).describe('one per seller, at least one'),
  created_at: z.string(),
  updated_at: z.string(),
}).meta({ id: 'Payment' });
export type PaymentResource = z.infer<typeof PaymentResource>;

export const PaymentList = z.object({
  object: z.literal('list'),
  data: z.array(PaymentResource),
  has_more: z.boolean(),
  next_cursor: z.string().nullable(),
}).meta({ id: 'PaymentList' });

const Currency = z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code in upper case');
const Cursor = z.string().min(1).max(100).optional().describe('next_cursor of the previous page');
const Limit = z.coerce.number().int().min(1).max(LIMITS.page_size_max).default(LIMITS.page_size_default);

export const ListBalancesQuery = z.strictObject({
  seller_id: z.string().min(1).max(255).optional(),
  currency: Currency.optional(),
  limit: Limit,
  starting_after: Cursor,
});

export const BalanceList = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ seller_id: z.string(), currency: z.string(), available: z.string(), pending: z.string(), negative_balance: z.string().describe('What the seller owes (refunds after a payout), recovered from later sales; 0 when none') })),
  has_more: z.boolean(),
  next_cursor: z.string().nullable(),
}).meta({ id: 'BalanceList' });

export const ListTransactionsQuery = z.strictObject({
  account: z.string().min(1).max(600).optional().describe('an account code, e.g. seller_payable:<merchant>:<seller> or platform_revenue'),
  payment_id: z.string().min(1).max(100).optional(),
  created_gte: z.iso.datetime({ offset: true }).optional(),
  created_lt: z.iso.datetime({ offset: true }).optional(),
  limit: Limit,
  starting_after: Cursor,
});

export const TransactionList = z.object({
  object: z.literal('list'),
  data: z.array(
    z.object({
      id: z.string(),
      reference: z.string(),
      kind: z.enum(['posting', 'hold', 'post_pending', 'void_pending']),
      description: z.string(),
      payment_id: z.string().nullable(),
      order_id: z.string().nullable(),
      created_at: z.string(),
      entries: z.array(z.object({ account: z.string(), currency: z.string(), direction: z.enum(['debit', 'credit']), amount: z.string(), phase: z.enum(['pending', 'posted']) })),
    }),
  ),
  has_more: z.boolean(),
  next_cursor: z.string().nullable(),
}).meta({ id: 'TransactionList' });

// Reconciliation (ops, admin key).
const SettlementDay = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day as YYYY-MM-DD (UTC)');

export const ListReconRunsQuery = z.strictObject({ date: SettlementDay.optional(), limit: Limit, starting_after: Cursor });

export const StartReconRunBody = z.strictObject({
  date: SettlementDay.describe('the UTC settlement day to reconcile'),
  fix_wait_ms: z.number().int().min(0).max(3_600_000).optional().describe('how long the run waits for auto-fixed orders to reach the books'),
});

export const ListReconItemsQuery = z.strictObject({
  date: SettlementDay.optional(),
  status: z.enum(ITEM_STATUSES).optional(),
  class: z.enum(DIFFERENCE_CLASSES).optional(),
  limit: Limit,
  starting_after: Cursor,
});

export const CloseReconItemBody = z.strictObject({ note: z.string().min(1).max(2_000) });

// Refunds.
export const CreateRefundBody = z.strictObject({
  order_id: z.string().min(1).max(100).describe('the order (one seller\'s part) to refund'),
  amount: DecimalAmount.describe('decimal string in the payment\'s currency, at most what is left to refund of the order'),
  reason: z.string().min(1).max(500).optional(),
});

export const RefundResource = z.object({
  id: z.string(),
  object: z.literal('refund'),
  payment_id: z.string(),
  order_id: z.string(),
  amount: z.string(),
  currency: z.string(),
  reason: z.string().nullable(),
  status: z.enum(REFUND_STATUSES),
  failure_code: z.string().nullable(),
  failure_message: z.string().nullable(),
  workflow_id: z.string(),
  created_at: z.string(),
}).meta({ id: 'Refund' });
export type RefundResource = z.infer<typeof RefundResource>;

/** A page of a merchant's own objects, newest first. */
export const PageQuery = z.strictObject({ limit: Limit, starting_after: Cursor });
export const ListRefundsQuery = PageQuery;

export const ListPayoutsQuery = z.strictObject({ seller_id: z.string().min(1).max(255).optional(), limit: Limit, starting_after: Cursor });
