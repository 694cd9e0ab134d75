// Plain JSON shapes that cross the workflow boundary. Amounts are strings, never number/bigint.
import type { OrderStatus, PaymentStatus } from '../domain/status';
import type { PspCharge, PspDispute } from '../psp/client';

export interface ChargeOutcome {
  order_id: string;
  /** Terminal, or waiting on the buyer (`requires_action`) or the PSP (`pending`). */
  status: Extract<OrderStatus, 'succeeded' | 'failed' | 'canceled' | 'requires_action' | 'pending' | 'authorized'>;
  psp_reference: string | null;
  failure_code: string | null;
  failure_message: string | null;
  /** The PSP charge version this outcome reflects; absent in histories from before v4. */
  psp_version?: number | null;
}

export type RiskOutcome = { approved: true } | { approved: false; code: string; reason: string };

export interface PaymentSummary {
  payment_id: string;
  status: PaymentStatus;
}

/** The `pspUpdate` signal: a verified webhook's charge, routed to the order's workflow. */
export interface PspChargeUpdate {
  event_id: string;
  charge: PspCharge;
}

/** The `paymentMethodAttached` signal: the buyer finished the hosted checkout. */
export interface PaymentMethodAttached {
  event_id: string;
  payment_method: string;
}

/** The `operatorCommand` signal: what to do with an order parked as `needs_attention`. */
export interface OperatorCommand {
  /** The parked order (v7 payment workflows route by it; a legacy order workflow is the order's own). */
  order_id?: string;
  action: 'retry' | 'cancel';
  reason: string;
  requested_by: string;
}

/** The `disputeUpdate` signal: a verified charge.dispute.* webhook, routed to the dispute's workflow. */
export interface DisputeUpdate {
  event_id: string;
  dispute: PspDispute;
}
export type { PspDispute };
