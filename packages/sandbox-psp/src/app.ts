import express, { type NextFunction, type Request, type Response } from 'express';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Knex } from './db';
import type { Logger } from './logger';
import {
  ERROR_CODES,
  IDEMPOTENCY_KEY_CHARS_MAX,
  parseWith,
  readIdempotencyKey,
  SandboxError,
  type ChargeJson,
  type ErrorCode,
  type NextAction,
} from './errors';
import { createAdminRouter, createCheckoutPages, getCheckoutSession, postCheckoutSession } from './checkout';
import { getPaymentMethod } from './checkout-store';
import type { NewEvent } from './events';
import { createFaultAdminRouter, holdWithoutAnswer, refuseByFaults, type FaultKnobState } from './faults';
import { insertAttempt, type Attempt, type RequestOutcome } from './request-log';
import { createSettlementAdminRouter, getSettlement, SettlementKnobState } from './settlements';
import { createThreeDSecurePages } from './three-d-secure';
import { enqueueEvent, type EventDeps } from './webhooks';
import { mountMoneyOut, moneyOutAdminRouter } from './money-out';
import { disputeAdminRouter, mountDisputes } from './disputes';
import {
  applyChargeAction,
  CHARGE_ACTION_RULES,
  countCharges,
  findOrInsertCharge,
  getCharge,
  insertCharge,
  listCharges,
  ping,
  type ActionResult,
  type ChargeAction,
  type ChargeFilter,
  type ChargeStatus,
  type NewCharge,
  type OnChargeStored,
  type ReviewDecision,
  type StoredCharge,
} from './store';

export { SandboxError, type ChargeJson };

/**
 * The sandbox PSP's HTTP surface: a small Stripe-like charges API our payment app calls over
 * the network, plus test-only introspection under /_sandbox. Amounts cross the wire as digit
 * strings in minor units and are bigint inside.
 */

export const SANDBOX_LIMITS = {
  body_bytes_max: 16 * 1024,
  idempotency_key_chars_max: IDEMPOTENCY_KEY_CHARS_MAX,
  amount_digits_max: 18,
  payment_method_chars_max: 255,
  order_reference_chars_max: 255,
  metadata_keys_max: 20,
  metadata_key_chars_max: 40,
  metadata_value_chars_max: 500,
  // Both filters (idempotency key, order reference) are at most 255 characters when stored.
  filter_value_chars_max: 255,
  health_timeout_ms: 2_000,
} as const;

// ---------------------------------------------------------------------------------------------
// Charges: test tokens, fees, wire shape.

type FailureCode = 'card_declined' | 'insufficient_funds';

interface Outcome {
  status: ChargeStatus;
  failure_code: FailureCode | null;
  failure_message: string | null;
  /** Set for review outcomes: the charge is pending until the scheduler applies this. */
  review_decision: ReviewDecision | null;
}

const NO_REVIEW = { review_decision: null } as const;
const PENDING = { status: 'pending', failure_code: null, failure_message: null } as const;

// A Map, not an object literal, so "constructor" or "__proto__" cannot pass as a token.
const TOKEN_OUTCOMES: ReadonlyMap<string, Outcome> = new Map<string, Outcome>([
  ['tok_success', { status: 'succeeded', failure_code: null, failure_message: null, ...NO_REVIEW }],
  [
    'tok_decline',
    { status: 'failed', failure_code: 'card_declined', failure_message: 'Your card was declined.', ...NO_REVIEW },
  ],
  [
    'tok_insufficient_funds',
    {
      status: 'failed',
      failure_code: 'insufficient_funds',
      failure_message: 'Your card has insufficient funds.',
      ...NO_REVIEW,
    },
  ],
  ['tok_review_approve', { ...PENDING, review_decision: 'approve' }],
  ['tok_review_decline', { ...PENDING, review_decision: 'decline' }],
  // Decided by the buyer on the 3-D Secure page (three-d-secure.ts), never by the scheduler.
  [
    'tok_requires_action',
    { status: 'requires_action', failure_code: null, failure_message: null, ...NO_REVIEW },
  ],
]);

const BPS_PER_UNIT = 10_000n;

