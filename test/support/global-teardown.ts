import fs from 'node:fs';
import { createDb, dropDatabase } from '../../src/db';
import { verifyLedger } from '../../src/ledger/store';
import { stopStack, type TestStack } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as { __stack?: TestStack }).__stack;
  if (stack === undefined) return;
  await stopStack(stack);
  const breaks = await verifySuiteLedger(String(process.env.DATABASE_URL));
  for (const url of stack.database_urls) await dropDatabase(url);
  const bundle = process.env.WORKFLOW_BUNDLE_PATH;
  if (bundle !== undefined) fs.rmSync(bundle, { force: true });
  for (const file of stack.files) fs.rmSync(file, { force: true });
  if (breaks > 0) throw new Error(`ledger verify found ${breaks} break(s) after the suite`);
}

/** After every test has run: the suite's whole ledger must still verify (primer §9.1, §9.5). */
async function verifySuiteLedger(database_url: string): Promise<number> {
  const db = createDb(database_url, 1);
  try {
    const report = await verifyLedger(db);
    process.stdout.write(`\nledger verify after the suite: ${report.transactions} transactions, ${report.breaks.length} break(s)\n`);
    if (report.breaks.length > 0) process.stdout.write(`${JSON.stringify(report.breaks, null, 2)}\n`);
    return report.breaks.length;
  } finally {
    await db.destroy();
  }
}
