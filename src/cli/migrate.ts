import { loadEnv } from '../config';
import { createDb, ensureDatabase, migrateLatest } from '../db';
import { createLogger } from '../logger';

/** Creates the database if missing and runs every pending migration. */
async function main(): Promise<void> {
  const env = loadEnv();
  const log = createLogger('migrate', env.LOG_LEVEL);
  const created = await ensureDatabase(env.DATABASE_URL);
  const db = createDb(env.DATABASE_URL, 1);
  try {
    await migrateLatest(db);
    log.info({ created }, 'database migrated');
  } finally {
    await db.destroy();
  }
}

main().catch((err: unknown) => {
  createLogger('migrate').fatal({ err }, 'migration failed');
  process.exit(1);
});
