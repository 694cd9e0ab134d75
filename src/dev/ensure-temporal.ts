import { ensureTemporalCli } from './temporal';

// `npm run setup:temporal`: finds the Temporal CLI or builds it once (CI runs this before tests).
process.stdout.write(`temporal CLI: ${ensureTemporalCli((m) => process.stdout.write(`${m}\n`))}\n`);
