import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import type { StarterDeps } from '../services/workflow-starter';
import type { AppDeps } from './app';
import { assert } from '../domain/assert';
import { parseWith } from './errors';
import { validateIdempotencyKey } from '../services/idempotency';

/**
 * Every HTTP route is declared once here, with what it takes and answers: express routers are
 * built from these declarations and the OpenAPI document is generated from the same ones, so a
 * mounted route cannot be missing from the document.
 */

/** Who may call a route: a merchant API key, the operator key, the PSP's signature, or anyone. */
export type AuthKind = 'merchant' | 'operator' | 'webhook_signature' | 'none';

export const TAGS = {
  payments: 'A checkout: one payment, one order per seller, charged through the PSP.',
  refunds: 'Part or all of one captured order back to the buyer.',
  payouts: 'Sellers\' bank accounts and payouts of their available balance.',
  disputes: 'Chargebacks opened by the PSP, and the merchant\'s evidence.',
  ledger: 'Balances per seller and the double-entry ledger behind them.',
  operations: 'Operator routes (admin key): parked orders and reconciliation.',
  webhooks: 'Events from the PSP, verified by their signature.',
  service: 'Health, metrics and this document.',
} as const;
export type Tag = keyof typeof TAGS;

/** Response headers a route may send, documented once (src/api/openapi.ts). */
export type ResponseHeader = 'Idempotent-Replayed' | 'Retry-After';

export const ERROR_STATUSES = [400, 401, 404, 409, 413, 422, 429, 503] as const;
export type ErrorStatus = (typeof ERROR_STATUSES)[number];

export interface SuccessSpec {
  status: 200 | 201 | 202;
  description: string;
  schema: z.ZodType;
  /** JSON unless said otherwise (Prometheus metrics are text). */
  content_type?: 'application/json' | 'text/plain';
  headers?: readonly ResponseHeader[];
}

/** What a route handler may use: the app's deps, resolved (src/api/app.ts builds it). */
export interface ApiDeps extends Omit<AppDeps, 'payout_minimums'> {
  payout_minimums: ReadonlyMap<string, bigint>;
  starter: StarterDeps;
  /** The generated OpenAPI document, served at /openapi.json. */
  openapi: object;
}

export interface RouteContext<Q, B> {
  deps: ApiDeps;
  req: Request;
  res: Response;
  query: Q;
  body: B;
  /** The validated Idempotency-Key header (routes declared `idempotent` only, else null). */
  idempotency_key: string | null;
}

export interface RouteDef<Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: 'get' | 'post' | 'put';
  /** The full express path, e.g. /v1/payments/:id. */
  path: string;
  operationId: string;
  tag: Tag;
  summary: string;
  description?: string;
  auth: AuthKind;
  /** Path parameters (documentation: a route with a closed set checks it itself, with its own 404). */
  params?: z.ZodObject;
  query?: Q;
  body?: B;
  /** An absent body counts as {} (operator commands whose fields are all optional). */
  body_optional?: boolean;
  /** A JSON body the handler reads raw, verifies and parses itself (the webhook). */
  raw_body?: z.ZodType;
  /** Requires an Idempotency-Key, validated before anything else is read. */
  idempotent?: boolean;
  /** Runs before the query and body are parsed (path-parameter checks, whose errors come before any query or body error). */
  check?: (req: Request) => void;
  middleware?: readonly RequestHandler[];
  success: SuccessSpec;
  /** Other answers: status → when it happens. 401 and 429 of authenticated routes are added. */
  errors: Readonly<Partial<Record<ErrorStatus, string>>>;
  /** The body of those answers when it is not the error envelope (the health check's 503). */
  error_schema?: z.ZodType;
  handle(ctx: RouteContext<z.infer<Q>, z.infer<B>>): Promise<void>;
}

/** Keeps a route's query and body types in its handler; the registry holds them erased. */
export function defineRoute<Q extends z.ZodType = z.ZodUndefined, B extends z.ZodType = z.ZodUndefined>(route: RouteDef<Q, B>): RouteDef {
  return route as unknown as RouteDef;
}

export function requireKey(key: string | null): string {
  assert(key !== null, 'an idempotent route has its key validated');
  return key;
}

function handlerOf(route: RouteDef, deps: ApiDeps): RequestHandler {
  return async (req, res) => {
    route.check?.(req);
    const idempotency_key = route.idempotent === true ? validateIdempotencyKey(req.header('idempotency-key')) : null;
    const query: unknown = route.query === undefined ? undefined : parseWith(route.query, req.query);
    const body: unknown = route.body === undefined ? undefined : parseWith(route.body, route.body_optional === true ? (req.body ?? {}) : req.body);
    await route.handle({ deps, req, res, query, body, idempotency_key });
  };
}

/** The express router for the routes of one auth kind under `prefix` (paths relative to it). */
export function routerFor(routes: readonly RouteDef[], auth: AuthKind, prefix: string, deps: ApiDeps): Router {
  const router = Router();
  for (const route of routes.filter((r) => r.auth === auth)) {
    assert(route.path.startsWith(`${prefix}/`), `${route.operationId} is mounted under ${prefix}`);
    router[route.method](route.path.slice(prefix.length), ...(route.middleware ?? []), handlerOf(route, deps));
  }
  return router;
}
