import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT, tsCommand } from '../../src/dev/run-ts';

const run = promisify(execFile);

/** Runs payctl as an operator would (its own process) against a database; never throws on a non-zero exit. */
export async function payctl(args: string[], database_url: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const cmd = tsCommand('src/cli/payctl.ts');
    const { stdout, stderr } = await run(cmd.command, [...cmd.args, ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: database_url, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