/** n / d rounded half to even; n >= 0, d > 0. */
function divideHalfEven(n: bigint, d: bigint): bigint {
  const quotient = n / d;
  const twice_remainder = (n % d) * 2n;
  if (twice_remainder > d) return quotient + 1n;
  if (twice_remainder === d && quotient % 2n === 1n) return quotient + 1n;
  return quotient;
}

export function computeFeeMinor(amount_minor: bigint, fee_bps: number, fee_fixed_minor: bigint): bigint {
  if (amount_minor <= 0n) throw new Error('assertion: fee asked for a non-positive amount');
  const fee_minor = divideHalfEven(amount_minor * BigInt(fee_bps), BPS_PER_UNIT) + fee_fixed_minor;
  // The fixed part alone can exceed a tiny charge; a PSP never takes more than it collected.
  return fee_minor > amount_minor ? amount_minor : fee_minor;
}

/** Where charge JSON points the buyer: public_url is read late, main.ts fills it after listen. */
type ChargeUrls = Pick<Deps, 'public_url'>;

function nextAction(charge: StoredCharge, urls: ChargeUrls): NextAction | null {
  if (charge.status !== 'requires_action') return null;
  return { type: 'redirect_to_url', redirect_url: `${urls.public_url}/3ds/${charge.id}` };
}

function toChargeJson(charge: StoredCharge, urls: ChargeUrls): ChargeJson {
  return {
    id: charge.id,
    object: 'charge',
    amount: charge.amount_minor.toString(),
    currency: charge.currency,
    status: charge.status,
    failure_code: charge.failure_code,
    failure_message: charge.failure_message,
    next_action: nextAction(charge, urls),
    fee: charge.fee_minor.toString(),
    payment_method: charge.payment_method,
    order_reference: charge.order_reference,
    idempotency_key: charge.idempotency_key,
    version: charge.version,
    created: unixSeconds(charge.created_at),
  };
}

function unixSeconds(at: Date): number {
  return Math.floor(at.getTime() / 1000);
}

// A Record over every status, so a new status does not compile until it has an event type.
// A capture is reported as charge.succeeded, like any other charge that succeeds.
const CHARGE_EVENT_TYPES: Readonly<Record<ChargeStatus, string>> = {
  pending: 'charge.pending',
  requires_action: 'charge.requires_action',
  authorized: 'charge.authorized',
  succeeded: 'charge.succeeded',
  failed: 'charge.failed',
  canceled: 'charge.canceled',
  refunded: 'charge.refunded',
};

/**
 * The charge as a webhook carries it: the API shape plus `updated`, so a receiver can order
 * events by (version, updated). Kept off the API answer, whose shape callers already pin.
 * Sent to config.webhook_url; null records the event as `no_endpoint`.
 */
export function chargeEvent(charge: StoredCharge, deps: Pick<Deps, 'config' | 'public_url'>): NewEvent {
  const object = { ...toChargeJson(charge, deps), updated: unixSeconds(charge.updated_at) };
  return { type: CHARGE_EVENT_TYPES[charge.status], object_id: charge.id, object, target_url: deps.config.webhook_url };
}

// ---------------------------------------------------------------------------------------------
// Request validation.

const ChargeBodySchema = z.strictObject({
  amount: z
    .string()
    .regex(
      new RegExp(`^[1-9][0-9]{0,${SANDBOX_LIMITS.amount_digits_max - 1}}$`),
      `must be a positive integer in minor units: a string of 1 to ${SANDBOX_LIMITS.amount_digits_max} digits, ` +
        'no leading zeros',
    ),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter uppercase currency code'),
  payment_method: z.string().min(1).max(SANDBOX_LIMITS.payment_method_chars_max),
  order_reference: z.string().min(1).max(SANDBOX_LIMITS.order_reference_chars_max),
  metadata: z
    .record(
      z.string().min(1).max(SANDBOX_LIMITS.metadata_key_chars_max),
      z.string().max(SANDBOX_LIMITS.metadata_value_chars_max),
    )
    .refine((m) => Object.keys(m).length <= SANDBOX_LIMITS.metadata_keys_max, {
      message: `must have at most ${SANDBOX_LIMITS.metadata_keys_max} keys`,
    })
    .optional(),
  /** false: only authorize; POST /v1/charges/:id/capture takes the money later. */
  capture: z.boolean().optional(),
});

