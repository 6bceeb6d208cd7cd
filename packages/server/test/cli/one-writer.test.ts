import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { ApiSession, MemoryTotpSecrets } from '../../src/simulate/api-client.ts';
import { Store, type StoreOptions } from '../../src/store/store.ts';
import { createPgDatabase } from '../support/databases.ts';
import { freePort } from '../support/postgres.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

/**
 * One chain, one writer. `holdfast serve` runs as a real process; every CLI command that writes is
 * then run against the same data directory, on both stores. Each must be refused plainly (exit 1,
 * naming the server as the writer and saying nothing was written) and must write nothing, while the
 * commands that only read run beside the server. The server keeps signing people in and saving
 * calls throughout, and its chain verifies afterwards.
 */
const dirs: string[] = [];
const children = new Set<ChildProcess>();
const drops: (() => Promise<void>)[] = [];

function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `holdfast-${name}-`));
  dirs.push(dir);
  return dir;
}

interface Run {
  args: string[];
  code: number | null;
  out: string;
}

/** The CLI in a child process (several run at once). HOLDFAST_* of this process never leak in. */
function holdfast(args: string[], env: Record<string, string>): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOLDFAST_')));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, holdfastArgs(...args), {
      env: { ...base, CI: '1', NO_COLOR: '1', HOLDFAST_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ args, code, out }));
  });
}

