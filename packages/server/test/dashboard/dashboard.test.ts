import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SiteSummary } from '../../src/dashboard/routes.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { SyncStatusStore } from '../../src/sync/status.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

interface Dashboard {
  sites: SiteSummary[];
  escalations: { caseId: string; siteId: string; failedCallbackAttempts: number; timing: string }[];
}

/**
 * The shift manager's dashboard and the site directory the browser app uses: counts per site from
 * real cases driven through HTTP (a call with the adviser, queued cases, one escalated after two
 * failed call-backs, timing moved by the clock), for the caller's provider only.
 */
describe.each(STORE_KINDS)('dashboard on %s', (kind) => {
  let t: TestApp;
  const clients: Record<string, Client> = {};
  const signIn = async (who: string, tenant = 'northshire') => {
    const c = new Client(t.app, t.clock);
    const role = who.replace('-', '_') as keyof TestApp['providers'][number]['users'];
    const provider = t.providers.find((p) => p.tenant === tenant)!;
    expect((await c.signIn(provider.users[role].username)).statusCode).toBe(200);
    return c;
  };

  beforeAll(async () => {
    // Sessions outlive the day the clock is moved on by.
    t = await startTestApp(kind, {
      providers: ['northshire', 'southshire'],
      idleTimeoutMs: 48 * 3600_000,
      absoluteTimeoutMs: 72 * 3600_000,
    });
    for (const role of ['health_adviser', 'clinician', 'shift_manager', 'auditor'])
      clients[role] = await signIn(role);
    clients.other_manager = await signIn('shift_manager', 'southshire');
  });
  afterAll(async () => t?.close());

  it('counts calls with advisers, queued, held, at risk, breached and escalated per site', async () => {
    const [siteA, siteB] = t.providers[0]!.sites as [string, string];
    const pack = await requireProtocolPack(SAMPLE_PACK_DIR);
    const adviser = clients.health_adviser!;
    // Site A: one call still with the adviser, two queued cases (one then claimed and escalated).
    const open = await adviser.request('POST', '/api/v1/calls', {
      siteId: siteA,
      caller: {
        name: 'Sam Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Feeling unwell',
    });
    expect(open.statusCode).toBe(201);
    const first = await caseAt(adviser, pack.protocols, siteA, 'speak_to_primary_care');
    await caseAt(adviser, pack.protocols, siteA, 'speak_to_primary_care');
    // Site B: one queued case.
    await caseAt(adviser, pack.protocols, siteB, 'speak_to_primary_care');

    const clinician = clients.clinician!;
    expect((await clinician.request('POST', `/api/v1/cases/${first.caseId}/claim`)).statusCode).toBe(200);
    for (let i = 0; i < 2; i++) {
      const r = await clinician.request('POST', `/api/v1/cases/${first.caseId}/callback-attempts`, {
        outcome: 'no_answer',
      });
      expect(r.statusCode, r.body).toBe(200);
    }

    const read = async (client: Client, query = '') => {
      const r = await client.request('GET', `/api/v1/dashboard${query}`);
      expect(r.statusCode, r.body).toBe(200);
      return r.json() as Dashboard;
    };
    const now = await read(clients.shift_manager!);
    const a = now.sites.find((s) => s.siteId === siteA)!;
    const b = now.sites.find((s) => s.siteId === siteB)!;
    expect(a).toMatchObject({
      name: 'northshire site A',
      callsWaiting: 1,
      queued: 1,
      withClinician: 1,
      breached: 0,
      escalated: 1,
    });
    expect(b).toMatchObject({ callsWaiting: 0, queued: 1, withClinician: 0, escalated: 0 });
    expect(now.escalations).toEqual([
      expect.objectContaining({ caseId: first.caseId, siteId: siteA, failedCallbackAttempts: 2 }),
    ]);
    // No patient or caller details in the dashboard.
    expect(JSON.stringify(now)).not.toMatch(/Sam Caller|496 0123/);

    // A day later every queued case is past its deadline.
    t.clock.advance(24 * 3600_000);
    const later = await read(clients.auditor!);
    expect(later.sites.find((s) => s.siteId === siteA)).toMatchObject({ breached: 2, atRisk: 0 });
    expect(later.sites.find((s) => s.siteId === siteB)).toMatchObject({ breached: 1 });
    // A site filter narrows the answer to that site.
    expect((await read(clients.shift_manager!, `?siteId=${siteB}`)).sites.map((s) => s.siteId)).toEqual([
      siteB,
    ]);

    // Another provider's manager sees its own sites, all empty.
    const other = await read(clients.other_manager!);
    expect(other.sites.map((s) => s.name).sort()).toEqual(['southshire site A', 'southshire site B']);
    expect(other.sites.every((s) => s.queued + s.callsWaiting + s.withClinician === 0)).toBe(true);
    expect(other.escalations).toEqual([]);
    // …and naming this provider's site is refused, not answered with an empty dashboard.
    const foreign = await clients.other_manager!.request('GET', `/api/v1/dashboard?siteId=${siteA}`);
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json()).toMatchObject({
      errors: [{ path: 'query.siteId', message: 'is not a site of your provider' }],
    });
  });

  it("shows this server's lasting sync alarm, in words, to its own provider only (and the sync status does too)", async () => {
    const quiet = (await clients.shift_manager!.request('GET', '/api/v1/dashboard')).json() as {
      syncAlarms: unknown[];
    };
    expect(quiet.syncAlarms).toEqual([]);
    const store = new SyncStatusStore(t.node.store, t.clock);
    await store.raiseAlarm(
      'northshire',
      'history_refused',
      "the hub (hub-1) refuses this site's own history: node node-1 seq 7 ...",
      'Treat this as a security incident',
    );
    const loud = (await clients.shift_manager!.request('GET', '/api/v1/dashboard')).json() as {
      syncAlarms: { kind: string; message: string; advice: string; raisedAt: string }[];
    };
    expect(loud.syncAlarms).toEqual([
      {
        kind: 'history_refused',
        raisedAt: new Date(t.clock.nowMs()).toISOString(),
        lastSeenAt: new Date(t.clock.nowMs()).toISOString(),
        message: "the hub (hub-1) refuses this site's own history: node node-1 seq 7 ...",
        advice: 'Treat this as a security incident',
      },
    ]);
    const status = (await clients.clinician!.request('GET', '/api/v1/sync/status')).json() as {
      alarms: { kind: string }[];
      writesReachHub: boolean;
    };
    expect(status.alarms.map((a) => a.kind)).toEqual(['history_refused']);
    expect(status.writesReachHub).toBe(false);
    const other = (await clients.other_manager!.request('GET', '/api/v1/dashboard')).json() as {
      syncAlarms: unknown[];
    };
    expect(other.syncAlarms).toEqual([]);
    expect(await store.clearAlarm('northshire', 'history_refused', 'test', 'dealt with')).toBe(1);
    const after = (await clients.shift_manager!.request('GET', '/api/v1/dashboard')).json() as {
      syncAlarms: unknown[];
    };
    expect(after.syncAlarms).toEqual([]);
  });

  it('is refused to roles without reports, and a bad site id is named', async () => {
    expect((await clients.health_adviser!.request('GET', '/api/v1/dashboard')).statusCode).toBe(403);
    const bad = await clients.shift_manager!.request('GET', '/api/v1/dashboard?siteId=nope');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ path: 'query.siteId' }] });
  });

  it('lists the provider’s sites by name for any signed-in user, marking their own', async () => {
    const r = await clients.health_adviser!.request('GET', '/api/v1/sites');
    expect(r.statusCode).toBe(200);
    const sites = (r.json() as { sites: { siteId: string; name: string; mine: boolean }[] }).sites;
    const [siteA, siteB] = t.providers[0]!.sites;
    expect(sites).toEqual([
      { siteId: siteA, name: 'northshire site A', mine: true },
      { siteId: siteB, name: 'northshire site B', mine: false },
    ]);
    expect((await new Client(t.app, t.clock).request('GET', '/api/v1/sites')).statusCode).toBe(401);
  });
});
