import type { Knex } from 'knex';
import type { Logger } from '../logger';
import type { PspClient } from '../psp/client';
import type { RiskProvider } from '../domain/risk';
import type { LedgerPoster } from '../ledger/poster';
import { createOrderActivities } from './order';
import { createPaymentActivities } from './payment';
import { createReconActivities } from './recon';
import { createRefundActivities } from './refund';
import { createPayoutActivities } from './payout';
import { createDisputeActivities } from './dispute';

export interface ActivityDeps {
  db: Knex;
  psp: PspClient;
  risk: RiskProvider;
  log: Logger;
  ledger: LedgerPoster;
  /** How long a charge attempt holds its order (chargeLeaseMsOf in src/config.ts). */
  charge_lease_ms: number;
  /** Bounds one settlement file download (RECON_DOWNLOAD_TIMEOUT_MS). */
  settlement_download_timeout_ms: number;
  /** The smallest payout per currency (PAYOUT_MINIMUMS). */
  payout_minimums: ReadonlyMap<string, bigint>;
}

/** Every activity, built from clients passed in (never created inside an activity). */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createPaymentActivities(deps),
    ...createOrderActivities(deps),
    ...createReconActivities(deps),
    ...createRefundActivities(deps),
    ...createPayoutActivities(deps),
    ...createDisputeActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ReconFailure, ReconRunRef } from './recon';
export type { RefundOutcome } from './refund';
export type { PayoutOutcome } from './payout';
export type { DisputeUpdate, PspDispute } from './types';
export type { ChargeOutcome, OperatorCommand, PaymentMethodAttached, PaymentSummary, PspChargeUpdate, RiskOutcome } from './types';
