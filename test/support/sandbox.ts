import { randomBytes } from 'node:crypto';
import type { ChargeJson } from '../../src/sandbox-psp/app';
import { freePort, spawnTs, waitForHttp, type Service } from './processes';

/** Helpers for the suites that test the sandbox PSP itself, each with processes of its own. */

const ENTRY = 'src/sandbox-psp/main.ts';
export const STARTUP_TIMEOUT_MS = 60_000;

export interface SpawnedSandbox {
  base_url: string;
  service: Service;
}

/** A sandbox PSP process on a free port with plain settings (no latency, 2.9 % + 30 fee); `env` overrides. */
export async function spawnSandbox(log_name: string, env: Record<string, string>): Promise<SpawnedSandbox> {
  const port = await freePort();
  const service = spawnTs(log_name, ENTRY, {
    SANDBOX_PORT: String(port),
    SANDBOX_HOST: '127.0.0.1',
    SANDBOX_IGNORE_IDEMPOTENCY: '0',
    SANDBOX_LATENCY_MS: '0',
    SANDBOX_FEE_BPS: '290',
    SANDBOX_FEE_FIXED_MINOR: '30',
    ...env,
  });
  const base_url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base_url}/healthz`, STARTUP_TIMEOUT_MS);
  return { base_url, service };
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
