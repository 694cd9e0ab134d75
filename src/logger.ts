import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs, one event per line. Redaction is a second line of defence: card data never reaches
 * us by design, and keys/authorization headers must never be printed.
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info', opts: { buffered?: boolean } = {}): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'api_key', 'payment_method', '*.payment_method', 'card', '*.card'],
      censor: '[redacted]',
    },
  };
  // Services log several lines per payment: a synchronous write per line cost ~10 ms of CPU per
  // payment under load (docs/PERFORMANCE.md). Buffered, lines written while a write is in flight
  // go out together; pino flushes what is left when the process exits.
  if (opts.buffered === true) return pino(options, pino.destination({ dest: 1, sync: false }));
  return pino(options);
}
