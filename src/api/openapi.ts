import { z } from 'zod';
import { ERROR_CODES } from '../domain/errors';
import { BalanceList, CloseReconItemBody, CreatePaymentBody, CreateRefundBody, RefundResource, ErrorResponse, PaymentList, PaymentResource, StartReconRunBody, TransactionList } from './schemas';
import { PspEventSchema } from '../services/psp-events';

const schema = (s: z.ZodType, io: 'input' | 'output' = 'output') => z.toJSONSchema(s, { io, unrepresentable: 'any' });

function errorResponses(statuses: Record<string, string>) {
  return Object.fromEntries(
    Object.entries(statuses).map(([status, description]) => [status, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
  );
}

/** The OpenAPI 3.1 contract, generated from the same zod schemas that validate requests. */
export function openApiDocument() {
  const idempotencyKey = {
    name: 'Idempotency-Key',
    in: 'header',
    required: true,
    description: 'Client-chosen key (UUID recommended, ≤ 255 chars). Same key + same body replays the first response with `Idempotent-Replayed: true`; a different body → 422 `idempotency_key_reused`; while the first request is in flight → 409 `idempotency_key_in_use` (Stripe\'s choice; the seed book says 429).',
    schema: { type: 'string', maxLength: 255 },
  };
  return {
    openapi: '3.1.0',
    info: { title: 'payment-orchestrator', version: '0.1.0', description: 'Marketplace pay-in API. Amounts are decimal strings in the currency\'s units.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Merchant API key' } },
      schemas: {
        CreatePayment: schema(CreatePaymentBody, 'input'),
        Payment: schema(PaymentResource),
        PaymentList: schema(PaymentList),
        BalanceList: schema(BalanceList),
        TransactionList: schema(TransactionList),
        CreateRefund: schema(CreateRefundBody, 'input'),
        Refund: schema(RefundResource),
        Error: { ...schema(ErrorResponse), description: `Error codes: ${Object.keys(ERROR_CODES).join(', ')}` },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/payments': {
        post: {
          summary: 'Create a payment event (one checkout, one order per seller)',
          description:
            'With `payment_method` (a PSP token) the charge starts at once. Without it the answer has status `requires_payment_method` and a `checkout_url` on the PSP: ' +
            'send the buyer there; after paying they return to `return_url` and the payment proceeds (unpaid after CHECKOUT_TIMEOUT_MS → `canceled`, `checkout_expired`). ' +
            'Statuses: requires_payment_method → processing → (requires_action | pending | needs_attention) → succeeded | failed | partially_succeeded | canceled; they only move forward (an operator retry of needs_attention is the one step back).',
          parameters: [idempotencyKey],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/CreatePayment' } } } },
          responses: {
            '201': { description: 'Created (or replayed)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Payment' } } } },
            ...errorResponses({ '400': 'Invalid request', '401': 'Missing or invalid API key', '409': 'Idempotency key in use', '413': 'Body too large', '422': 'Idempotency key reused with a different body', '429': '`rate_limited` (too many requests for this API key) or `capacity_exceeded` (too many payments waiting to start; nothing stored, the key is not used: retry with it after `Retry-After` seconds; a key already accepted still replays its 201)', '503': 'The PSP could not open a hosted checkout (psp_unavailable); nothing stored, retry with the same key' }),
          },
        },
        get: {
          summary: 'List your payments, newest first (cursor pagination)',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' }, description: 'next_cursor of the previous page' },
          ],
          responses: { '200': { description: 'A page', content: { 'application/json': { schema: { $ref: '#/components/schemas/PaymentList' } } } }, ...errorResponses({ '400': 'Invalid query', '401': 'Unauthenticated' }) },
        },
      },
      '/v1/payments/{id}': {
        get: {
          summary: 'A payment with every order\'s status',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'The payment', content: { 'application/json': { schema: { $ref: '#/components/schemas/Payment' } } } }, ...errorResponses({ '401': 'Unauthenticated', '404': 'Not found (or not yours)' }) },
        },
      },
      '/v1/payments/{id}/refunds': {
        post: {
          summary: 'Refund part or all of one order of a payment',
          description:
            'The amount is reserved on the order at once (concurrent refunds never exceed what was captured); the answer is 201 `pending` and the refund workflow asks the PSP, then reverses the seller\'s share and the commission pro rata in the ledger (the PSP keeps its fee). ' +
            'The order becomes `partially_refunded` or `refunded`, and the payment follows. Watch GET /v1/refunds/{id}.',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }, idempotencyKey],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateRefund' } } } },
          responses: {
            '201': { description: 'Accepted (pending)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Refund' } } } },
            ...errorResponses({
              '400': 'Invalid body or amount (invalid_amount, parameter_invalid, parameter_unknown); nothing written',
              '401': 'Unauthenticated',
              '404': 'No such payment (or not yours), or no such order in it',
              '409': 'order_not_refundable (not captured) or refund_exceeds_refundable (more than is left); nothing written',
              '422': 'Idempotency-Key reused with another body',
            }),
          },
        },
        get: {
          summary: 'The refunds of a payment, newest first',
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page of refunds (object, data, has_more, next_cursor)' }, ...errorResponses({ '401': 'Unauthenticated', '404': 'No such payment' }) },
        },
      },
      '/v1/refunds': {
        get: {
          summary: 'Your refunds, newest first (cursor pagination)',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page of refunds' }, ...errorResponses({ '400': 'Invalid query', '401': 'Unauthenticated' }) },
        },
      },
      '/v1/refunds/{id}': {
        get: {
          summary: 'One refund: pending, succeeded or failed (with the PSP\'s reason)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'The refund', content: { 'application/json': { schema: { $ref: '#/components/schemas/Refund' } } } }, ...errorResponses({ '401': 'Unauthenticated', '404': 'Not found (or not yours)' }) },
        },
      },
      '/v1/sellers/{seller_id}/bank_account': {
        put: {
          summary: 'Register (or replace) a seller\'s payout bank account',
          description: 'The account number goes to the PSP, which tokenizes it; we keep the token and the last four digits only.',
          parameters: [{ name: 'seller_id', in: 'path', required: true, schema: { type: 'string', maxLength: 255 } }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['account_number'], properties: { account_number: { type: 'string', pattern: '^[0-9]{4,17}$' } }, additionalProperties: false } } } },
          responses: { '200': { description: '{ object: bank_account, seller_id, last4 }' }, ...errorResponses({ '400': 'Not 4 to 17 digits', '401': 'Unauthenticated', '503': 'The PSP is unavailable' }) },
        },
      },
      '/v1/payouts': {
        post: {
          summary: 'Pay a seller their whole available balance in one currency, now',
          description:
            'The balance is moved to payout clearing in the same transaction that makes the payout (a balance never goes below zero through a payout); the payout workflow asks the PSP (keyed by the payout id) and books paid or failed. ' +
            'The daily Schedule (PAYOUT_SCHEDULE_CRON) does the same for every payable seller, once per seller, currency and day.',
          parameters: [idempotencyKey],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['seller_id', 'currency'], properties: { seller_id: { type: 'string' }, currency: { type: 'string', pattern: '^[A-Z]{3}$' } }, additionalProperties: false } } } },
          responses: {
            '201': { description: 'The payout (pending)' },
            ...errorResponses({ '400': 'payout_nothing_available, payout_below_minimum (PAYOUT_MINIMUMS) or an invalid body; nothing written', '401': 'Unauthenticated', '404': 'No bank account for this seller', '422': 'Idempotency-Key reused with another body' }),
          },
        },
        get: {
          summary: 'Your payouts, newest first (cursor pagination)',
          parameters: [
            { name: 'seller_id', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page of payouts' }, ...errorResponses({ '400': 'Invalid query', '401': 'Unauthenticated' }) },
        },
      },
      '/v1/payouts/{id}': {
        get: { summary: 'One payout: pending, paid or failed', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'The payout' }, ...errorResponses({ '401': 'Unauthenticated', '404': 'Not found (or not yours)' }) } },
      },
      '/v1/disputes': {
        get: {
          summary: 'Your disputes (chargebacks), newest first (cursor pagination)',
          description: 'A dispute opens from the PSP\'s charge.dispute.created webhook: the disputed amount is held (the seller\'s share in dispute_hold), the order and payment show `disputed`. Won: released, the order goes back. Lost: the held share pays for it, the order ends `refunded`.',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page of disputes' }, ...errorResponses({ '400': 'Invalid query', '401': 'Unauthenticated' }) },
        },
      },
      '/v1/disputes/{id}': {
        get: { summary: 'One dispute: needs_response, under_review, won or lost, with its evidence deadline', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'The dispute' }, ...errorResponses({ '401': 'Unauthenticated', '404': 'Not found (or not yours)' }) } },
      },
      '/v1/disputes/{id}/evidence': {
        post: {
          summary: 'Answer a dispute with evidence text (forwarded to the PSP) before its deadline',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['text'], properties: { text: { type: 'string', maxLength: 20000 } }, additionalProperties: false } } } },
          responses: { '200': { description: 'The dispute, under_review' }, ...errorResponses({ '400': 'Invalid body', '401': 'Unauthenticated', '404': 'No such dispute', '409': 'dispute_evidence_closed (deadline passed) or dispute_closed (decided)', '503': 'The PSP did not take it; retry' }) },
        },
      },
      '/v1/balances': {
        get: {
          summary: 'What each of your sellers is owed, per currency: available and pending (decimal strings)',
          parameters: [
            { name: 'seller_id', in: 'query', schema: { type: 'string' } },
            { name: 'currency', in: 'query', schema: { type: 'string', pattern: '^[A-Z]{3}$' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page', content: { 'application/json': { schema: { $ref: '#/components/schemas/BalanceList' } } } }, ...errorResponses({ '400': 'Invalid query', '401': 'Unauthenticated' }) },
        },
      },
      '/v1/ledger/transactions': {
        get: {
          summary: 'Your ledger transactions with their entries, newest first (cursor pagination)',
          parameters: [
            { name: 'account', in: 'query', schema: { type: 'string' }, description: 'account code, e.g. seller_payable:<merchant>:<seller>' },
            { name: 'payment_id', in: 'query', schema: { type: 'string' } },
            { name: 'created_gte', in: 'query', schema: { type: 'string', format: 'date-time' } },
            { name: 'created_lt', in: 'query', schema: { type: 'string', format: 'date-time' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page', content: { 'application/json': { schema: { $ref: '#/components/schemas/TransactionList' } } } }, ...errorResponses({ '400': 'Invalid query', '401': 'Unauthenticated' }) },
        },
      },
      '/v1/ops/orders/{id}/{action}': {
        post: {
          summary: 'Operators: retry or cancel an order parked as needs_attention (admin key)',
          description: 'Bearer ADMIN_API_KEY (the routes answer 404 ops_disabled when it is unset). The command is signalled to the order\'s workflow, which carries it out: retry charges again with the same idempotency key; cancel first voids or refunds a charge the PSP may hold.',
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'action', in: 'path', required: true, schema: { enum: ['retry', 'cancel'] } },
          ],
          requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } }, additionalProperties: false } } } },
          responses: {
            '202': { description: 'The order\'s workflow has the command', content: { 'application/json': { schema: { type: 'object', properties: { order_id: { type: 'string' }, payment_id: { type: 'string' }, action: { type: 'string' }, accepted: { type: 'boolean' } } } } } },
            ...errorResponses({ '400': 'Invalid body', '401': 'Missing or invalid admin key', '404': 'No such order (or ops routes off)', '409': 'The order is not needs_attention (order_not_parked)', '503': 'Temporal did not take the command' }),
          },
        },
      },
      '/v1/ops/recon/runs': {
        get: {
          summary: 'Operators: reconciliation runs, newest first (admin key)',
          parameters: [
            { name: 'date', in: 'query', schema: { type: 'string', format: 'date' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page of runs: status, lines read, totals (matched and each difference class, counts and amounts per currency), error line and reason of a failed run' }, ...errorResponses({ '400': 'Invalid query', '401': 'Missing or invalid admin key' }) },
        },
        post: {
          summary: 'Operators: reconcile a settlement day now (idempotent per day)',
          description: 'Starts the day\'s reconciliation workflow, or reports the one already running for it. A day that has not begun is refused (settlement_date_in_future).',
          requestBody: { required: true, content: { 'application/json': { schema: schema(StartReconRunBody, 'input') } } },
          responses: { '202': { description: 'Started (or already running): workflow_id, already_running' }, ...errorResponses({ '400': 'Invalid day or a future day', '401': 'Missing or invalid admin key', '503': 'Temporal unavailable' }) },
        },
      },
      '/v1/ops/recon/runs/{id}': {
        get: { summary: 'Operators: one reconciliation run', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'The run' }, ...errorResponses({ '401': 'Missing or invalid admin key', '404': 'No such run' }) } },
      },
      '/v1/ops/recon/runs/{id}/items': {
        get: {
          summary: 'Operators: the differences of a run\'s settlement day, oldest first',
          description: 'Each item says which field differs (field, our_value, psp_value), the line, the order and its workflow id; class is one of missing_internally, missing_at_psp, amount_mismatch, currency_mismatch, status_mismatch, duplicate, timing, unclassified; status open, resolved or written_off.',
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'status', in: 'query', schema: { enum: ['open', 'resolved', 'written_off'] } },
            { name: 'class', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'starting_after', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'A page of items' }, ...errorResponses({ '400': 'Invalid query', '401': 'Missing or invalid admin key', '404': 'No such run' }) },
        },
      },
      '/v1/ops/recon/items/{id}/{action}': {
        post: {
          summary: 'Finance: resolve or write off an open difference, with a note',
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'action', in: 'path', required: true, schema: { enum: ['resolve', 'write-off'] } },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: schema(CloseReconItemBody, 'input') } } },
          responses: { '200': { description: 'The closed item' }, ...errorResponses({ '400': 'Invalid note', '401': 'Missing or invalid admin key', '404': 'No such item', '409': 'Already closed (recon_item_closed)' }) },
        },
      },
      '/webhooks/psp': {
        post: {
          summary: 'PSP webhook receiver (called by the PSP, not by merchants)',
          description:
            'Verifies `Psp-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t." + raw body>` against every configured secret (PSP_WEBHOOK_SECRETS), 300 s tolerance; ' +
            'stores the event once by its id (a redelivery is counted, and applied again if it never was), routes it to the order or payment workflow as a signal, ' +
            'and answers 200 once stored. Unknown objects are kept (route `unknown`) for operators; events about terminal objects are kept and ignored.',
          security: [],
          parameters: [{ name: 'Psp-Signature', in: 'header', required: true, schema: { type: 'string', maxLength: 4096 } }],
          requestBody: { required: true, content: { 'application/json': { schema: schema(PspEventSchema, 'input') } } },
          responses: {
            '200': { description: 'Stored (and applied, or left for the sweeper)', content: { 'application/json': { schema: { type: 'object', properties: { received: { type: 'boolean' }, duplicate: { type: 'boolean' }, route: { enum: ['order', 'payment', 'unknown', 'ignored'] } } } } } },
            ...errorResponses({ '400': 'Bad signature (webhook_signature_invalid), malformed JSON (invalid_json) or not an event (webhook_event_invalid); nothing stored', '413': 'Body too large' }),
          },
        },
      },
      '/healthz': { get: { summary: 'PostgreSQL and Temporal reachability', security: [], responses: { '200': { description: 'Healthy' }, '503': { description: 'A dependency is down' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'Metrics text' } } } },
    },
  };
}
