import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { ApiSession, MemoryTotpSecrets } from '../../src/simulate/api-client.ts';
import { Store, type StoreOptions } from '../../src/store/store.ts';
import { createPgDatabase } from '../support/databases.ts';
import { freePort } from '../support/postgres.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

/**
 * Real processes on loopback: a hub on PostgreSQL and two sites on SQLite, each `holdfast serve`
 * in its own process, enrolled with one-time tokens through the CLI. The sites take calls through
 * the clinical API; the hub is SIGKILLed; the sites keep taking calls without waiting; the hub is
 * started again; everything converges: every acknowledged case on every node, once, and every
 * node's ledger verifies.
 */
const dirs: string[] = [];
const children = new Set<ChildProcess>();
let dropDb: (() => Promise<void>) | null = null;

function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `holdfast-${name}-`));
  dirs.push(dir);
  return dir;
}

/** The CLI in a child process, without blocking this one (several run at once). */
function holdfastAsync(args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, holdfastArgs(...args), {
      env: { ...process.env, CI: '1', NO_COLOR: '1', HOLDFAST_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`holdfast ${args.join(' ')} failed (${code}): ${out}`)),
    );
  });
}

function holdfast(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, holdfastArgs(...args), {
    encoding: 'utf8',
    env: { ...process.env, CI: '1', NO_COLOR: '1', HOLDFAST_LOG_LEVEL: 'warn', ...env },
    timeout: 60_000,
  });
  if (r.status !== 0)
    throw new Error(`holdfast ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

interface Served {
  url: string;
  child: ChildProcess;
  output: () => string;
}

/** `holdfast serve` in its own process; resolves when /health answers. */
async function serve(dataDir: string, port: number, env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(
    process.execPath,
    holdfastArgs('-d', dataDir, 'serve', '--port', String(port), '--host', '127.0.0.1'),
    {
      env: {
        ...process.env,
        CI: '1',
        NO_COLOR: '1',
        HOLDFAST_LOG_LEVEL: 'warn',
        // Quick rounds and a short back-off cap, so the test sees the return within seconds.
        HOLDFAST_SYNC_INTERVAL_SECONDS: '1',
        HOLDFAST_SYNC_MAX_BACKOFF_SECONDS: '2',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://localhost:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited (${child.exitCode}): ${out}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`serve did not answer within 30 s: ${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, child, output: () => out };
}

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

