#!/usr/bin/env node
// `npm test`: the whole suite. Type-checks and lints, then runs every vitest test (SQLite and
// PostgreSQL; the harness starts a throwaway PostgreSQL itself), and ends with one line
// `N passed, N failed` that CI reads. Type-check and lint count as one check each.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

process.env.TZ = 'UTC';
const results = '.test-results';
mkdirSync(results, { recursive: true });

let passed = 0;
let failed = 0;
function check(name, command, args) {
  console.log(`\n== ${name}: ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { stdio: 'inherit', env: process.env });
  if (r.status === 0) passed++;
  else {
    failed++;
    console.log(`== ${name} FAILED (exit ${r.status})`);
  }
}

check('type-check core', 'npx', ['tsc', '-p', 'packages/core']);
check('type-check server', 'npx', ['tsc', '-p', 'packages/server']);
check('type-check web', 'npx', ['tsc', '-p', 'packages/web']);
check('type-check bench', 'npx', ['tsc', '-p', 'tsconfig.json']);
check('lint', 'npx', ['eslint', '.']);
check('format', 'npx', ['prettier', '--check', '.', '--log-level', 'warn']);

/**
 * Test files that measure wall-clock time (a sign-in timing comparison, fair use under load, sync
 * and process start-up bounds, the drill's recovery time, crash cycles): they run alone, after the
 * rest, so another file's work cannot push them past their bounds.
 */
const SERIAL = [
  'packages/server/test/http/sign-in-timing.test.ts',
  'packages/server/test/http/fair-use.test.ts',
  'packages/server/test/sync/http.test.ts',
  'packages/server/test/sync/processes.test.ts',
  'packages/server/test/cli/writer-lock.test.ts',
  'packages/server/test/crash/crash.test.ts',
  'packages/server/test/drill/drill.test.ts',
  'packages/server/test/messaging/soak.test.ts',
  'packages/web/test/dashboard-live.test.ts',
  'packages/web/test/handover.test.ts',
];

/**
 * One vitest run, its JSON report added to the totals. Much of the suite waits on child processes,
 * PostgreSQL and Chromium, so the rest runs two files at a time even on two cores (vitest's own
 * default there is one).
 */
function vitestRun(name, args, report) {
  console.log(`\n== tests: ${name}: vitest run ${args.join(' ')}`);
  rmSync(report, { force: true });
  const vitest = spawnSync('npx', ['vitest', 'run', ...args], {
    stdio: 'inherit',
    env: { ...process.env, HOLDFAST_VITEST_REPORT: report },
  });
  if (!existsSync(report)) {
    console.log(`== ${name}: vitest wrote no report: counting the run as failed`);
    failed++;
    return;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  // A file that failed to load has no failed tests of its own but must still fail the run.
  const brokenFiles = r.testResults.filter(
    (f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed'),
  ).length;
  failed += brokenFiles;
  if (vitest.status !== 0 && r.numFailedTests === 0 && brokenFiles === 0) failed++;
}

const chosen = process.argv.slice(2);
if (chosen.length > 0) vitestRun('chosen', chosen, `${results}/vitest.json`);
else {
  vitestRun(
    'two at a time',
    ['--maxWorkers=2', ...SERIAL.flatMap((f) => ['--exclude', f])],
    `${results}/vitest-parallel.json`,
  );
  vitestRun('alone', ['--maxWorkers=1', ...SERIAL], `${results}/vitest-serial.json`);
}
const summary = `${passed} passed, ${failed} failed`;
writeFileSync(`${results}/summary.txt`, summary + '\n');
console.log(summary);
process.exit(failed === 0 ? 0 : 1);
