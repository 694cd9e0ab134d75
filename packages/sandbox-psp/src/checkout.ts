import express, { type Request, type Response } from 'express';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { httpUrlSchema } from './http-url';
import type { Deps } from './app';
import { checkCard, TEST_CARDS, CARD_LIMITS, type AcceptedCard, type CardForm } from './cards';
import { completeSession, findOrInsertSession, getSession, lockSession, type SessionRow } from './checkout-store';
import { WEBHOOK_KNOB_LIMITS } from './config';
import { parseWith, readIdempotencyKey, SandboxError } from './errors';
import { mountKnobRoutes } from './knobs';
import { listEvents, toEventListItem, type EventFilter } from './events';
import { enqueueEvent } from './webhooks';

/**
 * Hosted checkout: the API that opens a session, the buyer-facing HTML page that turns a card
 * into a `pm_…` token, and the test-only webhook knobs. The card number is read from the form,
 * checked, reduced to brand + last4 + outcome, and dropped; it is never stored, logged or sent.
 */

export const CHECKOUT_LIMITS = {
  client_reference_chars_max: 255,
  url_chars_max: 2_048,
  filter_chars_max: 255,
} as const;

const httpUrl = httpUrlSchema(CHECKOUT_LIMITS.url_chars_max);

const SessionBodySchema = z.strictObject({
  client_reference: z.string().min(1).max(CHECKOUT_LIMITS.client_reference_chars_max),
  return_url: httpUrl,
  webhook_url: httpUrl.optional(),
});

const KnobsBodySchema = z.strictObject({
  duplicate_rate: z.number().min(0).max(1).optional(),
  drop_rate: z.number().min(0).max(1).optional(),
  reorder: z.boolean().optional(),
  reorder_hold_ms: z.number().int().min(0).max(WEBHOOK_KNOB_LIMITS.reorder_hold_ms_max).optional(),
  delay_ms: z.number().int().min(0).max(WEBHOOK_KNOB_LIMITS.delay_ms_max).optional(),
});

// ---------------------------------------------------------------------------------------------
// API: POST and GET /v1/checkout_sessions (mounted behind the API key and JSON parser in app.ts).

function sessionJson(session: SessionRow, public_url: string): Record<string, unknown> {
  return {
    id: session.id,
    object: 'checkout_session',
    url: `${public_url}/checkout/${session.id}`,
    status: session.status,
    client_reference: session.client_reference,
    return_url: session.return_url,
    payment_method: session.payment_method_id,
    created: Math.floor(session.created_at.getTime() / 1000),
  };
}

export function postCheckoutSession(deps: Deps) {
  return async (req: Request, res: Response): Promise<void> => {
    const idempotency_key = readIdempotencyKey(req);
    const body = parseWith(SessionBodySchema, req.body);
    const canonical = [body.client_reference, body.return_url, body.webhook_url ?? null];
    const request_hash = createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
    const fresh = { idempotency_key, request_hash, ...body, webhook_url: body.webhook_url ?? null };
    const { session, replayed } = await findOrInsertSession(deps.db, fresh);
    if (replayed && session.request_hash !== request_hash) {
      throw new SandboxError('idempotency_key_reused', 'Idempotency-Key was already used with different request parameters', 'Idempotency-Key');
    }
    if (replayed) res.set('Idempotent-Replayed', 'true');
    res.json(sessionJson(session, deps.public_url));
  };
}

/** Lets the merchant learn the `pm_…` token without waiting for the payment_method.attached webhook. */
export function getCheckoutSession(deps: Deps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const session = await getSession(deps.db, req.params.id);
    if (session === null) throw new SandboxError('resource_missing', `no such checkout session: ${req.params.id}`, 'id');
    res.json(sessionJson(session, deps.public_url));
  };
}

