import { createHmac } from 'node:crypto';

/**
 * Signing side of the webhook signature; the receiver verifies. The wire format is all the two
 * share: `Psp-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t." + raw body>`. The timestamp is
 * signed with the body so a captured request cannot be replayed later than the receiver's tolerance.
 */
export function signPayload(secret: string, raw_body: string, t_unix: number): string {
  if (!Number.isSafeInteger(t_unix) || t_unix < 0) throw new Error('assertion: t_unix must be a unix second');
  const hmac_hex = createHmac('sha256', secret).update(`${t_unix}.${raw_body}`, 'utf8').digest('hex');
  return `t=${t_unix},v1=${hmac_hex}`;
}
