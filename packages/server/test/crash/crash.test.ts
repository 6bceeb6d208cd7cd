import { afterAll, describe, expect, it } from 'vitest';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { appenderArgs, checkAfterCrash, runAppenderUntilKilled } from './harness.ts';

/**
 * Acceptance: a child appends in a loop and prints each acknowledged seq; the parent SIGKILLs it at
 * random moments; after each restart every acknowledged event is present and the ledger verifies.
 * The long version: `npm run test:crash -- --cycles 1000`.
 */
const CYCLES = Number(process.env.HOLDFAST_CRASH_CYCLES ?? 25);

describe.each(STORE_KINDS)('crash safety on %s', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it(`keeps every acknowledged append through ${CYCLES} SIGKILLs`, async () => {
    const fresh = await freshStore(kind);
    cleanups.push(fresh.cleanup);
    const config = fresh.config;
    let totalAcked = 0;
    let lastSeqSeen = 0;
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      // A spread of kill moments, from almost at once to mid-stream.
      const killAfterMs = Math.floor(Math.random() * 250);
      const acked = await runAppenderUntilKilled(appenderArgs(config), killAfterMs);
      const result = await checkAfterCrash(config, acked);
      expect(result.missing, `cycle ${cycle}: acknowledged events missing after SIGKILL`).toEqual([]);
      expect(result.verified, `cycle ${cycle}: ${result.problem}`).toBe(true);
      totalAcked += result.acked;
      lastSeqSeen = Math.max(lastSeqSeen, ...acked.keys());
    }
    // The test is only meaningful if the child really was killed mid-stream with work acknowledged.
    expect(totalAcked).toBeGreaterThan(CYCLES);
    expect(lastSeqSeen).toBeGreaterThan(CYCLES);
  });
});