// ---------------------------------------------------------------------------------------------
// Buyer pages: GET/POST /checkout/:id.

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.6rem 0 .2rem}input{width:100%;padding:.4rem;box-sizing:border-box}
.error{color:#b00020;font-size:.9rem}button{margin-top:1rem;padding:.5rem 1rem}
table{font-size:.85rem;margin-top:1.5rem}td{padding:.1rem .5rem}`;

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<style>${STYLE}</style></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

type FieldErrors = Partial<Record<keyof CardForm, string>>;

function field(name: keyof CardForm, label: string, value: string, errors: FieldErrors, extra: string): string {
  const error = errors[name];
  const message = error === undefined ? '' : `<div class="error" role="alert">${escapeHtml(error)}</div>`;
  return `<label for="${name}">${label}</label><input id="${name}" name="${name}" value="${escapeHtml(value)}" ${extra}>${message}`;
}

function testCardTable(): string {
  const rows = TEST_CARDS.map((c) => `<tr><td><code>${c.number}</code></td><td>${escapeHtml(c.label)}</td></tr>`);
  return `<table><caption>Test cards (any future expiry, any CVC)</caption>${rows.join('')}</table>`;
}

/** Card number and CVC are never echoed back: the page only keeps expiry and name. */
function formPage(session: SessionRow, keep: Pick<CardForm, 'expiry' | 'name'>, errors: FieldErrors): string {
  const fields = [
    field('card_number', 'Card number', '', errors, 'inputmode="numeric" autocomplete="cc-number" required'),
    field('expiry', 'Expiry (MM/YY)', keep.expiry, errors, 'placeholder="MM/YY" autocomplete="cc-exp" required'),
    field('cvc', 'CVC', '', errors, 'inputmode="numeric" autocomplete="cc-csc" required'),
    field('name', 'Name on card', keep.name, errors, `maxlength="${CARD_LIMITS.name_chars_max}" autocomplete="cc-name" required`),
  ];
  const form = `<form method="post" action="/checkout/${escapeHtml(session.id)}">${fields.join('')}<button type="submit">Pay</button></form>`;
  return page('Sandbox checkout', `<p>Reference ${escapeHtml(session.client_reference)}</p>${form}${testCardTable()}`);
}

function completePage(): string {
  return page('Checkout complete', '<p>This checkout session is already complete. No further payment details are needed.</p>');
}

function notFoundPage(): string {
  return page('Checkout not found', '<p>No such checkout session.</p>');
}

export function sendHtml(res: Response, status: number, html: string): void {
  res.status(status).type('html').set('Cache-Control', 'no-store').send(html);
}

function readForm(body: unknown): CardForm {
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const read = (name: string): string => {
    const value = record[name];
    return typeof value === 'string' ? value.slice(0, CARD_LIMITS.field_chars_max) : '';
  };
  return { card_number: read('card_number'), expiry: read('expiry'), cvc: read('cvc'), name: read('name') };
}

function showCheckout(deps: Deps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const session = await getSession(deps.db, req.params.id);
    if (session === null) return sendHtml(res, 404, notFoundPage());
    if (session.status === 'complete') return sendHtml(res, 200, completePage());
    sendHtml(res, 200, formPage(session, { expiry: '', name: '' }, {}));
  };
}

function attachedEvent(session: SessionRow, pm_id: string, card: AcceptedCard, deps: Deps) {
  const object = {
    id: pm_id,
    object: 'payment_method',
    checkout_session: session.id,
    client_reference: session.client_reference,
    card: { brand: card.brand, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year },
    version: 1,
    created: Math.floor(Date.now() / 1000),
  };
  const target_url = session.webhook_url ?? deps.config.webhook_url;
  return { type: 'payment_method.attached', object_id: pm_id, object, target_url };
}

type SubmitResult =
  | { kind: 'missing' }
  | { kind: 'complete' }
  | { kind: 'invalid'; form: CardForm; errors: FieldErrors }
  | { kind: 'ok'; session: SessionRow; pm_id: string };

/** Token, session state and event commit together or not at all. */
async function submitCard(deps: Deps, session_id: string, form: CardForm): Promise<SubmitResult> {
  return await deps.db.transaction(async (trx): Promise<SubmitResult> => {
    const session = await lockSession(trx, session_id);
    if (session === null) return { kind: 'missing' };
    if (session.status === 'complete') return { kind: 'complete' };
    const check = checkCard(form, new Date());
    if (!check.ok) return { kind: 'invalid', form, errors: check.errors };
    const { brand, last4, token } = check.card;
    const pm = await completeSession(trx, session.id, { brand, last4, outcome_token: token });
    await enqueueEvent(trx, deps, attachedEvent(session, pm.id, check.card, deps));
    return { kind: 'ok', session, pm_id: pm.id };
  });
}

function returnUrl(session: SessionRow): string {
  const url = new URL(session.return_url);
  url.searchParams.set('checkout_session', session.id);
  return url.toString();
}

function submitCheckout(deps: Deps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const result = await submitCard(deps, req.params.id, readForm(req.body));
    const log = (res.locals['log'] as typeof deps.log | undefined) ?? deps.log;
    if (result.kind === 'missing') return sendHtml(res, 404, notFoundPage());
    if (result.kind === 'complete') return sendHtml(res, 409, completePage());
    if (result.kind === 'invalid') {
      log.info({ checkout_session: req.params.id, invalid_fields: Object.keys(result.errors) }, 'checkout rejected');
      const session = await getSession(deps.db, req.params.id);
      if (session === null) return sendHtml(res, 404, notFoundPage());
      return sendHtml(res, 400, formPage(session, result.form, result.errors));
    }
    log.info({ checkout_session: result.session.id, payment_method_id: result.pm_id }, 'checkout completed');
    res.redirect(303, returnUrl(result.session));
  };
}

export function createCheckoutPages(deps: Deps): express.Router {
  const router = express.Router();
  router.get('/:id', showCheckout(deps));
  router.post('/:id', submitCheckout(deps));
  return router;
}

// ---------------------------------------------------------------------------------------------
// Test-only admin: /_sandbox/webhooks (knobs) and /_sandbox/events (delivery state).

function parseEventFilter(query: Request['query']): EventFilter {
  const filter: EventFilter = {};
  for (const name of ['type', 'object_id'] as const) {
    const value = query[name];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length < 1 || value.length > CHECKOUT_LIMITS.filter_chars_max) {
      throw new SandboxError('parameter_invalid', `${name} must be 1 to ${CHECKOUT_LIMITS.filter_chars_max} characters`, name);
    }
    filter[name] = value;
  }
  return filter;
}

export function createAdminRouter(deps: Deps): express.Router {
  const router = express.Router();
  mountKnobRoutes(router, 'webhooks', deps.knobs, KnobsBodySchema, deps.log);
  router.get('/events', async (req, res) => {
    const events = await listEvents(deps.db, parseEventFilter(req.query));
    res.json({ object: 'list', data: events.map(toEventListItem) });
  });
  return router;
}
