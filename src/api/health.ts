import { Router } from 'express';
import type { Knex } from 'knex';
import type { Client } from '@temporalio/client';

const CHECK_TIMEOUT_MS = 2_000;

async function withTimeout<T>(work: Promise<T>, timeout_ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout_ms} ms`)), timeout_ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function probe(check: () => Promise<unknown>): Promise<{ ok: boolean; error?: string }> {
  try {
    await check();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** 200 when PostgreSQL and Temporal both answer, else 503 naming the one that did not. */
export function healthRouter(db: Knex, temporal: Client): Router {
  const router = Router();
  router.get('/', async (_req, res) => {
    const [postgres, temporal_check] = await Promise.all([
      probe(() => withTimeout(db.raw('select 1'), CHECK_TIMEOUT_MS)),
      // A gRPC deadline, not a race: the call itself ends, leaving no retry running behind us.
      probe(() => temporal.connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () => temporal.workflowService.getSystemInfo({}))),
    ]);
    const ok = postgres.ok && temporal_check.ok;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', checks: { postgres, temporal: temporal_check } });
  });
  return router;
}
