import type { Express, Request, RequestHandler, Response } from 'express';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Knex } from './db';
import type { Deps } from './app';
import {
  IDEMPOTENCY_KEY_CHARS_MAX,
  parseWith,
  readIdempotencyKey,
  SandboxError,
  type ChargeJson,
  type ErrorCode,
  type NextAction,
} from './errors';
import { getPaymentMethod } from './checkout-store';
import type { NewEvent } from './events';
import { holdWithoutAnswer } from './faults';
import { recordAttempt, requestLogger } from './request-log';
import { enqueueEvent } from './webhooks';
import {
  applyChargeAction,
  CHARGE_ACTION_RULES,
  countCharges,
  findOrInsertCharge,
  getCharge,
  insertCharge,
  listCharges,
  type ActionResult,
  type ChargeAction,
  type ChargeFilter,
  type ChargeStatus,
  type NewCharge,
  type OnChargeStored,
  type ReviewDecision,
  type StoredCharge,
} from './store';

/**
 * The charges API our payment app calls: create (with test tokens deciding the outcome),
 * capture, void, refund, read and list. Amounts cross the wire as digit strings in minor units
 * and are bigint inside.
 */

export const CHARGE_LIMITS = {
  idempotency_key_chars_max: IDEMPOTENCY_KEY_CHARS_MAX,
  amount_digits_max: 18,
  payment_method_chars_max: 255,
  order_reference_chars_max: 255,
  metadata_keys_max: 20,
  metadata_key_chars_max: 40,
  metadata_value_chars_max: 500,
  // Both filters (idempotency key, order reference) are at most 255 characters when stored.
  filter_value_chars_max: 255,
} as const;

// ---------------------------------------------------------------------------------------------
// Test tokens, fees, wire shape.

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
      new RegExp(`^[1-9][0-9]{0,${CHARGE_LIMITS.amount_digits_max - 1}}$`),
      `must be a positive integer in minor units: a string of 1 to ${CHARGE_LIMITS.amount_digits_max} digits, ` +
        'no leading zeros',
    ),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter uppercase currency code'),
  payment_method: z.string().min(1).max(CHARGE_LIMITS.payment_method_chars_max),
  order_reference: z.string().min(1).max(CHARGE_LIMITS.order_reference_chars_max),
  metadata: z
    .record(
      z.string().min(1).max(CHARGE_LIMITS.metadata_key_chars_max),
      z.string().max(CHARGE_LIMITS.metadata_value_chars_max),
    )
    .refine((m) => Object.keys(m).length <= CHARGE_LIMITS.metadata_keys_max, {
      message: `must have at most ${CHARGE_LIMITS.metadata_keys_max} keys`,
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
    typeof v === 'string' && v.length >= 1 && v.length <= CHARGE_LIMITS.filter_value_chars_max;
  if (usable(idempotency_key) && order_reference === undefined) return { idempotency_key };
  if (usable(order_reference) && idempotency_key === undefined) return { order_reference };
  return invalidParam(undefined, 'exactly one of idempotency_key or order_reference is required');
}


// ---------------------------------------------------------------------------------------------
// Routes.

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

/** GET /_sandbox/stats: how many charges an order reference or key produced, by status. */
export function chargeStats(db: Knex) {
  return async (req: Request, res: Response): Promise<void> => {
    const filter = parseFilter(req.query);
    res.json({ ...filter, ...(await countCharges(db, filter)) });
  };
}

/**
 * The charge routes behind the API key. Fault knobs touch only the POSTs, never a GET: a caller
 * can always ask what happened.
 */
export function mountCharges(app: Express, deps: Deps, faults: RequestHandler): void {
  app.post('/v1/charges', faults, postCharge(deps));
  for (const action of Object.keys(CHARGE_ACTION_RULES) as ChargeAction[]) {
    app.post(`/v1/charges/:id/${action}`, faults, postChargeAction(deps, action));
  }
  app.get('/v1/charges', listChargesBy(deps));
  app.get('/v1/charges/:id', getChargeById(deps));
}
