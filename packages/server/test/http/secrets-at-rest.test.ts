import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addProvider } from '../../src/accounts/providers.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { newRecoveryCodes, newTotpSecret, totpCode } from '../../src/auth/totp.ts';
import { buildHoldfastApp, type HoldfastApp } from '../../src/http/holdfast-app.ts';
import { createLogger } from '../../src/http/logger.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { ReadableByOthersError } from '../../src/node/file-modes.ts';
import { openNode, type HoldfastNode } from '../../src/node/node.ts';
import { PROVIDER_KEYS_FILE } from '../../src/node/provider-keys.ts';
import { ownChainsOf } from '../../src/ledger/own-chains.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { issueEnrolmentToken, joinHub } from '../../src/sync/enrolment.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { fetchInto } from '../support/fetch-into.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

/** The app of a node opened again from its files (a restart), or of an enrolled site. */
async function appFor(node: HoldfastNode): Promise<HoldfastApp> {
  const built = await buildHoldfastApp(node, {
    logger: createLogger('silent'),
    throttle: { maxFailures: 5, lockoutMs: 15 * 60_000, perAddressPerMinute: 10_000 },
    passkeys: { rpId: 'localhost', rpName: 'Holdfast test', origins: ['http://localhost:8080'] },
    webDist: false,
  });
  await built.app.ready();
  return built;
}

async function rawPayloads(
  node: HoldfastNode,
  types: string[],
): Promise<{ type: string; v: number; payload: string }[]> {
  const rows = await node.store.db
    .selectFrom('ledger_events')
    .select(['type', 'v', 'payload'])
    .where('type', 'in', types)
    .execute();
  return rows.map((r) => ({ type: r.type, v: Number(r.v), payload: String(r.payload) }));
}

