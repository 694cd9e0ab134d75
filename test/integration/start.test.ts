import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { freePort, ROOT, sleep, spawnTs, type Service } from '../support/processes';

/**
 * `npm start` (src/dev/start.ts) against the suite's Temporal server (TEMPORAL_ADDRESS set, so it
 * starts none) on fresh ports: demo payment, supervision of a crashed child, clean Ctrl-C.
 */
function childrenOf(pid: number): { pid: number; cmd: string }[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return ppid === pid ? [{ pid: Number(d), cmd: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ') }] : [];
    } catch {
      return [];
    }
  });
}

const alive = (pid: number): boolean => fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');

async function waitForLog(file: string, pattern: RegExp, timeout_ms = 60_000, from = 0): Promise<string> {
  const deadline = Date.now() + timeout_ms;
  while (Date.now() < deadline) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').slice(from) : '';
    const match = pattern.exec(text);
    if (match !== null) return match[0];
    await sleep(200);
  }
  throw new Error(`no ${pattern} in ${file}`);
}

describe('npm start', () => {
  let start: Service | null = null;
  afterEach(async () => {
    await start?.stop('SIGKILL');
  });

  it('runs the demo payment, restarts a crashed worker, and stops every child on Ctrl-C', async () => {
    const name = `start-${randomUUID().slice(0, 8)}`;
    const log_file = path.join(ROOT, 'test-output', `${name}.log`);
    const [api_port, psp_port] = [await freePort(), await freePort()];
    start = spawnTs(name, 'src/dev/start.ts', {
      API_PORT: String(api_port),
      SANDBOX_PORT: String(psp_port),
      PSP_URL: `http://127.0.0.1:${psp_port}`,
      TEMPORAL_TASK_QUEUE: `start-${randomUUID()}`,
      WORKER_METRICS_PORT: '0',
      SANDBOX_IGNORE_IDEMPOTENCY: '0',
    });
    const pid = Number(start.child.pid);
    expect(await waitForLog(log_file, /demo payment pay_[0-9a-f]+: succeeded/)).toBeTruthy();
    expect(await waitForLog(log_file, /Temporal UI: http:\/\/\S+\/workflows\/payment-pay_[0-9a-f]+/)).toBeTruthy();

    const children = childrenOf(pid);
    const worker = children.find((c) => c.cmd.includes('src/workers/main.ts'));
    expect(worker).toBeDefined();
    const offset = fs.readFileSync(log_file, 'utf8').length;
    process.kill(Number(worker?.pid), 'SIGKILL');
    await waitForLog(log_file, /"service":"worker".*"msg":"child exited; restarting"/, 30_000, offset);
    await waitForLog(log_file, /\[worker\]\s+\{.*"msg":"worker running"/, 60_000, offset);

    const running = childrenOf(pid).map((c) => c.pid);
    expect(running.length).toBeGreaterThanOrEqual(3);
    start.child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => start?.child.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    for (const child of running) expect(alive(child)).toBe(false);
  });

  it('refuses to create the demo merchant when NODE_ENV=production', async () => {
    const name = `start-prod-${randomUUID().slice(0, 8)}`;
    start = spawnTs(name, 'src/dev/start.ts', { NODE_ENV: 'production' });
    const code = await new Promise<number | null>((resolve) => start?.child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(fs.readFileSync(path.join(ROOT, 'test-output', `${name}.log`), 'utf8')).toContain('refuses NODE_ENV=production');
  });
});
