import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../logger';

const PINO_LEVEL: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Routes the Temporal SDK's own logs (TS side and the Rust core) through pino, so every line the
 * worker prints is one JSON event. Must run before any Worker or NativeConnection is created.
 */
export function installSdkLogging(log: Logger, level: LogLevel = 'WARN'): void {
  const sdk = log.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      // The SDK puts errors under `error`; pino serialises stacks only under `err`.
      const { error, ...meta } = entry.meta ?? {};
      sdk[PINO_LEVEL[entry.level]]({ ...meta, ...(error === undefined ? {} : { err: error }) }, entry.message);
    }),
    telemetryOptions: { logging: { filter: { core: level, other: level }, forward: {} } },
    // Signals are handled in the worker's main: the SDK's own handler ends the process hard on a
    // second signal, and Ctrl-C under `npm start` delivers two (the group's SIGINT, then our SIGTERM).
    shutdownSignals: [],
  });
}
