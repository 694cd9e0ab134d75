import { z } from 'zod';
import { DISPUTE_STATUSES, PAYOUT_STATUSES } from '../domain/status';

/**
 * Adapter for our PSP's HTTP API (the sandbox PSP speaks the same shape). Failures are classified
 * here, at the boundary; callers see three classes and never HTTP details:
 * - definitive: the PSP answered and the answer is final (invalid request) — do not retry;
 * - retryable: nothing happened (5xx, 429, connection refused) — retry, honour Retry-After;
 * - unknown_outcome: the request may have reached the PSP (timeout, reset) — ask before retrying.
 * A card decline is not an error: it is a charge whose status is `failed`.
 */
export type PspFailureKind = 'definitive' | 'retryable' | 'unknown_outcome';

export class PspError extends Error {
  constructor(
    readonly kind: PspFailureKind,
    readonly code: string,
    message: string,
    readonly retry_after_s?: number,
  ) {
    super(message);
    this.name = 'PspError';
  }
}

export const PspChargeSchema = z.object({
  id: z.string(),
  amount: z.string().regex(/^[0-9]+$/),
  currency: z.string().length(3),
  status: z.enum(['succeeded', 'failed', 'pending', 'requires_action', 'authorized', 'canceled', 'refunded']),
  failure_code: z.string().max(255).nullable(),
  failure_message: z.string().max(1_000).nullable(),
  fee: z.string().regex(/^[0-9]+$/),
  order_reference: z.string(),
  idempotency_key: z.string(),
  // Bumped by the PSP on every change: newer news has a higher version (older PSPs: absent = 1).
  version: z.number().int().min(1).max(1_000_000).default(1),
  next_action: z
    .object({ type: z.literal('redirect_to_url'), redirect_url: z.string().url().max(2_048) })
    .nullable()
    .default(null),
});
export type PspCharge = z.infer<typeof PspChargeSchema>;

export const PspCheckoutSessionSchema = z.object({
  id: z.string().min(1).max(255),
  url: z.string().url().max(2_048),
  status: z.enum(['open', 'complete']),
  client_reference: z.string(),
  payment_method: z.string().max(255).nullable(),
});
export type PspCheckoutSession = z.infer<typeof PspCheckoutSessionSchema>;

export const PspRefundSchema = z.object({
  id: z.string().min(1).max(255),
  charge: z.string().min(1).max(255),
  amount: z.string().regex(/^[0-9]+$/),
  currency: z.string().length(3),
  status: z.enum(['succeeded']),
});
export type PspRefund = z.infer<typeof PspRefundSchema>;

export const PspBankAccountSchema = z.object({ token: z.string().min(1).max(255), last4: z.string().regex(/^[0-9]{4}$/) });
export type PspBankAccount = z.infer<typeof PspBankAccountSchema>;

export const PspPayoutSchema = z.object({
  id: z.string().min(1).max(255),
  amount: z.string().regex(/^[0-9]+$/),
  currency: z.string().length(3),
  status: z.enum(PAYOUT_STATUSES),
  failure_code: z.string().max(255).nullable(),
  version: z.number().int().min(1).default(1),
});
export type PspPayout = z.infer<typeof PspPayoutSchema>;

export const PspDisputeSchema = z.object({
  id: z.string().min(1).max(255),
  charge: z.string().min(1).max(255),
  amount: z.string().regex(/^[0-9]+$/),
  currency: z.string().length(3),
  reason: z.string().max(200),
  status: z.enum(DISPUTE_STATUSES),
  evidence_due_by: z.number().int().nonnegative(),
  version: z.number().int().min(1).default(1),
});
export type PspDispute = z.infer<typeof PspDisputeSchema>;

export interface CreateCheckoutSessionInput {
  idempotency_key: string;
  client_reference: string;
  return_url: string;
}

export interface CreateChargeInput {
  idempotency_key: string;
  order_reference: string;
  amount_minor: bigint;
  currency: string;
  payment_method: string;
  /** false: authorize only; captureCharge takes the money later (default true). */
  capture?: boolean;
}

