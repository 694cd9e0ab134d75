import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The sandbox PSP and the product talk only over HTTP (API, hosted pages, webhooks, settlement
// files): neither imports the other's code. Tests and benches may use both.
const SANDBOX_IMPORTS = ['**/packages/sandbox-psp', '**/packages/sandbox-psp/**'];
const PRODUCT_IMPORTS = ['**/src/*', '**/migrations', '**/migrations/*'];

// Layers of src, top to bottom; a layer imports only layers below it (enforced by the blocks at
// the end of this file, one per layer):
//   entry points  src/api, src/workers, src/cli, src/dev
//   use cases     src/services (API and CLI), src/activities (workflows): peers, neither imports the other
//   homes         src/aggregates (payment, order, refund, payout, dispute), src/ledger, src/recon
//   base          src/psp, src/db, src/domain (pure), src/config, src/logger, src/metrics
// src/workflows imports only itself and src/domain (types of activities and recon are erased, so
// allowed). Nothing below the entry points imports src/api.
const dirs = (names) => names.flatMap((n) => [`**/${n}`, `**/${n}/**`]);
const ENTRY = ['api', 'workers', 'cli', 'dev'];
const HOMES = ['aggregates', 'ledger', 'recon'];
const BASE = ['psp', 'db', 'config', 'logger', 'metrics'];
// Any workflows module but the contract (pure definitions of signals, queries and failure types).
const WORKFLOWS_BUT_CONTRACT = { regex: '(^|/)workflows(/(?!contract$).*)?$', message: 'of src/workflows only the contract is imported here' };
const layer = (files, banned, message, options = {}, extra = []) => ({
  files,
  rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: banned, message, ...options }, ...extra] }] },
});

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', 'test-output/', 'dist/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: SANDBOX_IMPORTS }] },
  },
  {
    files: ['packages/sandbox-psp/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: PRODUCT_IMPORTS }] },
  },
  {
    // Product code reads in screens: a function longer than this is split into named steps.
    // Tests are exempt, and so are migrations (an applied migration is never rewritten).
    files: ['src/**/*.ts', 'packages/**/*.ts', 'bench/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 70, skipBlankLines: true, skipComments: true }] },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      // Workflow code must stay deterministic and free of I/O.
      'no-restricted-imports': ['error', { patterns: ['node:*', 'fs', 'http', 'https', 'net', 'pg', 'knex', 'express', '../activities/order', '../activities/payment', '../db*', '../psp/*', ...SANDBOX_IMPORTS] }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now' }, { object: 'Math', property: 'random' }],
    },
  },
  layer(['src/services/**/*.ts'], dirs([...ENTRY, 'activities']), 'a service imports homes and base modules, never an entry point or an activity'),
  layer(
    ['src/activities/**/*.ts'],
    dirs([...ENTRY, 'services']),
    'an activity imports homes, base modules and the workflow contract, never an entry point or a service',
    {},
    [WORKFLOWS_BUT_CONTRACT],
  ),
  layer(['src/aggregates/**/*.ts', 'src/ledger/**/*.ts', 'src/recon/**/*.ts'], dirs([...ENTRY, 'services', 'activities', 'workflows']), 'a home imports other homes and base modules only'),
  layer(
    ['src/psp/**/*.ts', 'src/db/**/*.ts', 'src/config.ts', 'src/logger.ts', 'src/metrics.ts'],
    dirs([...ENTRY, 'services', 'activities', ...HOMES]),
    'a base module imports base modules only (metrics names the contract\'s failure types)',
    {},
    [WORKFLOWS_BUT_CONTRACT],
  ),
  layer(['src/domain/**/*.ts'], dirs([...ENTRY, 'services', 'activities', 'workflows', ...HOMES, 'psp', 'db', 'logger', 'metrics']), 'src/domain is pure: it imports only itself and constants of src/config'),
  layer(
    ['src/workflows/**/*.ts'],
    dirs([...ENTRY, 'services', 'activities', ...HOMES, ...BASE]),
    'workflow code imports only itself and src/domain (type imports excepted)',
    { allowTypeImports: true },
  ),
);
