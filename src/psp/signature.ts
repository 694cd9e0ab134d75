import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, Stripe-style: `Psp-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t." + raw
 * body>`. The timestamp is signed with the body so a captured request cannot be replayed later
 * than the tolerance. Pure: the caller supplies the clock, so tests need no fake timers.
 */

export const SIGNATURE_DEFAULT_TOLERANCE_S = 300;
const HEADER_CHARS_MAX = 4_096; // several v1 entries during rotation still fit easily
const HEX_SHA256_CHARS = 64;

export type VerifyResult = { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'mismatch' };

export interface VerifyInput {
  header: string | undefined | null;
  raw_body: string;
  /** Every secret currently accepted: during rotation the old and the new one. */
  secrets: readonly string[];
  now_unix: number;
  tolerance_s?: number;
}

function hmacHex(secret: string, t_unix: number, raw_body: string): string {
  return createHmac('sha256', secret).update(`${t_unix}.${raw_body}`, 'utf8').digest('hex');
}

export function signPayload(secret: string, raw_body: string, t_unix: number): string {
  if (!Number.isSafeInteger(t_unix) || t_unix < 0) throw new Error('assertion: t_unix must be a unix second');
  return `t=${t_unix},v1=${hmacHex(secret, t_unix, raw_body)}`;
}

interface ParsedHeader {
  t_unix: number;
  signatures: Buffer[];
}

/** Unknown schemes (v0, future v2) are ignored, as a real PSP's clients do. */
function parseHeader(header: string): ParsedHeader | null {
  if (header.length > HEADER_CHARS_MAX) return null;
  let t_unix: number | null = null;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const [key, value, ...rest] = part.trim().split('=');
    if (key === undefined || value === undefined || rest.length > 0) return null;
    if (key === 't') {
      if (!/^\d{1,12}$/.test(value)) return null;
      t_unix = Number(value);
    } else if (key === 'v1') {
      if (value.length !== HEX_SHA256_CHARS || !/^[0-9a-f]+$/i.test(value)) return null;
      signatures.push(Buffer.from(value, 'hex'));
    }
  }
  if (t_unix === null || signatures.length === 0) return null;
  return { t_unix, signatures };
}

function anyMatches(parsed: ParsedHeader, raw_body: string, secrets: readonly string[]): boolean {
  let matched = false;
  // No early exit: every comparison runs, so timing says nothing about which secret matched.
  for (const secret of secrets) {
    const expected = Buffer.from(hmacHex(secret, parsed.t_unix, raw_body), 'hex');
    for (const given of parsed.signatures) {
      if (timingSafeEqual(expected, given)) matched = true;
    }
  }
  return matched;
}

export function verifySignature(input: VerifyInput): VerifyResult {
  const tolerance_s = input.tolerance_s ?? SIGNATURE_DEFAULT_TOLERANCE_S;
  if (input.header === undefined || input.header === null || input.header === '') {
    return { ok: false, reason: 'missing' };
  }
  const parsed = parseHeader(input.header);
  if (parsed === null) return { ok: false, reason: 'malformed' };
  if (Math.abs(input.now_unix - parsed.t_unix) > tolerance_s) return { ok: false, reason: 'stale' };
  if (input.secrets.length === 0) return { ok: false, reason: 'mismatch' };
  return anyMatches(parsed, input.raw_body, input.secrets) ? { ok: true } : { ok: false, reason: 'mismatch' };
}