describe.each(STORE_KINDS)('secrets at rest on %s', (kind) => {
  let t: TestApp;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind);
  }, 120_000);
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await t?.close();
  });

  it('creates the data folder 0700 and its store and key files 0600', () => {
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect(mode(t.config.dataDir)).toBe(0o700);
    expect(mode(join(t.config.dataDir, PROVIDER_KEYS_FILE))).toBe(0o600);
    expect(mode(join(t.config.dataDir, 'node.json'))).toBe(0o600);
    if (kind === 'sqlite') {
      expect(mode(join(t.config.dataDir, 'holdfast.sqlite'))).toBe(0o600);
      expect(mode(join(t.config.dataDir, 'holdfast.sqlite-wal'))).toBe(0o600);
    }
  });

  it('keeps no password hash or TOTP secret in clear in account events, and recovery codes under argon2id', async () => {
    const c = new Client(t.app, t.clock);
    const signed = await c.signIn(t.providers[0]!.users.health_adviser.username);
    expect(signed.statusCode).toBe(200);
    const rows = await rawPayloads(t.node, ['user.created', 'user.password_set', 'user.totp_enrolled']);
    expect(rows.length).toBeGreaterThan(10);
    for (const r of rows) {
      expect(r.v).toBe(2);
      expect(r.payload).not.toContain('passwordHash"');
      if (r.type !== 'user.totp_enrolled') expect(r.payload).not.toContain('$argon2id$');
      expect(r.payload).not.toContain(c.totpSecret!);
    }
    const enrolled = rows.find((r) => r.type === 'user.totp_enrolled')!;
    const payload = JSON.parse(enrolled.payload) as { secretSealed: string; recoveryCodeHashes: string[] };
    expect(payload.secretSealed).toMatch(/^hfs1\./);
    for (const h of payload.recoveryCodeHashes) expect(h).toMatch(/^\$argon2id\$/);
    // Nor does the read model.
    const users = await t.node.store.db
      .selectFrom('users' as 'ledger_events')
      .selectAll()
      .execute();
    expect(JSON.stringify(users)).not.toContain(c.totpSecret!);
    expect(JSON.stringify(users)).not.toMatch(/"password_hash":"\$argon2id/);
  });

  it('recovery codes are not plain SHA-256 and still sign in once', async () => {
    const c = new Client(t.app, t.clock);
    await c.request('POST', '/api/v1/auth/sign-in', {
      username: t.providers[0]!.users.clinician.username,
      password: PASSWORD,
    });
    const enrol = await c.request('POST', '/api/v1/auth/totp/enrol');
    const secret = (enrol.json() as { secret: string }).secret;
    const confirm = await c.request('POST', '/api/v1/auth/totp/confirm', {
      code: totpCode(secret, t.clock.nowMs()),
    });
    const codes = (confirm.json() as { recoveryCodes: string[] }).recoveryCodes;
    const raw = (await rawPayloads(t.node, ['user.totp_enrolled'])).map((r) => r.payload).join('\n');
    for (const code of codes) expect(raw).not.toContain(createHash('sha256').update(code).digest('hex'));
    const again = new Client(t.app, t.clock);
    await again.request('POST', '/api/v1/auth/sign-in', {
      username: t.providers[0]!.users.clinician.username,
      password: PASSWORD,
    });
    expect(
      (await again.request('POST', '/api/v1/auth/totp/verify', { recoveryCode: codes[3] })).statusCode,
    ).toBe(200);
  });

  it('old version-1 account events (plain hash and secret, SHA-256 recovery codes) still sign in', async () => {
    const tenant = t.providers[0]!.tenant;
    const userId = randomUUID();
    const secret = newTotpSecret();
    const codes = newRecoveryCodes();
    await t.node.ledger.append([
      {
        tenant,
        type: 'user.created',
        v: 1,
        actor: 'system:test',
        payload: {
          userId,
          username: `old-timer@${tenant}`,
          displayName: 'Old timer',
          roles: ['health_adviser'],
          siteIds: [t.providers[0]!.sites[0]!],
          passwordHash: await hashPassword(PASSWORD),
        },
      },
      {
        tenant,
        type: 'user.totp_enrolled',
        v: 1,
        actor: 'system:test',
        payload: {
          userId,
          secret,
          recoveryCodeHashes: codes.map((c) => createHash('sha256').update(c).digest('hex')),
        },
      },
    ]);
    const c = new Client(t.app, t.clock);
    c.totpSecret = secret;
    expect((await c.signIn(`old-timer@${tenant}`)).statusCode).toBe(200);
    const r = new Client(t.app, t.clock);
    await r.request('POST', '/api/v1/auth/sign-in', { username: `old-timer@${tenant}`, password: PASSWORD });
    expect((await r.request('POST', '/api/v1/auth/totp/verify', { recoveryCode: codes[0] })).statusCode).toBe(
      200,
    );
  });

  it('signs in with password and TOTP after a restart, and at a site enrolled afterwards', async () => {
    const username = t.providers[0]!.users.shift_manager.username;
    const first = new Client(t.app, t.clock);
    expect((await first.signIn(username)).statusCode).toBe(200);

    // A site enrols over the hub's enrolment route and receives the provider key with it. The site
    // runs on the system clock (signed sync requests must be within ±300 s of the hub's).
    t.clock.set(Math.max(t.clock.nowMs(), Date.now()));
    const { token } = await issueEnrolmentToken(t.node.store, t.clock, {
      tenant: t.providers[0]!.tenant,
      createdBy: 'system:test',
    });
    const siteStore = await freshStore(kind);
    cleanups.push(siteStore.cleanup);
    const joined = await joinHub(
      { ...siteStore.config, checkpointEvery: 100 },
      { node: 'site-1', hubUrl: 'http://hub.test', token },
      fetchInto(t.app),
    );
    expect(joined.firstSync instanceof Error ? joined.firstSync.message : 'synced').toBe('synced');
    expect(statSync(join(siteStore.dataDir, PROVIDER_KEYS_FILE)).mode & 0o777).toBe(0o600);
    const site = await appFor(joined.node);
    cleanups.push(async () => {
      await site.app.close();
      await joined.node.close();
    });
    const atSite = new Client(site.app, t.clock);
    atSite.totpSecret = first.totpSecret;
    expect((await atSite.signIn(username)).statusCode).toBe(200);

    // The hub restarts from its files.
    await t.app.close();
    await t.node.close();
    const node = await openNode(t.config, { clock: t.clock });
    const restarted = await appFor(node);
    Object.assign(t, restarted, { node });
    const after = new Client(t.app, t.clock);
    after.totpSecret = first.totpSecret;
    expect((await after.signIn(username)).statusCode).toBe(200);
  }, 120_000);

  it('refuses to start on a data folder or store file others can read, naming the chmod that fixes it', async () => {
    const dir = t.config.dataDir;
    await t.app.close();
    await t.node.close();
    try {
      chmodSync(dir, 0o755);
      await expect(openNode(t.config, { clock: t.clock })).rejects.toThrow(`chmod 700 ${dir}`);
      chmodSync(dir, 0o700);
      const keys = join(dir, PROVIDER_KEYS_FILE);
      chmodSync(keys, 0o644);
      await expect(openNode(t.config, { clock: t.clock })).rejects.toThrow(`chmod 600 ${keys}`);
      chmodSync(keys, 0o600);
      if (kind === 'sqlite') {
        const file = join(dir, 'holdfast.sqlite');
        chmodSync(file, 0o640);
        await expect(openNode(t.config, { clock: t.clock })).rejects.toBeInstanceOf(ReadableByOthersError);
        await expect(openNode(t.config, { clock: t.clock })).rejects.toThrow(`chmod 600 ${file}`);
        chmodSync(file, 0o600);
      }
    } finally {
      chmodSync(dir, 0o700);
      const node = await openNode(t.config, { clock: t.clock });
      Object.assign(t, await appFor(node), { node });
    }
  });
});

