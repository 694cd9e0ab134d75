// What the order steps share: their dependencies, and how a stored order reads as an outcome or a capture.
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import type { PspClient } from '../psp/client';
import { assert } from '../domain/assert';
import type { OrderStatus } from '../domain/status';
import type { CapturedOrder } from '../domain/ledger';
import type { LedgerPoster } from '../ledger/poster';
import type { OrderRow } from '../aggregates/order';
import type { ChargeOutcome } from './types';
import { ApplicationFailure } from '@temporalio/activity';
import { FAILURE_TYPES } from '../workflows/contract';

export interface OrderDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
  ledger: LedgerPoster;
  /** How long a charge attempt holds its order (chargeLeaseMsOf in src/config.ts). */
  charge_lease_ms: number;
}

export const FAILURE_MESSAGE_CHARS_MAX = 1_000;

export type OutcomeRow = Pick<OrderRow, 'id' | 'status' | 'psp_reference' | 'failure_code' | 'failure_message' | 'psp_version'>;

export function outcomeOf(row: OutcomeRow): ChargeOutcome {
  assert(row.status !== 'not_started' && row.status !== 'executing' && row.status !== 'needs_attention', `order ${row.id} has a charge outcome`);
  // Refunded or disputed since: the charge itself succeeded.
  const status = row.status === 'partially_refunded' || row.status === 'refunded' || row.status === 'disputed' ? 'succeeded' : row.status;
  return { order_id: row.id, status, psp_reference: row.psp_reference, failure_code: row.failure_code, failure_message: row.failure_message, psp_version: row.psp_version };
}

const IN_FLIGHT_RETRY_MS_MIN = 1_000;

/**
 * Another attempt holds the order's charge lease: retry once it ends — the lease's remaining time,
 * so a dead attempt's lease costs one retry, not a whole retry budget.
 */
export function chargeInFlight(order: Pick<OrderRow, 'id' | 'charge_lease_until'>, lease_ms: number, why: string): ApplicationFailure {
  const left_ms = order.charge_lease_until === null ? 0 : order.charge_lease_until.getTime() - Date.now();
  return ApplicationFailure.create({
    type: FAILURE_TYPES.charge_in_flight,
    message: `order ${order.id}: ${why}`,
    nonRetryable: false,
    nextRetryDelay: Math.min(lease_ms, Math.max(IN_FLIGHT_RETRY_MS_MIN, left_ms)),
  });
}

export function isWaiting(status: OrderStatus): boolean {
  return status === 'pending' || status === 'requires_action';
}

export function capturedOrder(order: OrderRow): CapturedOrder {
  assert(order.psp_fee_minor !== null, `order ${order.id} has the PSP's fee`);
  return {
    order_id: order.id,
    payment_id: order.payment_id,
    merchant_id: order.merchant_id,
    seller_id: order.seller_id,
    currency: order.currency,
    amount_minor: BigInt(order.amount_minor),
    commission_minor: BigInt(order.commission_minor),
    psp_fee_minor: BigInt(order.psp_fee_minor),
  };
}
