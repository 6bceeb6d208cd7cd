import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Tests run in UTC; anything that needs another zone (Europe/London) says so explicitly.
process.env.TZ = 'UTC';

/**
 * Files that run long for their size, longest first (wall times of a CI run, two files at a time).
 * On a fresh clone vitest has no timings of earlier runs and starts the largest files first: one
 * of these started among the last (a small file with a long run) would keep one lane going while
 * the other has nothing left to do. Started first, the short files fill in around them.
 */
const LONG_RUNNING = [
  'packages/server/test/http/bad-input.test.ts',
  'packages/server/test/http/tenant-isolation.test.ts',
  'packages/server/test/sync/simulation.test.ts',
  'packages/server/test/messaging/soak.test.ts',
  'packages/web/test/prescribing.test.ts',
  'packages/server/test/http/permissions.test.ts',
  'packages/server/test/http/site-limits.test.ts',
  'packages/server/test/cases/flow.test.ts',
  'packages/server/test/crash/crash.test.ts',
  'packages/web/test/accessibility.test.ts',
  'packages/web/test/referral.test.ts',
  'packages/server/test/ledger/tamper.test.ts',
  'packages/web/test/booking.test.ts',
  'packages/server/test/cli/cli.test.ts',
  'packages/web/test/record.test.ts',
];

/** vitest's order (earlier runs' timings when it has them, else size), with LONG_RUNNING first. */
class LongRunningFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONG_RUNNING.findIndex((path) => f.moduleId.endsWith(`/${path}`));
      return i === -1 ? LONG_RUNNING.length : i;
    };
    // Array.prototype.sort is stable: the rest keep vitest's order.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'packages/*/src/**/*.test.ts'],
    globalSetup: ['packages/server/test/support/global-setup.ts'],
    pool: 'forks',
    sequence: { sequencer: LongRunningFirst },
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