type ChargeBody = z.infer<typeof ChargeBodySchema>;

function parseChargeBody(body: unknown): ChargeBody {
  const parsed = ChargeBodySchema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue === undefined) throw new SandboxError('parameter_invalid', 'invalid request body');
  if (issue.code === 'unrecognized_keys') {
    return invalidParam(issue.keys[0], `unknown parameter: ${issue.keys.join(', ')}`);
  }
  const param = issue.path.length > 0 ? issue.path.join('.') : undefined;
  return invalidParam(param, param === undefined ? 'request body must be a JSON object' : issue.message);
}

function invalidParam(param: string | undefined, message: string): never {
  throw new SandboxError('parameter_invalid', message, param);
}


/** A `pm_…` token from hosted checkout charges with the outcome of the card behind it. */
async function outcomeFor(db: Knex, payment_method: string): Promise<Outcome> {
  const token = payment_method.startsWith('pm_')
    ? ((await getPaymentMethod(db, payment_method))?.outcome_token ?? '')
    : payment_method;
  const outcome = TOKEN_OUTCOMES.get(token);
  if (outcome === undefined) {
    throw new SandboxError('invalid_payment_method', 'no such payment method token', 'payment_method');
  }
  return outcome;
}

/** A stable hash of what the request asks for: keys sorted, so field order does not matter. */
function requestHash(body: ChargeBody): string {
  const metadata =
    body.metadata === undefined ? null : Object.entries(body.metadata).sort(([a], [b]) => (a < b ? -1 : 1));
  const canonical: unknown[] = [body.amount, body.currency, body.payment_method, body.order_reference, metadata];
  // Only a non-default capture joins the hash, so keys stored before the field keep matching.
  if (body.capture === false) canonical.push({ capture: false });
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** A capture, void or refund asks for one thing on one charge; the (empty) body adds nothing. */
function actionHash(action: ChargeAction, charge_id: string): string {
  return createHash('sha256').update(JSON.stringify(['action', action, charge_id])).digest('hex');
}

/** Exactly one of idempotency_key / order_reference, as a single non-empty string. */
function parseFilter(query: Request['query']): ChargeFilter {
  const idempotency_key = query['idempotency_key'];
  const order_reference = query['order_reference'];
  const usable = (v: unknown): v is string =>
    typeof v === 'string' && v.length >= 1 && v.length <= SANDBOX_LIMITS.filter_value_chars_max;
  if (usable(idempotency_key) && order_reference === undefined) return { idempotency_key };
  if (usable(order_reference) && idempotency_key === undefined) return { order_reference };
  return invalidParam(undefined, 'exactly one of idempotency_key or order_reference is required');
}

// ---------------------------------------------------------------------------------------------
// Middleware.

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares digests, not raw strings, so neither the content nor the length of the key leaks. */
function requireApiKey(api_key: string) {
  const expected = sha256(api_key);
  return (req: Request, _res: Response, next: NextFunction): void => {
    const match = /^Bearer (.+)$/.exec(req.get('Authorization') ?? '');
    const given = match?.[1];
    if (given === undefined || !timingSafeEqual(sha256(given), expected)) {
      throw new SandboxError('invalid_api_key', 'invalid API key provided');
    }
    next();
  };
}

/** One log line per request; headers are never logged (they carry the API key). */
function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started_ms = performance.now();
    const req_log = log.child({ req_id: `req_${randomBytes(6).toString('hex')}` });
    res.locals['log'] = req_log;
    res.on('finish', () => {
      const duration_ms = Math.round(performance.now() - started_ms);
      const fields = { method: req.method, path: req.path, status: res.statusCode, duration_ms };
      req_log.info({ ...fields, error_code: res.locals['error_code'] }, 'request completed');
    });
    next();
  };
}

function requestLogger(res: Response, fallback: Logger): Logger {
  return (res.locals['log'] as Logger | undefined) ?? fallback;
}

