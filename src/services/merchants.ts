import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { newId } from '../domain/ids';

/** API keys are stored only as SHA-256 hashes; the key itself is shown once, at creation. */
export function hashApiKey(api_key: string): string {
  return createHash('sha256').update(api_key, 'utf8').digest('hex');
}

export function generateApiKey(): string {
  return `sk_test_${randomBytes(24).toString('base64url')}`;
}

export interface MerchantKey {
  merchant_id: string;
  api_key_id: string;
}

export async function findMerchantByApiKey(db: Knex, api_key: string): Promise<MerchantKey | null> {
  const row = await db('api_key')
    .where({ key_hash: hashApiKey(api_key) })
    .whereNull('revoked_at')
    .first<{ id: string; merchant_id: string } | undefined>('id', 'merchant_id');
  return row === undefined ? null : { merchant_id: row.merchant_id, api_key_id: row.id };
}

/** Creates a merchant with one API key; with `api_key` given, that key (e.g. the demo key) is used. */
export async function createMerchant(db: Knex, name: string, api_key: string = generateApiKey()): Promise<MerchantKey & { api_key: string }> {
  const merchant_id = newId('mer');
  const api_key_id = newId('key');
  await db.transaction(async (trx) => {
    await trx('merchant').insert({ id: merchant_id, name });
    await trx('api_key').insert({ id: api_key_id, merchant_id, key_hash: hashApiKey(api_key), key_prefix: api_key.slice(0, 12) });
  });
  return { merchant_id, api_key_id, api_key };
}

/** The demo merchant for `npm start`: created once, found again by its key afterwards. */
export async function ensureMerchantWithKey(db: Knex, name: string, api_key: string): Promise<MerchantKey> {
  const found = await findMerchantByApiKey(db, api_key);
  if (found !== null) return found;
  return await createMerchant(db, name, api_key);
}
