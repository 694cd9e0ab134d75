import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { ChargeOutcome, DisputeUpdate, OperatorCommand, PaymentMethodAttached, PspChargeUpdate } from '../activities/types';
import type { PaymentStatus } from '../domain/status';

// The signals' payloads, for their senders (services must not import activities).
export type { OperatorCommand, PaymentMethodAttached, PspChargeUpdate };

/**
 * The workflow contract: what the API, the relay, the webhook inbox, schedules and payctl may
 * send to or ask of a workflow. Workflows themselves are started by typed reference (the functions
 * exported by ./index.ts, the worker's bundle); this module has the rest — signals, queries,
 * search attributes, the current payment workflow's input and state, and the closed list of
 * failure types activities throw. Pure definitions: the API imports it without workflow code.
 */

// ---- Search attributes: the five an operator filters by in the Temporal UI (primer §4). The dev
// server registers them at start (src/dev/temporal.ts); a production cluster needs them created once.
export const SA = {
  PaymentId: defineSearchAttributeKey('PaymentId', SearchAttributeType.KEYWORD),
  MerchantId: defineSearchAttributeKey('MerchantId', SearchAttributeType.KEYWORD),
  PaymentStatus: defineSearchAttributeKey('PaymentStatus', SearchAttributeType.KEYWORD),
  AmountMinor: defineSearchAttributeKey('AmountMinor', SearchAttributeType.INT),
  Currency: defineSearchAttributeKey('Currency', SearchAttributeType.KEYWORD),
} as const;

export const SEARCH_ATTRIBUTE_TYPES: Record<keyof typeof SA, 'Keyword' | 'Int'> = {
  PaymentId: 'Keyword',
  MerchantId: 'Keyword',
  PaymentStatus: 'Keyword',
  AmountMinor: 'Int',
  Currency: 'Keyword',
};

// ---- Signals.
/**
 * A verified PSP webhook (or a reconciliation fix) about an order's charge. The payment workflow
 * routes it to the order by `charge.order_reference`; a legacy order workflow takes its own.
 */
export const pspUpdateSignal = defineSignal<[PspChargeUpdate]>('pspUpdate');

/** The buyer finished the hosted checkout (a verified `payment_method.attached` webhook). */
export const paymentMethodAttachedSignal = defineSignal<[PaymentMethodAttached]>('paymentMethodAttached');

/**
 * An operator's decision on a `needs_attention` order (POST /v1/ops/orders/:id/retry|cancel,
 * payctl). The payment workflow routes it by `order_id`; a legacy order workflow ignores the field.
 */
export const operatorCommandSignal = defineSignal<[OperatorCommand]>('operatorCommand');

/** A verified PSP webhook about a dispute (charge.dispute.*), routed to the dispute's workflow. */
export const disputeUpdateSignal = defineSignal<[DisputeUpdate]>('disputeUpdate');

// ---- The current payment workflow (PaymentWorkflowV7, src/workflows/payment.ts).
/** How an order with a `pending` charge waits for a webhook before it asks the PSP itself. */
export interface PollTimings {
  initial_ms: number;
  max_ms: number;
  /** Well before the history grows large the workflow continues as new. */
  history_events_max?: number;
}

/** Where an order stood when its payment continued as new. */
export type OrderResume =
  | { phase: 'done'; outcome: ChargeOutcome }
  | { phase: 'waiting'; outcome: ChargeOutcome; wait_ms: number }
  | { phase: 'parked'; for_step: 'charge' | 'decision'; reason: string; outcome: ChargeOutcome | null };

export interface PaymentInput {
  payment_id: string;
  merchant_id: string;
  order_ids: string[];
  /** Set when the buyer pays on the PSP's hosted page: how long to wait for them. */
  checkout?: { timeout_ms: number };
  /** How orders with a delayed PSP decision poll; absent → the production defaults. */
  psp_poll?: PollTimings;
  /** Attempts per PSP call before an order is parked as `needs_attention`. */
  psp_attempts_max?: number;
  /** all_or_nothing: orders are only authorized; then all are captured or all voided. */
  capture_method?: 'automatic' | 'all_or_nothing';
  /** Set by continue-as-new only: checkout and risk are behind, each order resumes from here. */
  resume?: Record<string, OrderResume>;
}

export type OrderStep = 'charging' | 'awaiting_psp' | 'needs_attention' | 'booking' | 'done';

export interface PaymentState {
  payment_id: string;
  status: PaymentStatus;
  stage: 'checkout' | 'risk_check' | 'orders' | 'done';
  orders: Record<string, ChargeOutcome['status'] | 'processing'>;
  failure_code: string | null;
}

/** The payment's progress (also answered by legacy payment workflows, in the same shape). */
export const paymentStatusQuery = defineQuery<PaymentState>('status');

// ---- Failure types: every ApplicationFailure type an activity throws (metrics label them).
export const FAILURE_TYPES = {
  psp_definitive: 'Psp_definitive',
  psp_retryable: 'Psp_retryable',
  psp_unknown_outcome: 'Psp_unknown_outcome',
  charge_undecided: 'ChargeUndecided',
  charge_in_flight: 'ChargeInFlight',
  dispute_before_capture: 'DisputeBeforeCapture',
  settlement_file_invalid: 'SettlementFileInvalid',
  settlement_file_unavailable: 'SettlementFileUnavailable',
  settlement_day_invalid: 'SettlementDayInvalid',
} as const;
export type FailureType = (typeof FAILURE_TYPES)[keyof typeof FAILURE_TYPES];

// ---- Inputs of the other workflows (defined beside each; listed here so callers find them in one place).
export type { DisputeInput } from './dispute';
export type { PayoutInput, PayoutRunInput } from './payout';
export type { RefundInput } from './refund';
export type { NightlyReconciliationInput, ReconciliationInput, ReconciliationResult } from './reconciliation';