// body-parser marks its own failures with `type`; they become our codes here.
function toSandboxError(err: unknown): SandboxError | null {
  if (err instanceof SandboxError) return err;
  const parser_type = (err as { type?: unknown } | null)?.type;
  if (parser_type === 'entity.too.large') {
    return new SandboxError('body_too_large', `request body exceeds ${SANDBOX_LIMITS.body_bytes_max} bytes`);
  }
  if (typeof parser_type === 'string' && (err as { status?: number }).status === 400) {
    return new SandboxError('invalid_json', 'request body is not valid JSON');
  }
  return null;
}

/** Every POST under /v1/charges moves money (or tries to): each attempt goes to the request log. */
function isMoneyPost(req: Request<unknown>): boolean {
  return req.method === 'POST' && /^\/v1\/charges(\/|$)/.test(pathOf(req));
}

function pathOf(req: Request<unknown>): string {
  return req.originalUrl.split('?')[0] ?? '';
}

const CHARGE_ACTION_PATH = /^\/v1\/charges\/([^/]+)\/[^/]+$/;

function attemptOf(req: Request<unknown>, outcome: RequestOutcome, http_status: number | null): Attempt {
  const path = pathOf(req);
  const body_reference = (req.body as { order_reference?: unknown } | undefined)?.order_reference;
  const order_reference =
    path.replace(/\/+$/, '') === '/v1/charges' && typeof body_reference === 'string' && body_reference.length > 0
      ? body_reference
      : null;
  const key = req.get('Idempotency-Key');
  return {
    method: req.method,
    path,
    order_reference,
    charge_id: CHARGE_ACTION_PATH.exec(path)?.[1] ?? null,
    idempotency_key: key === undefined || key.length === 0 ? null : key,
    outcome,
    http_status,
  };
}

/** Written before the answer leaves; a failure to write is logged, never turned into an error. */
async function recordAttempt(
  deps: Deps,
  req: Request<unknown>,
  res: Response,
  outcome: RequestOutcome,
  http_status: number | null,
): Promise<void> {
  res.locals['attempt_recorded'] = true;
  try {
    await insertAttempt(deps.db, attemptOf(req, outcome, http_status));
  } catch (err) {
    requestLogger(res, deps.log).warn({ err }, 'request log write failed');
  }
}

function outcomeOf(code: ErrorCode, status: number): RequestOutcome {
  if (code === 'psp_unavailable') return 'fault_503';
  if (code === 'rate_limited') return 'rate_limited_429';
  if (code === 'card_declined' || code === 'insufficient_funds') return 'declined';
  return status < 500 ? 'error_4xx' : 'error_5xx';
}

/** Declared with four parameters: that is how express tells an error handler from a route. */
function errorHandler(deps: Deps) {
  return async (err: unknown, req: Request, res: Response, next: NextFunction): Promise<void> => {
    // Too late for a JSON error (a reply is half written): let express drop the connection.
    if (res.headersSent) return next(err);
    let known = toSandboxError(err);
    if (known === null) {
      // Details stay in the log; the caller learns only that it was our fault.
      requestLogger(res, deps.log).error({ err }, 'unhandled error');
      known = new SandboxError('internal_error', 'internal error');
    }
    const { type, status } = ERROR_CODES[known.code];
    if (isMoneyPost(req) && res.locals['attempt_recorded'] !== true) {
      await recordAttempt(deps, req, res, outcomeOf(known.code, status), status);
    }
    res.locals['error_code'] = known.code;
    const error = { type, code: known.code, message: known.message, param: known.param, charge: known.charge };
    res.status(status).json({ error });
  };
}

// ---------------------------------------------------------------------------------------------
// Routes.

export interface Deps extends EventDeps {
  log: Logger;
  public_url: string;
  faults: FaultKnobState;
}

/**
 * capture false holds the money (status authorized) only for a charge that would succeed at
 * once; a decline is stored failed as usual. Review and 3-D Secure charges decide later, and
 * authorizing those is not modelled: refused rather than silently captured.
 */
