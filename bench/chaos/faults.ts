import { waitForTemporal } from '../../src/dev/temporal';
import { httpOk, service, TIMEOUTS, waitForLog, waitUntil, WORKER_READY_LINE, type ChaosStack } from './stack';

/**
 * What goes wrong while the payments run: the sandbox PSP's fault and webhook knobs, a SIGKILL
 * of the worker every few seconds (started again at once), one restart of the Temporal dev
 * server (same port, same SQLite file) and one restart of the API process.
 */

export const PSP_FAULTS_ON = {
  error_rate: 0.1, // 503 before anything is done
  retry_after_s: 1,
  timeout_after_charge_rate: 0.05, // committed, then no answer: the worker's PSP_TIMEOUT_MS (2 s) runs out first
  timeout_hold_ms: 4_000,
  rate_limit_per_s: 10, // 429 over this many money-moving POSTs per second
} as const;
export const PSP_FAULTS_OFF = { error_rate: 0, fail_next: 0, timeout_after_charge_rate: 0, timeout_next: 0, rate_limit_per_s: 0, latency_ms: 0 } as const;
export const WEBHOOKS_ON = { duplicate_rate: 0.1, drop_rate: 0.1, reorder: true } as const;
export const WEBHOOKS_OFF = { duplicate_rate: 0, drop_rate: 0, reorder: false, delay_ms: 0 } as const;

// A worker started again gets at least this long to poll before the next kill, so kills every
// second still let work through (and the kill cadence is --kill-every-s whenever startup is shorter).
const WORKER_MIN_UPTIME_MS = 1_000;
const WORKER_READY_TIMEOUT_MS = 60_000;

async function postJson(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`POST ${url}: HTTP ${res.status} ${await res.text()}`);
}

export async function setPspFaults(stack: ChaosStack, on: boolean): Promise<void> {
  await postJson(`${stack.psp_url}/_sandbox/faults`, on ? PSP_FAULTS_ON : PSP_FAULTS_OFF);
  await postJson(`${stack.psp_url}/_sandbox/webhooks`, on ? WEBHOOKS_ON : WEBHOOKS_OFF);
}

export interface ChaosCounts {
  worker_kills: number;
  worker_restart_ms_max: number;
  temporal_restarts: number;
  temporal_down_ms: number | null;
  api_restarts: number;
  api_down_ms: number | null;
  /** The SIGTERM did not end it within the grace period: it was SIGKILLed. */
  api_restart_forced: boolean;
  temporal_restart_forced: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Chaos {
  readonly counts: ChaosCounts = { worker_kills: 0, worker_restart_ms_max: 0, temporal_restarts: 0, temporal_down_ms: null, api_restarts: 0, api_down_ms: null, api_restart_forced: false, temporal_restart_forced: false };
  private on = false;
  /** Set when a kill or a restart failed: the run cannot go on as planned. */
  failure: Error | null = null;
  private killer: Promise<void> | null = null;
  // Process faults one at a time: a worker is not killed while Temporal is being restarted.
  private queue: Promise<unknown> = Promise.resolve();
  private worker_ready_at_ms = Date.now();
  private last_kill_at_ms = Date.now();

  constructor(
    private readonly stack: ChaosStack,
    private readonly note: (line: string) => void,
  ) {}

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  startKilling(every_s: number): void {
    this.on = true;
    this.last_kill_at_ms = Date.now();
    this.killer = this.killLoop(every_s * 1_000);
  }

  /** Never rejects: a failure (the worker did not come back) is kept in `failure` and ends the kills. */
  private async killLoop(every_ms: number): Promise<void> {
    try {
      while (this.on) {
        const due = Math.max(this.last_kill_at_ms + every_ms, this.worker_ready_at_ms + WORKER_MIN_UPTIME_MS);
        while (this.on && Date.now() < due) await sleep(Math.min(100, due - Date.now()));
        if (!this.on) return;
        await this.serial(() => this.killWorker());
      }
    } catch (err) {
      if (this.on) this.failure = err instanceof Error ? err : new Error(String(err));
      this.on = false;
    }
  }

  /** Stops the kills without waiting (cleanup after Ctrl-C or a failure). */
  halt(): void {
    this.on = false;
  }

  private async killWorker(): Promise<void> {
    const worker = service(this.stack, 'worker');
    const pid = worker.child?.pid;
    await worker.end('SIGKILL');
    this.counts.worker_kills++;
    this.last_kill_at_ms = Date.now();
    const offset = worker.logOffset();
    worker.start();
    await waitForLog(worker.log_file, offset, WORKER_READY_LINE, WORKER_READY_TIMEOUT_MS);
    this.worker_ready_at_ms = Date.now();
    const restart_ms = this.worker_ready_at_ms - this.last_kill_at_ms;
    this.counts.worker_restart_ms_max = Math.max(this.counts.worker_restart_ms_max, restart_ms);
    this.note(`worker killed (pid ${pid}), kill #${this.counts.worker_kills}; new worker polling after ${restart_ms} ms`);
  }

  /** SIGTERM, then the same command again: same port, same SQLite file, so history survives. */
  restartTemporal(): Promise<void> {
    return this.serial(async () => {
      const temporal = service(this.stack, 'temporal');
      const down_at = Date.now();
      const forced_before = temporal.forced_kills;
      await temporal.end('SIGTERM', TIMEOUTS.temporal_stop_grace_ms);
      this.counts.temporal_restart_forced = temporal.forced_kills > forced_before;
      temporal.start();
      await waitForTemporal(this.stack.temporal_address, TIMEOUTS.ready_ms);
      this.counts.temporal_restarts++;
      this.counts.temporal_down_ms = Date.now() - down_at;
      this.note(`Temporal dev server restarted: down ${this.counts.temporal_down_ms} ms${this.counts.temporal_restart_forced ? ' (SIGKILLed after the grace period)' : ''}`);
    });
  }

  /** SIGTERM (the API closes its server and its pool), then start it again on the same port. */
  async restartApi(): Promise<void> {
    const api = service(this.stack, 'api');
    const down_at = Date.now();
    const forced_before = api.forced_kills;
    await api.end('SIGTERM');
    this.counts.api_restart_forced = api.forced_kills > forced_before;
    api.start();
    await waitUntil('API after restart', httpOk(`${this.stack.api_url}/healthz`));
    this.counts.api_restarts++;
    this.counts.api_down_ms = Date.now() - down_at;
    this.note(`API restarted: down ${this.counts.api_down_ms} ms${this.counts.api_restart_forced ? ' (SIGTERM did not end it within the grace period: SIGKILLed)' : ''}`);
  }

  /** Stops the kills; resolves once the last restarted worker is polling. Throws the kill loop's failure, if any. */
  async stopKilling(): Promise<void> {
    this.on = false;
    await this.killer;
    await this.queue;
    if (this.failure !== null) throw this.failure;
  }
}