afterAll(async () => {
  for (const c of [...children]) await stop(c, 'SIGKILL');
  await dropDb?.();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function openCall(
  session: ApiSession,
  siteId: string,
  n: number,
): Promise<{ caseId: string; ms: number }> {
  const started = performance.now();
  const r = await session.call<{ caseId: string }>('POST', '/api/v1/calls', {
    siteId,
    caller: {
      name: `Caller ${n}`,
      relationship: 'self',
      callbackNumber: '0113 496 0123',
      callbackNumberReadBack: true,
    },
    location: 'At home',
    presentingComplaint: 'Feeling unwell',
  });
  expect(r.status).toBe(201);
  return { caseId: r.json.caseId, ms: performance.now() - started };
}

/** Waits until `session`'s node serves every case in `caseIds`. */
async function waitForCases(
  session: ApiSession,
  caseIds: readonly string[],
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let missing = [...caseIds];
  while (missing.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    for (const id of missing) {
      const r = await session.raw('GET', `/api/v1/cases/${id}`);
      if (r.status !== 200) still.push(id);
    }
    missing = still;
    if (missing.length > 0) await new Promise((r) => setTimeout(r, 300));
  }
  return missing;
}

describe('hub and two sites as real processes', () => {
  it('the hub stops, the sites keep working, the hub returns, and all converge with nothing lost or duplicated', async () => {
    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string) => marks.push(`${what}: ${Date.now() - t0} ms`);
    const db = await createPgDatabase();
    dropDb = db.drop;
    const hubEnv = { HOLDFAST_STORE: 'postgres', HOLDFAST_DATABASE_URL: db.url };
    const hubDir = tempDir('hub');
    const init = holdfast(['-d', hubDir, 'init', '--role', 'hub', '--node', 'hub-1', '--demo'], hubEnv);
    const password = /password, shown once: (\S+)/.exec(init)?.[1];
    expect(password).toBeDefined();
    mark('hub init');
    const [tokenA, tokenB] = (
      await Promise.all([
        holdfastAsync(['-d', hubDir, 'nodes', 'enrol-token'], hubEnv),
        holdfastAsync(['-d', hubDir, 'nodes', 'enrol-token'], hubEnv),
      ])
    ).map((out) => out.split('\n')[0]!.trim()) as [string, string];
    expect(tokenA).toMatch(/^hfe_/);

    mark('tokens');
    const hubPort = await freePort();
    let hub = await serve(hubDir, hubPort, hubEnv);
    mark('hub serving');
    const siteDirs = [tempDir('site-a'), tempDir('site-b')];
    const hubUrl = `http://127.0.0.1:${hubPort}`;
    await Promise.all([
      holdfastAsync([
        '-d',
        siteDirs[0]!,
        'init',
        '--role',
        'site',
        '--node',
        'site-a',
        '--hub',
        hubUrl,
        '--token',
        tokenA,
      ]),
      holdfastAsync([
        '-d',
        siteDirs[1]!,
        'init',
        '--role',
        'site',
        '--node',
        'site-b',
        '--hub',
        hubUrl,
        '--token',
        tokenB,
      ]),
    ]);
    mark('sites init');
    const [portA, portB] = [await freePort(), await freePort()];
    const sites = await Promise.all([serve(siteDirs[0]!, portA), serve(siteDirs[1]!, portB)]);

    mark('sites serving');
    // Users come from the hub's ledger: the first sync at enrolment brought them to the sites.
    const secrets = new MemoryTotpSecrets();
    const at = (url: string, username: string) =>
      new ApiSession(new URL(url), { username, password: password! }, { secrets });
    const adviserA = at(sites[0]!.url, 'health-adviser@northshire');
    const clinicianB = at(sites[1]!.url, 'clinician@northshire');
    const siteId = (await adviserA.signIn()).siteIds[0]!;
    await clinicianB.signIn();

    mark('signed in');
    const acked: string[] = [];
    for (let i = 0; i < 3; i++) {
      acked.push((await openCall(adviserA, siteId, i)).caseId);
      acked.push((await openCall(clinicianB, siteId, 100 + i)).caseId);
    }
    // Each site sees the other's cases through the hub.
    expect(await waitForCases(adviserA, acked, 20_000)).toEqual([]);
    expect(await waitForCases(clinicianB, acked, 20_000)).toEqual([]);

    mark('first cases converged');
    // The hub is lost.
    await stop(hub.child, 'SIGKILL');
    const whileAway: { caseId: string; ms: number }[] = [];
    for (let i = 0; i < 4; i++) {
      whileAway.push(await openCall(adviserA, siteId, 200 + i));
      whileAway.push(await openCall(clinicianB, siteId, 300 + i));
    }
    acked.push(...whileAway.map((c) => c.caseId));
    // Nothing waited on the hub: each call was saved at once.
    const slowest = Math.max(...whileAway.map((c) => c.ms));
    expect(slowest).toBeLessThan(2_000);
    marks.push(`slowest call while the hub was away: ${Math.round(slowest)} ms`);
    // Each site reads its own new cases at once, and says it is disconnected.
    expect(
      await waitForCases(
        adviserA,
        whileAway.filter((_, i) => i % 2 === 0).map((c) => c.caseId),
        1_000,
      ),
    ).toEqual([]);
    // The site's next sync round (every second here) finds the hub gone: wait for that round's
    // result rather than a fixed time, then check all it says.
    type Away = {
      connected: boolean;
      unsentEvents: number;
      lastError: string | null;
      peer: { node: string };
    };
    const readAway = async () => (await adviserA.call<Away>('GET', '/api/v1/sync/status')).json;
    let away = await readAway();
    for (
      const until = Date.now() + 15_000;
      (away.connected || !/unreachable/.test(away.lastError ?? '')) && Date.now() < until;
    ) {
      await new Promise((r) => setTimeout(r, 100));
      away = await readAway();
    }
    expect(away.connected).toBe(false);
    expect(away.peer.node).toBe('hub-1');
    expect(away.unsentEvents).toBeGreaterThan(0);
    expect(away.lastError).toMatch(/unreachable/);

    mark('outage done');
    // The hub returns on the same store and address.
    hub = await serve(hubDir, hubPort, hubEnv);
    expect(await waitForCases(adviserA, acked, 30_000)).toEqual([]);
    expect(await waitForCases(clinicianB, acked, 30_000)).toEqual([]);
    mark('hub back, converged');
    const back = (await adviserA.call<{ connected: boolean }>('GET', '/api/v1/sync/status')).json;
    expect(back.connected).toBe(true);
    // Reading cases wrote audit events: wait until both sites and the hub hold the same chains.
    type Status = { positions: { local: Record<string, number>; peer: Record<string, number> | null } };
    const quiet = Date.now() + 30_000;
    for (;;) {
      const a = (await adviserA.call<Status>('GET', '/api/v1/sync/status')).json.positions;
      const b = (await clinicianB.call<Status>('GET', '/api/v1/sync/status')).json.positions;
      const same = [b.local, a.peer, b.peer].every((p) => JSON.stringify(p) === JSON.stringify(a.local));
      if (same) break;
      if (Date.now() > quiet) throw new Error(`not converged: ${JSON.stringify({ a, b })}`);
      await new Promise((r) => setTimeout(r, 300));
    }

    mark('quiet');
    // Stop everything cleanly, then look at each store: every case once, every ledger sound.
    for (const c of [...children]) await stop(c);
    const hubCases = await pgCaseCounts(db.url);
    const siteCases = siteDirs.map((d) => sqliteCaseCounts(join(d, 'holdfast.sqlite')));
    for (const counts of [hubCases, ...siteCases]) {
      for (const id of acked) expect(counts.get(id), `case ${id}`).toBe(1);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
    }
    // Every node holds the same events.
    const heads = [await pgHeads(db.url), ...siteDirs.map((d) => sqliteHeads(join(d, 'holdfast.sqlite')))];
    expect(heads[1]).toEqual(heads[0]);
    expect(heads[2]).toEqual(heads[0]);
    mark('stores checked');
    // What `holdfast verify` runs (verifyStore), in this process: three more CLI start-ups cost
    // more than the verification itself.
    const reports = [
      await verifyAt({ dialect: 'postgres', connectionString: db.url }),
      ...(await Promise.all(
        siteDirs.map((d) => verifyAt({ dialect: 'sqlite', file: join(d, 'holdfast.sqlite') })),
      )),
    ];
    mark('verified');
    // HOLDFAST_TEST_TIMINGS=1 prints where the time went (process start-ups dominate).
    if (process.env.HOLDFAST_TEST_TIMINGS) console.log(marks.join('\n'));
    for (const r of reports) {
      expect(r.faults).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.eventsChecked).toBeGreaterThan(acked.length);
    }
  }, 180_000);
});

