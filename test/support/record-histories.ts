import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import globalSetup from './global-setup';
import globalTeardown from './global-teardown';
import { call, newMerchant, settled, startTestApi, waitForPayment } from './stack';
import { ROOT } from './processes';

/**
 * `npm run histories:record` — runs a few payments through the real stack and writes their
 * workflow histories to test/histories/. The replay test feeds these to the current workflow
 * code, so a change that breaks determinism fails CI. Refresh deliberately: only when a workflow
 * change is meant to be incompatible (and then version it, so running workflows still replay).
 */
// One folder per workflow version; older folders stay, so running workflows of every version keep
// replaying. Bump when a workflow change is recorded (v2: books in one posting; v3: database
// steps as local activities).
const HISTORY_SET = 'v3';

const SCENARIOS = [
  { name: 'two-orders-succeeded', payment_method: 'tok_success', amounts: ['100.00', '25.50'], buyer: undefined },
  { name: 'declined', payment_method: 'tok_decline', amounts: ['40.00'], buyer: undefined },
  { name: 'risk-rejected', payment_method: 'tok_success', amounts: ['10.00'], buyer: 'buyer_blocked_for_tests' },
];

async function main(): Promise<void> {
  await globalSetup();
  const api = await startTestApi();
  const out = path.join(ROOT, 'test/histories', HISTORY_SET);
  fs.mkdirSync(out, { recursive: true });
  try {
    const key = await newMerchant(api.db);
    for (const s of SCENARIOS) {
      const body = {
        buyer: { id: s.buyer ?? `buyer_${randomUUID()}` },
        currency: 'USD',
        orders: s.amounts.map((amount, i) => ({ seller_id: `seller_${i}`, amount })),
        payment_method: s.payment_method,
      };
      const created = await call(`${api.url}/v1/payments`, { key, idempotency_key: randomUUID(), body });
      await waitForPayment(api, key, created.body.id, settled);
      const parent = api.temporal.workflow.getHandle(created.body.workflow_id);
      await parent.result();
      const workflows = [{ file: `${s.name}.payment.json`, id: created.body.workflow_id as string }];
      if (s.buyer === undefined) workflows.push({ file: `${s.name}.order.json`, id: `order-${created.body.orders[0].id}` });
      for (const { file, id } of workflows) {
        // One protobufjs copy in the tree (package.json pins it) keeps historyToJSON working.
        fs.writeFileSync(path.join(out, file), `${historyToJSON(await api.temporal.workflow.getHandle(id).fetchHistory())}\n`);
        process.stdout.write(`wrote test/histories/${HISTORY_SET}/${file}\n`);
      }
    }
  } finally {
    await api.close();
    await globalTeardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
