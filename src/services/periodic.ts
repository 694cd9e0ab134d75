import type { Logger } from '../logger';

export interface Periodic {
  stop(): Promise<void>;
}

/**
 * Runs `work` every `interval_ms`, one pass at a time (a slow pass delays the next, never
 * overlaps it). A failed pass is logged and the next one tries again; `work` answers how many
 * items it handled, logged when non-zero.
 */
export function runPeriodically(name: string, interval_ms: number, log: Logger, work: () => Promise<number>): Periodic {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const pass = async (): Promise<void> => {
    try {
      const handled = await work();
      if (handled > 0) log.info({ task: name, handled }, 'periodic pass handled items');
    } catch (err) {
      log.warn({ err, task: name }, 'periodic pass failed');
    }
  };
  const timer = setInterval(() => {
    if (stopped) return;
    running = running.then(pass);
  }, interval_ms);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
