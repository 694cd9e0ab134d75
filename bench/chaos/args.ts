import { splitFlags, UsageError } from '../flags';

export { UsageError };

/** Flags of `npm run chaos`; every value is range-checked here, before anything is started. */
export const LIMITS = {
  payments_min: 1,
  payments_max: 100_000,
  payments_default: 1_000,
  kill_every_s_min: 1,
  kill_every_s_max: 600,
  kill_every_s_default: 5,
  duration_max_s_min: 10,
  duration_max_s_max: 86_400,
  duration_max_s_default: 1_200,
  rate_per_s_max: 200,
  rate_per_s_default: 4,
  seed_max: 4_294_967_295,
} as const;

export interface Options {
  payments: number;
  seed: number | null; // null: pick one (printed, so a run can be repeated)
  duration_max_s: number;
  kill_every_s: number;
  rate_per_s: number;
  quiet: boolean;
  keep: boolean;
  help: boolean;
}


export const USAGE = `usage: npm run chaos -- [options]
  --payments N         payments to drive, ${LIMITS.payments_min}..${LIMITS.payments_max} (default ${LIMITS.payments_default})
  --seed S             seed of the payment mix, 0..${LIMITS.seed_max} (default: random, printed)
  --duration-max-s S   give up and fail after S seconds in all, ${LIMITS.duration_max_s_min}..${LIMITS.duration_max_s_max} (default ${LIMITS.duration_max_s_default})
  --kill-every-s S     SIGKILL the worker every S seconds while faults are on, ${LIMITS.kill_every_s_min}..${LIMITS.kill_every_s_max} (default ${LIMITS.kill_every_s_default})
  --rate R             payments started per second, 0 < R <= ${LIMITS.rate_per_s_max} (default ${LIMITS.rate_per_s_default})
  --quiet              no progress lines; only the invariants and the summary
  --keep               keep the databases, the Temporal SQLite file and the logs
  --help               this text
exit status: 0 every invariant PASS, 1 a FAIL or the run broke, 2 usage error`;

const VALUED = new Set(['--payments', '--seed', '--duration-max-s', '--kill-every-s', '--rate']);
const SWITCHES = new Set(['--quiet', '--keep', '--help']);


function wholeIn(flag: string, text: string | undefined, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]{1,10}$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`${flag}: ${text} is out of range ${min}..${max}`);
  return value;
}

function rateIn(text: string | undefined): number {
  if (text === undefined) return LIMITS.rate_per_s_default;
  if (!/^[0-9]{1,3}(\.[0-9]{1,3})?$/.test(text)) throw new UsageError(`--rate: "${text}" is not a number`);
  const value = Number(text);
  if (!(value > 0 && value <= LIMITS.rate_per_s_max)) throw new UsageError(`--rate: ${text} is out of range (0, ${LIMITS.rate_per_s_max}]`);
  return value;
}

export function parseArgs(argv: string[]): Options {
  const f = splitFlags(argv, VALUED, SWITCHES);
  const help = f.has('--help');
  return {
    payments: wholeIn('--payments', f.get('--payments'), LIMITS.payments_min, LIMITS.payments_max, LIMITS.payments_default),
    seed: f.has('--seed') ? wholeIn('--seed', f.get('--seed'), 0, LIMITS.seed_max, 0) : null,
    duration_max_s: wholeIn('--duration-max-s', f.get('--duration-max-s'), LIMITS.duration_max_s_min, LIMITS.duration_max_s_max, LIMITS.duration_max_s_default),
    kill_every_s: wholeIn('--kill-every-s', f.get('--kill-every-s'), LIMITS.kill_every_s_min, LIMITS.kill_every_s_max, LIMITS.kill_every_s_default),
    rate_per_s: rateIn(f.get('--rate')),
    quiet: f.has('--quiet'),
    keep: f.has('--keep'),
    help,
  };
}

/** mulberry32: a small seeded PRNG, so `--seed` repeats the same payment mix. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