function applyCapture(outcome: Outcome, capture: boolean): Outcome {
  if (capture) return outcome;
  if (outcome.review_decision !== null || outcome.status === 'requires_action') {
    invalidParam('capture', 'capture false is not supported for review or 3-D Secure payment methods');
  }
  return outcome.status === 'succeeded' ? { ...outcome, status: 'authorized' } : outcome;
}

/**
 * Test-mode magic amount: 1313 minor units (13.13 USD) declines whatever the card, so one order
 * of a multi-seller payment can fail while its siblings (same card) succeed.
 */
const DECLINING_AMOUNT_MINOR = 1313n;

function magicAmount(amount_minor: bigint): Outcome | null {
  if (amount_minor !== DECLINING_AMOUNT_MINOR) return null;
  return TOKEN_OUTCOMES.get('tok_decline') ?? null;
}

async function newChargeFrom(deps: Deps, body: ChargeBody, idempotency_key: string): Promise<NewCharge> {
  const { config } = deps;
  const amount_minor = BigInt(body.amount);
  const outcome = applyCapture(magicAmount(amount_minor) ?? (await outcomeFor(deps.db, body.payment_method)), body.capture ?? true);
  const decide_at = outcome.review_decision === null ? null : new Date(Date.now() + config.review_delay_ms);
  return {
    idempotency_key,
    request_hash: requestHash(body),
    order_reference: body.order_reference,
    amount_minor,
    currency: body.currency,
    payment_method: body.payment_method,
    ...outcome,
    decide_at,
    // For an authorized charge this is the fee capture will take; nothing is taken before.
    fee_minor: computeFeeMinor(amount_minor, config.fee_bps, config.fee_fixed_minor),
  };
}

/** A new charge and its first event commit together; a replay records no event. */
async function storeCharge(deps: Deps, fresh: NewCharge): Promise<{ charge: StoredCharge; replayed: boolean }> {
  const on_inserted: OnChargeStored = async (trx, charge) => {
    await enqueueEvent(trx, deps, chargeEvent(charge, deps));
  };
  if (deps.config.ignore_idempotency) {
    return { charge: await insertCharge(deps.db, fresh, on_inserted), replayed: false };
  }
  const result = await findOrInsertCharge(deps.db, fresh, on_inserted);
  if (result.kind === 'key_reused' || (result.kind === 'replayed' && result.charge.request_hash !== fresh.request_hash)) {
    keyReused();
  }
  return { charge: result.charge, replayed: result.kind === 'replayed' };
}

function keyReused(): never {
  throw new SandboxError(
    'idempotency_key_reused',
    'Idempotency-Key was already used with different request parameters',
    'Idempotency-Key',
  );
}

/**
 * A declined charge is still a charge: it is stored, replayed, and answered as a card error.
 * A charge awaiting 3-D Secure is answered 200, like a pending one: next_action says what to do.
 */
function sendCharge(res: Response, charge: StoredCharge, urls: ChargeUrls): void {
  const json = toChargeJson(charge, urls);
  if (charge.status !== 'failed') {
    res.status(200).json(json);
    return;
  }
  const code: ErrorCode = charge.failure_code === 'insufficient_funds' ? 'insufficient_funds' : 'card_declined';
  throw new SandboxError(code, charge.failure_message ?? 'Your card was declined.', undefined, json);
}

/** What a money-moving POST decided, committed before anything is answered. */
interface ChargeReply {
  charge: StoredCharge;
  replayed: boolean;
}

/**
 * The answering half of every money-moving POST: latency, then the timeout fault, then the
 * answer. Everything here runs after the commit: a caller that times out or dies meanwhile
 * leaves a charge it never heard about, the unknown-outcome case the payment app must recover
 * from. The refusing half (rate limit, 503) is refuseByFaults, in front of the route.
 */
