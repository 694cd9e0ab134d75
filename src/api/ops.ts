import express, { Router } from 'express';
import { z } from 'zod';
import { LIMITS } from '../config';
import { commandOrder, OPERATOR_LIMITS, type OperatorDeps } from '../services/operator';
import { authenticateAdmin } from './auth';
import { parseWith } from './errors';
import { AppError } from '../domain/errors';
import { closeItem, getRun, listItems, listRuns, startReconciliation } from '../services/recon';
import { CloseReconItemBody, ListReconItemsQuery, ListReconRunsQuery, StartReconRunBody } from './schemas';

const CommandBody = z.strictObject({ reason: z.string().min(1).max(OPERATOR_LIMITS.reason_chars_max).optional() });

/**
 * Operator routes (admin key): retry or cancel an order parked as `needs_attention`. 202: the
 * command reached the order's workflow, which does the work; watch the order for the result.
 */
export function opsRouter(deps: OperatorDeps & { admin_api_key: string | undefined; task_queue: string }): Router {
  const router = Router();
  router.use(authenticateAdmin(deps.admin_api_key), express.json({ limit: LIMITS.body_bytes_max, type: () => true }));
  router.post('/orders/:id/:action', async (req, res) => {
    const action = req.params.action;
    if (action !== 'retry' && action !== 'cancel') throw new AppError('route_not_found', `no operator action ${action}: use retry or cancel`);
    const body = parseWith(CommandBody, req.body ?? {});
    const order = await commandOrder(deps, String(req.params.id), { action, reason: body.reason ?? `${action} by operator`, requested_by: 'api:ops' });
    res.status(202).json({ order_id: order.id, payment_id: order.payment_id, action, accepted: true });
  });
  mountRecon(router, deps);
  return router;
}

/**
 * Reconciliation for tools: runs (newest first) and the finance queue (oldest first), both with
 * cursor pagination; start a day's run; resolve or write off an open item with a note.
 */
function mountRecon(router: Router, deps: OperatorDeps & { task_queue: string }): void {
  router.get('/recon/runs', async (req, res) => {
    const q = parseWith(ListReconRunsQuery, req.query);
    res.json({ object: 'list', ...(await listRuns(deps.db, q)) });
  });
  router.post('/recon/runs', async (req, res) => {
    const body = parseWith(StartReconRunBody, req.body ?? {});
    const started = await startReconciliation({ temporal: deps.temporal, task_queue: deps.task_queue }, body.date, body.fix_wait_ms);
    res.status(202).json({ settlement_date: body.date, ...started });
  });
  router.get('/recon/runs/:id', async (req, res) => {
    res.json(await getRun(deps.db, String(req.params.id)));
  });
  router.get('/recon/runs/:id/items', async (req, res) => {
    const q = parseWith(ListReconItemsQuery.omit({ date: true }), req.query);
    const run = await getRun(deps.db, String(req.params.id));
    res.json({ object: 'list', ...(await listItems(deps.db, { ...q, date: run.settlement_date })) });
  });
  router.get('/recon/items', async (req, res) => {
    const q = parseWith(ListReconItemsQuery, req.query);
    res.json({ object: 'list', ...(await listItems(deps.db, q)) });
  });
  router.post('/recon/items/:id/:action', async (req, res) => {
    const action = req.params.action;
    if (action !== 'resolve' && action !== 'write-off') throw new AppError('route_not_found', `no item action ${action}: use resolve or write-off`);
    const body = parseWith(CloseReconItemBody, req.body ?? {});
    res.json(await closeItem(deps.db, String(req.params.id), action === 'resolve' ? 'resolved' : 'written_off', body.note, 'api:ops'));
  });
}
