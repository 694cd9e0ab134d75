import { z } from 'zod';

/**
 * Every env var the processes read, validated in one place. A bad value stops the process at
 * start-up with the variable's name, rather than failing later in a request.
 */
const port = z.coerce.number().int().min(0).max(65535);
const url = z.string().url();

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: url.default('postgres://postgres@127.0.0.1:5432/payments'),
  DB_POOL_MAX: z.coerce.number().int().min(1).max(100).default(10),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).max(200).default('payments'),
  TEMPORAL_UI_URL: url.default('http://127.0.0.1:8233'),
  API_PORT: port.default(3000),
  API_HOST: z.string().min(1).default('127.0.0.1'),
  PSP_URL: url.default('http://127.0.0.1:3100'),
  PSP_API_KEY: z.string().min(8).default('psk_test_sandbox'),
  PSP_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(8_000),
  COMMISSION_BPS: z.coerce.number().int().min(0).max(10_000).default(300),
  // Risk rules: "USD:10000.00,EUR:9000.00" caps one payment per currency; blocked buyers by id.
  RISK_MAX_AMOUNT: z.string().default('USD:50000.00,EUR:50000.00,GBP:50000.00,JPY:5000000,KRW:50000000'),
  RISK_BLOCKED_BUYERS: z.string().default(''),
  RATE_LIMIT_PER_S: z.coerce.number().int().min(1).max(100_000).default(100),
  RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(100_000).default(200),
  RELAY_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(2_000),
  RELAY_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(3_000),
  // Admission control (src/services/admission.ts): payment workflow starts are paced by a window of
  // in-flight payments adapted to latency; past a backlog of unstarted payments POST answers 429.
  ADMISSION_TICK_MS: z.coerce.number().int().min(10).max(10_000).default(100),
  ADMISSION_WINDOW_MIN: z.coerce.number().int().min(1).max(10_000).default(4),
  ADMISSION_WINDOW_INITIAL: z.coerce.number().int().min(1).max(10_000).default(16),
  ADMISSION_WINDOW_MAX: z.coerce.number().int().min(1).max(10_000).default(256),
  ADMISSION_LATENCY_TARGET_MS: z.coerce.number().int().min(10).max(600_000).default(1_000),
  ADMISSION_BACKLOG_MAX: z.coerce.number().int().min(1).max(1_000_000).default(5_000),
  ADMISSION_MERCHANT_BACKLOG_MAX: z.coerce.number().int().min(1).max(1_000_000).default(2_000),
  // The longest wait for a start the door promises: past backlog ÷ start rate of this many
  // seconds new payments get 429 (refusing is cheaper than accepting, so a peak keeps its goodput).
  ADMISSION_BACKLOG_WAIT_MAX_S: z.coerce.number().int().min(1).max(86_400).default(30),
  WORKER_METRICS_PORT: port.default(9464),
  HOLD_SWEEP_INTERVAL_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  DEMO_MERCHANT_API_KEY: z.string().min(8).default('sk_test_demo'),
  // Hosted checkout and delayed PSP results.
  CHECKOUT_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(7 * 86_400_000).default(30 * 60_000),
  PSP_POLL_INITIAL_MS: z.coerce.number().int().min(500).max(86_400_000).default(60_000),
  PSP_POLL_MAX_MS: z.coerce.number().int().min(500).max(86_400_000).default(3_600_000),
  // A waiting order continues as new before its history grows past this many events.
  WAIT_HISTORY_EVENTS_MAX: z.coerce.number().int().min(20).max(40_000).default(2_000),
  // Attempts per PSP call before an order is parked as needs_attention (src/workflows/retry-policies.ts).
  PSP_CALL_ATTEMPTS_MAX: z.coerce.number().int().min(1).max(100).default(12),
  IDEMPOTENCY_KEY_TTL_MS: z.coerce.number().int().min(60_000).max(30 * 86_400_000).default(86_400_000),
  IDEMPOTENCY_SWEEP_INTERVAL_MS: z.coerce.number().int().min(1_000).max(86_400_000).default(600_000),
  // Operators' key for /v1/ops (retry/cancel parked orders); unset = the ops routes are off.
  ADMIN_API_KEY: z.string().min(16).max(255).optional(),
  // Every webhook signing secret currently accepted, comma separated (old and new during rotation).
  PSP_WEBHOOK_SECRETS: z.string().min(8).max(4_096).default('whsec_test_sandbox'),
  WEBHOOK_SWEEP_INTERVAL_MS: z.coerce.number().int().min(200).max(600_000).default(5_000),
  // Only events at least this old are swept: younger ones are still the receiving request's job.
  WEBHOOK_SWEEP_MIN_AGE_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(30_000),
  // Nightly reconciliation: when the Temporal Schedule runs (a 5-field cron in UTC; it reconciles
  // the day before), or "off" for no schedule (runs on demand with payctl only).
  RECON_SCHEDULE_CRON: z
    .string()
    .regex(/^(off|[0-9*,/-]+( [0-9*,/-]+){4})$/, 'must be "off" or a 5-field cron like "0 2 * * *"')
    .default('0 2 * * *'),
  RECON_DOWNLOAD_TIMEOUT_MS: z.coerce.number().int().min(10_000).max(6 * 3_600_000).default(30 * 60_000),
  // How long a run waits for the orders it auto-fixed (signalled) to reach the books.
  RECON_FIX_WAIT_MS: z.coerce.number().int().min(0).max(3_600_000).default(120_000),
  // Daily pay-outs to sellers (a 5-field cron in UTC, or "off"), and the smallest payout per
  // currency (CUR:amount in the currency's units; a currency not listed: one minor unit).
  PAYOUT_SCHEDULE_CRON: z
    .string()
    .regex(/^(off|[0-9*,/-]+( [0-9*,/-]+){4})$/, 'must be "off" or a 5-field cron like "0 3 * * *"')
    .default('0 3 * * *'),
  PAYOUT_MINIMUMS: z.string().max(2_000).default('USD:1.00,EUR:1.00,GBP:1.00,JPY:100,KRW:1000'),
});