async function serve(dataDir: string, port: number, env: Record<string, string>): Promise<ChildProcess> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOLDFAST_')));
  const child = spawn(
    process.execPath,
    holdfastArgs('-d', dataDir, 'serve', '--port', String(port), '--host', '127.0.0.1'),
    {
      env: { ...base, CI: '1', NO_COLOR: '1', HOLDFAST_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited (${child.exitCode}): ${out}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`serve did not answer within 60 s: ${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
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
  for (const drop of drops) await drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function openCall(session: ApiSession, siteId: string, n: number): Promise<string> {
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
  return r.json.caseId;
}

/** Every command that writes the ledger or the projections. */
function writingCommands(dataDir: string, importFile: string, files: string): string[][] {
  const d = ['-d', dataDir];
  return [
    [
      ...d,
      'users',
      'add',
      '--username',
      'late@northshire',
      '--name',
      'Late Starter',
      '--roles',
      'receptionist',
    ],
    [...d, 'users', 'disable', '--username', 'receptionist@northshire', '--reason', 'left the service'],
    [...d, 'users', 'reset-mfa', '--username', 'receptionist@northshire', '--reason', 'lost phone'],
    [...d, 'nodes', 'enrol-token'],
    // Writes provider-keys.json, which the running server holds in memory.
    [...d, 'providers', 'rotate-key', '--provider', 'northshire-iuc'],
    [...d, 'providers', 'register-node'],
    [
      ...d,
      'nodes',
      'register',
      '--node',
      'site-z',
      '--public-key',
      'MCowBQYDK2VwAyEAb3RoZXJrZXlvdGhlcmtleW90aGVya2V5b3RoZXI=',
    ],
    [...d, 'downtime-pack', '-o', join(files, 'pack.pdf')],
    [...d, 'ledger', 'import', importFile],
    // The postcode table is not the ledger, but a full import would stall the server's saves.
    [...d, 'postcodes', 'import', importFile],
    [...d, 'rebuild'],
    [...d, 'serve', '--port', '0'],
    [...d, 'start', '--port', '0'],
  ];
}

async function countRows(options: StoreOptions, sql: string): Promise<number> {
  const store = await Store.open(options);
  try {
    const { sql: raw } = await import('kysely');
    const r = await raw<{ n: number | string }>`${raw.raw(sql)}`.execute(store.db);
    return Number(r.rows[0]!.n);
  } finally {
    await store.close();
  }
}

describe.each(['sqlite', 'postgres'] as const)('one writer per chain on %s', (kind) => {
  it('every writing command is refused while the node serves; the server keeps working; the chain verifies', async () => {
    const dataDir = tempDir(`one-writer-${kind}`);
    let env: Record<string, string> = {};
    let storeOptions: StoreOptions = { dialect: 'sqlite', file: join(dataDir, 'holdfast.sqlite') };
    if (kind === 'postgres') {
      const db = await createPgDatabase();
      drops.push(db.drop);
      env = { HOLDFAST_STORE: 'postgres', HOLDFAST_DATABASE_URL: db.url };
      storeOptions = { dialect: 'postgres', connectionString: db.url };
    }
    const init = await holdfast(['-d', dataDir, 'init', '--role', 'hub', '--node', 'hub-1', '--demo'], env);
    expect(init.code, init.out).toBe(0);
    const password = /password, shown once: (\S+)/.exec(init.out)?.[1];
    expect(password).toBeDefined();
    // A file for `ledger import` (its contents do not matter: the command must not get that far).
    // Files the commands write go in a folder of this run's own (never a shared /tmp name).
    const files = tempDir(`one-writer-files-${kind}`);
    const exportFile = join(files, 'export.ndjson');
    const exported = await holdfast(['-d', dataDir, 'ledger', 'export', '-o', exportFile], env);
    expect(exported.code, exported.out).toBe(0);

    const port = await freePort();
    const server = await serve(dataDir, port, env);
    const url = `http://127.0.0.1:${port}`;
    const secrets = new MemoryTotpSecrets();
    const adviser = new ApiSession(
      new URL(url),
      { username: 'health-adviser@northshire', password: password! },
      { secrets },
    );
    const siteId = (await adviser.signIn()).siteIds[0]!;
    const acknowledged = [await openCall(adviser, siteId, 0)];
    const usersBefore = await countRows(storeOptions, 'select count(*) as n from users');
    const eventsBefore = await countRows(
      storeOptions,
      "select count(*) as n from ledger_events where actor like 'cli:%'",
    );

    const refused = await Promise.all(
      writingCommands(dataDir, exportFile, files).map((args) => holdfast(args, env)),
    );
    for (const r of refused) {
      const what = r.args.slice(2).join(' ');
      expect(r.code, `${what}: ${r.out}`).toBe(1);
      expect(r.out, what).toMatch(/holdfast serve \(process \d+ on .+, since .+\) is the writer of the node/);
      expect(r.out, what).toContain('nothing was written');
    }
    // The refusal says what to do instead while the server runs.
    const usersAdd = refused.find((r) => r.args.includes('add'))!;
    expect(usersAdd.out).toContain('/api/v1/admin/users');
    const pack = refused.find((r) => r.args.includes('downtime-pack'))!;
    expect(pack.out).toContain('/api/v1/downtime-pack.pdf');

    // Commands that only read run beside the server, on what it has committed.
    const [verified, listed] = await Promise.all([
      holdfast(['-d', dataDir, 'verify'], env),
      holdfast(['-d', dataDir, 'nodes', 'list'], env),
    ]);
    expect(verified.code, verified.out).toBe(0);
    expect(verified.out).toContain('verified:');
    expect(verified.out).toContain('reading what it has committed');
    expect(listed.code, listed.out).toBe(0);
    expect(listed.out).toContain('hub-1');

    // Nothing the refused commands would have written is there.
    expect(await countRows(storeOptions, 'select count(*) as n from users')).toBe(usersBefore);
    expect(
      await countRows(storeOptions, "select count(*) as n from ledger_events where actor like 'cli:%'"),
    ).toBe(eventsBefore);
    expect(
      await countRows(storeOptions, "select count(*) as n from users where username = 'late@northshire'"),
    ).toBe(0);

    // The server still writes: a new sign-in (a session and its audit events) and new calls.
    const again = new ApiSession(
      new URL(url),
      { username: 'health-adviser@northshire', password: password! },
      { secrets },
    );
    await again.signIn();
    for (let i = 1; i <= 5; i++) acknowledged.push(await openCall(again, siteId, i));
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    await stop(server);

    // Once it has stopped, a writing command runs, and the whole chain verifies.
    const added = await holdfast(
      [
        '-d',
        dataDir,
        'users',
        'add',
        '--username',
        'late@northshire',
        '--name',
        'Late Starter',
        '--roles',
        'receptionist',
      ],
      env,
    );
    expect(added.code, added.out).toBe(0);
    const store = await Store.open(storeOptions);
    try {
      const report = await verifyStore(store, ledgerCrypto);
      expect(report.faults).toEqual([]);
      expect(report.ok).toBe(true);
      const cases = await store.db
        .selectFrom('ledger_events')
        .select('payload')
        .where('type', '=', 'case.opened')
        .execute();
      const opened = new Set(cases.map((c) => (JSON.parse(c.payload) as { caseId: string }).caseId));
      for (const id of acknowledged) expect(opened.has(id), id).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('a data directory keeps to its store', () => {
  it('a command on a PostgreSQL node without HOLDFAST_STORE is refused and creates no SQLite store', async () => {
    const dataDir = tempDir('store-kind');
    const db = await createPgDatabase();
    drops.push(db.drop);
    const env = { HOLDFAST_STORE: 'postgres', HOLDFAST_DATABASE_URL: db.url };
    const init = await holdfast(['-d', dataDir, 'init', '--role', 'hub', '--node', 'hub-1'], env);
    expect(init.code, init.out).toBe(0);
    const token = await holdfast(['-d', dataDir, 'nodes', 'enrol-token'], {});
    expect(token.code, token.out).toBe(1);
    expect(token.out).toContain('keeps its data in PostgreSQL');
    expect(token.out).toContain('HOLDFAST_STORE=postgres');
    expect(token.out).not.toMatch(/hfe_/);
    expect(existsSync(join(dataDir, 'holdfast.sqlite'))).toBe(false);
    // And the other way round: a SQLite node is not opened on PostgreSQL.
    const sqliteDir = tempDir('store-kind-sqlite');
    expect((await holdfast(['-d', sqliteDir, 'init'], {})).code).toBe(0);
    const wrong = await holdfast(['-d', sqliteDir, 'nodes', 'list'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain('keeps its data in SQLite');
  });
});
