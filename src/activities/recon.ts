import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { PspError, type PspCharge, type PspClient } from '../psp/client';
import { rethrowPsp, withHeartbeat } from './psp-call';
import { FAILURE_TYPES } from '../workflows/contract';
import { checkRunDay } from '../domain/dates';
import { SettlementFileError } from '../recon/file';
import { autoFixesOf, beginRun, failRun, finishRun, noteItem, recheckAutoFixes, reconcileFile, setProgress, type AutoFix, type RunTotals } from '../recon/store';

export interface ReconDeps {
  db: Knex;
  psp: PspClient;
  log: Logger;
  /** Bounds one settlement file download (a million lines take a while). */
  settlement_download_timeout_ms: number;
}

export interface ReconRunRef {
  run_id: string;
  settlement_date: string;
}

/** Why a run failed, for the run row and the operator: the file's line number when there is one. */
export interface ReconFailure {
  line_no: number | null;
  reason: string;
}

export const RECON_FAILURE_TYPES = { file: FAILURE_TYPES.settlement_file_invalid, unavailable: FAILURE_TYPES.settlement_file_unavailable, day: FAILURE_TYPES.settlement_day_invalid } as const;

function nonRetryable(type: string, failure: ReconFailure): ApplicationFailure {
  return ApplicationFailure.create({ type, message: failure.reason, nonRetryable: true, details: [failure] });
}

export function createReconActivities({ db, psp, log, settlement_download_timeout_ms }: ReconDeps) {
  return {
    async beginReconRun(run: ReconRunRef): Promise<void> {
      const checked = checkRunDay(run.settlement_date, Date.now());
      if ('problem' in checked) {
        throw nonRetryable(RECON_FAILURE_TYPES.day, { line_no: null, reason: `cannot reconcile ${run.settlement_date}: ${checked.problem === 'in_future' ? 'the day is in the future' : 'not a calendar day'}` });
      }
      await beginRun(db, { ...run, workflow_id: Context.current().info.workflowExecution?.workflowId ?? 'unknown' });
    },

    /** Download, parse, match, classify and post one day, in one transaction (src/recon/store.ts). */
    async reconcileSettlementFile(run: ReconRunRef): Promise<RunTotals> {
      const ctx = Context.current();
      try {
        const file = await psp.openSettlementFile(run.settlement_date, settlement_download_timeout_ms);
        await setProgress(db, run.run_id, { lines_read: 0, lines_expected: file.expected_lines });
        const totals = await reconcileFile(db, run, file.lines, async (lines_read) => {
          ctx.heartbeat({ lines_read });
          await setProgress(db, run.run_id, { lines_read });
        });
        log.info({ run_id: run.run_id, settlement_date: run.settlement_date, lines: totals.lines, matched: totals.matched.count, differences: totals.differences }, 'settlement file reconciled');
        return totals;
      } catch (err) {
        if (err instanceof SettlementFileError) throw nonRetryable(RECON_FAILURE_TYPES.file, { line_no: err.line_no, reason: err.message });
        if (err instanceof PspError && err.kind === 'definitive') {
          throw nonRetryable(RECON_FAILURE_TYPES.unavailable, { line_no: null, reason: `the PSP refused the settlement file of ${run.settlement_date}: ${err.code}: ${err.message}` });
        }
        throw err; // network, PSP 5xx, database: retried with backoff, the transaction rolled back
      }
    },

    async failReconRun(run: ReconRunRef, failure: ReconFailure): Promise<void> {
      await failRun(db, run.run_id, failure);
      log.warn({ run_id: run.run_id, settlement_date: run.settlement_date, ...failure }, 'reconciliation run failed');
    },

    async finishReconRun(run: ReconRunRef, totals: RunTotals): Promise<void> {
      await finishRun(db, run.run_id, totals);
    },

    async listReconAutoFixes(run: ReconRunRef): Promise<AutoFix[]> {
      return await autoFixesOf(db, run.settlement_date);
    },

    /** Asks the PSP again about a charge its file settled but our order still waits on. */
    async fetchChargeForRecon(psp_id: string): Promise<PspCharge> {
      return await withHeartbeat(psp.getCharge(psp_id)).catch(rethrowPsp);
    },

    async noteReconItem(item_id: string, note: string): Promise<void> {
      await noteItem(db, item_id, note);
    },

    async recheckReconAutoFixes(run: ReconRunRef): Promise<{ resolved: number; open: number }> {
      return await recheckAutoFixes(db, run.settlement_date, `auto-fixed by run ${run.run_id}: the PSP was asked again and the order workflow signalled`);
    },
  };
}
