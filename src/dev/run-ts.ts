import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');

/**
 * argv to run a TypeScript entry point as ONE node process (tsx as a loader). The `tsx` binary
 * would fork a second process, and a SIGKILL to it would orphan the real one.
 */
export function tsCommand(entry: string): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', path.resolve(ROOT, entry)] };
}
