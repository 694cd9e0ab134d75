import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { Connection } from '@temporalio/client';
import { ROOT, tsCommand } from '../../src/dev/run-ts';
import { freePort } from '../../src/dev/net';

export { ROOT, freePort };

export interface Service {
  name: string;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs a TypeScript entry point (relative to the repo root) as its own process. Output goes to
 * test-output/<name>.log so a failing run can be read afterwards without flooding jest.
 */
export function spawnTs(name: string, entry: string, env: Record<string, string>): Service {
  fs.mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
  const log = fs.openSync(path.join(ROOT, 'test-output', `${name}.log`), 'a');
  const { command, args } = tsCommand(entry);
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  return { name, child, stop: (signal) => stopChild(child, signal) };
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Polls a URL until it answers 2xx, or throws after timeout_ms. */
export async function waitForHttp(url: string, timeout_ms = 60_000): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${url}: ${last}`);
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** A worker is ready once it polls its task queue. */
export async function waitForPoller(address: string, task_queue: string, timeout_ms = 60_000): Promise<void> {
  const connection = await Connection.connect({ address });
  const deadline = Date.now() + timeout_ms;
  try {
    while (Date.now() < deadline) {
      const res = await connection.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: task_queue }, taskQueueType: 1 });
      if ((res.pollers ?? []).length > 0) return;
      await sleep(250);
    }
    throw new Error(`no worker polled ${task_queue} within ${timeout_ms} ms (see test-output/*.log)`);
  } finally {
    await connection.close();
  }
}

const LISTEN_TIMEOUT_MS = 60_000;

/**
 * Waits until the process itself says it listens (a line in its own log), or fails as soon as it
 * exits. A health check alone is not proof: the port from freePort() can be taken by another
 * process before ours binds it, and then that process answers the health check.
 */
export async function waitForOwnListen(service: Service, message: string, port: number): Promise<void> {
  const log_file = logFileOf(service);
  // Log files are appended to across runs: the line must name this port too.
  const said = (text: string): boolean => text.split('\n').some((l) => l.includes(`"msg":"${message}"`) && l.includes(`"port":${port},`));
  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (service.child.exitCode !== null || service.child.signalCode !== null) throw new Error(`${service.name} exited while starting (see ${log_file})`);
    if (fs.existsSync(log_file) && said(fs.readFileSync(log_file, 'utf8'))) return;
    await sleep(100);
  }
  throw new Error(`${service.name} did not log "${message}" on port ${port} within ${LISTEN_TIMEOUT_MS} ms`);
}

export const logFileOf = (service: Service): string => path.join(ROOT, 'test-output', `${service.name}.log`);
