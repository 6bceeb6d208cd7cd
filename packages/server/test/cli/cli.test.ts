import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Ed25519Signer } from '../../src/node/crypto.ts';
import { initNode, openNode } from '../../src/node/node.ts';
import { SyncStatusStore } from '../../src/sync/status.ts';
import { createPgDatabase } from '../support/databases.ts';
import { freePort } from '../support/postgres.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-cli-'));
  dirs.push(dir);
  return dir;
}

function holdfast(args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
  const result = spawnSync(process.execPath, holdfastArgs(...args), {
    encoding: 'utf8',
    env: { ...process.env, CI: '1', NO_COLOR: '1', ...options.env },
    input: options.input,
    timeout: 60_000,
  });
  return {
    code: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    all: result.stdout + result.stderr,
  };
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('holdfast CLI', () => {
  const COMMANDS = [
    [],
    ['init'],
    ['serve'],
    ['start'],
    ['verify'],
    ['rebuild'],
    ['ledger'],
    ['ledger', 'export'],
    ['ledger', 'import'],
    ['nodes'],
    ['nodes', 'list'],
    ['nodes', 'enrol-token'],
    ['nodes', 'register'],
    ['nodes', 'repin-hub'],
    ['nodes', 'clear-sync-alarm'],
    ['providers'],
    ['providers', 'add'],
    ['providers', 'rotate-key'],
    ['providers', 'fetch-keys'],
    ['providers', 'register-node'],
    ['users'],
    ['users', 'add'],
    ['users', 'disable'],
    ['users', 'reset-mfa'],
    ['users', 'reset-password'],
    ['simulate'],
    ['backup'],
    ['backup', 'verify'],
    ['restore'],
    ['top-up'],
    ['downtime-pack'],
    ['drill'],
    ['drill', 'supplier-loss'],
    ['receiver'],
    ['postcodes'],
    ['postcodes', 'import'],
    ['formulary'],
    ['formulary', 'check'],
  ];

  it('has --help on every command, and every command is in this list', () => {
    for (const command of COMMANDS) {
      const r = holdfast([...command, '--help']);
      expect(r.code, command.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: holdfast');
    }
    const listed = (section: string[]) =>
      [
        ...holdfast([...section, '--help'])
          .stdout.split('Commands:')[1]!
          .matchAll(/^ {2}(\w[\w-]*)/gm),
      ]
        .map((m) => m[1])
        .filter((c) => c !== 'help');
    const top = listed([]);
    const known = COMMANDS.filter((c) => c.length > 0).map((c) => c.join(' '));
    for (const c of top) expect(known).toContain(c);
    for (const c of listed(['ledger'])) expect(known).toContain(`ledger ${c}`);
    for (const c of listed(['nodes'])) expect(known).toContain(`nodes ${c}`);
    for (const c of listed(['users'])) expect(known).toContain(`users ${c}`);
    for (const c of listed(['providers'])) expect(known).toContain(`providers ${c}`);
    for (const c of listed(['postcodes'])) expect(known).toContain(`postcodes ${c}`);
    for (const c of listed(['formulary'])) expect(known).toContain(`formulary ${c}`);
  });

  it('init creates the key file with mode 0600 and a verifying ledger; init twice is refused', () => {
    const dir = tempDir();
    const init = holdfast(['-d', dir, 'init', '--tenant', 'prov-a', '--node', 'site-1', '--role', 'site']);
    expect(init.code, init.all).toBe(0);
    expect(init.stdout).toMatch(/public key: [A-Za-z0-9_-]{50,}/);
    expect(statSync(join(dir, 'node.key')).mode & 0o777).toBe(0o600);
    const verify = holdfast(['-d', dir, 'verify']);
    expect(verify.code, verify.all).toBe(0);
    expect(verify.stdout).toContain('verified: 1 events');
    const again = holdfast(['-d', dir, 'init']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists already');
  });

  it('nodes repin-hub changes nothing without --confirm, re-pins with it; nodes clear-sync-alarm clears a raised alarm', async () => {
    const dir = tempDir();
    const config = { store: 'sqlite' as const, dataDir: dir, checkpointEvery: 100 };
    const oldHub = Ed25519Signer.generate('hub-1').signer.publicKey;
    const newHub = Ed25519Signer.generate('hub-1').signer.publicKey;
    const site = await initNode(config, {
      node: 'site-a',
      tenant: 'northshire',
      role: 'site',
      hub: { url: 'http://127.0.0.1:9', node: 'hub-1', publicKey: oldHub },
    });
    await site.close();
    const hubOf = () =>
      (JSON.parse(readFileSync(join(dir, 'node.json'), 'utf8')) as { hub: { publicKey: string } }).hub;

    const unconfirmed = holdfast(['-d', dir, 'nodes', 'repin-hub', '--public-key', newHub]);
    expect(unconfirmed.code, unconfirmed.all).toBe(1);
    expect(unconfirmed.stderr).toContain('nothing changed.');
    expect(unconfirmed.stderr).toContain('by phone or in person');
    expect(hubOf().publicKey).toBe(oldHub);

    const bad = holdfast(['-d', dir, 'nodes', 'repin-hub', '--public-key', 'nonsense', '--confirm']);
    expect(bad.code).not.toBe(0);
    expect(bad.all).toContain('--public-key');
    expect(hubOf().publicKey).toBe(oldHub);

    const confirmed = holdfast(['-d', dir, 'nodes', 'repin-hub', '--public-key', newHub, '--confirm']);
    expect(confirmed.code, confirmed.all).toBe(0);
    expect(confirmed.stdout).toContain(`re-pinned the hub: hub-1 ${oldHub}`);
    expect(hubOf().publicKey).toBe(newHub);
    expect(holdfast(['-d', dir, 'nodes', 'list']).stdout).toContain(`hub-1\t${newHub}`);

    const none = holdfast(['-d', dir, 'nodes', 'clear-sync-alarm', '--reason', 'nothing to clear']);
    expect(none.code, none.all).toBe(0);
    expect(none.stdout).toContain('no history_refused alarm is raised on this node');
    const reopened = await openNode(config);
    await new SyncStatusStore(reopened.store, reopened.clock).raiseAlarm(
      'northshire',
      'history_refused',
      'refused',
      'act',
    );
    await reopened.close();
    const cleared = holdfast(['-d', dir, 'nodes', 'clear-sync-alarm', '--reason', 'site rebuilt']);
    expect(cleared.code, cleared.all).toBe(0);
    expect(cleared.stdout).toContain('cleared the history_refused alarm');
    const after = await openNode(config);
    try {
      expect(await new SyncStatusStore(after.store, after.clock).activeAlarms('northshire')).toEqual([]);
    } finally {
      await after.close();
    }
  });

  it('a bad config value names the key and what is allowed', () => {
    const dir = tempDir();
    const env = holdfast(['-d', dir, 'verify'], { env: { HOLDFAST_STORE: 'mysql' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain(
      'config key "store" from HOLDFAST_STORE: must be one of: sqlite, postgres (got "mysql")',
    );
    const file = join(dir, 'holdfast.config.json');
    writeFileSync(file, JSON.stringify({ port: 99999, colour: 'blue' }));
    const fromFile = holdfast(['-c', file, 'verify']);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain('unknown key(s) colour');
    writeFileSync(file, JSON.stringify({ port: 99999 }));
    expect(holdfast(['-c', file, 'verify']).stderr).toMatch(
      /config key "port" in .*holdfast.config.json: must be at most 65535 \(got 99999\)/,
    );
    const pgWithoutUrl = holdfast(['-d', dir, 'verify'], { env: { HOLDFAST_STORE: 'postgres' } });
    expect(pgWithoutUrl.stderr).toContain('config key "databaseUrl" (HOLDFAST_DATABASE_URL) is required');
  });

  it('exports from one node and imports into a PostgreSQL node twice; the second import changes nothing', async () => {
    const a = tempDir();
    expect(holdfast(['-d', a, 'init', '--node', 'site-a', '--role', 'site']).code).toBe(0);
    const aKey = /public key: (\S+)/.exec(
      holdfast(['-d', a, 'nodes', 'list']).stdout.replace(/^site-a\t/m, 'public key: '),
    )![1]!;
    const exportFile = join(tempDir(), 'a.ndjson');
    const exported = holdfast(['-d', a, 'ledger', 'export', '-o', exportFile]);
    expect(exported.code, exported.all).toBe(0);

    const database = await createPgDatabase();
    const hubDir = tempDir();
    const env = { HOLDFAST_STORE: 'postgres', HOLDFAST_DATABASE_URL: database.url };
    try {
      expect(holdfast(['-d', hubDir, 'init', '--node', 'hub', '--role', 'hub'], { env }).code).toBe(0);
      const refused = holdfast(['-d', hubDir, 'ledger', 'import', exportFile], { env });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('site-a is not a registered node of tenant northshire-iuc');
      expect(
        holdfast(['-d', hubDir, 'nodes', 'register', '--node', 'site-a', '--public-key', aKey], { env }).code,
      ).toBe(0);
      const first = holdfast(['-d', hubDir, 'ledger', 'import', exportFile], { env });
      expect(first.code, first.all).toBe(0);
      expect(first.stdout).toContain('imported 1 new events');
      const second = holdfast(['-d', hubDir, 'ledger', 'import', exportFile], { env });
      expect(second.stdout).toContain('imported 0 new events (1 already held');
      const verify = holdfast(['-d', hubDir, 'verify'], { env });
      expect(verify.code, verify.all).toBe(0);
      expect(verify.stdout).toContain('northshire-iuc / site-a: 1 events');
      const bad = join(tempDir(), 'bad.ndjson');
      writeFileSync(bad, '{"kind":"event"}\nnot json\n');
      const badImport = holdfast(['-d', hubDir, 'ledger', 'import', bad], { env });
      expect(badImport.code).toBe(1);
      expect(badImport.stderr).toMatch(/line 1: id: .*line 2: not valid JSON/s);
      expect(holdfast(['-d', hubDir, 'rebuild'], { env }).stdout).toMatch(
        /rebuilt \d+ projections from 3 events/,
      );
    } finally {
      await database.drop();
    }
  });

  it('verify exits 1 and names the first bad event when the store was edited', () => {
    const dir = tempDir();
    holdfast(['-d', dir, 'init']);
    holdfast([
      '-d',
      dir,
      'nodes',
      'register',
      '--node',
      'site-z',
      '--public-key',
      'MCowBQYDK2VwAyEAUSSnbNilI2xRW7SrQ-6lsqfQDk44WrVZTex8PzZUncU',
    ]);
    const db = new BetterSqlite3(join(dir, 'holdfast.sqlite'));
    db.prepare("update ledger_events set payload = replace(payload, 'site-z', 'site-y') where seq = 2").run();
    db.close();
    const verify = holdfast(['-d', dir, 'verify']);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(
      'northshire-iuc / node-1: 1 events, 1 checkpoint signatures: BAD at seq 2: content does not match its hash',
    );
  });

  it('start initialises on first run and serves /health and /metrics', async () => {
    const dir = tempDir();
    const port = await freePort();
    const token = 'cli-test-operator-token';
    const child = spawn(process.execPath, holdfastArgs('-d', dir, 'start', '--port', String(port)), {
      env: {
        ...process.env,
        CI: '1',
        NO_COLOR: '1',
        HOLDFAST_OPERATOR_TOKEN_SHA256: createHash('sha256').update(token).digest('hex'),
      },
    });
    const operator = { headers: { authorization: `Bearer ${token}` } };
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 30_000;
      // The demo's users are printed after the listening line, possibly in a later chunk: wait for the last line.
      while (!out.includes('This password is shown only now') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain(`listening on http://localhost:${port}`);
      expect(out).toContain('first start: created node node-1 and the demo provider Northshire IUC');
      expect(out).toMatch(/health-adviser@northshire +health_adviser/);
      expect(out).toMatch(/all with the password demo-\S+/);
      // Anonymous callers learn up or down only; the operator token reads the detail and the metrics.
      expect(await (await fetch(`http://127.0.0.1:${port}/health`)).json()).toEqual({ status: 'ok' });
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`, operator)).json()) as Record<
        string,
        unknown
      >;
      expect(health).toMatchObject({
        status: 'ok',
        node: 'node-1',
        store: 'sqlite',
        // The node's registration, the demo provider, its two sites, one user per role, and the
        // 30 made-up demo patients, the 15 services of the sample directory, the two demo centres with
        // their diaries, and three sample cars with their positions and made-up crews on the rota.
        ledger: { seq: 124 },
      });
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, operator)).text();
      expect(metrics).toMatch(/^holdfast_ledger_head_seq 124$/m);
      expect(metrics).toContain('holdfast_http_request_duration_seconds_bucket');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

describe('holdfast users', () => {
  it('adds a user with a one-time password, disables them, and resets MFA only with a reason (audited)', async () => {
    const dir = tempDir();
    // The demo provider as `start` seeds it on a first run (`init --demo` seeds the same, without
    // starting a server only to stop it: `start` has its own test above); users are managed offline.
    const init = holdfast(['-d', dir, 'init', '--demo']);
    expect(init.code, init.all).toBe(0);
    expect(init.stdout).toContain('shown once');

    const add = holdfast([
      '-d',
      dir,
      'users',
      'add',
      '--username',
      'j.smith@northshire',
      '--name',
      'Jo Smith',
      '--roles',
      'clinician,prescriber',
      '--reason',
      'new clinician starting Monday',
    ]);
    expect(add.code, add.all).toBe(0);
    expect(add.stdout).toMatch(/initial password, shown once: \S{16}/);
    const badRole = holdfast([
      '-d',
      dir,
      'users',
      'add',
      '--username',
      'x@northshire',
      '--name',
      'X',
      '--roles',
      'wizard',
    ]);
    expect(badRole.code).not.toBe(0);
    expect(badRole.stderr).toContain('unknown role(s) wizard');
    const noReason = holdfast(['-d', dir, 'users', 'reset-mfa', '--username', 'j.smith@northshire']);
    expect(noReason.code).not.toBe(0);
    expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
    const reset = holdfast([
      '-d',
      dir,
      'users',
      'reset-mfa',
      '--username',
      'j.smith@northshire',
      '--reason',
      'lost phone, identity checked by phone call',
    ]);
    expect(reset.code, reset.all).toBe(0);
    // The one-time enrolment code to hand over: without it the password alone enrols no new factor.
    expect(reset.stdout).toMatch(
      /one-time enrolment code, shown once: [A-Z0-9x]{4}-[A-Z0-9x]{4}-[A-Z0-9x]{4}-[A-Z0-9x]{4}/i,
    );
    const resetPassword = holdfast([
      '-d',
      dir,
      'users',
      'reset-password',
      '--username',
      'j.smith@northshire',
    ]);
    expect(resetPassword.code, resetPassword.all).toBe(0);
    expect(resetPassword.stdout).toMatch(/temporary password, shown once: \S{16}/);
    const disable = holdfast([
      '-d',
      dir,
      'users',
      'disable',
      '--username',
      'j.smith@northshire',
      '--reason',
      'left the service',
    ]);
    expect(disable.code, disable.all).toBe(0);
    // Both actions are events in the ledger, with the reason and who did it; the ledger verifies.
    const db = new BetterSqlite3(join(dir, 'holdfast.sqlite'), { readonly: true });
    const events = db
      .prepare(
        "select type, actor, payload from ledger_events where type in ('user.mfa_reset', 'user.disabled')",
      )
      .all() as { type: string; actor: string; payload: string }[];
    db.close();
    expect(events.map((e) => e.type).sort()).toEqual(['user.disabled', 'user.mfa_reset']);
    expect(events.find((e) => e.type === 'user.mfa_reset')!.payload).toContain('lost phone');
    expect(events.every((e) => e.actor.startsWith('cli:'))).toBe(true);
    expect(holdfast(['-d', dir, 'verify']).code).toBe(0);
  });
});

describe('holdfast serve with a protocol pack directory', () => {
  it('refuses to start on a broken pack, naming the file and field', async () => {
    const dir = tempDir();
    expect(holdfast(['-d', dir, 'init']).code).toBe(0);
    const pack = tempDir();
    writeFileSync(join(pack, 'pack.json'), JSON.stringify({ kind: 'pack', id: 'broken' }));
    const port = await freePort();
    const r = holdfast(['-d', dir, 'serve', '--port', String(port)], {
      env: { HOLDFAST_PROTOCOLS_DIR: pack },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/protocol pack .* refused/);
    expect(r.stderr).toContain('pack.json');
  });
});
