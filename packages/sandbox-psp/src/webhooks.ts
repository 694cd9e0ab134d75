import type { Knex } from './db';
import type { Logger } from './logger';
import { signPayload } from './signature';
import type { SandboxConfig, WebhookKnobs } from './config';
import { KnobState } from './knobs';
import { claimDueEvents, markAttemptFailed, markDelivered, recordEvent, type EventRow, type NewEvent } from './events';
import { decideDueCharges, type StoredCharge } from './store';

/**
 * Background work of the sandbox: settling charges under review and delivering webhooks. Both
 * read their work from the database on every tick, so a restart loses nothing that was due.
 */

export const WEBHOOK_LIMITS = {
  attempts_max: 10,
  backoff_cap_ms: 60_000,
  request_timeout_ms: 5_000,
  tick_ms: 50,
} as const;

export const SIGNATURE_HEADER = 'Psp-Signature';

/** Delivery misbehaviour (env start values, POST /_sandbox/webhooks). */
export class WebhookKnobState extends KnobState<WebhookKnobs> {}

export interface EventDeps {
  db: Knex;
  config: SandboxConfig;
  knobs: WebhookKnobState;
}

/** Call inside the transaction that makes the change the event reports. */
export async function enqueueEvent(trx: Knex, deps: EventDeps, event: NewEvent): Promise<EventRow> {
  return await recordEvent(trx, event, deps.knobs.get());
}

/** base * 2^(attempt-1), capped: 1 s, 2 s, 4 s … 60 s with the default base. */
export function backoffMs(base_ms: number, attempts_done: number): number {
  const exponent = Math.min(attempts_done - 1, 30);
  return Math.min(base_ms * 2 ** exponent, WEBHOOK_LIMITS.backoff_cap_ms);
}

async function postOnce(url: string, payload: string, secret: string): Promise<void> {
  const signature = signPayload(secret, payload, Math.floor(Date.now() / 1000));
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', [SIGNATURE_HEADER]: signature },
    body: payload,
    signal: AbortSignal.timeout(WEBHOOK_LIMITS.request_timeout_ms),
    redirect: 'manual', // a real PSP does not follow redirects with a signed body
  });
  await res.arrayBuffer().catch(() => undefined); // drain so the socket is reused
  if (res.status < 200 || res.status > 299) throw new Error(`endpoint answered HTTP ${res.status}`);
}

async function deliverOne(deps: EventDeps, log: Logger, event: EventRow): Promise<void> {
  if (event.target_url === null) throw new Error(`assertion: pending event ${event.id} has no target`);
  const attempts_done = event.attempts + 1;
  const fields = { event_id: event.id, event_type: event.type, attempt: attempts_done };
  try {
    await postOnce(event.target_url, event.payload, deps.config.webhook_secret);
    // The duplicate knob: the endpoint sees the identical event a second time.
    if (event.duplicate) await postOnce(event.target_url, event.payload, deps.config.webhook_secret);
    await markDelivered(deps.db, event.id, event.duplicate ? 2 : 1);
    log.info(fields, 'webhook delivered');
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    const exhausted = attempts_done >= WEBHOOK_LIMITS.attempts_max;
    const next = exhausted ? null : new Date(Date.now() + backoffMs(deps.config.webhook_backoff_ms, attempts_done));
    await markAttemptFailed(deps.db, event.id, error, next);
    log.warn({ ...fields, error, gave_up: exhausted }, 'webhook attempt failed');
  }
}

/** In order, one at a time: the reorder knob is only meaningful if sending keeps the order. */
async function deliverDueEvents(deps: EventDeps, log: Logger): Promise<void> {
  const due = await claimDueEvents(deps.db, deps.knobs.get().reorder);
  for (const event of due) await deliverOne(deps, log, event);
}

async function settleDueCharges(deps: EventDeps, to_event: (charge: StoredCharge) => NewEvent): Promise<void> {
  await decideDueCharges(deps.db, async (trx, charge) => {
    await enqueueEvent(trx, deps, to_event(charge));
  });
}

export interface BackgroundLoop {
  stop(): Promise<void>;
}

/** One tick at a time (never overlapping); errors are logged and the next tick tries again. */
export function startBackgroundLoop(
  deps: EventDeps,
  log: Logger,
  charge_event: (charge: StoredCharge) => NewEvent,
  /** Other decisions that come due (payouts), each committing its own events. */
  due_work: ReadonlyArray<() => Promise<unknown>> = [],
): BackgroundLoop {
  let running: Promise<void> | null = null;
  const tick = async (): Promise<void> => {
    try {
      await settleDueCharges(deps, charge_event);
      for (const work of due_work) await work();
      await deliverDueEvents(deps, log);
    } catch (err) {
      log.error({ err }, 'background tick failed');
    }
  };
  const timer = setInterval(() => {
    if (running !== null) return;
    running = tick().finally(() => {
      running = null;
    });
  }, WEBHOOK_LIMITS.tick_ms);
  return {
    async stop() {
      clearInterval(timer);
      if (running !== null) await running;
    },
  };
}
