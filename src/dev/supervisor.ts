import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import type { Logger } from '../logger';
import { ROOT, tsCommand } from './run-ts';
const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const HEALTHY_AFTER_MS = 30_000; // a child that ran this long gets its backoff reset
const STOP_GRACE_MS = 10_000;

/** Copies a child's output to ours, each line prefixed with the child's name. */
export function prefixOutput(name: string, child: ChildProcess): void {
  const width = 12;
  const tag = `[${name}]`.padEnd(width);
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    readline.createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${tag} ${line}\n`));
  }
}

export interface Supervised {
  name: string;
  stop(): Promise<void>;
}

/**
 * Runs a TypeScript entry point and restarts it with exponential backoff when it exits on its
 * own. Each restart is logged with the exit code and the delay.
 */
export function supervise(name: string, entry: string, env: NodeJS.ProcessEnv, log: Logger): Supervised {
  let child: ChildProcess | null = null;
  let stopping = false;
  let backoff_ms = BACKOFF_START_MS;
  let restart_timer: NodeJS.Timeout | undefined;

  const start = (): void => {
    const started_at = Date.now();
    const { command, args } = tsCommand(entry);
    child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    prefixOutput(name, child);
    child.once('exit', (code, signal) => {
      if (stopping) return;
      if (Date.now() - started_at > HEALTHY_AFTER_MS) backoff_ms = BACKOFF_START_MS;
      log.warn({ service: name, code, signal, restart_in_ms: backoff_ms }, 'child exited; restarting');
      restart_timer = setTimeout(start, backoff_ms);
      backoff_ms = Math.min(backoff_ms * 2, BACKOFF_MAX_MS);
    });
  };
  start();

  return {
    name,
    async stop() {
      stopping = true;
      clearTimeout(restart_timer);
      await stopProcess(child);
    },
  };
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the child's pipes are drained. */
export async function stopProcess(child: ChildProcess | null): Promise<void> {
  if (child === null) return;
  // 'close', not 'exit': wait until the child's last log lines have come through its pipes
  // (it may have exited already, e.g. on the Ctrl-C that reached the whole process group).
  const closed = child.stdout === null || child.stdout.readableEnded ? Promise.resolve() : new Promise<void>((resolve) => child.once('close', () => resolve()));
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await closed;
  clearTimeout(timer);
}
