import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { ROOT } from './processes';

/**
 * `RECORD_HISTORIES=1 npx jest <suite>` keeps the histories a suite names in test/histories/<set>/
 * for the replay test (refresh only on purpose, as with `npm run histories:record`).
 */
export async function keepHistory(temporal: Client, workflow_id: string, set: string, file: string, run_id?: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const dir = path.join(ROOT, 'test/histories', set);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, file), `${historyToJSON(await temporal.workflow.getHandle(workflow_id, run_id).fetchHistory())}\n`);
}
