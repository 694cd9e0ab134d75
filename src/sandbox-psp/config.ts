import { z } from 'zod';

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
});

export interface SandboxConfig {
  port: number;
  host: string;
  database_url: string;
  api_key: string;
  /** When true every POST creates a charge: the mode that makes our own duplicates visible. */
  ignore_idempotency: boolean;
  latency_ms: number;
  fee_bps: number;
  fee_fixed_minor: bigint;
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
    latency_ms: env.SANDBOX_LATENCY_MS,
    fee_bps: env.SANDBOX_FEE_BPS,
    fee_fixed_minor: BigInt(env.SANDBOX_FEE_FIXED_MINOR),
  };
}
