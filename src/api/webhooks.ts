import express from 'express';
import { LIMITS } from '../config';
import { AppError } from '../domain/errors';
import { verifySignature } from '../psp/signature';
import { applyEvent, PspEventSchema, receiveEvent, type PspEvent } from '../services/psp-events';
import { fromZod } from './errors';
import { defineRoute, type RouteDef } from './registry';
import { WebhookReceipt } from './resources';

const SIGNATURE_HEADER = 'psp-signature';

const REJECTION: Record<'missing' | 'malformed' | 'stale' | 'mismatch', string> = {
  missing: 'the Psp-Signature header is missing',
  malformed: 'the Psp-Signature header is malformed',
  stale: 'the signature timestamp is outside the tolerance (replayed or clock skew)',
  mismatch: 'the signature does not match the body',
};

function parseEvent(raw_body: string): PspEvent {
  let json: unknown;
  try {
    json = JSON.parse(raw_body);
  } catch {
    throw new AppError('invalid_json', 'the webhook body is not valid JSON');
  }
  const parsed = PspEventSchema.safeParse(json);
  if (!parsed.success) {
    const err = fromZod(parsed.error);
    throw new AppError('webhook_event_invalid', err.message, err.param);
  }
  return parsed.data;
}

/**
 * The raw-body parser is this route's own and runs before any JSON parser: the signature covers
 * the exact bytes. Verified events are stored, then applied; the answer is 200 once stored, even if
 * applying must wait for the sweeper (the PSP should not redeliver).
 */
const receivePspEvent = defineRoute({
  method: 'post',
  path: '/webhooks/psp',
  operationId: 'receivePspEvent',
  tag: 'webhooks',
  summary: 'PSP webhook receiver (called by the PSP, not by merchants)',
  description:
    'Verifies `Psp-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t." + raw body>` against every configured secret (PSP_WEBHOOK_SECRETS), 300 s tolerance; ' +
    'stores the event once by its id (a redelivery is counted, and applied again if it never was), routes it to the order or payment workflow as a signal, ' +
    'and answers 200 once stored. Unknown objects are kept (route `unknown`) for operators; events about terminal objects are kept and ignored.',
  auth: 'webhook_signature',
  raw_body: PspEventSchema,
  middleware: [express.raw({ type: () => true, limit: LIMITS.webhook_body_bytes_max })],
  success: { status: 200, description: 'Stored (and applied, or left for the sweeper)', schema: WebhookReceipt },
  errors: { 400: 'Bad signature (webhook_signature_invalid), malformed JSON (invalid_json) or not an event (webhook_event_invalid); nothing stored', 413: 'Body too large' },
  async handle({ deps, req, res }) {
    const raw_body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    const now_unix = Math.floor(Date.now() / 1000);
    const verdict = verifySignature({ header: req.header(SIGNATURE_HEADER), raw_body, secrets: deps.webhook_secrets, now_unix });
    if (!verdict.ok) throw new AppError('webhook_signature_invalid', REJECTION[verdict.reason], 'Psp-Signature');
    const event = parseEvent(raw_body);
    const { stored, duplicate } = await receiveEvent(deps.db, event);
    try {
      await applyEvent(deps, stored);
    } catch (err) {
      deps.log.warn({ err, event_id: stored.id }, 'psp event stored, not yet applied; the sweeper retries');
    }
    deps.log.info({ event_id: stored.id, type: stored.type, route: stored.route, duplicate }, 'psp webhook received');
    res.status(200).json({ received: true, duplicate, route: stored.route });
  },
});

export const WEBHOOK_ROUTES: readonly RouteDef[] = [receivePspEvent];
