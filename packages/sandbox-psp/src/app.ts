import express, { type NextFunction, type Request, type Response } from 'express';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from './db';
import type { Logger } from './logger';
import { ERROR_CODES, SandboxError, type ChargeJson } from './errors';
import { chargeEvent, chargeStats, computeFeeMinor, mountCharges } from './charges';
import { createAdminRouter, createCheckoutPages, getCheckoutSession, postCheckoutSession } from './checkout';
import { createFaultAdminRouter, refuseByFaults, type FaultKnobState } from './faults';
import { isMoneyPost, outcomeOf, recordAttempt, requestLogger } from './request-log';
import { createSettlementAdminRouter, getSettlement, SettlementKnobState } from './settlements';
import { createThreeDSecurePages } from './three-d-secure';
import type { EventDeps } from './webhooks';
import { mountMoneyOut, moneyOutAdminRouter } from './money-out';
import { disputeAdminRouter, mountDisputes } from './disputes';
import { ping } from './store';

export { SandboxError, type ChargeJson };

/**
 * The sandbox PSP's HTTP surface: the Stripe-like API our payment app calls over the network
 * (charges.ts, money-out.ts, disputes.ts, settlements.ts, checkout sessions), the buyer-facing
 * pages, and test-only introspection under /_sandbox. This file wires them up behind the shared
 * middleware: request log, API key, error answers.
 */

export const SANDBOX_LIMITS = {
  body_bytes_max: 16 * 1024,
  health_timeout_ms: 2_000,
} as const;

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

export interface Deps extends EventDeps {
  log: Logger;
  public_url: string;
  faults: FaultKnobState;
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
  app.get('/_sandbox/stats', chargeStats(deps.db));
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
  // Fault knobs touch only the money-moving POSTs, never a GET: a caller can always ask what happened.
  const faults = refuseByFaults(deps.faults);
  mountCharges(app, deps, faults);
  mountMoneyOut(app, deps, faults);
  mountDisputes(app, deps);
  app.post('/v1/checkout_sessions', postCheckoutSession(deps));
  app.get('/v1/checkout_sessions/:id', getCheckoutSession(deps));
  app.get('/v1/settlements/:date', getSettlement(settlements));
  app.use(routeNotFound);
  app.use(errorHandler(deps));
  return app;
}
