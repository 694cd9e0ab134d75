import type { Request } from 'express';
import type { z } from 'zod';
import type { ChargeStatus } from './store';

/**
 * The sandbox's one error type: a closed set of codes, each with its Stripe-like type and the
 * HTTP status the error handler (app.ts) answers with. Nothing else picks status numbers.
 */

export const IDEMPOTENCY_KEY_CHARS_MAX = 255;

type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'idempotency_error'
  | 'card_error'
  | 'rate_limit_error'
  | 'api_error';

export const ERROR_CODES = {
  invalid_api_key: { type: 'authentication_error', status: 401 },
  idempotency_key_invalid: { type: 'invalid_request_error', status: 400 },
  parameter_invalid: { type: 'invalid_request_error', status: 400 },
  invalid_json: { type: 'invalid_request_error', status: 400 },
  body_too_large: { type: 'invalid_request_error', status: 413 },
  invalid_payment_method: { type: 'invalid_request_error', status: 400 },
  idempotency_key_reused: { type: 'idempotency_error', status: 400 },
  card_declined: { type: 'card_error', status: 402 },
  insufficient_funds: { type: 'card_error', status: 402 },
  // The settlement file of a day that is not over yet (settlements.ts).
  settlement_not_ready: { type: 'invalid_request_error', status: 400 },
  resource_missing: { type: 'invalid_request_error', status: 404 },
  route_not_found: { type: 'invalid_request_error', status: 404 },
  // The charge is in a state the action does not apply to; its body carries the charge as is.
  charge_not_capturable: { type: 'invalid_request_error', status: 409 },
  charge_not_voidable: { type: 'invalid_request_error', status: 409 },
  charge_not_refundable: { type: 'invalid_request_error', status: 409 },
  refund_exceeds_charge: { type: 'invalid_request_error', status: 409 },
  dispute_closed: { type: 'invalid_request_error', status: 409 },
  dispute_evidence_closed: { type: 'invalid_request_error', status: 409 },
  // Fault knobs (faults.ts): refused before anything was done, so a retry is always safe.
  rate_limited: { type: 'rate_limit_error', status: 429 },
  psp_unavailable: { type: 'api_error', status: 503 },
  internal_error: { type: 'api_error', status: 500 },
} as const satisfies Record<string, { type: ErrorType; status: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class SandboxError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param?: string,
    readonly charge?: ChargeJson,
  ) {
    super(message);
  }
}

/** What the caller must do before the charge can settle: send the buyer to a 3-D Secure page. */
export interface NextAction {
  type: 'redirect_to_url';
  redirect_url: string;
}

export interface ChargeJson {
  id: string;
  object: 'charge';
  amount: string;
  currency: string;
  status: ChargeStatus;
  failure_code: string | null;
  failure_message: string | null;
  /** Non-null exactly when status is `requires_action`. */
  next_action: NextAction | null;
  fee: string;
  payment_method: string;
  order_reference: string;
  idempotency_key: string;
  version: number;
  created: number;
}

export function readIdempotencyKey(req: Request): string {
  const key = req.get('Idempotency-Key');
  if (key === undefined || key.length < 1 || key.length > IDEMPOTENCY_KEY_CHARS_MAX) {
    throw new SandboxError(
      'idempotency_key_invalid',
      `Idempotency-Key header is required, 1 to ${IDEMPOTENCY_KEY_CHARS_MAX} characters`,
    );
  }
  return key;
}

/** Strict body validation: the first problem becomes 400 parameter_invalid naming its field. */
export function parseWith<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue === undefined || issue.path.length === 0 ? undefined : issue.path.join('.');
  const keys = issue?.code === 'unrecognized_keys' ? issue.keys : [];
  if (keys.length > 0) throw new SandboxError('parameter_invalid', `unknown parameter: ${keys.join(', ')}`, keys[0]);
  throw new SandboxError('parameter_invalid', param === undefined ? 'invalid request body' : (issue?.message ?? ''), param);
}
