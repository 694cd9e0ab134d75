import type { ErrorRequestHandler, RequestHandler } from 'express';
import { z } from 'zod';
import { AppError, type ErrorType } from '../domain/errors';
import type { Logger } from '../logger';

/** The one place that turns an error type into an HTTP status. */
const HTTP_STATUS: Record<ErrorType, number> = {
  invalid_request: 400,
  authentication: 401,
  idempotency: 400,
  rate_limit: 429,
  psp: 502,
  conflict: 409,
  not_found: 404,
  internal: 500,
};

// Codes whose status differs from their type's (primer §7 follows Stripe here).
const HTTP_STATUS_BY_CODE: Partial<Record<string, number>> = {
  idempotency_key_reused: 422,
  idempotency_key_in_use: 409,
  body_too_large: 413,
  service_unavailable: 503,
  psp_unavailable: 503,
};

export function httpStatusOf(err: AppError): number {
  return HTTP_STATUS_BY_CODE[err.code] ?? HTTP_STATUS[err.type];
}

export function errorBody(err: AppError) {
  return { error: { type: err.type, code: err.code, message: err.message, ...(err.param === undefined ? {} : { param: err.param }) } };
}

/** Maps zod's first issue onto our closed set of codes, keeping the offending field as `param`. */
export function fromZod(error: z.ZodError): AppError {
  const issue = error.issues[0];
  if (issue === undefined) return new AppError('parameter_invalid', 'invalid request');
  const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return new AppError('parameter_unknown', `unknown field: ${key}`, param === '' ? key : `${param}.${key}`);
  }
  if (param === 'orders' && issue.code === 'too_small') return new AppError('no_orders', 'a payment needs at least one order', param);
  if (param === 'orders' && issue.code === 'too_big') return new AppError('too_many_orders', issue.message, param);
  if (/(^|\.)amount$/.test(param)) return new AppError('invalid_amount', 'amount must be a decimal string like "12.34", not a number', param);
  if (param === 'currency') return new AppError('invalid_currency', 'currency must be an ISO 4217 code string', param);
  if (issue.code === 'invalid_type' && issue.input === undefined) return new AppError('parameter_missing', `${param} is required`, param);
  return new AppError('parameter_invalid', `${param}: ${issue.message}`, param);
}

export function parseWith<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw fromZod(parsed.error);
  return parsed.data;
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError('route_not_found', `no route ${req.method} ${req.path}`));
};

/** express.json's own failures (bad JSON, too large) become our codes too. */
function fromBodyParser(err: { type?: string; status?: number }): AppError | null {
  if (err.type === 'entity.parse.failed') return new AppError('invalid_json', 'the request body is not valid JSON');
  if (err.type === 'entity.too.large') return new AppError('body_too_large', 'the request body is too large');
  if (err.type === 'charset.unsupported' || err.type === 'encoding.unsupported') return new AppError('parameter_invalid', 'unsupported body encoding');
  return null;
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const known = err instanceof AppError ? err : fromBodyParser(err as { type?: string });
    const app_error = known ?? new AppError('internal_error', 'something went wrong on our side');
    if (known === null) log.error({ err, method: req.method, path: req.path }, 'unhandled error');
    if (app_error.retry_after_s !== undefined) res.setHeader('Retry-After', String(app_error.retry_after_s));
    res.status(httpStatusOf(app_error)).json(errorBody(app_error));
  };
}
