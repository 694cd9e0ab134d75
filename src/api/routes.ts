import type { RouteDef } from './registry';
import { SERVICE_ROUTES } from './health';
import { WEBHOOK_ROUTES } from './webhooks';
import { OPS_ROUTES } from './ops';
import { PAYMENT_ROUTES } from './payments';
import { PAYOUT_ROUTES } from './payouts';
import { DISPUTE_ROUTES } from './disputes';
import { LEDGER_ROUTES } from './ledger';

/** Every route the API serves: the app mounts these and the OpenAPI document describes these. */
export const API_ROUTES: readonly RouteDef[] = [...SERVICE_ROUTES, ...WEBHOOK_ROUTES, ...OPS_ROUTES, ...PAYMENT_ROUTES, ...PAYOUT_ROUTES, ...DISPUTE_ROUTES, ...LEDGER_ROUTES];
