import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { z } from 'zod';
import { LIMITS } from '../config';
import { assert } from '../domain/assert';
import {
  APPLIED_PSP_EVENT_ROUTES,
  CHARGE_EVENT_TYPES,
  DISPUTE_EVENT_TYPES,
  PAYMENT_METHOD_EVENT_TYPE,
  type AppliedPspEventRoute,
  type PspEventRoute,
  type SkippedPspEventRoute,
} from '../domain/psp-events';
import { isOrderTerminal } from '../domain/status';
import { disputeWorkflowId } from '../domain/workflow-ids';
import type { Logger } from '../logger';
import { PspChargeSchema, PspDisputeSchema } from '../psp/client';
import type { PspChargeUpdate } from '../workflows/contract';
import { DisputeWorkflow, disputeUpdateSignal, pspUpdateSignal, type DisputeInput } from '../workflows';
import { startPaymentWorkflow, type StarterDeps } from './workflow-starter';
import { findPaymentByCheckoutSession, startablePayment } from '../aggregates/payment';
import { findOrder, orderSignalTarget } from '../aggregates/order';

/**
 * The webhook inbox. Each PSP event is stored once (primary key = the PSP's event id) in the same
 * transaction as its routing decision, then applied: the matching workflow is signalled and
 * `applied_at` set. A redelivery of an event stored but never applied (the signal failed after
 * the commit) applies it again, and the sweeper applies any left behind; nothing is lost.
 */

export const PspEventSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, 'an event id of letters, digits, _ and -'),
  type: z.string().regex(/^[a-z_]+(\.[a-z_]+){1,3}$/, 'a dotted event type').max(100),
  created: z.number().int().nonnegative(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type PspEvent = z.infer<typeof PspEventSchema>;

const PaymentMethodObjectSchema = z.object({
  id: z.string().regex(/^pm_[A-Za-z0-9_]{1,200}$/),
  checkout_session: z.string().min(1).max(255),
  version: z.number().int().min(1).optional(),
});

const CHARGE_EVENTS: ReadonlySet<string> = new Set(CHARGE_EVENT_TYPES);
const SIGNAL_DEADLINE_MS = 3_000;

const APPLIED_ROUTES: ReadonlySet<string> = new Set(APPLIED_PSP_EVENT_ROUTES);
const DISPUTE_EVENTS: ReadonlySet<string> = new Set(DISPUTE_EVENT_TYPES);

interface RoutingDecision {
  route: PspEventRoute;
  object_id: string;
  object_version: number | null;
  payment_id: string | null;
  order_id: string | null;
  note: string | null;
}

export interface StoredEvent extends RoutingDecision {
  id: string;
  type: string;
  payload: PspEvent;
  applied_at: Date | null;
  deliveries: number;
}

const skip = (route: SkippedPspEventRoute, object_id: string, note: string, ids: Partial<RoutingDecision> = {}): RoutingDecision => ({
  route,
  object_id,
  object_version: null,
  payment_id: null,
  order_id: null,
  ...ids,
  note,
});

async function routeCharge(trx: Knex.Transaction, event: PspEvent): Promise<RoutingDecision> {
  const parsed = PspChargeSchema.safeParse(event.data.object);
  if (!parsed.success) return skip('ignored', String(event.data.object['id'] ?? '?').slice(0, 255), 'the object is not a charge');
  const charge = parsed.data;
  const order = await findOrder(trx, { id: charge.order_reference });
  if (order === undefined) return skip('unknown', charge.id, `no order ${charge.order_reference}`);
  const found = { object_version: charge.version, order_id: order.id };
  // Recorded with its order for the audit trail, but nothing to apply: terminal stays terminal.
  if (isOrderTerminal(order.status)) return skip('ignored', charge.id, `order already ${order.status}`, found);
  return { route: 'order', object_id: charge.id, payment_id: order.payment_id, note: null, ...found };
}

async function routePaymentMethod(trx: Knex.Transaction, event: PspEvent): Promise<RoutingDecision> {
  const parsed = PaymentMethodObjectSchema.safeParse(event.data.object);
  if (!parsed.success) return skip('ignored', String(event.data.object['id'] ?? '?').slice(0, 255), 'the object is not a payment method');
  const pm = parsed.data;
  const payment = await findPaymentByCheckoutSession(trx, pm.checkout_session);
  if (payment === undefined) return skip('unknown', pm.id, `no payment for checkout session ${pm.checkout_session}`);
  const version = pm.version ?? null;
  if (payment.status !== 'requires_payment_method') return skip('ignored', pm.id, `payment already ${payment.status}`, { object_version: version });
  return { route: 'payment', object_id: pm.id, object_version: version, payment_id: payment.id, order_id: null, note: null };
}

async function routeDispute(trx: Knex.Transaction, event: PspEvent): Promise<RoutingDecision> {
  const parsed = PspDisputeSchema.safeParse(event.data.object);
  if (!parsed.success) return skip('ignored', String(event.data.object['id'] ?? '?').slice(0, 255), 'the object is not a dispute');
  const dispute = parsed.data;
  const order = await findOrder(trx, { psp_reference: dispute.charge });
  if (order === undefined) return skip('unknown', dispute.id, `no order for charge ${dispute.charge}`);
  return { route: 'dispute', object_id: dispute.id, object_version: dispute.version, payment_id: order.payment_id, order_id: order.id, note: null };
}

async function routeEvent(trx: Knex.Transaction, event: PspEvent): Promise<RoutingDecision> {
  if (CHARGE_EVENTS.has(event.type)) return await routeCharge(trx, event);
  if (DISPUTE_EVENTS.has(event.type)) return await routeDispute(trx, event);
  if (event.type === PAYMENT_METHOD_EVENT_TYPE) return await routePaymentMethod(trx, event);
  return skip('ignored', String(event.data.object['id'] ?? '?').slice(0, 255), `event type ${event.type} is not acted on`);
}

/** Stores the event (or counts a redelivery) and its route in one transaction. */
export async function receiveEvent(db: Knex, event: PspEvent): Promise<{ stored: StoredEvent; duplicate: boolean }> {
  return await db.transaction(async (trx) => {
    const existing = await trx('psp_event').where({ id: event.id }).forUpdate().first<StoredEvent | undefined>();
    if (existing !== undefined) {
      await trx('psp_event').where({ id: event.id }).increment('deliveries', 1);
      return { stored: existing, duplicate: true };
    }
    const decision = await routeEvent(trx, event);
    const row = { id: event.id, type: event.type, payload: JSON.stringify(event), ...decision, applied_at: decision.route === 'ignored' ? trx.fn.now() : null };
    // A concurrent first delivery of the same event: the primary key lets one insert win.
    const inserted = await trx('psp_event').insert(row).onConflict('id').ignore().returning<StoredEvent[]>('*');
    const stored = inserted[0] ?? (await trx('psp_event').where({ id: event.id }).first<StoredEvent>());
    return { stored, duplicate: inserted.length === 0 };
  });
}

export interface ApplyDeps {
  db: Knex;
  temporal: Client;
  starter: StarterDeps;
  log: Logger;
}

async function signalOrder(deps: ApplyDeps, event: StoredEvent): Promise<string | null> {
  assert(event.order_id !== null, `event ${event.id} routed to an order`);
  const update: PspChargeUpdate = { event_id: event.id, charge: PspChargeSchema.parse(event.payload.data.object) };
  try {
    const handle = deps.temporal.workflow.getHandle(await orderSignalTarget(deps.db, event.order_id));
    await deps.temporal.connection.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () => handle.signal(pspUpdateSignal, update));
    return null;
  } catch (err) {
    // The order's workflow has closed: it already reached its end, so this news is moot.
    if (err instanceof WorkflowNotFoundError) return 'order workflow already closed';
    throw err;
  }
}

