import { splitFlags, UsageError } from '../flags';

export { UsageError };

/** Flags of `npm run bench`; every value is range-checked here, before anything is started. */
export const LIMITS = {
  rate_per_s_max: 2_000,
  duration_s_min: 1,
  duration_s_max: 600,
  orders_min: 1,
  orders_max: 100,
  warmup_s_max: 60,
  warmup_s_default: 2,
  find_max_steps_max: 12,
  find_max_growth: 1.5, // each --find-max step offers this many times the previous rate
  find_max_p99_ms: 2_000, // a step is sustainable while completion p99 stays under this
  overload_multiple_default: 3, // the flash-sale case: three times what the stack sustains
  overload_multiple_max: 20,
  // After an overload window the backlog must empty; past this the run reports what is still open
  // instead of waiting for ever (a stuck payment is a finding, not a reason to hang).
  overload_drain_max_s: 600,
} as const;

export const CEILING_SHAPES = ['lean', 'children', 'mixed'] as const;
export type CeilingShape = (typeof CEILING_SHAPES)[number];

export const KNOWN_TOKENS = ['tok_success', 'tok_decline', 'tok_insufficient_funds'] as const;
export type Token = (typeof KNOWN_TOKENS)[number];

export interface TokenWeight {
  token: Token;
  weight: number;
}

export interface Options {
  rate_per_s: number;
  duration_s: number;
  orders: number;
  warmup_s: number;
  tokens: TokenWeight[];
  url: string | null;
  key: string | null;
  find_max: boolean;
  ceiling: boolean;
  ceiling_shape: CeilingShape;
  /** --overload: offered multiple of the sustainable rate; null without the flag. */
  overload_multiple: number | null;
  /** --sustainable: the overload's base rate given by hand (no --find-max first). */
  sustainable_per_s: number | null;
  out_dir: string;
  help: boolean;
}


export const USAGE = `usage: npm run bench -- --rate R --duration S --orders K [options]
       npm run bench -- --sustainable R --overload [M] --duration S --orders K [options]
  --rate R          offered payments per second, 0 < R <= ${LIMITS.rate_per_s_max} (with --find-max: the first step)
  --duration S      measured seconds, whole number ${LIMITS.duration_s_min}..${LIMITS.duration_s_max} (per step with --find-max)
  --orders K        orders (sellers) per payment, ${LIMITS.orders_min}..${LIMITS.orders_max}
  --tokens MIX      payment_method mix, e.g. tok_success:90,tok_decline:10 (default tok_success:100)
                    known: ${KNOWN_TOKENS.join(', ')}
  --warmup S        unmeasured seconds before the window, 0..${LIMITS.warmup_s_max} (default ${LIMITS.warmup_s_default})
  --url URL         target a running API on 127.0.0.1 instead of starting a stack (needs --key)
  --key KEY         that API's merchant key
  --find-max        step the rate up (x${LIMITS.find_max_growth}) until completion p99 > ${LIMITS.find_max_p99_ms} ms or an error
  --ceiling         also measure a no-op workflow of the same shape on the same server and worker settings
  --ceiling-shape S shape of those no-op workflows (default lean):
                      lean      one workflow, every step a local activity, orders in parallel
                      mixed     one workflow, chargeOrder a regular activity, the rest local
                      children  a child workflow per order (the legacy shape)
  --overload [M]    after --find-max (from --rate), offer M x the sustainable rate for --duration s,
                    then wait for the drain (at most ${LIMITS.overload_drain_max_s} s); M in (1, ${LIMITS.overload_multiple_max}], default ${LIMITS.overload_multiple_default}
  --sustainable R   with --overload: take R as the sustainable rate instead of running --find-max
  --out DIR         where reports go (default bench-results)
  --help            this text`;

function numberIn(flag: string, text: string, min_exclusive: number, max: number): number {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a number`);
  const value = Number(text);
  if (!(value > min_exclusive && value <= max)) throw new UsageError(`${flag}: ${text} is out of range (${min_exclusive}, ${max}]`);
  return value;
}

function wholeIn(flag: string, text: string, min: number, max: number): number {
  if (!/^[0-9]{1,4}$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`${flag}: ${text} is out of range ${min}..${max}`);
  return value;
}

export function parseTokens(text: string): TokenWeight[] {
  const parts = text.split(',');
  if (parts.length > KNOWN_TOKENS.length) throw new UsageError('--tokens: too many entries');
  const mix = parts.map((part): TokenWeight => {
    const [token = '', weight = ''] = part.split(':');
    if (!(KNOWN_TOKENS as readonly string[]).includes(token)) throw new UsageError(`--tokens: unknown token "${token}" (known: ${KNOWN_TOKENS.join(', ')})`);
    return { token: token as Token, weight: wholeIn(`--tokens ${token}`, weight, 1, 1_000) };
  });
  if (new Set(mix.map((m) => m.token)).size !== mix.length) throw new UsageError('--tokens: a token appears twice');
  return mix;
}

function targetUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url: "${text}" is not a URL`);
  }
  // Load goes only to this machine: never aim a generator at someone else's server.
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(url.hostname)) throw new UsageError('--url must be http://127.0.0.1:PORT');
  return url.origin;
}

