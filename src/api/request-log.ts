import { randomBytes } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../logger';

/**
 * One JSON line per request with its id, route, status, duration and merchant. The id is echoed
 * as `Request-Id` so a client's report leads straight to the log line. Bodies are never logged.
 */
export function requestLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const req_id = `req_${randomBytes(8).toString('hex')}`;
    const started = process.hrtime.bigint();
    res.setHeader('Request-Id', req_id);
    res.on('finish', () => {
      const merchant = res.locals.merchant as { merchant_id?: string } | undefined;
      const duration_ms = Number((process.hrtime.bigint() - started) / 1000n) / 1000;
      log.info(
        { req_id, method: req.method, path: req.path, status: res.statusCode, duration_ms, merchant_id: merchant?.merchant_id, payment_id: res.locals.payment_id },
        'request',
      );
    });
    next();
  };
}
