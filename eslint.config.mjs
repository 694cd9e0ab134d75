import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The sandbox PSP and the product talk only over HTTP (API, hosted pages, webhooks, settlement
// files): neither imports the other's code. Tests and benches may use both.
const SANDBOX_IMPORTS = ['**/packages/sandbox-psp', '**/packages/sandbox-psp/**'];
const PRODUCT_IMPORTS = ['**/src/*', '**/migrations', '**/migrations/*'];

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
    files: ['src/workflows/**/*.ts'],
    rules: {
      // Workflow code must stay deterministic and free of I/O.
      'no-restricted-imports': ['error', { patterns: ['node:*', 'fs', 'http', 'https', 'net', 'pg', 'knex', 'express', '../activities/order', '../activities/payment', '../db*', '../psp/*', ...SANDBOX_IMPORTS] }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now' }, { object: 'Math', property: 'random' }],
    },
  },
);
