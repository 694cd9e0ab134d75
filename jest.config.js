/**
 * Two tiers. `unit`: pure logic, no services, seconds. `integration`: against real services that
 * its globalSetup starts (a Temporal dev server, the sandbox PSP, a worker, a fresh database).
 * Jest runs a project's globalSetup only when a test of that project is selected, so
 * `jest --selectProjects unit` starts nothing.
 */
const transform = { '^.+\\.ts$': ['@swc/jest'] };

module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
  // Both are global options (jest ignores a project's testTimeout); sized for the integration tier.
  testTimeout: 90_000,
  maxWorkers: 2,
};
