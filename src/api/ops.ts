import type { Request } from 'express';
import { z } from 'zod';
import { commandOrder, OPERATOR_LIMITS } from '../services/operator';
import { AppError } from '../domain/errors';
import { defineRoute, type RouteDef } from './registry';
import { startReconciliation } from '../services/recon';
import { closeItem, getRun, listItems, listRuns } from '../recon/queue';
import { CloseReconItemBody, ListReconItemsQuery, ListReconRunsQuery, StartReconRunBody } from './schemas';
import { OrderCommandAccepted, ReconItemList, ReconItemResource, ReconRunList, ReconRunResource, ReconRunStarted } from './resources';

const CommandBody = z.strictObject({ reason: z.string().min(1).max(OPERATOR_LIMITS.reason_chars_max).optional() });
const ORDER_ACTIONS = ['retry', 'cancel'] as const;
const ITEM_ACTIONS = ['resolve', 'write-off'] as const;

/** A closed set in the last path segment; anything else is no route, as for any unknown path. */
function actionOf<A extends string>(req: Request, actions: readonly A[], what: string): A {
  const action = String(req.params.action);
  if (!(actions as readonly string[]).includes(action)) throw new AppError('route_not_found', `no ${what} action ${action}: use ${actions.join(' or ')}`);
  return action as A;
}

// 202: the command reached the order's workflow, which does the work; watch the order for the result.
const commandOrderRoute = defineRoute({
  method: 'post',
  path: '/v1/ops/orders/:id/:action',
  operationId: 'commandParkedOrder',
  tag: 'operations',
  summary: 'Operators: retry or cancel an order parked as needs_attention (admin key)',
  description:
    'Bearer ADMIN_API_KEY (the routes answer 404 ops_disabled when it is unset). The command is signalled to the order\'s workflow, which carries it out: retry charges again with the same idempotency key; cancel first voids or refunds a charge the PSP may hold.',
  auth: 'operator',
  params: z.object({ id: z.string(), action: z.enum(ORDER_ACTIONS) }),
  check: (req) => void actionOf(req, ORDER_ACTIONS, 'operator'),
  body: CommandBody,
  body_optional: true,
  success: { status: 202, description: 'The order\'s workflow has the command', schema: OrderCommandAccepted },
  errors: { 400: 'Invalid body', 404: 'No such order or action (or ops routes off)', 409: 'The order is not needs_attention (order_not_parked)', 413: 'Body too large', 503: 'Temporal did not take the command' },
  async handle({ deps, req, res, body }) {
    const action = actionOf(req, ORDER_ACTIONS, 'operator');
    const order = await commandOrder(deps, String(req.params.id), { action, reason: body.reason ?? `${action} by operator`, requested_by: 'api:ops' });
    res.status(202).json({ order_id: order.id, payment_id: order.payment_id, action, accepted: true });
  },
});

const listRunsRoute = defineRoute({
  method: 'get',
  path: '/v1/ops/recon/runs',
  operationId: 'listReconRuns',
  tag: 'operations',
  summary: 'Operators: reconciliation runs, newest first (admin key)',
  auth: 'operator',
  query: ListReconRunsQuery,
  success: { status: 200, description: 'A page of runs: status, lines read, totals, error line and reason of a failed run', schema: ReconRunList },
  errors: { 400: 'Invalid query', 404: 'Ops routes off' },
  async handle({ deps, res, query }) {
    res.json({ object: 'list', ...(await listRuns(deps.db, query)) });
  },
});

