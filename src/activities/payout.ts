import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { assert } from '../domain/assert';
import { payoutPosting } from '../domain/ledger';
import { postInTransaction } from '../ledger/poster';
import { PspError, type PspClient, type PspPayout } from '../psp/client';
import { decidePayout, loadPayout, payableSellers, payoutReference, payoutsOfRun, reservePayout, setPspPayoutId } from '../aggregates/payout';
import { rethrowPsp, withHeartbeat } from './psp-call';

export interface PayoutDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
  /** Per currency, the smallest payout (PAYOUT_MINIMUMS); a currency not listed: one minor unit. */
  payout_minimums: ReadonlyMap<string, bigint>;
}

/** What the PSP says of a payout (crosses the workflow boundary). */
export interface PayoutOutcome {
  payout_id: string;
  status: 'pending' | 'paid' | 'failed';
  failure_code: string | null;
}

const outcomeOf = (payout_id: string, p: Pick<PspPayout, 'status' | 'failure_code'>): PayoutOutcome => ({ payout_id, status: p.status, failure_code: p.failure_code });

export function createPayoutActivities({ db, psp, log, payout_minimums }: PayoutDeps) {
  return {
    /** A run's payouts: one per payable seller and currency, made once per run day (a rerun finds them). */
    async reservePayoutsForRun(run_date: string): Promise<{ payout_id: string; workflow_id: string }[]> {
      const made: { payout_id: string; workflow_id: string }[] = [];
      for (const s of await payableSellers(db)) {
        const minimum_minor = payout_minimums.get(s.currency) ?? 1n;
        const row = await db.transaction((trx) => reservePayout(trx, { ...s, run_date, minimum_minor }));
        if (typeof row === 'string') continue; // below the minimum, or spent since the candidate list
        made.push({ payout_id: row.id, workflow_id: row.workflow_id });
      }
      const earlier = await payoutsOfRun(db, run_date);
      for (const p of earlier) if (!made.some((m) => m.payout_id === p.id)) made.push({ payout_id: p.id, workflow_id: p.workflow_id });
      log.info({ run_date, payouts: made.length }, 'payout run reserved');
      return made;
    },

    /** Asks the PSP to pay (keyed by our payout id: a retry never pays twice). A refusal is a failed outcome. */
    async payOutAtPsp(payout_id: string): Promise<PayoutOutcome> {
      const payout = await loadPayout(db, payout_id);
      if (payout.status !== 'pending') return { payout_id, status: payout.status, failure_code: payout.failure_code };
      try {
        const sent = await withHeartbeat(
          psp.createPayout({ amount_minor: BigInt(payout.amount_minor), currency: payout.currency.trim(), destination: payout.destination_token, reference: payoutReference(payout), idempotency_key: payout.id }),
        );
        await setPspPayoutId(db, payout_id, sent.id);
        return outcomeOf(payout_id, sent);
      } catch (err) {
        if (err instanceof PspError && err.kind === 'definitive') return { payout_id, status: 'failed', failure_code: err.code };
        return rethrowPsp(err);
      }
    },

    /** Polls the PSP for a payout it has not decided yet (the webhook may be lost). */
    async pollPayout(payout_id: string): Promise<PayoutOutcome> {
      const payout = await loadPayout(db, payout_id);
      assert(payout.psp_payout_id !== null, `payout ${payout_id} reached the PSP`);
      return outcomeOf(payout_id, await withHeartbeat(psp.getPayout(payout.psp_payout_id)).catch(rethrowPsp));
    },

    /** Books the PSP's decision once: paid settles clearing against the PSP balance; failed gives the amount back to the seller. */
    async settlePayout(outcome: PayoutOutcome): Promise<PayoutOutcome> {
      assert(outcome.status !== 'pending', 'only a decided payout is settled');
      return await db.transaction(async (trx) => {
        const payout = await loadPayout(trx, outcome.payout_id, true);
        if (payout.status !== 'pending') return { payout_id: payout.id, status: payout.status, failure_code: payout.failure_code };
        const draft = { payout_id: payout.id, merchant_id: payout.merchant_id, seller_id: payout.seller_id, currency: payout.currency.trim(), amount_minor: BigInt(payout.amount_minor) };
        await postInTransaction(trx, [payoutPosting(draft, outcome.status === 'paid' ? 'paid' : 'failed')]);
        await decidePayout(trx, payout.id, outcome.status === 'paid' ? 'paid' : 'failed', outcome.failure_code);
        log.info({ payout_id: payout.id, seller_id: payout.seller_id, status: outcome.status, failure_code: outcome.failure_code }, 'payout settled');
        return outcome;
      });
    },
  };
}
