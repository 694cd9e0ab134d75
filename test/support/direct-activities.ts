import { randomBytes } from 'node:crypto';
import { createActivities } from '../../src/activities';
import type { Knex } from '../../src/db';
import { createRulesRiskProvider, parseRiskRules } from '../../src/domain/risk';
import { LedgerPoster } from '../../src/ledger/poster';
import { createLogger } from '../../src/logger';
import { createPspClient } from '../../src/psp/client';

export type DirectActivities = ReturnType<typeof createActivities>;

/** The worker's activities called directly, against the suite's database and sandbox PSP: for races no workflow can be made to hit on cue. */
export function directActivities(db: Knex, name: string, psp_timeout_ms: number): DirectActivities {
  const psp = createPspClient({ base_url: String(process.env.PSP_URL), api_key: 'psk_test_sandbox', timeout_ms: psp_timeout_ms });
  return createActivities({ db, psp, risk: createRulesRiskProvider(parseRiskRules('', '')), log: createLogger(name, 'silent'), ledger: new LedgerPoster(db), charge_lease_ms: 60_000, settlement_download_timeout_ms: 60_000, payout_minimums: new Map() });
}

/** A one-order payment of 5.00 USD paid with `tok_success`, its order `not_started`, under a merchant of its own. */
export async function insertOneOrderPayment(db: Knex): Promise<string> {
  const suffix = randomBytes(6).toString('hex');
  const merchant_id = `mer_${suffix}`;
  await db('merchant').insert({ id: merchant_id, name: 'direct' });
  await db('payment_event').insert({ id: `pay_${suffix}`, merchant_id, buyer_id: 'b', currency: 'USD', amount_minor: '500', status: 'processing', payment_method: 'tok_success', workflow_id: `payment-pay_${suffix}` });
  await db('payment_order').insert({ id: `ord_${suffix}`, payment_id: `pay_${suffix}`, merchant_id, seller_id: 's', amount_minor: '500', currency: 'USD', status: 'not_started', commission_bps: 300, commission_minor: '15' });
  return `ord_${suffix}`;
}
