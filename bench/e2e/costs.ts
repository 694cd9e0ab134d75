import { Client, Connection } from '@temporalio/client';
import type { Knex } from '../../src/db';
import { paymentWorkflowId } from '../../src/domain/workflow-ids';
import { round1 } from './stats';

/**
 * What one payment costs Temporal, whatever shape the workflows take: every execution that
 * carries the payment's PaymentId search attribute (the payment workflow, any child or
 * continued-as-new run), summed per payment over a random sample of succeeded payments.
 */
const LIMITS = {
  sample_max: 20, // enough to see the spread; each payment costs a list + 2 calls per execution
  executions_per_payment_max: 100, // a bound on one payment's list, not an expected number
  payments_in_flight: 4, // the server under measurement is also the one answering these calls
  // A payment's row turns succeeded a moment before its workflow closes: read it again until
  // every run is closed, so a half-written history is not counted; bounded.
  open_retries: 25,
  open_retry_ms: 200,
} as const;

const NAMESPACE = 'default';

interface PaymentCost {
  open: boolean; // some run had not closed yet
  history_events_total: number;
  workflow_executions: number;
  workflow_tasks: number;
  state_transitions: number;
}

type Execution = { workflowId: string; runId: string };

/** Every run of the payment, from visibility; the payment workflow's own id when visibility has none yet. */
async function executionsOf(client: Client, payment_id: string): Promise<Execution[]> {
  const found: Execution[] = [];
  // Quoted for the visibility query language; bench payment ids are generated and carry no quotes.
  for await (const wf of client.workflow.list({ query: `PaymentId = "${payment_id}"` })) {
    found.push({ workflowId: wf.workflowId, runId: wf.runId });
    if (found.length >= LIMITS.executions_per_payment_max) break;
  }
  if (found.length > 0) return found;
  const described = await client.workflow.getHandle(paymentWorkflowId(payment_id)).describe();
  return [{ workflowId: described.workflowId, runId: described.runId }];
}

type Counted = Exclude<keyof PaymentCost, 'open'>;

async function executionCost(client: Client, e: Execution): Promise<Omit<PaymentCost, 'workflow_executions'>> {
  const [history, described] = await Promise.all([
    client.workflow.getHandle(e.workflowId, e.runId).fetchHistory(),
    client.workflowService.describeWorkflowExecution({ namespace: NAMESPACE, execution: e }),
  ]);
  const events = history.events ?? [];
  return {
    open: described.workflowExecutionInfo?.closeTime == null,
    history_events_total: events.length,
    // A completed workflow task is one round trip of the worker: the cost the goal counts.
    workflow_tasks: events.filter((ev) => ev.workflowTaskCompletedEventAttributes != null).length,
    state_transitions: Number(described.workflowExecutionInfo?.stateTransitionCount ?? 0),
  };
}

async function paymentCostOnce(client: Client, payment_id: string): Promise<PaymentCost> {
  const executions = await executionsOf(client, payment_id);
  const costs = await Promise.all(executions.map((e) => executionCost(client, e)));
  const sum = (k: Exclude<Counted, 'workflow_executions'>) => costs.reduce((a, c) => a + c[k], 0);
  return {
    open: costs.some((c) => c.open),
    history_events_total: sum('history_events_total'),
    workflow_executions: executions.length,
    workflow_tasks: sum('workflow_tasks'),
    state_transitions: sum('state_transitions'),
  };
}

async function paymentCost(client: Client, payment_id: string): Promise<PaymentCost> {
  let cost = await paymentCostOnce(client, payment_id);
  for (let i = 0; cost.open && i < LIMITS.open_retries; i++) {
    await new Promise((r) => setTimeout(r, LIMITS.open_retry_ms));
    cost = await paymentCostOnce(client, payment_id);
  }
  return cost;
}

/** key (average), key_min, key_max for every cost, and the sample size. */
function summarize(costs: PaymentCost[]): Record<string, number> {
  // still_open: payments counted while some run was open (a long wait by design, or a slow close).
  const out: Record<string, number> = { cost_sample_payments: costs.length, cost_sample_still_open: costs.filter((c) => c.open).length };
  for (const key of ['history_events_total', 'workflow_executions', 'workflow_tasks', 'state_transitions'] as const) {
    const values = costs.map((c) => c[key]);
    out[key] = round1(values.reduce((a, b) => a + b, 0) / values.length);
    out[`${key}_min`] = Math.min(...values);
    out[`${key}_max`] = Math.max(...values);
  }
  return out;
}

/** Per-payment Temporal costs over a sample of succeeded payments; {} when there are none. */
export async function temporalCosts(db: Knex, address: string): Promise<Record<string, number>> {
  const sample = await db('payment_event').where({ status: 'succeeded' }).orderByRaw('random()').limit(LIMITS.sample_max).pluck<string[]>('id');
  if (sample.length === 0) return {};
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace: NAMESPACE });
    const costs: PaymentCost[] = [];
    for (let i = 0; i < sample.length; i += LIMITS.payments_in_flight) {
      costs.push(...(await Promise.all(sample.slice(i, i + LIMITS.payments_in_flight).map((id) => paymentCost(client, id)))));
    }
    return summarize(costs);
  } finally {
    await connection.close();
  }
}
