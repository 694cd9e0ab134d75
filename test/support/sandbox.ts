import { randomBytes } from 'node:crypto';
import type { ChargeJson } from '../../packages/sandbox-psp/src/app';
import { freePort, spawnTs, waitForHttp, waitForOwnListen, type Service } from './processes';

/** Helpers for the suites that test the sandbox PSP itself, each with processes of its own. */

const ENTRY = 'packages/sandbox-psp/src/main.ts';
export const STARTUP_TIMEOUT_MS = 60_000;

export interface SpawnedSandbox {
  base_url: string;
  service: Service;
}

const START_ATTEMPTS = 3;

/**
 * A sandbox PSP process on a free port with plain settings (no latency, 2.9 % + 30 fee); `env`
 * overrides. The port can be taken by another process between freePort() and the bind (which
 * would then answer a health check): it counts as started only once it logs that it listens on
 * that port, and is started again on another port if it exits instead.
 */
export async function spawnSandbox(log_name: string, env: Record<string, string>): Promise<SpawnedSandbox> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const service = spawnTs(log_name, ENTRY, {
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_IGNORE_IDEMPOTENCY: '0',
      SANDBOX_LATENCY_MS: '0',
      SANDBOX_FEE_BPS: '290',
      SANDBOX_FEE_FIXED_MINOR: '30',
      ...env,
      SANDBOX_PORT: String(port),
    });
    const base_url = `http://127.0.0.1:${port}`;
    try {
      await waitForOwnListen(service, 'sandbox-psp listening', port);
      await waitForHttp(`${base_url}/healthz`, STARTUP_TIMEOUT_MS);
      return { base_url, service };
    } catch (err) {
      await service.stop();
      if (attempt >= START_ATTEMPTS) throw err;
    }
  }
}

export function uid(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

export type Json = Record<string, unknown>;

export interface ErrorJson {
  type: string;
  code: string;
  message?: string;
  param?: string;
  charge?: ChargeJson;
}
