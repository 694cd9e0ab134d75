import { ensureTemporalCli } from './temporal';

// `npm run setup:temporal`: finds the Temporal CLI or builds it once (scripts/ensure-test-env.mjs runs it when missing).
try {
  process.stdout.write(`temporal CLI: ${ensureTemporalCli((m) => process.stdout.write(`${m}\n`))}\n`);
} catch (err) {
  // The message says what to do; a stack trace would bury it.
  process.stderr.write(`setup:temporal: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
