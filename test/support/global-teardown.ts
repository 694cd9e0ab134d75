import fs from 'node:fs';
import { dropDatabase } from '../../src/db';
import { stopStack, type TestStack } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as { __stack?: TestStack }).__stack;
  if (stack === undefined) return;
  await stopStack(stack);
  for (const url of stack.database_urls) await dropDatabase(url);
  const bundle = process.env.WORKFLOW_BUNDLE_PATH;
  if (bundle !== undefined) fs.rmSync(bundle, { force: true });
}