function moneyPost<P>(deps: Deps, decide: (req: Request<P>, res: Response) => Promise<ChargeReply>) {
  return async (req: Request<P>, res: Response): Promise<void> => {
    const { charge, replayed } = await decide(req, res);
    const { latency_ms, timeout_hold_ms } = deps.faults.get();
    if (latency_ms > 0) await sleep(latency_ms);
    if (deps.faults.timeoutNow()) {
      await recordAttempt(deps, req, res, 'timeout_after_commit', null);
      requestLogger(res, deps.log).info({ charge_id: charge.id, hold_ms: timeout_hold_ms }, 'answer withheld (timeout fault)');
      await holdWithoutAnswer(res, timeout_hold_ms);
      return;
    }
    // A decline is answered by the error handler (a 402 card error), which logs it as declined.
    if (charge.status !== 'failed') await recordAttempt(deps, req, res, 'ok', 200);
    if (replayed) res.set('Idempotent-Replayed', 'true');
    sendCharge(res, charge, deps);
  };
}

function postCharge(deps: Deps) {
  return moneyPost(deps, async (req: Request, res) => {
    const idempotency_key = readIdempotencyKey(req);
    const fresh = await newChargeFrom(deps, parseChargeBody(req.body), idempotency_key);
    const { charge, replayed } = await storeCharge(deps, fresh);
    const fields = { charge_id: charge.id, order_reference: charge.order_reference, idempotency_key, replayed };
    const event = replayed ? 'charge replayed' : 'charge created';
    requestLogger(res, deps.log).info({ ...fields, status: charge.status }, event);
    return { charge, replayed };
  });
}

// capture, void and refund take no parameters (full amounts only); an empty object is allowed.
const ActionBodySchema = z.strictObject({}).optional();

const ACTION_REFUSALS: Readonly<Record<ChargeAction, { code: ErrorCode; verb: string }>> = {
  capture: { code: 'charge_not_capturable', verb: 'captured' },
  void: { code: 'charge_not_voidable', verb: 'voided' },
  refund: { code: 'charge_not_refundable', verb: 'refunded' },
};

function refusal(action: ChargeAction, charge: StoredCharge, urls: ChargeUrls): SandboxError {
  const { code, verb } = ACTION_REFUSALS[action];
  const { from } = CHARGE_ACTION_RULES[action];
  const message = `charge ${charge.id} is ${charge.status}: only a ${from} charge can be ${verb}`;
  return new SandboxError(code, message, undefined, toChargeJson(charge, urls));
}

function replyFor(action: ChargeAction, charge_id: string, result: ActionResult, urls: ChargeUrls): ChargeReply {
  switch (result.kind) {
    case 'missing':
      throw new SandboxError('resource_missing', `no such charge: ${charge_id}`, 'id');
    case 'key_reused':
      return keyReused();
    case 'refused':
      throw refusal(action, result.charge, urls);
    case 'replayed':
      return { charge: result.charge, replayed: true };
    case 'changed':
    case 'unchanged':
      return { charge: result.charge, replayed: false };
  }
}

/**
 * POST /v1/charges/:id/{capture,void,refund}. Idempotent by the charge's state in every mode
 * (capturing a succeeded charge answers it as is); the Idempotency-Key additionally replays the
 * first answer, except in ignore-idempotency mode, which ignores keys here too.
 */
function postChargeAction(deps: Deps, action: ChargeAction) {
  return moneyPost<{ id: string }>(deps, async (req, res) => {
    const idempotency_key = readIdempotencyKey(req);
    parseWith(ActionBodySchema, req.body);
    const charge_id = req.params.id;
    const request = {
      charge_id,
      action,
      idempotency_key: deps.config.ignore_idempotency ? null : idempotency_key,
      request_hash: actionHash(action, charge_id),
    };
    const result = await applyChargeAction(deps.db, request, async (trx, charge) => {
      await enqueueEvent(trx, deps, chargeEvent(charge, deps));
    });
    const fields = { charge_id, action, idempotency_key, result: result.kind };
    requestLogger(res, deps.log).info('charge' in result ? { ...fields, status: result.charge.status } : fields, 'charge action');
    return replyFor(action, charge_id, result, deps);
  });
}

function getChargeById(deps: Deps) {
  return async (req: Request<{ id: string }>, res: Response): Promise<void> => {
    const charge = await getCharge(deps.db, req.params.id);
    if (charge === null) throw new SandboxError('resource_missing', `no such charge: ${req.params.id}`, 'id');
    res.json(toChargeJson(charge, deps));
  };
}

