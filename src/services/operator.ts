import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import type { Logger } from '../logger';
import { operatorCommandSignal, type OperatorCommand } from '../workflows/contract';
import { findOrder, listParkedOrders as parkedOrders, orderSignalTarget, type ParkedOrder } from '../aggregates/order';

/**
 * Operators' decisions on dead letters (orders parked as `needs_attention`), shared by the ops
 * API and payctl: checked against the database, then signalled to the order's workflow, which
 * does the work (retry with the same idempotency key; cancel after voiding/refunding at the PSP).
 */
export interface OperatorDeps {
  db: Knex;
  temporal: Client;
  log: Logger;
}

export const OPERATOR_LIMITS = { reason_chars_max: 500, list_max: 500 } as const;
const SIGNAL_DEADLINE_MS = 3_000;

export type { ParkedOrder };

export async function commandOrder(deps: OperatorDeps, order_id: string, command: OperatorCommand): Promise<ParkedOrder> {
  if (command.reason.length > OPERATOR_LIMITS.reason_chars_max) throw new AppError('parameter_invalid', `reason is at most ${OPERATOR_LIMITS.reason_chars_max} characters`, 'reason');
  const order = await findOrder(deps.db, { id: order_id });
  if (order === undefined) throw new AppError('resource_missing', `no order ${order_id}`, 'id');
  if (order.status !== 'needs_attention') throw new AppError('order_not_parked', `order ${order_id} is ${order.status}; only needs_attention orders take retry or cancel`, 'id');
  try {
    const handle = deps.temporal.workflow.getHandle(await orderSignalTarget(deps.db, order_id));
    await deps.temporal.connection.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () => handle.signal(operatorCommandSignal, { ...command, order_id }));
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new AppError('order_not_parked', `order ${order_id} has no running workflow`, 'id');
    throw new AppError('service_unavailable', 'Temporal did not take the command; retry', undefined, 5);
  }
  deps.log.warn({ order_id, payment_id: order.payment_id, action: command.action, requested_by: command.requested_by, reason: command.reason }, 'operator command sent');
  return order;
}

export async function listParkedOrders(db: Knex, limit: number): Promise<ParkedOrder[]> {
  return await parkedOrders(db, Math.min(limit, OPERATOR_LIMITS.list_max));
}
