import { loadEnv } from '../config';
import { createDb, type Knex } from '../db';
import { verifyLedger } from '../ledger/store';

/**
 * Operator CLI. Output is for people (one line per fact) with `--json` for scripts.
 * Exit codes: 0 ok, 1 an invariant broke, 2 usage error.
 */
const USAGE = `usage: payctl <command>
  ledger verify [--json]   check every ledger transaction sums to zero per currency and
                           every stored balance equals the sum of its entries`;

type Command = (db: Knex, flags: Set<string>) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  'ledger verify': async (db, flags) => {
    const report = await verifyLedger(db);
    if (flags.has('--json')) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } else {
      process.stdout.write(`ledger: ${report.transactions} transactions, ${report.entries} entries, ${report.accounts} accounts\n`);
      for (const b of report.breaks) process.stdout.write(`BREAK ${b.kind} id=${b.id} currency=${b.currency} ${b.detail}\n`);
      process.stdout.write(report.breaks.length === 0 ? 'ledger verify: OK\n' : `ledger verify: ${report.breaks.length} break(s)\n`);
    }
    return report.breaks.length === 0 ? 0 : 1;
  },
};

const KNOWN_FLAGS = new Set(['--json']);

async function main(argv: string[]): Promise<number> {
  const words = argv.filter((a) => !a.startsWith('--'));
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const command = COMMANDS[words.join(' ')];
  const unknown = [...flags].filter((f) => !KNOWN_FLAGS.has(f));
  if (command === undefined || unknown.length > 0) {
    process.stderr.write(`${unknown.length > 0 ? `unknown flag: ${unknown.join(' ')}\n` : ''}${USAGE}\n`);
    return 2;
  }
  const env = loadEnv();
  const db = createDb(env.DATABASE_URL, 2);
  try {
    return await command(db, flags);
  } finally {
    await db.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`payctl: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
