#!/usr/bin/env node
// `npm test`: the whole suite. Type-checks and lints, then runs every vitest test (SQLite and
// PostgreSQL; the harness starts a throwaway PostgreSQL itself), and ends with one line
// `N passed, N failed` that CI reads. Type-check and lint count as one check each.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

process.env.TZ = 'UTC';
const results = '.test-results';
mkdirSync(results, { recursive: true });
rmSync(`${results}/vitest.json`, { force: true });

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

console.log('\n== tests: vitest run');
const vitest = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: process.env,
});
if (existsSync(`${results}/vitest.json`)) {
  const report = JSON.parse(readFileSync(`${results}/vitest.json`, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  // A file that failed to load has no failed tests of its own but must still fail the run.
  const brokenFiles = report.testResults.filter(
    (f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed'),
  ).length;
  failed += brokenFiles;
  if (vitest.status !== 0 && report.numFailedTests === 0 && brokenFiles === 0) failed++;
} else {
  console.log('== vitest wrote no report: counting the run as failed');
  failed++;
}
const summary = `${passed} passed, ${failed} failed`;
writeFileSync(`${results}/summary.txt`, summary + '\n');
console.log(summary);
process.exit(failed === 0 ? 0 : 1);
