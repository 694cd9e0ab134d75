import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AppError } from '../domain/errors';
import { findMerchantByApiKey, type MerchantKey } from '../services/merchants';

const MAX_KEY_CHARS = 200;

/** `Authorization: Bearer <merchant API key>`; the merchant is attached for the routes to scope by. */
export function authenticate(db: Knex): RequestHandler {
  return async (req, res, next) => {
    const header = req.header('authorization');
    const match = header === undefined ? null : /^Bearer ([\x21-\x7e]{1,200})$/.exec(header);
    if (header === undefined) throw new AppError('api_key_missing', 'send your API key as Authorization: Bearer <key>');
    if (match === null || (match[1] ?? '').length > MAX_KEY_CHARS) throw new AppError('api_key_invalid', 'malformed Authorization header');
    const merchant = await findMerchantByApiKey(db, match[1] ?? '');
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