export interface SettlementDownload {
  lines: AsyncIterable<string>;
  /** The PSP's own count of the day's movements (X-Settlement-Lines), for progress only. */
  expected_lines: number | null;
}

export interface PspClient {
  createCharge(input: CreateChargeInput): Promise<PspCharge>;
  findChargeByIdempotencyKey(idempotency_key: string): Promise<PspCharge | null>;
  getCharge(charge_id: string): Promise<PspCharge>;
  /** Takes the money of an authorization. Idempotent by the charge's state. */
  captureCharge(charge_id: string, idempotency_key: string): Promise<PspCharge>;
  /** Releases an authorization (nothing was taken). Idempotent by the charge's state. */
  voidCharge(charge_id: string, idempotency_key: string): Promise<PspCharge>;
  /** Gives a captured charge back in full. Idempotent by the charge's state. */
  refundCharge(charge_id: string, idempotency_key: string): Promise<PspCharge>;
  /** Gives back part (or all) of a captured charge; never more than is left. Idempotent by key. */
  createRefund(input: { charge_id: string; amount_minor: bigint; reason: string | null; idempotency_key: string }): Promise<PspRefund>;
  /** Tokenizes a seller's bank account at the PSP: we keep the token and the last four digits only. */
  createBankAccount(input: { account_number: string; seller_reference: string }): Promise<PspBankAccount>;
  /** Sends money to a tokenized bank account. Idempotent by key; decided later (paid / failed). */
  createPayout(input: { amount_minor: bigint; currency: string; destination: string; reference: string; idempotency_key: string }): Promise<PspPayout>;
  getPayout(payout_id: string): Promise<PspPayout>;
  getDispute(dispute_id: string): Promise<PspDispute>;
  /** Answers a dispute with the merchant's evidence (before its deadline). */
  submitDisputeEvidence(dispute_id: string, text: string): Promise<PspDispute>;
  createCheckoutSession(input: CreateCheckoutSessionInput): Promise<PspCheckoutSession>;
  getCheckoutSession(session_id: string): Promise<PspCheckoutSession>;
  /**
   * The settlement file of a UTC day, line by line as it streams in (never whole in memory).
   * `timeout_ms` bounds the whole download, not one request.
   */
  openSettlementFile(date: string, timeout_ms: number): Promise<SettlementDownload>;
}

const ErrorBodySchema = z.object({
  error: z.object({ type: z.string(), code: z.string().optional(), message: z.string().optional(), charge: z.unknown().optional() }),
});
const ListSchema = z.object({ data: z.array(PspChargeSchema) });

interface PspOptions {
  base_url: string;
  api_key: string;
  timeout_ms: number;
}

/** One JSON request to the PSP; network failures come back classified, HTTP answers as they are. */
type Call = (method: 'GET' | 'POST', path: string, body?: unknown, idempotency_key?: string) => Promise<Reply>;

