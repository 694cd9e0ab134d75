import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs, one event per line. Redaction is a second line of defence: card data never reaches
 * us by design, and keys/authorization headers must never be printed.
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'api_key', 'payment_method', '*.payment_method', 'card', '*.card'],
      censor: '[redacted]',
    },
  });
}
