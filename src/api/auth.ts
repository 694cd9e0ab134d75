import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import { findMerchantByApiKey, type MerchantKey } from '../services/merchants';

const MAX_KEY_CHARS = 200;

function bearerKey(header: string | undefined): string {
  const match = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,200})$/.exec(header);
  if (header === undefined) throw new AppError('api_key_missing', 'send your API key as Authorization: Bearer <key>');
  if (match === null || (match[1] ?? '').length > MAX_KEY_CHARS) throw new AppError('api_key_invalid', 'malformed Authorization header');
  return match[1] ?? '';
}

/** `Authorization: Bearer <merchant API key>`; the merchant is attached for the routes to scope by. */
export function authenticate(db: Knex): RequestHandler {
  return async (req, res, next) => {
    const merchant = await findMerchantByApiKey(db, bearerKey(req.header('authorization')));
    if (merchant === null) throw new AppError('api_key_invalid', 'invalid API key');
    res.locals.merchant = merchant;
    next();
  };
}

export function merchantOf(res: { locals: Record<string, unknown> }): MerchantKey {
  const merchant = res.locals.merchant as MerchantKey | undefined;
  if (merchant === undefined) throw new AppError('api_key_missing', 'authentication required');
  return merchant;
}


const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * `Authorization: Bearer <ADMIN_API_KEY>` for operator routes. Digests are compared, so neither
 * the key nor its length leaks through timing. No key configured → the routes do not exist.
 */
export function authenticateAdmin(admin_api_key: string | undefined): RequestHandler {
  const expected = admin_api_key === undefined ? null : sha256(admin_api_key);
  return (req, _res, next) => {
    if (expected === null) throw new AppError('ops_disabled', 'operator routes are off: set ADMIN_API_KEY');
    if (!timingSafeEqual(sha256(bearerKey(req.header('authorization'))), expected)) throw new AppError('api_key_invalid', 'invalid admin key');
    next();
  };
}