const VALUED = new Set(['--rate', '--duration', '--orders', '--tokens', '--warmup', '--url', '--key', '--out', '--ceiling-shape', '--overload', '--sustainable']);
const SWITCHES = new Set(['--find-max', '--ceiling', '--help']);

/**
 * `--overload` takes an optional value, which the shared flag splitter does not know: a bare
 * `--overload` becomes `--overload=DEFAULT`, and `--overload M` keeps M only when it is not
 * another flag (so `--overload --duration 5` is still read right).
 */
function optionalOverloadValue(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg !== '--overload') out.push(arg);
    else if (argv[i + 1] !== undefined && !(argv[i + 1] ?? '').startsWith('--')) out.push(`--overload=${argv[++i] ?? ''}`);
    else out.push(`--overload=${LIMITS.overload_multiple_default}`);
  }
  return out;
}

function ceilingShape(f: Map<string, string>): CeilingShape {
  const text = f.get('--ceiling-shape');
  if (text === undefined) return 'lean';
  if (!f.has('--ceiling')) throw new UsageError('--ceiling-shape only goes with --ceiling');
  if (!(CEILING_SHAPES as readonly string[]).includes(text)) throw new UsageError(`--ceiling-shape: "${text}" is not one of ${CEILING_SHAPES.join(', ')}`);
  return text as CeilingShape;
}

function overload(f: Map<string, string>): Pick<Options, 'overload_multiple' | 'sustainable_per_s'> {
  if (!f.has('--overload')) {
    if (f.has('--sustainable')) throw new UsageError('--sustainable only goes with --overload');
    return { overload_multiple: null, sustainable_per_s: null };
  }
  const text = f.get('--overload') ?? '';
  const multiple = numberIn('--overload', text, 1, LIMITS.overload_multiple_max);
  if (!f.has('--sustainable')) return { overload_multiple: multiple, sustainable_per_s: null };
  if (f.has('--find-max') || f.has('--rate')) throw new UsageError('--sustainable replaces --find-max and its --rate: give one or the other');
  const sustainable = numberIn('--sustainable', f.get('--sustainable') ?? '', 0, LIMITS.rate_per_s_max);
  if (sustainable * multiple > LIMITS.rate_per_s_max) throw new UsageError(`--sustainable x --overload offers more than ${LIMITS.rate_per_s_max}/s`);
  return { overload_multiple: multiple, sustainable_per_s: sustainable };
}

export function parseArgs(argv: string[]): Options {
  const f = splitFlags(optionalOverloadValue(argv), VALUED, SWITCHES);
  if (f.has('--help')) return { help: true } as Options;
  // --sustainable names the base rate itself: --rate is then refused (in overload()), not required.
  const required = f.has('--sustainable') ? ['--duration', '--orders'] : ['--rate', '--duration', '--orders'];
  for (const flag of required) if (!f.has(flag)) throw new UsageError(`${flag} is required`);
  const url = f.has('--url') ? targetUrl(f.get('--url') ?? '') : null;
  if (url !== null && !f.has('--key')) throw new UsageError('--url needs --key (the merchant API key)');
  if (url === null && f.has('--key')) throw new UsageError('--key only goes with --url');
  if (url !== null && f.has('--ceiling')) throw new UsageError('--ceiling needs the stack the bench starts itself (no --url)');
  const load = overload(f);
  return {
    ...load,
    rate_per_s: f.has('--rate') ? numberIn('--rate', f.get('--rate') ?? '', 0, LIMITS.rate_per_s_max) : (load.sustainable_per_s ?? 0),
    duration_s: wholeIn('--duration', f.get('--duration') ?? '', LIMITS.duration_s_min, LIMITS.duration_s_max),
    orders: wholeIn('--orders', f.get('--orders') ?? '', LIMITS.orders_min, LIMITS.orders_max),
    warmup_s: f.has('--warmup') ? wholeIn('--warmup', f.get('--warmup') ?? '', 0, LIMITS.warmup_s_max) : LIMITS.warmup_s_default,
    tokens: parseTokens(f.get('--tokens') ?? 'tok_success:100'),
    url,
    key: f.get('--key') ?? null,
    // --overload without --sustainable finds the sustainable rate first.
    find_max: f.has('--find-max') || (load.overload_multiple !== null && load.sustainable_per_s === null),
    ceiling: f.has('--ceiling'),
    ceiling_shape: ceilingShape(f),
    out_dir: f.get('--out') ?? 'bench-results',
    help: false,
  };
}

/** Deterministic mix: request n gets the token whose cumulative-weight slot holds n mod total. */
export function tokenFor(mix: TokenWeight[], n: number): Token {
  const total = mix.reduce((sum, m) => sum + m.weight, 0);
  let slot = n % total;
  for (const m of mix) {
    if (slot < m.weight) return m.token;
    slot -= m.weight;
  }
  throw new Error('unreachable: token mix slot out of range');
}
