import { createHash, randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiSession, MemoryTotpSecrets } from '../../src/simulate/api-client.ts';
import { holdfastArgs } from '../support/cli-entry.ts';
import { freePort } from '../support/postgres.ts';
import { holdfast, serve, tempDir, until } from '../support/processes.ts';
import { startPrimaryAndStandby, type ReplicatedPostgres } from '../support/replicated-postgres.ts';

/**
 * The hub on a primary with a synchronous streaming standby (docs/OPERATIONS.md), with real
 * PostgreSQL processes: a real `holdfast serve` whose HOLDFAST_DATABASE_URL names both hosts, an
 * adviser's clients opening calls steadily (each with its own Idempotency-Key), the primary killed
 * with SIGKILL mid-stream, the standby promoted. The hub finds the new primary by itself (no
 * restart); meanwhile it answers 503 (never 500) and /health says unavailable; a call whose outcome
 * was unknown is sent again with its key and recorded once; every acknowledged call is there
 * exactly once; `holdfast verify` is clean; calls go on.
 */
let servers: ReplicatedPostgres | null = null;
afterAll(() => servers?.stop());

const CLIENTS = 3;

describe('the hub on a primary with a synchronous standby', () => {
  it('reconnects to the promoted standby by itself and loses nothing acknowledged', async () => {
    const pgs = (servers = await startPrimaryAndStandby());
    const admin = new pg.Client({ connectionString: pgs.adminUrl(pgs.primaryPort) });
    await admin.connect();
    await admin.query('create database holdfast');
    await admin.end();
    const databaseUrl = `postgres://postgres@127.0.0.1:${pgs.primaryPort},127.0.0.1:${pgs.standbyPort}/holdfast`;
    const operatorToken = randomUUID();
    const hubEnv = {
      HOLDFAST_STORE: 'postgres',
      HOLDFAST_DATABASE_URL: databaseUrl,
      HOLDFAST_OPERATOR_TOKEN_SHA256: createHash('sha256').update(operatorToken).digest('hex'),
    };
    const hubDir = tempDir('failover-hub');
    const init = holdfast(['-d', hubDir, 'init', '--role', 'hub', '--node', 'hub-1', '--demo'], hubEnv);
    const password = /password, shown once: (\S+)/.exec(init)![1]!;
    const port = await freePort();
    const hub = await serve(hubDir, port, hubEnv);
    let hubOutput = '';
    hub.stdout!.on('data', (d: Buffer) => (hubOutput += d.toString()));
    hub.stderr!.on('data', (d: Buffer) => (hubOutput += d.toString()));
    // The hub must not end during the test: if it does, what it said is the first thing to read.
    let finished = false;
    hub.on('exit', (code) => {
      if (!finished) console.error(`the hub exited (${code}):\n${hubOutput}`);
    });

    const adviser = new ApiSession(
      new URL(`http://localhost:${port}`),
      { username: 'health-adviser@northshire', password },
      { secrets: new MemoryTotpSecrets(), timeoutMs: 20_000 },
    );
    const siteId = (await adviser.signIn()).siteIds[0]!;
    const casesBefore = await countCases(pgs.adminUrl(pgs.primaryPort).replace(/postgres$/, 'holdfast'));

    /** Idempotency-Key → the case the hub said it opened (acknowledged). */
    const acknowledged = new Map<string, string>();
    /** Keys answered "not known whether saved": each is sent again until it is acknowledged. */
    const unknownOutcome = new Set<string>();
    const statuses = new Map<number, number>();
    const healthCodes = new Set<number>();
    let phase: 'before' | 'after' | 'stop' = 'before';
    let acknowledgedAfterPromotion = 0;
    const openCall = async (key: string) => {
      const r = await adviser.raw(
        'POST',
        '/api/v1/calls',
        {
          siteId,
          caller: {
            name: 'Test caller',
            relationship: 'self',
            callbackNumber: '0113 496 0123',
            callbackNumberReadBack: true,
          },
          location: 'At home',
          presentingComplaint: 'Not clinically validated: failover test',
        },
        { 'idempotency-key': key },
      );
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 201 || r.status === 200) {
        const caseId = (JSON.parse(r.body) as { caseId: string }).caseId;
        const before = acknowledged.get(key);
        expect(before === undefined || before === caseId, 'a retry names the case it opened').toBe(true);
        acknowledged.set(key, caseId);
        return 'ok';
      }
      expect(r.status, r.body).toBe(503);
      const problem = JSON.parse(r.body) as { code: string; detail: string };
      expect(['store_unavailable', 'outcome_unknown']).toContain(problem.code);
      expect(problem.detail).not.toMatch(/Test caller|0113|clinically/);
      if (problem.code === 'outcome_unknown') unknownOutcome.add(key);
      return 'retry';
    };
    const client = async () => {
      while (phase !== 'stop') {
        const key = randomUUID();
        // The same key until the hub acknowledges it, as a careful client would.
        while ((await openCall(key)) === 'retry') await new Promise((r) => setTimeout(r, 100));
        if (phase === 'after') acknowledgedAfterPromotion++;
      }
    };
    const health = async () => {
      while (phase !== 'stop') {
        healthCodes.add((await fetch(`http://127.0.0.1:${port}/health`)).status);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const running = [...Array.from({ length: CLIENTS }, client), health()];

    await until(
      'calls acknowledged before the failover',
      async () => acknowledged.size,
      (n) => n >= 10,
    );
    pgs.killPrimary();
    // The operator (or their failover manager) sees the primary gone and promotes the standby.
    await new Promise((r) => setTimeout(r, 1000));
    const healthProblem = async () =>
      (
        (await (
          await fetch(`http://127.0.0.1:${port}/health`, {
            headers: { authorization: `Bearer ${operatorToken}` },
            signal: AbortSignal.timeout(10_000),
          })
        ).json()) as { problem?: string }
      ).problem ?? '';
    expect(await healthProblem()).toMatch(/looking for the writable PostgreSQL primary/);
    pgs.promoteStandby();
    // The promoted standby inherited synchronous_standby_names and has no standby of its own: its
    // commits wait, and /health says so. The operator runs without one until the old machine is
    // rebuilt as the new standby (docs/OPERATIONS.md, failing over, step 3).
    await until('the hub says its commits wait for a standby', healthProblem, (p) =>
      /synchronous standby/.test(p),
    );
    await pgs.withoutSynchronousStandby(pgs.standbyPort);
    phase = 'after';
    await until(
      'calls acknowledged on the promoted standby',
      async () => acknowledgedAfterPromotion,
      (n) => n >= 10,
    );
    phase = 'stop';
    await Promise.all(running);

    // Never a 500; the loss was reported as 503 and /health said so.
    expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([201, 503]));
    expect(
      [...statuses.keys()].every((s) => s === 200 || s === 201 || s === 503),
      JSON.stringify([...statuses]),
    ).toBe(true);
    expect(healthCodes.has(503)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);

    // Every acknowledged call is on the promoted standby exactly once, and so is every call whose
    // outcome was unknown (it was sent again with its key until acknowledged).
    for (const key of unknownOutcome) expect(acknowledged.has(key)).toBe(true);
    const db = new pg.Client({
      connectionString: `postgres://postgres@127.0.0.1:${pgs.standbyPort}/holdfast`,
    });
    await db.connect();
    try {
      const cases = await db.query<{ case_id: string; n: string }>(
        `select payload::jsonb->>'caseId' as case_id, count(*) as n from ledger_events
          where type = 'case.opened' group by 1`,
      );
      const byCase = new Map(cases.rows.map((r) => [r.case_id, Number(r.n)]));
      for (const caseId of acknowledged.values()) expect(byCase.get(caseId), caseId).toBe(1);
      // No case beyond the acknowledged ones: nothing was recorded twice under another id.
      expect(cases.rows.length).toBe(casesBefore + new Set(acknowledged.values()).size);
      const requests = await db.query<{ key: string; n: string }>(
        'select idempotency_key as key, count(*) as n from call_requests group by idempotency_key having count(*) > 1',
      );
      expect(requests.rows).toEqual([]);
    } finally {
      await db.end();
    }

    // The chain verifies on the promoted standby (verify reads beside the running hub).
    const verify = spawnSync(process.execPath, holdfastArgs('-d', hubDir, 'verify'), {
      encoding: 'utf8',
      env: { ...process.env, ...hubEnv, NO_COLOR: '1', CI: '1' },
      timeout: 60_000,
    });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    finished = true;
  }, 120_000);
});

async function countCases(url: string): Promise<number> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const r = await db.query<{ n: string }>(
      `select count(*) as n from ledger_events where type = 'case.opened'`,
    );
    return Number(r.rows[0]!.n);
  } finally {
    await db.end();
  }
}
