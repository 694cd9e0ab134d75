import { z } from 'zod';
import { DIFFERENCE_CLASSES, ITEM_STATUSES } from '../recon/classify';
import { ERROR_CODES, ERROR_TYPES } from '../domain/errors';
import { RefundResource } from './schemas';
import { PSP_EVENT_ROUTES } from '../domain/psp-events';
import { DISPUTE_STATUSES, PAYOUT_STATUSES } from '../domain/status';

// Response shapes as the API answers them (the JSON the services build), for the OpenAPI document.

const Timestamp = z.string().describe('ISO 8601 date-time (UTC)');
const Day = z.string().describe('a day as YYYY-MM-DD (UTC)');
const Amount = z.string().describe('decimal string in the currency\'s units');
const BigintString = z.string().describe('an integer as a decimal string');

export const ErrorEnvelope = z
  .object({
    error: z.object({
      type: z.enum(ERROR_TYPES),
      code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]]),
      message: z.string(),
      param: z.string().optional().describe('the request field at fault'),
    }),
  })
  .meta({ id: 'Error', description: 'Every error answer: a type, a code from a closed set, a message for people and the field at fault' });

/** A page of `item`, with the cursor for the next one. */
export function listOf(item: z.ZodType, id: string) {
  return z
    .object({ object: z.literal('list'), data: z.array(item), has_more: z.boolean(), next_cursor: z.string().nullable().describe('starting_after for the next page; null on the last') })
    .meta({ id });
}

export const RefundList = listOf(RefundResource, 'RefundList');

export const BankAccountResource = z.object({ object: z.literal('bank_account'), seller_id: z.string(), last4: z.string() }).meta({ id: 'BankAccount' });

export const PayoutResource = z
  .object({
    id: z.string(),
    object: z.literal('payout'),
    seller_id: z.string(),
    amount: Amount,
    currency: z.string(),
    status: z.enum(PAYOUT_STATUSES),
    bank_account_last4: z.string(),
    failure_code: z.string().nullable(),
    run_date: Day.nullable().describe('the scheduled run that made it; null for an on-demand payout'),
    workflow_id: z.string(),
    created_at: Timestamp,
  })
  .meta({ id: 'Payout' });
export const PayoutList = listOf(PayoutResource, 'PayoutList');

export const DisputeResource = z
  .object({
    id: z.string(),
    object: z.literal('dispute'),
    payment_id: z.string(),
    order_id: z.string(),
    amount: Amount,
    currency: z.string(),
    reason: z.string(),
    status: z.enum(DISPUTE_STATUSES),
    evidence_due_by: Timestamp,
    evidence_submitted_at: Timestamp.nullable(),
    workflow_id: z.string(),
    created_at: Timestamp,
  })
  .meta({ id: 'Dispute' });
export const DisputeList = listOf(DisputeResource, 'DisputeList');

export const OrderCommandAccepted = z
  .object({ order_id: z.string(), payment_id: z.string(), action: z.enum(['retry', 'cancel']), accepted: z.literal(true) })
  .meta({ id: 'OrderCommandAccepted' });

export const ReconRunResource = z
  .object({
    id: z.string(),
    settlement_date: Day,
    workflow_id: z.string(),
    status: z.enum(['running', 'succeeded', 'failed']),
    lines_read: BigintString,
    lines_expected: BigintString.nullable(),
    totals: z.unknown().describe('the run\'s totals per class and currency, once it has finished'),
    error_line: BigintString.nullable(),
    error_reason: z.string().nullable(),
    started_at: Timestamp,
    finished_at: Timestamp.nullable(),
  })
  .meta({ id: 'ReconRun' });
export const ReconRunList = listOf(ReconRunResource, 'ReconRunList');

export const ReconRunStarted = z
  .object({ settlement_date: Day, workflow_id: z.string(), already_running: z.boolean().describe('the day\'s run was already under way: this is its workflow') })
  .meta({ id: 'ReconRunStarted' });

const nullableStrings = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, z.string().nullable()])) as Record<K, z.ZodNullable<z.ZodString>>;

export const ReconItemResource = z
  .object({
    id: BigintString,
    subject: z.string().describe('the money movement the item is about'),
    settlement_date: Day,
    class: z.enum(DIFFERENCE_CLASSES),
    status: z.enum(ITEM_STATUSES),
    auto_fixable: z.boolean(),
    auto_fixed: z.boolean(),
    ...nullableStrings(['line_no', 'line_type', 'psp_id', 'idempotency_key', 'order_id', 'payment_id', 'workflow_id', 'field', 'our_value', 'psp_value', 'currency', 'amount_minor', 'note']),
    run_id: z.string(),
    created_at: Timestamp,
    updated_at: Timestamp,
    resolved_at: Timestamp.nullable(),
  })
  .meta({ id: 'ReconItem' });
export const ReconItemList = listOf(ReconItemResource, 'ReconItemList');

export const WebhookReceipt = z
  .object({ received: z.literal(true), duplicate: z.boolean(), route: z.enum(PSP_EVENT_ROUTES).describe('where the event went: a workflow, kept for operators (unknown), or kept and ignored') })
  .meta({ id: 'WebhookReceipt' });

const Probe = z.object({ ok: z.boolean(), error: z.string().optional() });
export const HealthResource = z
  .object({ status: z.enum(['ok', 'degraded']), checks: z.object({ postgres: Probe, temporal: Probe }) })
  .meta({ id: 'Health' });

export const OpenApiDocumentResource = z.record(z.string(), z.unknown()).meta({ id: 'OpenApiDocument', description: 'This document' });
export const MetricsText = z.string().describe('Prometheus text exposition format');