export type Env = z.infer<typeof EnvSchema>;

const WEBHOOK_SECRETS_MAX = 5;

/** Comma-separated secrets: each 8-255 visible characters, at most five at once. */
export function parseWebhookSecrets(value: string): string[] {
  const secrets = value.split(',').map((s) => s.trim());
  const valid = secrets.length <= WEBHOOK_SECRETS_MAX && secrets.every((s) => /^[\x21-\x7e]{8,255}$/.test(s));
  if (!valid) throw new Error(`invalid environment: PSP_WEBHOOK_SECRETS must be 1-${WEBHOOK_SECRETS_MAX} comma-separated secrets of 8-255 visible characters`);
  return secrets;
}

/** How long workflows wait and retry; passed in as workflow input (workflows read no env). */
export interface WaitTimings {
  checkout_timeout_ms: number;
  poll_initial_ms: number;
  poll_max_ms: number;
  history_events_max: number;
  psp_attempts_max: number;
}

export function waitTimingsOf(env: Env): WaitTimings {
  if (env.PSP_POLL_MAX_MS < env.PSP_POLL_INITIAL_MS) throw new Error('invalid environment: PSP_POLL_MAX_MS must be at least PSP_POLL_INITIAL_MS');
  return { checkout_timeout_ms: env.CHECKOUT_TIMEOUT_MS, poll_initial_ms: env.PSP_POLL_INITIAL_MS, poll_max_ms: env.PSP_POLL_MAX_MS, history_events_max: env.WAIT_HISTORY_EVENTS_MAX, psp_attempts_max: env.PSP_CALL_ATTEMPTS_MAX };
}

/** How admission control paces workflow starts and bounds the backlog (see src/services/admission.ts). */
export interface AdmissionSettings {
  tick_ms: number;
  window_min: number;
  window_initial: number;
  window_max: number;
  latency_target_ms: number;
  backlog_max: number;
  merchant_backlog_max: number;
  backlog_wait_max_s: number;
}

export function admissionSettingsOf(env: Env): AdmissionSettings {
  if (!(env.ADMISSION_WINDOW_MIN <= env.ADMISSION_WINDOW_INITIAL && env.ADMISSION_WINDOW_INITIAL <= env.ADMISSION_WINDOW_MAX)) {
    throw new Error('invalid environment: ADMISSION_WINDOW_MIN ≤ ADMISSION_WINDOW_INITIAL ≤ ADMISSION_WINDOW_MAX must hold');
  }
  return {
    tick_ms: env.ADMISSION_TICK_MS,
    window_min: env.ADMISSION_WINDOW_MIN,
    window_initial: env.ADMISSION_WINDOW_INITIAL,
    window_max: env.ADMISSION_WINDOW_MAX,
    latency_target_ms: env.ADMISSION_LATENCY_TARGET_MS,
    backlog_max: env.ADMISSION_BACKLOG_MAX,
    merchant_backlog_max: env.ADMISSION_MERCHANT_BACKLOG_MAX,
    backlog_wait_max_s: env.ADMISSION_BACKLOG_WAIT_MAX_S,
  };
}

/**
 * How long a charge attempt holds its order (src/aggregates/order.ts, claimCharge): longer than a
 * live attempt can take — two PSP calls (ask, then send) and a margin — and no longer, since a
 * dead worker's order waits this long before the next attempt may charge.
 */
export function chargeLeaseMsOf(psp_timeout_ms: number): number {
  return 2 * psp_timeout_ms + 5_000;
}

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Hard limits (TigerBeetle style): everything that can grow has a named bound. */
export const LIMITS = {
  body_bytes_max: 64 * 1024,
  orders_per_payment_max: 100,
  idempotency_key_chars_max: 255,
  idempotency_lock_ms: 60_000,
  metadata_keys_max: 20,
  metadata_value_chars_max: 500,
  page_size_default: 20,
  page_size_max: 100,
  amount_digits_max: 18,
  relay_batch_max: 100,
  url_chars_max: 2_048,
  webhook_body_bytes_max: 64 * 1024,
  webhook_sweep_batch_max: 100,
  idempotency_sweep_batch_max: 1_000,
} as const;