const startRunRoute = defineRoute({
  method: 'post',
  path: '/v1/ops/recon/runs',
  operationId: 'startReconRun',
  tag: 'operations',
  summary: 'Operators: reconcile a settlement day now (idempotent per day)',
  description: 'Starts the day\'s reconciliation workflow, or reports the one already running for it. A day that has not begun is refused (settlement_date_in_future).',
  auth: 'operator',
  body: StartReconRunBody,
  body_optional: true,
  success: { status: 202, description: 'Started (or already running)', schema: ReconRunStarted },
  errors: { 400: 'Invalid day or a future day', 404: 'Ops routes off', 413: 'Body too large', 503: 'Temporal unavailable' },
  async handle({ deps, res, body }) {
    const started = await startReconciliation({ temporal: deps.temporal, task_queue: deps.task_queue }, body.date, body.fix_wait_ms);
    res.status(202).json({ settlement_date: body.date, ...started });
  },
});

const getRunRoute = defineRoute({
  method: 'get',
  path: '/v1/ops/recon/runs/:id',
  operationId: 'getReconRun',
  tag: 'operations',
  summary: 'Operators: one reconciliation run',
  auth: 'operator',
  params: z.object({ id: z.string() }),
  success: { status: 200, description: 'The run', schema: ReconRunResource },
  errors: { 404: 'No such run (or ops routes off)' },
  async handle({ deps, req, res }) {
    res.json(await getRun(deps.db, String(req.params.id)));
  },
});

const listRunItemsRoute = defineRoute({
  method: 'get',
  path: '/v1/ops/recon/runs/:id/items',
  operationId: 'listReconRunItems',
  tag: 'operations',
  summary: 'Operators: the differences of a run\'s settlement day, oldest first',
  description: 'Each item says which field differs (field, our_value, psp_value), the line, the order and its workflow id, its class and its status.',
  auth: 'operator',
  params: z.object({ id: z.string() }),
  query: ListReconItemsQuery.omit({ date: true }),
  success: { status: 200, description: 'A page of items', schema: ReconItemList },
  errors: { 400: 'Invalid query', 404: 'No such run (or ops routes off)' },
  async handle({ deps, req, res, query }) {
    const run = await getRun(deps.db, String(req.params.id));
    res.json({ object: 'list', ...(await listItems(deps.db, { ...query, date: run.settlement_date })) });
  },
});

const listItemsRoute = defineRoute({
  method: 'get',
  path: '/v1/ops/recon/items',
  operationId: 'listReconItems',
  tag: 'operations',
  summary: 'Finance: the queue of differences, oldest first (filter by day, status, class)',
  auth: 'operator',
  query: ListReconItemsQuery,
  success: { status: 200, description: 'A page of items', schema: ReconItemList },
  errors: { 400: 'Invalid query', 404: 'Ops routes off' },
  async handle({ deps, res, query }) {
    res.json({ object: 'list', ...(await listItems(deps.db, query)) });
  },
});

const closeItemRoute = defineRoute({
  method: 'post',
  path: '/v1/ops/recon/items/:id/:action',
  operationId: 'closeReconItem',
  tag: 'operations',
  summary: 'Finance: resolve or write off an open difference, with a note',
  auth: 'operator',
  params: z.object({ id: z.string(), action: z.enum(ITEM_ACTIONS) }),
  check: (req) => void actionOf(req, ITEM_ACTIONS, 'item'),
  body: CloseReconItemBody,
  body_optional: true,
  success: { status: 200, description: 'The closed item', schema: ReconItemResource },
  errors: { 400: 'Invalid note', 404: 'No such item or action (or ops routes off)', 409: 'Already closed (recon_item_closed)', 413: 'Body too large' },
  async handle({ deps, req, res, body }) {
    const action = actionOf(req, ITEM_ACTIONS, 'item');
    res.json(await closeItem(deps.db, String(req.params.id), action === 'resolve' ? 'resolved' : 'written_off', body.note, 'api:ops'));
  },
});

/**
 * Operator routes (admin key): parked orders, and reconciliation for tools — runs (newest first)
 * and the finance queue (oldest first), both with cursor pagination.
 */
export const OPS_ROUTES: readonly RouteDef[] = [commandOrderRoute, listRunsRoute, startRunRoute, getRunRoute, listRunItemsRoute, listItemsRoute, closeItemRoute];
