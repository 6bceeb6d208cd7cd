import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { casesDb } from '../../src/cases/projection.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import {
  dispositionGroups,
  formatSummary,
  mulberry32,
  parseDuration,
  runSimulation,
  type SimulatorOptions,
} from '../../src/simulate/simulator.ts';
import { PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * `holdfast simulate` against a real node listening on loopback: the simulator signs in over HTTP
 * (enrolling TOTP, codes from the test's fixed clock), takes 40 calls with a fixed seed, and a
 * clinician works the queue. The cases exist, the mix is the pack's within wide bands, and the
 * ledger verifies.
 */
describe('holdfast simulate', () => {
  let t: TestApp;
  let url: string;
  let dir: string;
  let options: SimulatorOptions;
  const lines: string[] = [];

  beforeAll(async () => {
    t = await startTestApp('sqlite', { providers: ['northshire'] });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'holdfast-sim-'));
    options = {
      url,
      adviser: { username: 'health_adviser@northshire', password: PASSWORD },
      clinician: { username: 'clinician@northshire', password: PASSWORD },
      stateFile: join(dir, 'simulator.json'),
      // Fast enough that arrivals never wait on the wall clock: the run is bound by the requests.
      callsPerHour: 3_600_000,
      durationMs: 240_000,
      seed: 20_261_129,
      backlog: 3,
      clock: t.clock,
      progress: (line) => lines.push(line),
    };
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('takes 40 calls with a realistic mix, works the queue, and the ledger verifies', async () => {
    const summary = await runSimulation({ ...options, untilCount: 40 });
    expect(summary.errors, formatSummary(summary)).toEqual([]);
    expect(summary.stoppedBy).toBe('count');
    expect(summary.accounts.map((a) => a.enrolled)).toEqual([true, true]);
    expect(summary.calls).toMatchObject({ opened: 40, triaged: 40, failed: 0 });

    // The cases exist, each with the disposition the simulator saw.
    const rows = await t.node.store.withTenant('northshire', (trx) =>
      casesDb(trx)
        .selectFrom('cases')
        .select(['case_id', 'status', 'disposition_kind', 'news2_total'])
        .where('tenant', '=', 'northshire')
        .execute(),
    );
    expect(new Set(rows.map((r) => r.case_id))).toEqual(new Set(summary.caseIds));
    expect(rows.every((r) => r.disposition_kind !== null)).toBe(true);
    // Dental and pharmacy dispositions are recorded as such (IUC ADC E12 counts dental).
    const kinds: Record<string, number> = {};
    for (const r of rows) kinds[r.disposition_kind!] = (kinds[r.disposition_kind!] ?? 0) + 1;
    expect(kinds).toEqual(Object.fromEntries(Object.entries(summary.dispositions).filter(([, n]) => n > 0)));

    // The mix, within generous bands for 40 calls (the pack: about 12% ambulance, 9% ED, 60%
    // primary care, 15% self-care).
    const g = dispositionGroups(summary.dispositions);
    expect(g.ambulance).toBeLessThanOrEqual(12);
    expect(g.ed_utc).toBeLessThanOrEqual(10);
    expect(g.primary_care).toBeGreaterThanOrEqual(14);
    expect(g.primary_care).toBeLessThanOrEqual(34);
    expect(g.self_care).toBeLessThanOrEqual(14);
    expect(g.ambulance + g.ed_utc + g.self_care + g.other).toBeGreaterThanOrEqual(4);

    // Cases reached the queue; the clinician consulted some, and left the backlog waiting.
    expect(summary.queued).toBeGreaterThan(3);
    expect(rows.filter((r) => r.status === 'queued').length).toBeGreaterThan(0);
    expect(summary.clinician.consulted).toBeGreaterThanOrEqual(1);
    expect(summary.queueAtEnd?.waiting).toBeLessThanOrEqual(3);
    const consulted = rows.filter((r) => summary.consultedCaseIds.includes(r.case_id));
    expect(consulted.length).toBe(summary.clinician.consulted);
    expect(consulted.every((r) => r.news2_total !== null)).toBe(true);
    expect(summary.clinician.callbacks.answered).toBeGreaterThanOrEqual(summary.clinician.consulted);

    const report = await verifyStore(t.node.store, ledgerCrypto);
    expect(report.ok).toBe(true);
    expect(report.faults).toEqual([]);

    // The TOTP secrets are kept for later runs, readable by the owner only.
    expect(statSync(options.stateFile!).mode & 0o777).toBe(0o600);
    const state = JSON.parse(readFileSync(options.stateFile!, 'utf8')) as {
      totp: Record<string, { secret: string; lastStep: number }>;
    };
    expect(Object.keys(state.totp).sort()).toEqual([
      `${url} clinician@northshire`,
      `${url} health_adviser@northshire`,
    ]);
    expect(formatSummary(summary)).toMatch(/Disposition mix/);
    expect(lines.some((l) => /enrolled an authenticator app/.test(l))).toBe(true);
  });

  it('signs in with codes at a later run, and repeats its calls with the same seed', async () => {
    const pathwaysOf = async (caseIds: string[]) => {
      const rows = await t.node.store.withTenant('northshire', (trx) =>
        casesDb(trx)
          .selectFrom('cases')
          .select(['case_id', 'pathway_id', 'answers', 'disposition_kind'])
          .where('tenant', '=', 'northshire')
          .execute(),
      );
      const byId = new Map(rows.map((r) => [r.case_id, r]));
      return caseIds.map((id) => {
        const r = byId.get(id)!;
        const answers = JSON.parse(r.answers) as { nodeId: string; value: unknown }[];
        return {
          pathway: r.pathway_id,
          answers: answers.map((a) => [a.nodeId, a.value]),
          kind: r.disposition_kind,
        };
      });
    };
    t.clock.advance(30_000);
    const first = await pathwaysOf(
      (await runSimulation({ ...options, untilCount: 5, seed: 7 })).caseIds.slice(0, 5),
    );
    // The server's clock has not moved: the code of the next time step (inside the server's window).
    const again = await runSimulation({ ...options, untilCount: 5, seed: 7 });
    expect(again.errors).toEqual([]);
    expect(again.accounts.map((a) => a.enrolled)).toEqual([false, false]);
    // Calls may finish out of order (several in flight): compare as sets.
    const second = await pathwaysOf(again.caseIds);
    const key = (x: unknown) => JSON.stringify(x);
    expect(second.map(key).sort()).toEqual(first.map(key).sort());
  });

  it('parses durations, and its generator is seeded', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(() => parseDuration('25h')).toThrow(/at most 24h/);
    expect(() => parseDuration('soon')).toThrow(/looks like/);
    const a = mulberry32(42);
    const b = mulberry32(42);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });

  it('refuses a URL that is not loopback unless allowed', async () => {
    await expect(runSimulation({ ...options, url: 'http://192.0.2.1:8080', untilCount: 1 })).rejects.toThrow(
      /not a loopback address/,
    );
  });
});