describe.each(STORE_KINDS)('several providers on one node on %s', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
  }, 120_000);
  afterAll(() => t?.close());

  it('adds a provider with its own chain and key; verify is clean on every chain', async () => {
    await addProvider(t.node, t.accounts, {
      tenant: 'eastshire',
      name: 'Eastshire IUC',
      actor: 'system:test',
    });
    const site = await t.accounts.createSite('eastshire', 'Eastshire site', 'system:test');
    await t.accounts.create(
      'eastshire',
      {
        username: 'admin@eastshire',
        displayName: 'E admin',
        roles: ['provider_admin'],
        siteIds: [site],
        password: PASSWORD,
      },
      'system:test',
    );
    await t.node.ledger.checkpointNow('eastshire');
    const report = await verifyStore(t.node.store, ledgerCrypto, {
      own: ownChainsOf(t.node.identity, t.node.headMark),
      maxUnsealed: 99,
    });
    expect(report.faults).toEqual([]);
    expect(report.chains.map((c) => c.tenant).sort()).toEqual(['eastshire', 'northshire']);
    expect(t.node.providerKeys.keySet('eastshire').current).not.toBe(
      t.node.providerKeys.keySet('northshire').current,
    );
    await expect(
      addProvider(t.node, t.accounts, { tenant: 'eastshire', name: 'again', actor: 'system:test' }),
    ).rejects.toThrow('exists already');
  });

  it('scopes user names to the provider: the same name at both, no sign-in across, no borrowed suffix', async () => {
    const north = t.providers[0]!;
    const eastSite = (await t.accounts.sites('eastshire'))[0]!.siteId;
    const make = (tenant: string, siteId: string, password: string) =>
      t.accounts.create(
        tenant,
        { username: 'jo.bloggs', displayName: 'Jo', roles: ['health_adviser'], siteIds: [siteId], password },
        'system:test',
      );
    await make(north.tenant, north.sites[0]!, PASSWORD);
    // The same name at the other provider is neither refused nor told apart by a 409.
    await expect(make('eastshire', eastSite, 'another long passphrase 42')).resolves.toMatchObject({
      tenant: 'eastshire',
    });
    await expect(make('eastshire', eastSite, 'another long passphrase 42')).rejects.toThrow('is taken');

    const signIn = (body: Record<string, string>) =>
      new Client(t.app, t.clock).request('POST', '/api/v1/auth/sign-in', body);
    expect(
      (await signIn({ username: 'jo.bloggs', password: PASSWORD, provider: north.tenant })).statusCode,
    ).toBe(200);
    expect(
      (await signIn({ username: 'jo.bloggs', password: PASSWORD, provider: 'eastshire' })).statusCode,
    ).toBe(401);
    expect(
      (await signIn({ username: 'jo.bloggs', password: 'another long passphrase 42', provider: 'eastshire' }))
        .statusCode,
    ).toBe(200);
    // A northshire user cannot be reached through eastshire's name.
    expect(
      (
        await signIn({
          username: north.users.health_adviser.username,
          password: PASSWORD,
          provider: 'eastshire',
        })
      ).statusCode,
    ).toBe(401);
    // Names ending in another provider's suffix are refused, in words that name no provider.
    for (const username of [`x@${north.tenant}`])
      await expect(
        t.accounts.create(
          'eastshire',
          {
            username,
            displayName: 'X',
            roles: ['health_adviser'],
            siteIds: [eastSite],
            password: PASSWORD,
          },
          'system:test',
        ),
      ).rejects.toThrow("must not end in another provider's @ part: choose another name");
  });
});
