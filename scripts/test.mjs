#!/usr/bin/env node
// `npm test`: the whole suite. Type-checks and lints (at the lowest CPU priority, beside the tests),
// runs every vitest test (SQLite and PostgreSQL; the harness starts a throwaway PostgreSQL itself),
// and ends with one line `N passed, N failed` that CI reads. Each type-check, the lint and the format
// check count as one check each.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

process.env.TZ = 'UTC';
const results = '.test-results';
mkdirSync(results, { recursive: true });

let passed = 0;
let failed = 0;

/** `nice`, where the machine has it (coreutils). */
const NICE = ['/usr/bin/nice', '/bin/nice'].find((path) => existsSync(path));

/**
 * The file and arguments to spawn for `command`: with `lowest`, through `nice -n 19`, so it and
 * every process it starts run at the lowest CPU priority (where the machine has `nice`).
 */
function spawnArgs(command, args, lowest) {
  return lowest && NICE ? [NICE, ['-n', '19', command, ...args]] : [command, args];
}

/**
 * Runs a command to its end, its stdout and stderr kept together to print at once; `lowest` runs it
 * at the lowest CPU priority.
 */
function run(command, args, { lowest = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(...spawnArgs(command, args, lowest), { env: process.env });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (error) => resolve({ status: 1, output: `${output}${error.message}\n` }));
    child.on('close', (status) => resolve({ status, output }));
  });
}

/**
 * The static checks, `lanes` at a time: each is one process. A check's output is printed whole when
 * it ends, so two checks' lines never interleave (nor with vitest's, beyond whole blocks). A check
 * that writes a results file (one `ok|failed <name>` line per check it ran) is counted by its lines;
 * any other by its exit status.
 */
async function staticChecks(checks, lanes) {
  const queue = [...checks];
  const one = async () => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const [name, command, args, resultsFile] = c;
      if (resultsFile) rmSync(resultsFile, { force: true });
      const started = Date.now();
      const { status, output } = await run(command, args, { lowest: true });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`\n== ${name}: ${command} ${args.join(' ')} (${seconds} s)`);
      if (output) process.stdout.write(output);
      const lines =
        resultsFile && existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8').split('\n') : [];
      const ran = lines.filter((l) => l.startsWith('ok ') || l.startsWith('failed '));
      const okCount = ran.filter((l) => l.startsWith('ok ')).length;
      // A check that stopped before writing its results, or that exited non-zero with every line
      // ok, still fails once.
      const uncounted = status !== 0 && ran.length === okCount ? 1 : 0;
      if (resultsFile) {
        passed += okCount;
        failed += ran.length - okCount + uncounted;
      } else if (status === 0) passed++;
      else failed++;
      if (status !== 0) console.log(`== ${name} FAILED (exit ${status})`);
    }
  };
  await Promise.all(Array.from({ length: lanes }, one));
}

/**
 * The type-checks (one per tsconfig) and the lint run in one process that builds each TypeScript
 * program once and hands it to ESLint's type-aware rules (they had built their own: 153 s of CPU for
 * the five commands, 113 s together). `npm run typecheck` and `npm run lint` run the same checks
 * separately. The longest first, so two lanes end together.
 */
const STATIC_CHECKS = [
  [
    'type-check and lint',
    'node',
    [
      '--max-old-space-size=6144',
      '--single-threaded-gc',
      'scripts/check-types-and-lint.mjs',
      '--results',
      `${results}/static.txt`,
    ],
    `${results}/static.txt`,
  ],
  ['format', 'npx', ['prettier', '--check', '.', '--log-level', 'warn']],
];

/**
 * better-sqlite3's native module, built if the install left it unbuilt. CI installs with
 * `npm ci --ignore-scripts` and leaves the build to here: where no prebuilt binary can be fetched
 * it compiles SQLite from source, about 55 s on one core, and here that runs beside the type-checks
 * on the other core instead of before everything. Resolves true when the module is there.
 */
async function nativeSqlite() {
  const pkg = dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
  if (existsSync(join(pkg, 'build', 'Release', 'better_sqlite3.node'))) return true;
  const started = Date.now();
  const { status, output } = await run('npm', ['rebuild', 'better-sqlite3', '--foreground-scripts']);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `\n== build better-sqlite3 (npm rebuild better-sqlite3): ${status === 0 ? 'done' : 'FAILED'} (${seconds} s)`,
  );
  if (status !== 0) {
    process.stdout.write(output);
    failed++;
    return false;
  }
  return true;
}

/**
 * Test files that measure wall-clock time (a sign-in timing comparison, fair use under load, sync
 * and process start-up bounds, the drill's recovery time, the live dashboard's second, the handover
 * window): they run one at a time, after the rest, so another file's work cannot push them past
 * their bounds (beside them runs only BESIDE_ALONE, at the lowest CPU priority).
 *
 * Not here, though they once were, because they hold no bound of time:
 * - the outbox soak (messaging/soak.test.ts): its deadlines are generous (two minutes to start a
 *   process, or to see every message accepted, against about 20 s taken when measured), and it
 *   kills its sender when the receiver has taken a given number of messages, not after a given time;
 * - the crash cycles (crash/crash.test.ts): every acknowledged event must survive each SIGKILL
 *   however many there were. Its kills come a random 0-250 ms after the appender is ready, and on a
 *   busy machine it still acknowledges thousands before them (measured beside the bad-input sweep:
 *   7,891 and 2,572 events over the 25 cycles on SQLite and PostgreSQL, against 9,252 and 2,792
 *   alone; one or two cycles killed before any, either way).
 * A busy machine changes only how long they take; alone, each left more than one of the two cores idle.
 */
