/**
 * One error type with a closed set of codes. The HTTP status for each type is chosen in exactly
 * one place (src/api/errors.ts); nothing else in the code picks status numbers.
 */
export const ERROR_TYPES = [
  'invalid_request',
  'authentication',
  'idempotency',
  'rate_limit',
  'psp',
  'conflict',
  'not_found',
  'internal',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

export const ERROR_CODES = {
  invalid_json: 'invalid_request',
  body_too_large: 'invalid_request',
  parameter_missing: 'invalid_request',
  parameter_invalid: 'invalid_request',
  parameter_unknown: 'invalid_request',
  invalid_amount: 'invalid_request',
  invalid_currency: 'invalid_request',
  too_many_orders: 'invalid_request',
  no_orders: 'invalid_request',
  duplicate_seller: 'invalid_request',
  card_data_not_allowed: 'invalid_request',
  invalid_cursor: 'invalid_request',
  return_url_required: 'invalid_request',
  webhook_signature_invalid: 'invalid_request',
  webhook_event_invalid: 'invalid_request',
  settlement_date_in_future: 'invalid_request',
  payout_nothing_available: 'invalid_request',
  payout_below_minimum: 'invalid_request',
  idempotency_key_missing: 'idempotency',
  idempotency_key_invalid: 'idempotency',
  idempotency_key_reused: 'idempotency',
  idempotency_key_in_use: 'idempotency',
  api_key_missing: 'authentication',
  api_key_invalid: 'authentication',
  rate_limited: 'rate_limit',
  capacity_exceeded: 'rate_limit',
  hold_expired: 'conflict',
  order_not_parked: 'conflict',
  hold_already_resolved: 'conflict',
  recon_item_closed: 'conflict',
  order_not_refundable: 'conflict',
  refund_exceeds_refundable: 'conflict',
  dispute_closed: 'conflict',
  dispute_evidence_closed: 'conflict',
  resource_missing: 'not_found',
  route_not_found: 'not_found',
  ops_disabled: 'not_found',
  psp_unavailable: 'psp',
  internal_error: 'internal',
  service_unavailable: 'internal',
} as const satisfies Record<string, ErrorType>;
export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly type: ErrorType;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param?: string,
    readonly retry_after_s?: number,
  ) {
    super(message);
    this.name = 'AppError';
    this.type = ERROR_CODES[code];
  }
}
