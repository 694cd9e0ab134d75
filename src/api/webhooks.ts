import express, { Router } from 'express';
import { LIMITS } from '../config';
import { AppError } from '../domain/errors';
import { verifySignature } from '../psp/signature';
import { applyEvent, PspEventSchema, receiveEvent, type ApplyDeps, type PspEvent } from '../services/psp-events';
import { fromZod } from './errors';

export interface WebhookDeps extends ApplyDeps {
  /** Every signing secret currently accepted (old and new during a rotation). */
  secrets: readonly string[];
  now_unix?: () => number;
}

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
 * POST /webhooks/psp. The raw-body parser is this route's own and runs before any JSON parser:
 * the signature covers the exact bytes. Verified events are stored, then applied; the answer is
 * 200 once stored, even if applying must wait for the sweeper (the PSP should not redeliver).
 */
export function webhooksRouter(deps: WebhookDeps): Router {
  const router = Router();
  const now_unix = deps.now_unix ?? (() => Math.floor(Date.now() / 1000));
  router.post('/psp', express.raw({ type: () => true, limit: LIMITS.webhook_body_bytes_max }), async (req, res) => {
    const raw_body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    const verdict = verifySignature({ header: req.header(SIGNATURE_HEADER), raw_body, secrets: deps.secrets, now_unix: now_unix() });
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
  });
  return router;
}
