import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerInOldProviders, rotateProviderKey } from '../../src/accounts/providers.ts';
import { fetchProviderKeys } from '../../src/sync/provider-keys.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { buildHoldfastApp, type HoldfastApp } from '../../src/http/holdfast-app.ts';
import { createLogger } from '../../src/http/logger.ts';
import { ownChainsOf } from '../../src/ledger/own-chains.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import type { HoldfastNode } from '../../src/node/node.ts';
import { PROVIDER_KEYS_FILE } from '../../src/node/provider-keys.ts';
import { issueEnrolmentToken, joinHub } from '../../src/sync/enrolment.ts';
import { SyncEngine } from '../../src/sync/engine.ts';
import { HttpSyncTransport } from '../../src/sync/http-transport.ts';
import { signedInAdmin } from '../support/admin.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { fetchInto } from '../support/fetch-into.ts';
import { Client, OPERATOR_HEADERS, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

/**
 * Issue 14, several providers on one node, the parts after `holdfast providers add`: the operator's
 * route to add a provider (operator token only, never a provider's user), providers made the old
 * way registered at start so that verify is clean, re-keying a provider's account secrets (old
 * events still open, sites take the new keys by the enrolment path), and the clinical-grant alert
 * on the shift manager's dashboard.
 */

/**
 * Verify as `holdfast verify` runs it on this node, and as anyone else holding the ledger (an export
 * imported elsewhere, a restored backup) runs it: without this node's identity file, so every
 * checkpoint's signer must be registered in the tenant's own ledger.
 */
async function verifyAll(node: HoldfastNode) {
  const here = await verifyStore(node.store, ledgerCrypto, {
    own: ownChainsOf(node.identity, node.headMark),
    maxUnsealed: 999,
  });
  const elsewhere = await verifyStore(node.store, ledgerCrypto, { maxUnsealed: 999 });
  return { faults: [...here.faults, ...elsewhere.faults], chains: here.chains };
}

async function eventTypes(node: HoldfastNode, tenant: string): Promise<string[]> {
  return (await node.ledger.readTenant(tenant, null, 10_000)).map((e) => e.type);
}

/** The key id a sealed account secret was sealed under (`hfs1.<key id>.…`). */
async function sealedKeyIdOf(node: HoldfastNode, userId: string): Promise<string> {
  const rows = await node.store.db
    .selectFrom('ledger_events')
    .select(['payload'])
    .where('type', '=', 'user.created')
    .execute();
  for (const r of rows) {
    const p = JSON.parse(String(r.payload)) as { userId: string; passwordHashSealed?: string };
    if (p.userId === userId) return p.passwordHashSealed!.split('.')[1]!;
  }
  throw new Error(`no user.created for ${userId}`);
}

describe.each(STORE_KINDS)('operator route and provider upkeep (%s)', (kind) => {
  let t: TestApp;
  let admin: Client;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
  }, 120_000);
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await t?.close();
  });

  it('the operator adds a provider over HTTP with the operator token; it verifies clean', async () => {
    const res = await new Client(t.app, t.clock).request(
      'POST',
      '/api/v1/operator/providers',
      { id: 'westshire', name: 'Westshire IUC' },
      OPERATOR_HEADERS,
    );
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ provider: { id: 'westshire', name: 'Westshire IUC' } });
    expect(await eventTypes(t.node, 'westshire')).toEqual(['node.registered', 'tenant.created']);
    expect(t.node.providerKeys.has('westshire')).toBe(true);
    // Its first admin can be added and the chains verify clean.
    const site = await t.accounts.createSite('westshire', 'Westshire site', 'system:test');
    await t.accounts.create(
      'westshire',
      {
        username: 'admin@westshire',
        displayName: 'W admin',
        roles: ['provider_admin'],
        siteIds: [site],
        password: PASSWORD,
      },
      'system:test',
    );
    await t.node.ledger.checkpointNow('westshire');
    const report = await verifyAll(t.node);
    expect(report.faults).toEqual([]);
    expect(report.chains.map((c) => c.tenant)).toContain('westshire');

    const again = await new Client(t.app, t.clock).request(
      'POST',
      '/api/v1/operator/providers',
      { id: 'westshire', name: 'Again' },
      OPERATOR_HEADERS,
    );
    expect(again.statusCode, again.body).toBe(409);
    const bad = await new Client(t.app, t.clock).request(
      'POST',
      '/api/v1/operator/providers',
      { id: 'West Shire', name: 'x' },
      OPERATOR_HEADERS,
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ path: 'body.id' }] });
  });

  it("refuses a provider's user, even its admin, and anyone without the operator token", async () => {
    admin = await signedInAdmin(t.app, t.clock, t.providers[0]!.users.provider_admin.username);
    const before = (await t.node.store.db.selectFrom('ledger_events').select('id').execute()).length;
    const asAdmin = await admin.request('POST', '/api/v1/operator/providers', { id: 'eastshire', name: 'E' });
    expect(asAdmin.statusCode, asAdmin.body).toBe(401);
    expect(asAdmin.json()).toMatchObject({ detail: expect.stringMatching(/operator token/) });
    const wrongToken = await admin.request(
      'POST',
      '/api/v1/operator/providers',
      { id: 'eastshire', name: 'E' },
      { authorization: 'Bearer not-the-operator-token' },
    );
    expect(wrongToken.statusCode).toBe(401);
    const anonymous = await new Client(t.app, t.clock).request('POST', '/api/v1/operator/providers', {
      id: 'eastshire',
      name: 'E',
    });
    expect(anonymous.statusCode).toBe(401);
    expect(await t.accounts.providerExists('eastshire')).toBe(false);
    // Nothing was stored but the sign-in's own audit of the admin.
    const after = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['type'])
      .where('type', 'in', ['tenant.created', 'node.registered'])
      .execute();
    expect(after.length).toBeLessThan(before);
    expect(await eventTypes(t.node, 'eastshire')).toEqual([]);
  });

  it('a provider made the old way (tenant.created alone) is registered at start; verify is clean', async () => {
    // As the tester's internal call, and every provider before `providers add`, made it: no node
    // registration and no key; its user from before sealing (version 1, plain hash).
    await t.accounts.createTenant('oldshire', 'Oldshire IUC', 'system:test');
    const site = await t.accounts.createSite('oldshire', 'Oldshire site', 'system:test');
    await t.node.ledger.append([
      {
        tenant: 'oldshire',
        type: 'user.created',
        v: 1,
        actor: 'system:test',
        payload: {
          userId: randomUUID(),
          username: 'old-timer@oldshire',
          displayName: 'Old timer',
          roles: ['health_adviser'],
          siteIds: [site],
          passwordHash: await hashPassword(PASSWORD),
        },
      },
    ]);
    await t.node.ledger.checkpointNow('oldshire');
    const before = await verifyAll(t.node);
    expect(before.faults.map((f) => f.problem).join('\n')).toMatch(/oldshire/);

    expect(await registerInOldProviders(t.node)).toEqual(['oldshire']);
    expect((await eventTypes(t.node, 'oldshire')).at(-1)).toBe('node.registered');
    expect((await verifyAll(t.node)).faults).toEqual([]);
    // Once only; and the provider now has a key, so new users' secrets are sealed.
    expect(await registerInOldProviders(t.node)).toEqual([]);
    expect(t.node.providerKeys.has('oldshire')).toBe(true);
    await t.accounts.create(
      'oldshire',
      {
        username: 'new@oldshire',
        displayName: 'New',
        roles: ['health_adviser'],
        siteIds: [site],
        password: PASSWORD,
      },
      'system:test',
    );
    const c = new Client(t.app, t.clock);
    expect((await c.signIn('old-timer@oldshire')).statusCode).toBe(200);
    expect((await new Client(t.app, t.clock).signIn('new@oldshire')).statusCode).toBe(200);
  });

  it('shows the clinical-grant alert to the shift manager, not to roles without the dashboard', async () => {
    const north = t.providers[0]!;
    t.clock.advance(60_000);
    const adminUser = north.users.provider_admin;
    await t.accounts.changeRoles(
      {
        tenant: north.tenant,
        userId: adminUser.userId,
        username: adminUser.username,
        roles: ['provider_admin'],
        siteIds: [],
        sessionId: 'test',
        address: '127.0.0.1',
      },
      north.users.receptionist.userId,
      ['receptionist', 'clinician'],
      [north.sites[0]!],
      'covering the night shift',
    );
    const manager = new Client(t.app, t.clock);
    expect((await manager.signIn(north.users.shift_manager.username)).statusCode).toBe(200);
    const seen = await manager.request('GET', '/api/v1/dashboard/clinical-role-grants');
    expect(seen.statusCode, seen.body).toBe(200);
    const grants = (
      seen.json() as { clinicalRoleGrants: { user: { name: string }; roles: string[]; reason: string }[] }
    ).clinicalRoleGrants;
    expect(grants).toContainEqual(
      expect.objectContaining({
        user: expect.objectContaining({ name: `receptionist of ${north.tenant}` }),
        roles: ['clinician'],
        reason: 'covering the night shift',
      }),
    );
    // The shift manager does not manage users: the admin route stays refused.
    expect((await manager.request('GET', '/api/v1/admin/alerts')).statusCode).toBe(403);
    // Administrators read it on their own route; roles without the dashboard are refused.
    expect((await admin.request('GET', '/api/v1/dashboard/clinical-role-grants')).statusCode).toBe(403);
    expect((await admin.request('GET', '/api/v1/admin/alerts')).statusCode).toBe(200);
    for (const role of ['health_adviser', 'clinician', 'dispatcher'] as const) {
      const c = new Client(t.app, t.clock);
      expect((await c.signIn(north.users[role].username)).statusCode).toBe(200);
      expect((await c.request('GET', '/api/v1/dashboard/clinical-role-grants')).statusCode, role).toBe(403);
    }
  });

  it('rotates a provider key: new events under it, old ones still open, a site fetches the keys by enrolment', async () => {
    const north = t.providers[0]!;
    // A site enrolled before the rotation (system clock: signed sync requests must be within ±300 s).
    t.clock.set(Math.max(t.clock.nowMs(), Date.now()));
    const first = await issueEnrolmentToken(t.node.store, t.clock, {
      tenant: north.tenant,
      createdBy: 'system:test',
    });
    const siteStore = await freshStore(kind);
    cleanups.push(siteStore.cleanup);
    const joined = await joinHub(
      { ...siteStore.config, checkpointEvery: 100 },
      { node: 'site-1', hubUrl: 'http://hub.test', token: first.token },
      fetchInto(t.app),
    );
    expect(joined.firstSync instanceof Error ? joined.firstSync.message : 'synced').toBe('synced');
    const siteNode = joined.node;
    let site: HoldfastApp = await buildHoldfastApp(siteNode, {
      logger: createLogger('silent'),
      throttle: { maxFailures: 5, lockoutMs: 15 * 60_000, perAddressPerMinute: 10_000 },
      passkeys: { rpId: 'localhost', rpName: 'Holdfast test', origins: ['http://localhost:8080'] },
      webDist: false,
    });
    cleanups.push(async () => {
      await site.app.close();
      await siteNode.close();
    });
    const syncSite = () =>
      new SyncEngine(
        siteNode,
        north.tenant,
        new HttpSyncTransport({
          url: 'http://hub.test',
          peerNode: t.node.identity.node,
          peerPublicKey: t.node.identity.signer.publicKey,
          signer: siteNode.identity.signer,
          tenant: north.tenant,
          clock: siteNode.clock,
          fetch: fetchInto(t.app),
        }),
      ).syncOnce();

    const oldKey = t.node.providerKeys.keySet(north.tenant).current;
    const { keyId, keyIds } = await rotateProviderKey(t.node, t.accounts, north.tenant);
    expect(keyId).not.toBe(oldKey);
    expect(keyIds.sort()).toEqual([oldKey, keyId].sort());
    // The file on disk holds both, by id.
    const file = JSON.parse(readFileSync(join(t.config.dataDir, PROVIDER_KEYS_FILE), 'utf8')) as {
      providers: Record<string, { current: string; keys: Record<string, string> }>;
    };
    expect(file.providers[north.tenant]!.current).toBe(keyId);
    expect(Object.keys(file.providers[north.tenant]!.keys).sort()).toEqual([oldKey, keyId].sort());

    const created = await t.accounts.create(
      north.tenant,
      {
        username: 'after-rotation',
        displayName: 'After',
        roles: ['health_adviser'],
        siteIds: [north.sites[0]!],
        password: PASSWORD,
      },
      'system:test',
    );
    expect(await sealedKeyIdOf(t.node, created.userId)).toBe(keyId);
    expect(await sealedKeyIdOf(t.node, north.users.clinician.userId)).toBe(oldKey);
    // Both sign in at the hub: the old event opens under the old key, the new under the new.
    expect((await new Client(t.app, t.clock).signIn(north.users.clinician.username)).statusCode).toBe(200);
    expect((await new Client(t.app, t.clock).signIn('after-rotation')).statusCode).toBe(200);

    // The site has the new user's events but not the key that opens them.
    await syncSite();
    expect(siteNode.providerKeys.keySet(north.tenant).keys[keyId]).toBeUndefined();
    const refused = await new Client(site.app, t.clock).request('POST', '/api/v1/auth/sign-in', {
      username: 'after-rotation',
      password: PASSWORD,
    });
    expect(refused.statusCode).not.toBe(200);

    // A site cannot rotate; it fetches the keys with a new one-time token for the same node.
    await expect(rotateProviderKey(siteNode, site.accounts, north.tenant)).rejects.toThrow('a site does not');
    const second = await issueEnrolmentToken(t.node.store, t.clock, {
      tenant: north.tenant,
      createdBy: 'system:test',
    });
    const registrations = async () =>
      (await eventTypes(t.node, north.tenant)).filter((e) => e === 'node.registered').length;
    const registeredBefore = await registrations();
    const fetched = await fetchProviderKeys(siteNode, second.token, fetchInto(t.app));
    expect(fetched.current).toBe(keyId);
    expect(fetched.keyIds.sort()).toEqual([oldKey, keyId].sort());
    // The token is spent; nothing new was registered for the site.
    await expect(fetchProviderKeys(siteNode, second.token, fetchInto(t.app))).rejects.toThrow(
      /unknown, expired or already used/,
    );
    expect(await registrations()).toBe(registeredBefore);

    await site.app.close();
    site = await buildHoldfastApp(siteNode, {
      logger: createLogger('silent'),
      throttle: { maxFailures: 5, lockoutMs: 15 * 60_000, perAddressPerMinute: 10_000 },
      passkeys: { rpId: 'localhost', rpName: 'Holdfast test', origins: ['http://localhost:8080'] },
      webDist: false,
    });
    expect((await new Client(site.app, t.clock).signIn('after-rotation')).statusCode).toBe(200);
    expect((await verifyAll(t.node)).faults).toEqual([]);
  }, 120_000);
});
