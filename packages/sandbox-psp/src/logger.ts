import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs, one event per line. Card data the hosted page receives is never logged by design;
 * redaction is the second line of defence, and also hides API keys and authorization headers.
 */
export function createLogger(name: string, opts: { buffered: boolean }): Logger {
  const options: pino.LoggerOptions = {
    name,
    level: process.env.LOG_LEVEL ?? 'info',
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'api_key', 'payment_method', '*.payment_method', 'card', '*.card'],
      censor: '[redacted]',
    },
  };
  // A synchronous write per line costs CPU under load; buffered lines go out together and pino
  // flushes what is left when the process exits.
  if (opts.buffered) return pino(options, pino.destination({ dest: 1, sync: false }));
  return pino(options);
}