function listChargesBy(deps: Deps) {
  return async (req: Request, res: Response): Promise<void> => {
    const charges = await listCharges(deps.db, parseFilter(req.query));
    res.json({ object: 'list', data: charges.map((charge) => toChargeJson(charge, deps)) });
  };
}

function stats(db: Knex) {
  return async (req: Request, res: Response): Promise<void> => {
    const filter = parseFilter(req.query);
    res.json({ ...filter, ...(await countCharges(db, filter)) });
  };
}

/** Bounded, so a hung database turns into a 503 rather than a health probe that never answers. */
async function pingWithin(db: Knex, timeout_ms: number): Promise<void> {
  const abort = new AbortController();
  const timeout = sleep(timeout_ms, undefined, { signal: abort.signal }).then(() => {
    throw new Error(`database did not answer within ${timeout_ms} ms`);
  });
  try {
    await Promise.race([ping(db), timeout]);
  } finally {
    abort.abort(); // the race already subscribed to `timeout`, so its AbortError is handled
  }
}

function health(db: Knex, log: Logger) {
  return async (_req: Request, res: Response): Promise<void> => {
    try {
      await pingWithin(db, SANDBOX_LIMITS.health_timeout_ms);
      res.json({ ok: true });
    } catch (err) {
      log.warn({ err }, 'health check failed');
      res.status(503).json({ ok: false });
    }
  };
}

function routeNotFound(req: Request): never {
  throw new SandboxError('route_not_found', `no route for ${req.method} ${req.path}`);
}

export function createSandboxApp(deps: Deps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Settlement knobs live in memory like the fault knobs; nothing outside the app reads them.
  const settlements = {
    db: deps.db,
    log: deps.log,
    knobs: new SettlementKnobState(),
    fee_of: (amount_minor: bigint) => computeFeeMinor(amount_minor, deps.config.fee_bps, deps.config.fee_fixed_minor),
  };
  app.use(requestLog(deps.log));
  app.get('/healthz', health(deps.db, deps.log));
  app.get('/_sandbox/stats', stats(deps.db));
  app.use(
    '/_sandbox',
    express.json({ limit: SANDBOX_LIMITS.body_bytes_max }),
    createAdminRouter(deps),
    createFaultAdminRouter(deps),
    createSettlementAdminRouter(settlements),
    moneyOutAdminRouter(deps),
    disputeAdminRouter(deps),
  );
  // Buyer-facing pages: no API key (the buyer's browser has none), form-encoded bodies.
  app.use('/checkout', express.urlencoded({ extended: false, limit: SANDBOX_LIMITS.body_bytes_max }));
  app.use('/checkout', createCheckoutPages(deps));
  app.use('/3ds', express.urlencoded({ extended: false, limit: SANDBOX_LIMITS.body_bytes_max }));
  app.use('/3ds', createThreeDSecurePages(deps, (charge) => chargeEvent(charge, deps)));
  // Authentication comes before body parsing: an unauthenticated caller gets 401, not a JSON error.
  app.use('/v1', requireApiKey(deps.config.api_key), express.json({ limit: SANDBOX_LIMITS.body_bytes_max }));
  // Fault knobs touch only these POSTs, never a GET: a caller can always ask what happened.
  const faults = refuseByFaults(deps.faults);
  app.post('/v1/charges', faults, postCharge(deps));
  for (const action of Object.keys(CHARGE_ACTION_RULES) as ChargeAction[]) {
    app.post(`/v1/charges/:id/${action}`, faults, postChargeAction(deps, action));
  }
  app.get('/v1/charges', listChargesBy(deps));
  mountMoneyOut(app, deps, faults);
  mountDisputes(app, deps);
  app.get('/v1/charges/:id', getChargeById(deps));
  app.post('/v1/checkout_sessions', postCheckoutSession(deps));
  app.get('/v1/checkout_sessions/:id', getCheckoutSession(deps));
  app.get('/v1/settlements/:date', getSettlement(settlements));
  app.use(routeNotFound);
  app.use(errorHandler(deps));
  return app;
}