const SERIAL = [
  'packages/server/test/http/sign-in-timing.test.ts',
  'packages/server/test/http/fair-use.test.ts',
  'packages/server/test/sync/http.test.ts',
  'packages/server/test/sync/processes.test.ts',
  'packages/server/test/cli/writer-lock.test.ts',
  'packages/server/test/drill/drill.test.ts',
  'packages/web/test/dashboard-live.test.ts',
  'packages/web/test/handover.test.ts',
];

/**
 * A long file that holds no bound of time, run at the lowest CPU priority beside the files run alone
 * instead of among the files run two at a time: the tenant-isolation sweep (10,000 requests on each
 * of three stores, on an injected clock). Alone, the timed files left about half of the two cores
 * idle (one file at a time, much of it waiting on its processes), and at nice 19 a process gets
 * about 1.5% of a core that one of them wants (CFS weights 15 against 1024). The two vCPUs may share
 * a physical core, though, so it is not free: beside it the browser files took about 5 s longer
 * (handover 35 s against 30 s). Fresh-clone runs with it beside them took 870 and 864 s, against
 * 909 and 959 s without (6 Dec 2026); with the sync simulation beside them too, 868 s and the timed
 * files slower still, so the simulation stays with the rest. Not the bad-input sweep: it bounds a
 * pg_sleep injection's answer at 2.9 s, which a starved process could miss.
 */
const BESIDE_ALONE = ['packages/server/test/http/tenant-isolation.test.ts'];

/**
 * One vitest run, its JSON report added to the totals. Much of the suite waits on child processes,
 * PostgreSQL and Chromium, so the rest runs two files at a time even on two cores (vitest's own
 * default there is one).
 */
async function vitestRun(name, args, report, { lowest = false } = {}) {
  console.log(`\n== tests: ${name}: vitest run ${args.join(' ')}`);
  rmSync(report, { force: true });
  const status = await new Promise((resolve) => {
    const vitest = spawn(...spawnArgs('npx', ['vitest', 'run', ...args], lowest), {
      stdio: 'inherit',
      env: { ...process.env, HOLDFAST_VITEST_REPORT: report },
    });
    vitest.on('close', (code) => resolve(code));
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
  if (status !== 0 && r.numFailedTests === 0 && brokenFiles === 0) failed++;
}

/**
 * The tests' stores, PostgreSQL's data directory and every other temporary file go to a directory in
 * memory (/dev/shm) where the machine has one with room. Nearly half of a route-sweeping test's time
 * on a virtual disk was spent waiting for fsync, and no test here is about a power cut: the crash
 * tests kill processes, and what a killed process wrote is kept by the kernel either way, so every
 * test means the same on either. `HOLDFAST_TEST_ON_DISK=1` keeps the usual temporary directory
 * (the stores' durability on a real disk is measured by the benchmarks and `npm run test:crash`).
 */
function temporaryDirectoryInMemory() {
  if (process.env.HOLDFAST_TEST_ON_DISK === '1' || !existsSync('/dev/shm')) return null;
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize < 6 * 1024 ** 3) return null;
    const dir = mkdtempSync(join('/dev/shm', 'holdfast-tests-'));
    // As /tmp: PostgreSQL runs as its own user when the suite runs as root, and must reach its directory.
    chmodSync(dir, 0o1777);
    return dir;
  } catch {
    return null;
  }
}
const inMemory = temporaryDirectoryInMemory();
if (inMemory) {
  process.env.TMPDIR = inMemory;
  console.log(`\n== temporary files (stores, PostgreSQL) in memory: ${inMemory}`);
}

/** Files run at once outside the serial list (`HOLDFAST_TEST_WORKERS`, default 2: see `vitestRun`). */
const WORKERS = Number(process.env.HOLDFAST_TEST_WORKERS ?? 2) || 2;

const chosen = process.argv.slice(2);
const sqliteReady = nativeSqlite();
if (chosen.length > 0) {
  const [, built] = await Promise.all([staticChecks(STATIC_CHECKS, 2), sqliteReady]);
  if (built) await vitestRun('chosen', chosen, `${results}/vitest.json`);
} else {
  // The static checks run one at a time, at the lowest CPU priority, from the start: beside the
  // build, then beside the files run two at a time, which wait much of their time on child
  // processes, PostgreSQL and Chromium. They take what the tests leave and no longer hold the tests
  // back (in three runs they ended 250-280 s in, long before the timed files); nothing waits for
  // them but the summary. The files start once better-sqlite3 is built (at once, when the install
  // built it).
  const checks = staticChecks(STATIC_CHECKS, 1);
  if (await sqliteReady) {
    await vitestRun(
      `${WORKERS} at a time`,
      [`--maxWorkers=${WORKERS}`, ...[...SERIAL, ...BESIDE_ALONE].flatMap((f) => ['--exclude', f])],
      `${results}/vitest-parallel.json`,
    );
    // Two vitest runs at once: their lines interleave, each file's block whole.
    await Promise.all([
      vitestRun('alone', ['--maxWorkers=1', ...SERIAL], `${results}/vitest-serial.json`),
      vitestRun(
        'beside those, at the lowest priority',
        ['--maxWorkers=1', ...BESIDE_ALONE],
        `${results}/vitest-beside.json`,
        { lowest: true },
      ),
    ]);
  }
  await checks;
}
if (inMemory) rmSync(inMemory, { recursive: true, force: true });
const summary = `${passed} passed, ${failed} failed`;
writeFileSync(`${results}/summary.txt`, summary + '\n');
console.log(summary);
process.exit(failed === 0 ? 0 : 1);
