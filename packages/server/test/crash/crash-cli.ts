/**
 * The long crash-safety run: `npm run test:crash -- --cycles 1000 [--store sqlite|postgres|both]`.
 * Prints one line per 50 cycles and a summary; exits non-zero if any acknowledged event was lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startTestPostgres } from '../support/postgres.ts';
import { appenderArgs, checkAfterCrash, runAppenderUntilKilled } from './harness.ts';

const { values } = parseArgs({
  options: { cycles: { type: 'string', default: '1000' }, store: { type: 'string', default: 'both' } },
});
const cycles = Number(values.cycles);
if (!Number.isInteger(cycles) || cycles < 1) {
  console.error('--cycles must be a whole number of at least 1');
  process.exit(2);
}
const stores =
  values.store === 'both' ? (['sqlite', 'postgres'] as const) : [values.store as 'sqlite' | 'postgres'];
let failed = false;
for (const store of stores) {
  const dataDir = mkdtempSync(join(tmpdir(), 'holdfast-crash-'));
  const server = store === 'postgres' ? await startTestPostgres() : null;
  let databaseUrl: string | undefined;
  if (server) {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query('create database crash_cli');
    await admin.end();
    const url = new URL(server.adminUrl);
    url.pathname = '/crash_cli';
    databaseUrl = url.toString();
  }
  const config = { store, dataDir, databaseUrl };
  let acked = 0;
  const started = Date.now();
  try {
    for (let cycle = 1; cycle <= cycles; cycle++) {
      const result = await checkAfterCrash(
        config,
        await runAppenderUntilKilled(appenderArgs(config), Math.floor(Math.random() * 250)),
      );
      acked += result.acked;
      if (result.missing.length > 0 || !result.verified) {
        console.error(
          `${store} cycle ${cycle}: ${result.missing.length} acknowledged events missing; verified=${result.verified} ${result.problem ?? ''}`,
        );
        failed = true;
        break;
      }
      if (cycle % 50 === 0)
        console.log(`${store}: ${cycle}/${cycles} cycles, ${acked} acknowledged events, all present`);
    }
  } finally {
    server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(
    `${store}: ${cycles} SIGKILL cycles in ${((Date.now() - started) / 1000).toFixed(0)} s, ${acked} acknowledged, lost ${failed ? 'some' : 0}`,
  );
}
process.exit(failed ? 1 : 0);