async function verifyAt(options: StoreOptions) {
  const store = await Store.open(options);
  try {
    return await verifyStore(store, ledgerCrypto, {});
  } finally {
    await store.close();
  }
}

/** case.opened events per case id. */
function sqliteCaseCounts(file: string): Map<string, number> {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const rows = db
      .prepare(
        `select json_extract(payload, '$.caseId') as id, count(*) as n from ledger_events where type = 'case.opened' group by id`,
      )
      .all() as { id: string; n: number }[];
    return new Map(rows.map((r) => [r.id, Number(r.n)]));
  } finally {
    db.close();
  }
}

function sqliteHeads(file: string): Record<string, number> {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const rows = db
      .prepare('select node, max(seq) as seq from ledger_events group by node order by node')
      .all() as {
      node: string;
      seq: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.node, Number(r.seq)]));
  } finally {
    db.close();
  }
}

async function pgCaseCounts(url: string): Promise<Map<string, number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ id: string; n: string }>(
      `select payload::jsonb->>'caseId' as id, count(*) as n from ledger_events where type = 'case.opened' group by 1`,
    );
    return new Map(r.rows.map((row) => [row.id, Number(row.n)]));
  } finally {
    await c.end();
  }
}

async function pgHeads(url: string): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ node: string; seq: string }>(
      'select node, max(seq) as seq from ledger_events group by node order by node',
    );
    return Object.fromEntries(r.rows.map((row) => [row.node, Number(row.seq)]));
  } finally {
    await c.end();
  }
}
