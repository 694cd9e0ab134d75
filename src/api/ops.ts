import express, { Router } from 'express';
import { z } from 'zod';
import { LIMITS } from '../config';
import { commandOrder, OPERATOR_LIMITS, type OperatorDeps } from '../services/operator';
import { authenticateAdmin } from './auth';
import { parseWith } from './errors';
import { AppError } from '../domain/errors';

const CommandBody = z.strictObject({ reason: z.string().min(1).max(OPERATOR_LIMITS.reason_chars_max).optional() });

/**
 * Operator routes (admin key): retry or cancel an order parked as `needs_attention`. 202: the
 * command reached the order's workflow, which does the work; watch the order for the result.
 */
export function opsRouter(deps: OperatorDeps & { admin_api_key: string | undefined }): Router {
  const router = Router();
  router.use(authenticateAdmin(deps.admin_api_key), express.json({ limit: LIMITS.body_bytes_max, type: () => true }));
  router.post('/orders/:id/:action', async (req, res) => {
    const action = req.params.action;
    if (action !== 'retry' && action !== 'cancel') throw new AppError('route_not_found', `no operator action ${action}: use retry or cancel`);
    const body = parseWith(CommandBody, req.body ?? {});
    const order = await commandOrder(deps, String(req.params.id), { action, reason: body.reason ?? `${action} by operator`, requested_by: 'api:ops' });
    res.status(202).json({ order_id: order.id, payment_id: order.payment_id, action, accepted: true });
  });
  return router;
}