function createCall(opts: PspOptions): Call {
  return async (method, path, body, idempotency_key) => {
    const headers: Record<string, string> = { authorization: `Bearer ${opts.api_key}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotency_key !== undefined) headers['idempotency-key'] = idempotency_key;
    let res: Response;
    try {
      res = await fetch(new URL(path, opts.base_url), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeout_ms),
      });
    } catch (err) {
      throw classifyNetworkError(err, method);
    }
    const text = await res.text();
    return { status: res.status, json: parseJson(text, res.status), retry_after_s: parseRetryAfter(res.headers.get('retry-after')) };
  };
}

/** The reply's object when its status is one of `ok`; any other answer is a classified PspError. */
function expectReply<T>(reply: Reply, ok: readonly number[], schema: z.ZodType<T>): T {
  if (!ok.includes(reply.status)) throw classifyHttpError(reply);
  return schema.parse(reply.json);
}

const OK = [200] as const;
const OK_OR_CREATED = [200, 201] as const;

function chargeMethods(call: Call) {
  const chargeAction = async (charge_id: string, action: 'capture' | 'void' | 'refund', idempotency_key: string): Promise<PspCharge> =>
    expectReply(await call('POST', `/v1/charges/${encodeURIComponent(charge_id)}/${action}`, {}, idempotency_key), OK, PspChargeSchema);
  return {
    async createCharge(input: CreateChargeInput): Promise<PspCharge> {
      const body = {
        amount: input.amount_minor.toString(),
        currency: input.currency,
        payment_method: input.payment_method,
        order_reference: input.order_reference,
        ...(input.capture === false ? { capture: false } : {}),
      };
      const reply = await call('POST', '/v1/charges', body, input.idempotency_key);
      if (reply.status === 402) return declinedCharge(reply.json);
      return expectReply(reply, OK_OR_CREATED, PspChargeSchema);
    },
    async findChargeByIdempotencyKey(idempotency_key: string): Promise<PspCharge | null> {
      const list = expectReply(await call('GET', `/v1/charges?idempotency_key=${encodeURIComponent(idempotency_key)}`), OK, ListSchema).data;
      // Several charges for one key would mean the PSP broke idempotency; the earliest is the one
      // our records should point at, and the duplicate is for reconciliation to surface.
      return list[0] ?? null;
    },
    getCharge: async (charge_id: string) => expectReply(await call('GET', `/v1/charges/${encodeURIComponent(charge_id)}`), OK, PspChargeSchema),
    captureCharge: (charge_id: string, idempotency_key: string) => chargeAction(charge_id, 'capture', idempotency_key),
    voidCharge: (charge_id: string, idempotency_key: string) => chargeAction(charge_id, 'void', idempotency_key),
    refundCharge: (charge_id: string, idempotency_key: string) => chargeAction(charge_id, 'refund', idempotency_key),
  };
}

function moneyOutMethods(call: Call): Pick<PspClient, 'createRefund' | 'createBankAccount' | 'createPayout' | 'getPayout' | 'getDispute' | 'submitDisputeEvidence'> {
  return {
    async createRefund(input) {
      const body = { charge: input.charge_id, amount: input.amount_minor.toString(), ...(input.reason === null ? {} : { reason: input.reason }) };
      return expectReply(await call('POST', '/v1/refunds', body, input.idempotency_key), OK, PspRefundSchema);
    },
    createBankAccount: async (input) => expectReply(await call('POST', '/v1/bank_accounts', input), [201], PspBankAccountSchema),
    async createPayout(input) {
      const body = { amount: input.amount_minor.toString(), currency: input.currency, destination: input.destination, reference: input.reference };
      return expectReply(await call('POST', '/v1/payouts', body, input.idempotency_key), OK, PspPayoutSchema);
    },
    getPayout: async (payout_id) => expectReply(await call('GET', `/v1/payouts/${encodeURIComponent(payout_id)}`), OK, PspPayoutSchema),
    getDispute: async (dispute_id) => expectReply(await call('GET', `/v1/disputes/${encodeURIComponent(dispute_id)}`), OK, PspDisputeSchema),
    submitDisputeEvidence: async (dispute_id, text) =>
      expectReply(await call('POST', `/v1/disputes/${encodeURIComponent(dispute_id)}/evidence`, { text }), OK, PspDisputeSchema),
  };
}

function checkoutMethods(call: Call): Pick<PspClient, 'createCheckoutSession' | 'getCheckoutSession'> {
  return {
    async createCheckoutSession(input) {
      const body = { client_reference: input.client_reference, return_url: input.return_url };
      return expectReply(await call('POST', '/v1/checkout_sessions', body, input.idempotency_key), OK_OR_CREATED, PspCheckoutSessionSchema);
    },
    getCheckoutSession: async (session_id) =>
      expectReply(await call('GET', `/v1/checkout_sessions/${encodeURIComponent(session_id)}`), OK, PspCheckoutSessionSchema),
  };
}

async function openSettlementFile(opts: PspOptions, date: string, timeout_ms: number): Promise<SettlementDownload> {
  let res: Response;
  try {
    res = await fetch(new URL(`/v1/settlements/${encodeURIComponent(date)}`, opts.base_url), {
      headers: { authorization: `Bearer ${opts.api_key}`, accept: 'text/csv' },
      signal: AbortSignal.timeout(timeout_ms),
    });
  } catch (err) {
    throw classifyNetworkError(err, 'GET');
  }
  if (res.status !== 200 || res.body === null) {
    const text = await res.text();
    throw classifyHttpError({ status: res.status, json: parseJsonOrNull(text), retry_after_s: parseRetryAfter(res.headers.get('retry-after')) });
  }
  const expected = Number(res.headers.get('x-settlement-lines') ?? NaN);
  return {
    lines: linesOf(res.body),
    expected_lines: Number.isSafeInteger(expected) && expected >= 0 ? expected : null,
  };
}

export function createPspClient(opts: PspOptions): PspClient {
  const call = createCall(opts);
  return {
    ...chargeMethods(call),
    ...moneyOutMethods(call),
    ...checkoutMethods(call),
    openSettlementFile: (date, timeout_ms) => openSettlementFile(opts, date, timeout_ms),
  };
}

function parseJson(text: string, status: number): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new PspError(status >= 500 ? 'retryable' : 'definitive', 'psp_bad_response', `PSP answered ${status} with non-JSON`);
  }
}

/** Past this many characters without a line break the text is handed on as one line (a reader refuses it). */
const PENDING_LINE_CHARS_MAX = 1 << 20;

/**
 * Splits a byte stream into lines (LF or CRLF). Pull-based: nothing is read before the consumer
 * asks, so a slow consumer slows the download instead of buffering the file, and no line is lost
 * while the consumer is not yet listening (an event-based splitter would drop them).
 */
async function* linesOf(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let pending = '';
  for await (const chunk of body) {
    const text = pending + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      yield text.charCodeAt(nl - 1) === 13 && nl > start ? text.slice(start, nl - 1) : text.slice(start, nl);
      start = nl + 1;
    }
    pending = text.slice(start);
    if (pending.length > PENDING_LINE_CHARS_MAX) {
      yield pending;
      pending = '';
    }
  }
  pending += decoder.decode();
  if (pending.length > 0) yield pending;
}

function parseJsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function declinedCharge(json: unknown): PspCharge {
  const parsed = ErrorBodySchema.parse(json);
  return PspChargeSchema.parse(parsed.error.charge);
}

interface Reply {
  status: number;
  json: unknown;
  retry_after_s: number | undefined;
}

const RETRY_AFTER_MAX_S = 300;

function parseRetryAfter(header: string | null): number | undefined {
  if (header === null || !/^[0-9]{1,6}$/.test(header.trim())) return undefined;
  return Math.min(Number(header.trim()), RETRY_AFTER_MAX_S);
}

function classifyHttpError({ status, json, retry_after_s }: Reply): PspError {
  const parsed = ErrorBodySchema.safeParse(json);
  const code = parsed.success ? (parsed.data.error.code ?? parsed.data.error.type) : 'psp_error';
  const message = parsed.success ? (parsed.data.error.message ?? code) : `PSP answered ${status}`;
  if (status === 429 || status >= 500) return new PspError('retryable', code, message, retry_after_s);
  return new PspError('definitive', code, message);
}

function classifyNetworkError(err: unknown, method: string): PspError {
  const cause = (err as { cause?: { code?: string } }).cause;
  const code = cause?.code ?? (err as Error).name;
  // Refused or unresolvable: the request never left us, so nothing can have happened at the PSP.
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new PspError('retryable', 'psp_unreachable', `PSP unreachable (${code})`);
  }
  // A GET changes nothing, so not knowing its outcome is just a retry.
  const kind: PspFailureKind = method === 'GET' ? 'retryable' : 'unknown_outcome';
  return new PspError(kind, 'psp_no_answer', `PSP did not answer (${code})`);
}
