import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { ROOT } from '../support/processes';
import { createLogger } from '../../src/logger';
import { installSdkLogging } from '../../src/workers/sdk-logging';

installSdkLogging(createLogger('replay-test', 'error'), 'ERROR');

/**
 * Recorded histories (test/histories/, written by `npm run histories:record`) replayed against
 * the current workflow code: a non-deterministic change fails here, not in production.
 */
const DIR = path.join(ROOT, 'test/histories');
const files = fs.readdirSync(DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json')).sort();

describe('workflow replay', () => {
  it('has recorded histories of the legacy payment and order workflows, from every legacy version', () => {
    for (const version of ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']) {
      expect(files.some((f) => f.startsWith(`${version}/`) && f.endsWith('.payment.json'))).toBe(true);
      expect(files.some((f) => f.startsWith(`${version}/`) && f.endsWith('.order.json'))).toBe(true);
    }
  });

  it('has recorded histories of the current payment workflow (one per payment, no order workflows) in every scenario', () => {
    const v7 = files.filter((f) => f.startsWith('v7/'));
    for (const scenario of ['two-orders-succeeded', 'declined', 'risk-rejected', 'review-approved-by-webhook', 'review-declined-by-polling', 'three-d-secure', 'hosted-checkout', 'checkout-expired', 'all-or-nothing-captured', 'all-or-nothing-voided', 'parked-then-retried', 'parked-then-canceled']) {
      expect(v7).toContain(`v7/${scenario}.payment.json`);
    }
    expect(v7.filter((f) => f.endsWith('.order.json'))).toEqual([]);
    const first = JSON.parse(fs.readFileSync(path.join(DIR, 'v7/two-orders-succeeded.payment.json'), 'utf8')) as { events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[] };
    expect(first.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe('PaymentWorkflowV7');
  });

  it('has recorded histories of the reconciliation, refund, payout and dispute workflows', () => {
    expect(files.some((f) => f.startsWith('recon-v1/') && f.endsWith('auto-fix.recon.json'))).toBe(true);
    expect(files.some((f) => f.startsWith('recon-v1/') && f.endsWith('nightly.recon.json'))).toBe(true);
    expect(files.some((f) => f.startsWith('refund-v1/') && f.endsWith('.refund.json'))).toBe(true);
    expect(files.some((f) => f.startsWith('payout-v1/') && f.endsWith('run.payout.json'))).toBe(true);
    expect(files.some((f) => f.startsWith('payout-v1/') && f.endsWith('paid.payout.json'))).toBe(true);
    expect(files.some((f) => f.startsWith('dispute-v1/') && f.endsWith('.dispute.json'))).toBe(true);
  });

  it('replays every recorded history without a determinism error', async () => {
    const histories = files.map((f) => ({ workflowId: f, history: JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) }));
    const bundle_path = String(process.env.WORKFLOW_BUNDLE_PATH);
    const results = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: bundle_path } }, histories)) {
      results.push({ workflowId: result.workflowId, error: result.error?.message ?? null });
    }
    expect(results).toHaveLength(files.length);
    expect(results.filter((r) => r.error !== null)).toEqual([]);
  });
});
