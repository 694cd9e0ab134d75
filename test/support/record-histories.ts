import fs from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import globalSetup from './global-setup';
import globalTeardown from './global-teardown';
import { DEFAULT_KNOBS, startAsyncStack, type AsyncStack } from './async-stack';
import { checkoutBody, createPayment, submitCheckoutForm } from './flows';
import { call, settled, waitForPayment } from './stack';
import { ROOT } from './processes';

/**
 * `npm run histories:record` — runs payments through the real stack (API, worker and a sandbox
 * PSP that sends webhooks) and writes their workflow histories to test/histories/. The replay
 * test feeds these to the current workflow code, so a change that breaks determinism fails CI.
 * Refresh deliberately: only when a workflow change is meant to be incompatible (and then
 * version it, so running workflows still replay).
 */
// One folder per workflow version; older folders stay, so running workflows of every version keep
// replaying. Bump when a workflow change is recorded (v2: books in one posting; v3: database
// steps as local activities; v4: hosted checkout, delayed PSP results, webhook signals, polling;
// v5: dead letters — PSP steps with an attempt limit, parked orders, operator retry/cancel;
// v6: all-or-nothing capture — authorize every order, then capture all or void the authorized;
// v7: one workflow per payment (PaymentWorkflowV7) — orders inside it, no order workflows).
const HISTORY_SET = 'v7';

type Scenario = { name: string; body: ReturnType<typeof checkoutBody> & { capture_method?: 'automatic' | 'all_or_nothing' }; drive?: (stack: AsyncStack, payment: Created) => Promise<void>; knobs?: Record<string, unknown>; faults?: Record<string, unknown> };
type Created = { id: string; workflow_id: string; checkout_url: string | null; orders: { id: string }[] };

const RETURN_URL = 'https://shop.example/thanks';

const SCENARIOS: Scenario[] = [
  { name: 'two-orders-succeeded', body: checkoutBody({ payment_method: 'tok_success', sellers: 2 }) },
  { name: 'declined', body: checkoutBody({ payment_method: 'tok_decline' }) },
  { name: 'risk-rejected', body: { ...checkoutBody({ payment_method: 'tok_success' }), buyer: { id: 'buyer_blocked_for_tests' } } },
  { name: 'review-approved-by-webhook', body: checkoutBody({ payment_method: 'tok_review_approve' }) },
  { name: 'review-declined-by-polling', body: checkoutBody({ payment_method: 'tok_review_decline' }), knobs: { drop_rate: 1 } },
  { name: 'three-d-secure', body: checkoutBody({ payment_method: 'tok_requires_action' }), drive: approve3ds },
  { name: 'hosted-checkout', body: checkoutBody({ return_url: RETURN_URL }), drive: payOnCheckoutPage },
  { name: 'checkout-expired', body: checkoutBody({ return_url: RETURN_URL }) },
  { name: 'all-or-nothing-captured', body: { ...checkoutBody({ payment_method: 'tok_success', sellers: 2 }), capture_method: 'all_or_nothing' } },
  { name: 'all-or-nothing-voided', body: allOrNothingWithDecline() },
  { name: 'parked-then-retried', body: checkoutBody({ payment_method: 'tok_success' }), faults: { fail_next: 3, retry_after_s: 0 }, drive: operator('retry') },
  { name: 'parked-then-canceled', body: checkoutBody({ payment_method: 'tok_success' }), faults: { fail_next: 3, retry_after_s: 0 }, drive: operator('cancel') },
];

const ADMIN_KEY = 'admin_record_key_0123456789';

/** Two orders, the second at the sandbox's declining amount (13.13): the first is voided. */
function allOrNothingWithDecline(): Scenario['body'] {
  const body = checkoutBody({ payment_method: 'tok_success', sellers: 2 });
  return { ...body, capture_method: 'all_or_nothing', orders: body.orders.map((o, i) => ({ ...o, amount: i === 1 ? '13.13' : o.amount })) };
}

function operator(action: 'retry' | 'cancel') {
  return async (stack: AsyncStack, payment: Created): Promise<void> => {
    await waitForPayment(stack.api, stack.key, payment.id, (p) => p.status === 'needs_attention', 60_000);
    await call(`${stack.api.url}/v1/ops/orders/${payment.orders[0]?.id}/${action}`, { key: ADMIN_KEY, body: { reason: `recorded ${action}` } });
  };
}

async function approve3ds(stack: AsyncStack, payment: Created): Promise<void> {
  const waiting = await waitForPayment(stack.api, stack.key, payment.id, (p) => p.status === 'requires_action');
  await fetch(waiting.orders[0].next_action!.redirect_url, { method: 'POST', body: new URLSearchParams({ action: 'approve' }) });
}

async function payOnCheckoutPage(_stack: AsyncStack, payment: Created): Promise<void> {
  await submitCheckoutForm(String(payment.checkout_url), '4242424242424242');
}

async function record(stack: AsyncStack, s: Scenario, out: string): Promise<void> {
  await stack.setKnobs({ ...DEFAULT_KNOBS, ...s.knobs });
  await stack.setFaults({ fail_next: 0, ...s.faults });
  const created: Created = (await createPayment(stack.api.url, stack.key, s.body)).body;
  await s.drive?.(stack, created);
  await waitForPayment(stack.api, stack.key, created.id, settled, 60_000);
  await stack.api.temporal.workflow.getHandle(created.workflow_id).result();
  const workflows = [{ file: `${s.name}.payment.json`, id: created.workflow_id }];
  // Legacy sets (v1–v6) also had one workflow per order; v7 has none.
  const order_history = await stack.api.temporal.workflow.getHandle(`order-${created.orders[0]?.id}`).fetchHistory().catch(() => null);
  if (order_history !== null) fs.writeFileSync(path.join(out, `${s.name}.order.json`), `${historyToJSON(order_history)}\n`);
  for (const { file, id } of workflows) {
    // One protobufjs copy in the tree (package.json pins it) keeps historyToJSON working.
    fs.writeFileSync(path.join(out, file), `${historyToJSON(await stack.api.temporal.workflow.getHandle(id).fetchHistory())}\n`);
  }
  process.stdout.write(`recorded ${HISTORY_SET}/${s.name}${order_history === null ? '' : ' (+ order)'}\n`);
}

async function main(): Promise<void> {
  await globalSetup();
  const stack = await startAsyncStack('record', { api_env: { CHECKOUT_TIMEOUT_MS: '3000', PSP_POLL_INITIAL_MS: '2000', PSP_POLL_MAX_MS: '4000', PSP_CALL_ATTEMPTS_MAX: '3', ADMIN_API_KEY: ADMIN_KEY } });
  const out = path.join(ROOT, 'test/histories', HISTORY_SET);
  fs.mkdirSync(out, { recursive: true });
  try {
    for (const s of SCENARIOS) await record(stack, s, out);
  } finally {
    await stack.close();
    await globalTeardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
