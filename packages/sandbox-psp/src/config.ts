import { z } from 'zod';
import { httpUrlSchema } from './http-url';

/**
 * The sandbox PSP's own env vars. It is a separate process from the payment app (like Stripe's
 * test mode), so it reads only `SANDBOX_*` and never the app's settings.
 */

// Integers come from strings; a strict digit check rejects "", "1e3" and " 5", which z.coerce
// would quietly turn into numbers.
function intVar(min: number, max: number, fallback: number) {
  return z
    .string()
    .regex(/^\d{1,9}$/, 'must be a non-negative integer')
    .default(String(fallback))
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

const FEE_FIXED_DIGITS_MAX = 18;
const BPS_MAX = 10_000;
const LATENCY_MS_MAX = 60_000;
const REVIEW_DELAY_MS_MAX = 600_000;
const WEBHOOK_DELAY_MS_MAX = 600_000;
const REORDER_HOLD_MS_MAX = 600_000;
// Enough for a burst of events to gather; a test reordering events seconds apart sets more.
const REORDER_HOLD_MS_DEFAULT = 300;
const WEBHOOK_BACKOFF_MS_MAX = 60_000;
const SECRET_CHARS_MIN = 8;
const ENV_URL_CHARS_MAX = 2_048;
// Fault knobs. A countdown above a thousand requests is a typo rather than a test.
const COUNTDOWN_MAX = 1_000;
const RETRY_AFTER_S_MAX = 600;
const RETRY_AFTER_S_DEFAULT = 1;
const RATE_LIMIT_PER_S_MAX = 100_000;
const TIMEOUT_HOLD_MS_MAX = 600_000;
// Longer than any sensible client timeout, so the caller gives up before the socket is cut.
const TIMEOUT_HOLD_MS_DEFAULT = 30_000;

/** A probability written as a decimal between 0 and 1, e.g. "0", "0.25", "1". */
const rateVar = (fallback: string) =>
  z
    .string()
    .regex(/^(0(\.\d{1,6})?|1(\.0{1,6})?)$/, 'must be a decimal between 0 and 1')
    .default(fallback)
    .transform(Number);

const httpUrl = httpUrlSchema(ENV_URL_CHARS_MAX);

const SandboxEnvSchema = z.object({
  SANDBOX_PORT: intVar(0, 65_535, 3100),
  SANDBOX_HOST: z.string().min(1).default('127.0.0.1'),
  SANDBOX_DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/sandbox_psp'),
  SANDBOX_API_KEY: z.string().min(8).max(255).default('psk_test_sandbox'),
  SANDBOX_IGNORE_IDEMPOTENCY: z.enum(['0', '1']).default('0'),
  SANDBOX_LATENCY_MS: intVar(0, LATENCY_MS_MAX, 0),
  SANDBOX_FEE_BPS: intVar(0, BPS_MAX, 290),
  SANDBOX_FEE_FIXED_MINOR: z
    .string()
    .regex(new RegExp(`^\\d{1,${FEE_FIXED_DIGITS_MAX}}$`), 'must be an integer in minor units')
    .default('30'),
  SANDBOX_PUBLIC_URL: httpUrl.optional(),
  SANDBOX_REVIEW_DELAY_MS: intVar(0, REVIEW_DELAY_MS_MAX, 5_000),
  // How long a payout stays pending before the bank answers (paid, or failed for a closed account).
  SANDBOX_PAYOUT_DELAY_MS: intVar(0, REVIEW_DELAY_MS_MAX, 2_000),
  SANDBOX_WEBHOOK_URL: httpUrl.optional(),
  SANDBOX_WEBHOOK_SECRET: z.string().min(SECRET_CHARS_MIN).max(255).default('whsec_test_sandbox'),
  SANDBOX_WEBHOOK_BACKOFF_MS: intVar(1, WEBHOOK_BACKOFF_MS_MAX, 1_000),
  SANDBOX_WEBHOOK_DUPLICATE_RATE: rateVar('0'),
  SANDBOX_WEBHOOK_DROP_RATE: rateVar('0'),
  SANDBOX_WEBHOOK_REORDER: z.enum(['0', '1']).default('0'),
  SANDBOX_WEBHOOK_DELAY_MS: intVar(0, WEBHOOK_DELAY_MS_MAX, 0),
  SANDBOX_WEBHOOK_REORDER_HOLD_MS: intVar(0, REORDER_HOLD_MS_MAX, REORDER_HOLD_MS_DEFAULT),
  SANDBOX_FAULT_ERROR_RATE: rateVar('0'),
  SANDBOX_FAULT_FAIL_NEXT: intVar(0, COUNTDOWN_MAX, 0),
  SANDBOX_FAULT_RETRY_AFTER_S: intVar(0, RETRY_AFTER_S_MAX, RETRY_AFTER_S_DEFAULT),
  SANDBOX_FAULT_RATE_LIMIT_PER_S: intVar(0, RATE_LIMIT_PER_S_MAX, 0),
  SANDBOX_FAULT_TIMEOUT_AFTER_CHARGE_RATE: rateVar('0'),
  SANDBOX_FAULT_TIMEOUT_NEXT: intVar(0, COUNTDOWN_MAX, 0),
  SANDBOX_FAULT_TIMEOUT_HOLD_MS: intVar(0, TIMEOUT_HOLD_MS_MAX, TIMEOUT_HOLD_MS_DEFAULT),
});

export const WEBHOOK_KNOB_LIMITS = {
  delay_ms_max: WEBHOOK_DELAY_MS_MAX,
  reorder_hold_ms_max: REORDER_HOLD_MS_MAX,
} as const;

export const FAULT_KNOB_LIMITS = {
  countdown_max: COUNTDOWN_MAX,
  retry_after_s_max: RETRY_AFTER_S_MAX,
  rate_limit_per_s_max: RATE_LIMIT_PER_S_MAX,
  timeout_hold_ms_max: TIMEOUT_HOLD_MS_MAX,
  latency_ms_max: LATENCY_MS_MAX,
} as const;

/**
 * Misbehaviour of the PSP's API itself, applied to the money-moving POSTs under /v1/charges;
 * changeable at runtime via /_sandbox/faults. Countdowns go down by one per request they hit.
 */
export interface FaultKnobs {
  /** Share of requests answered 503 psp_unavailable before anything is done. */
  error_rate: number;
  /** The next N requests are answered 503 psp_unavailable, then it is back to 0. */
  fail_next: number;
  /** Retry-After on a 503; 0 sends no header. */
  retry_after_s: number;
  /** Token bucket over the requests, refilled at this rate; 0 is off. */
  rate_limit_per_s: number;
  /** Share of processed requests that commit, then get no answer (the caller times out). */
  timeout_after_charge_rate: number;
  /** The next N processed requests commit, then get no answer. */
  timeout_next: number;
  /** How long an unanswered request is held before its socket is destroyed. */
  timeout_hold_ms: number;
  /** Wait between commit and answer. */
  latency_ms: number;
}

/** Misbehaviour a real PSP's webhook delivery shows; changeable at runtime via /_sandbox/webhooks. */
export interface WebhookKnobs {
  duplicate_rate: number;
  drop_rate: number;
  /** Hold every event, and deliver a newer event of an object before its older ones. */
  reorder: boolean;
  /** How long reorder holds an event: longer than the gap between the events to be swapped. */
  reorder_hold_ms: number;
  delay_ms: number;
}

export interface SandboxConfig {
  port: number;
  host: string;
  database_url: string;
  api_key: string;
  /** When true every POST creates a charge: the mode that makes our own duplicates visible. */
  ignore_idempotency: boolean;
  fee_bps: number;
  fee_fixed_minor: bigint;
  /** Base of the URLs handed to buyers; null means http://<host>:<bound port>. */
  public_url: string | null;
  review_delay_ms: number;
  payout_delay_ms: number;
  webhook_url: string | null;
  webhook_secret: string;
  webhook_backoff_ms: number;
  webhook_knobs: WebhookKnobs;
  /** Start values of the fault knobs. */
  fault_knobs: FaultKnobs;
}

export function loadSandboxConfig(source: NodeJS.ProcessEnv = process.env): SandboxConfig {
  const parsed = SandboxEnvSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid sandbox-psp environment: ${problems.join('; ')}`);
  }
  const env = parsed.data;
  return {
    port: env.SANDBOX_PORT,
    host: env.SANDBOX_HOST,
    database_url: env.SANDBOX_DATABASE_URL,
    api_key: env.SANDBOX_API_KEY,
    ignore_idempotency: env.SANDBOX_IGNORE_IDEMPOTENCY === '1',
    fee_bps: env.SANDBOX_FEE_BPS,
    fee_fixed_minor: BigInt(env.SANDBOX_FEE_FIXED_MINOR),
    public_url: env.SANDBOX_PUBLIC_URL?.replace(/\/+$/, '') ?? null,
    review_delay_ms: env.SANDBOX_REVIEW_DELAY_MS,
    payout_delay_ms: env.SANDBOX_PAYOUT_DELAY_MS,
    webhook_url: env.SANDBOX_WEBHOOK_URL ?? null,
    webhook_secret: env.SANDBOX_WEBHOOK_SECRET,
    webhook_backoff_ms: env.SANDBOX_WEBHOOK_BACKOFF_MS,
    webhook_knobs: {
      duplicate_rate: env.SANDBOX_WEBHOOK_DUPLICATE_RATE,
      drop_rate: env.SANDBOX_WEBHOOK_DROP_RATE,
      reorder: env.SANDBOX_WEBHOOK_REORDER === '1',
      reorder_hold_ms: env.SANDBOX_WEBHOOK_REORDER_HOLD_MS,
      delay_ms: env.SANDBOX_WEBHOOK_DELAY_MS,
    },
    fault_knobs: {
      error_rate: env.SANDBOX_FAULT_ERROR_RATE,
      fail_next: env.SANDBOX_FAULT_FAIL_NEXT,
      retry_after_s: env.SANDBOX_FAULT_RETRY_AFTER_S,
      rate_limit_per_s: env.SANDBOX_FAULT_RATE_LIMIT_PER_S,
      timeout_after_charge_rate: env.SANDBOX_FAULT_TIMEOUT_AFTER_CHARGE_RATE,
      timeout_next: env.SANDBOX_FAULT_TIMEOUT_NEXT,
      timeout_hold_ms: env.SANDBOX_FAULT_TIMEOUT_HOLD_MS,
      latency_ms: env.SANDBOX_LATENCY_MS,
    },
  };
}