async function signalPayment(deps: ApplyDeps, event: StoredEvent): Promise<string | null> {
  assert(event.payment_id !== null, `event ${event.id} routed to a payment`);
  const payment = await startablePayment(deps.db, event.payment_id);
  assert(payment !== undefined, `payment ${event.payment_id} exists`);
  const payment_method = PaymentMethodObjectSchema.parse(event.payload.data.object).id;
  // Signal-with-start: if the relay has not started the workflow yet, this starts it.
  await startPaymentWorkflow(deps.starter, payment, deps.db, { event_id: event.id, payment_method });
  return null;
}

/** Signal-with-start: the first event of a dispute starts its workflow. */
async function signalDispute(deps: ApplyDeps, event: StoredEvent): Promise<string | null> {
  const dispute = PspDisputeSchema.parse(event.payload.data.object);
  const input: DisputeInput = { dispute_id: dispute.id, poll_ms: deps.starter.timings.poll_max_ms };
  await deps.temporal.connection.withDeadline(Date.now() + SIGNAL_DEADLINE_MS, () =>
    deps.temporal.workflow.signalWithStart(DisputeWorkflow, {
      workflowId: disputeWorkflowId(dispute.id),
      taskQueue: deps.starter.task_queue,
      args: [input],
      signal: disputeUpdateSignal,
      signalArgs: [{ event_id: event.id, dispute }],
    }),
  );
  return null;
}

const SIGNALLERS: Record<AppliedPspEventRoute, (deps: ApplyDeps, event: StoredEvent) => Promise<string | null>> = {
  order: signalOrder,
  payment: signalPayment,
  dispute: signalDispute,
};

/** Signals the event's workflow and marks the event applied. Throws if the signal failed. */
export async function applyEvent(deps: ApplyDeps, event: StoredEvent): Promise<void> {
  if (event.applied_at !== null || !APPLIED_ROUTES.has(event.route)) return;
  await deps.db('psp_event').where({ id: event.id }).increment('apply_attempts', 1);
  const note = await SIGNALLERS[event.route as AppliedPspEventRoute](deps, event);
  await deps.db('psp_event').where({ id: event.id }).whereNull('applied_at').update({ applied_at: deps.db.fn.now(), ...(note === null ? {} : { note }) });
  deps.log.info({ event_id: event.id, type: event.type, route: event.route, payment_id: event.payment_id, order_id: event.order_id, note }, 'psp event applied');
}

/** Applies events stored but never applied (the process died, or Temporal was down). */
export async function sweepUnappliedEvents(deps: ApplyDeps, older_than_ms: number): Promise<number> {
  const due = await deps.db('psp_event')
    .whereNull('applied_at')
    .whereIn('route', [...APPLIED_ROUTES])
    .where('received_at', '<', deps.db.raw(`now() - (? * interval '1 millisecond')`, [older_than_ms]))
    .orderBy('received_at')
    .limit(LIMITS.webhook_sweep_batch_max)
    .select<StoredEvent[]>('*');
  let applied = 0;
  for (const event of due) {
    try {
      await applyEvent(deps, event);
      applied += 1;
    } catch (err) {
      deps.log.warn({ err, event_id: event.id }, 'psp event still not applied');
    }
  }
  return applied;
}
