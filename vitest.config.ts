import { defineConfig } from 'vitest/config';

// Tests run in UTC; anything that needs another zone (Europe/London) says so explicitly.
process.env.TZ = 'UTC';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'packages/*/src/**/*.test.ts'],
    globalSetup: ['packages/server/test/support/global-setup.ts'],
    pool: 'forks',
    // Generous: property and crash tests run minutes on a loaded 2-core CI machine.
    testTimeout: 600_000,
    hookTimeout: 120_000,
    // scripts/test.mjs names the report of each of its runs.
    reporters: [
      'default',
      ['json', { outputFile: process.env.HOLDFAST_VITEST_REPORT ?? '.test-results/vitest.json' }],
    ],
  },
});
