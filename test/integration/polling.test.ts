import { startAsyncStack, type AsyncStack } from '../support/async-stack';
import { checkoutBody, createPayment, expectForwardOnly, sandboxEvents, sequenceOf, statusHistory, until } from '../support/flows';
import { settled, waitForPayment } from '../support/stack';
import { keepHistory } from '../support/histories';

/**
 * Lost webhooks: this stack's sandbox drops every event, so a delayed PSP decision reaches us
 * only by the payment workflow polling the PSP (from 1 s, backing off to 4 s). The history limit
 * for a waiting payment is set to the lowest allowed (20 events, about two polls), so waiting
 * payments also continue as new.
 */
let stack: AsyncStack;
beforeAll(async () => {
  stack = await startAsyncStack('polling', {
    api_env: { PSP_POLL_INITIAL_MS: '1000', PSP_POLL_MAX_MS: '4000', WAIT_HISTORY_EVENTS_MAX: '20' },
    sandbox_env: { SANDBOX_WEBHOOK_DROP_RATE: '1' },
  });
});
afterAll(async () => {
  await stack?.close();
});

it.each([
  ['tok_review_approve', 'succeeded', null],
  ['tok_review_decline', 'failed', 'card_declined'],
])('%s with every webhook dropped still ends %s, through polling', async (token, status, failure_code) => {
  const created = await createPayment(stack.api.url, stack.key, checkoutBody({ payment_method: token }));
  const done = await waitForPayment(stack.api, stack.key, created.body.id, settled, 30_000);
  expect(done.status).toBe(status);
  expect(done.orders[0].failure_code).toBe(failure_code);
  const order_id = done.orders[0].id as string;
  // The PSP did send (and drop) its events; none reached us.
  const sent = await sandboxEvents(stack.psp_url, done.orders[0].psp_reference!);
  expect(sent.length).toBeGreaterThanOrEqual(2);
  expect(sent.every((e) => e.status === 'dropped')).toBe(true);
  expect(await stack.api.db('psp_event').where({ order_id })).toEqual([]);
  const history = await statusHistory(stack.api.db, created.body.id);
  expect(sequenceOf(history, order_id)).toEqual(['not_started', 'executing', 'pending', status]);
  expectForwardOnly(history);
  // The wait outgrew the history limit: the payment workflow continued as new, and still finished.
  await stack.api.temporal.workflow.getHandle(done.workflow_id).result();
  const runs = await until('visibility shows the finished payment workflow', async () => {
    const seen: { status: string; run_id: string }[] = [];
    for await (const run of stack.api.temporal.workflow.list({ query: `WorkflowId = "${done.workflow_id}"` })) seen.push({ status: run.status.name, run_id: run.runId });
    return seen.some((r) => r.status === 'COMPLETED') ? seen : null;
  });
  const statuses = runs.map((r) => r.status);
  expect(statuses.length).toBeGreaterThanOrEqual(2);
  expect(statuses).toContain('CONTINUED_AS_NEW');
  expect(statuses).toContain('COMPLETED');
  // The replay set keeps both sides of a continue-as-new: the run that continued, and the last run (resumed).
  const continued = runs.find((r) => r.status === 'CONTINUED_AS_NEW');
  await keepHistory(stack.api.temporal, done.workflow_id, 'v7', `${token}-polled-continued.payment.json`, continued?.run_id);
  await keepHistory(stack.api.temporal, done.workflow_id, 'v7', `${token}-polled-resumed.payment.json`);
});
