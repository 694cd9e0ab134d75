import { ensureTemporalCli } from './temporal';

// `npm run setup:temporal`: finds the Temporal CLI or builds it once (scripts/ensure-test-env.mjs runs it when missing).
process.stdout.write(`temporal CLI: ${ensureTemporalCli((m) => process.stdout.write(`${m}\n`))}\n`);
