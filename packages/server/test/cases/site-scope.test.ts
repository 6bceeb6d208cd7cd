import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { signedInAdmin } from '../support/admin.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The CAS queue is the work of a user's own sites: a clinician of site A neither sees nor claims a
 * case of site B (which had produced reconciliation items with no real conflict when clinicians
 * worked every site's queue); working across sites is a permission of its own (the shift manager's).
 */
describe.each(STORE_KINDS)('the queue keeps to a user’s sites on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let manager: Client;
  let admin: Client;
  let siteA: string;
  let siteB: string;
  let caseA: string;
  let caseB: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    [siteA, siteB] = t.providers[0]!.sites as [string, string];
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    manager = new Client(t.app, t.clock);
    // Every user of the test provider belongs to site A only.
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
      [manager, 'shift_manager@northshire'],
    ] as const)
      expect((await c.signIn(u)).statusCode).toBe(200);
    admin = await signedInAdmin(t.app, t.clock, 'provider_admin@northshire');
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    caseA = (await caseAt(adviser, protocols, siteA, 'speak_to_primary_care')).caseId;
    caseB = (await caseAt(adviser, protocols, siteB, 'speak_to_primary_care')).caseId;
  });

  afterAll(async () => {
    await t.close();
  });

  const queueIds = async (client: Client, query = ''): Promise<{ status: number; ids: string[] }> => {
    const r = await client.request('GET', `/api/v1/queue${query}`);
    const ids =
      r.statusCode === 200 ? (r.json() as { cases: { caseId: string }[] }).cases.map((c) => c.caseId) : [];
    return { status: r.statusCode, ids };
  };

  it('a clinician of site A sees site A’s case and not site B’s, and may not ask for site B', async () => {
    const mine = await queueIds(clinician);
    expect(mine.ids).toContain(caseA);
    expect(mine.ids).not.toContain(caseB);
    const other = await queueIds(clinician, `?siteId=${siteB}`);
    expect(other.status).toBe(403);
  });

  it('a clinician of site A cannot claim site B’s case, and is told why', async () => {
    const r = await clinician.request('POST', `/api/v1/cases/${caseB}/claim`);
    expect(r.statusCode).toBe(403);
    expect(r.body).toContain('not one of yours');
    const ok = await clinician.request('POST', `/api/v1/cases/${caseA}/claim`);
    expect(ok.statusCode).toBe(200);
  });

  it('the shift manager, who works across sites, sees both', async () => {
    const all = await queueIds(manager);
    expect(all.ids).toEqual(expect.arrayContaining([caseA, caseB]));
    expect((await queueIds(manager, `?siteId=${siteB}`)).ids).toEqual([caseB]);
  });

  it('a case of site B is read by whoever took the call and by those across sites, not by a site-A clinician', async () => {
    const refused = await clinician.request('GET', `/api/v1/cases/${caseB}`);
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('not one of yours');
    // The adviser took caseB's call (for site B) and still reads it; the shift manager works across sites.
    expect((await adviser.request('GET', `/api/v1/cases/${caseB}`)).statusCode).toBe(200);
    expect((await manager.request('GET', `/api/v1/cases/${caseB}`)).statusCode).toBe(200);
    const trail = await t.node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'audit.denied')
      .execute();
    expect(trail.some((e) => String(e.payload).includes('GET /api/v1/cases/:caseId'))).toBe(true);
  });

  it('an admin creating a user with no sites is warned; that user sees no queue, reads no case and claims nothing', async () => {
    const created = await admin.request('POST', '/api/v1/admin/users', {
      username: 'siteless-clinician@northshire',
      displayName: 'Dr No Site',
      roles: ['clinician'],
      siteIds: [],
      password: PASSWORD,
      reason: 'new clinician',
    });
    expect(created.statusCode, created.body).toBe(201);
    const { user, warnings } = created.json() as { user: { userId: string }; warnings: string[] };
    expect(warnings).toEqual([expect.stringMatching(/^This user has no sites: they will see no queue/)]);
    // Changing roles to none of the sites says so again; giving a site says nothing.
    const noSites = await admin.request('PUT', `/api/v1/admin/users/${user.userId}/roles`, {
      roles: ['clinician'],
      siteIds: [],
    });
    expect((noSites.json() as { warnings: string[] }).warnings).toHaveLength(1);
    const withSite = await admin.request('POST', '/api/v1/admin/users', {
      username: 'sited-clinician@northshire',
      displayName: 'Dr Has Site',
      roles: ['clinician'],
      siteIds: [siteA],
      password: PASSWORD,
      reason: 'new clinician',
    });
    expect((withSite.json() as { warnings: string[] }).warnings).toEqual([]);

    const siteless = new Client(t.app, t.clock);
    expect((await siteless.signIn('siteless-clinician@northshire')).statusCode).toBe(200);
    const queue = await queueIds(siteless);
    expect(queue.status).toBe(200);
    expect(queue.ids).toEqual([]);
    const read = await siteless.request('GET', `/api/v1/cases/${caseB}`);
    expect(read.statusCode).toBe(403);
    expect(read.body).toContain('you have no sites yet');
    const claim = await siteless.request('POST', `/api/v1/cases/${caseB}/claim`);
    expect(claim.statusCode).toBe(403);
  });

  it('queue rows show the patient, their flags and who holds the case by name; notes outside one’s sites are withheld', async () => {
    const registered = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: siteA,
      record: {
        givenName: 'Margaret',
        familyName: 'Queueworth',
        dateOfBirth: '1941-03-14',
        sex: 'female',
        specialNotes: [
          { kind: 'dnacpr', text: 'DNACPR form signed, copy at home.' },
          { kind: 'safeguarding', text: 'Lives with a carer under review.' },
        ],
      },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const { patientId } = registered.json() as { patientId: string };
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    // Three calls in 96 hours make a repeat caller.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await caseAt(adviser, protocols, siteA, 'speak_to_primary_care', { patientId })).caseId);
    const held = ids[0]!;
    expect((await clinician.request('POST', `/api/v1/cases/${held}/claim`)).statusCode).toBe(200);

    type Row = {
      caseId: string;
      siteId: string;
      claimedBy: string | null;
      claimedByName: string | null;
      patient: {
        name: string;
        ageYears: number;
        sex: string;
        specialNotes: string[] | 'withheld';
        repeatCaller: boolean;
      } | null;
    };
    const rows = async (client: Client) =>
      ((await client.request('GET', '/api/v1/queue')).json() as { cases: Row[] }).cases;
    const mine = (await rows(clinician)).find((r) => r.caseId === held)!;
    expect(mine.patient).toEqual({
      patientId,
      name: 'Margaret Queueworth',
      // 2026-11-29 (the test clock): 85 years old.
      ageYears: 85,
      sex: 'female',
      specialNotes: ['dnacpr', 'safeguarding'],
      repeatCaller: true,
    });
    expect(mine.claimedByName).toBe('clinician of northshire');
    expect(mine.siteId).toBe(siteA);
    const waiting = (await rows(clinician)).find((r) => r.caseId === ids[1])!;
    expect(waiting.claimedByName).toBeNull();
    // The case read names the holder too (what a live queue update re-reads).
    const detail = (await manager.request('GET', `/api/v1/cases/${held}`)).json() as Row;
    expect(detail.claimedByName).toBe('clinician of northshire');

    // A shift manager of site B only works across sites, but Margaret's record is site A's: her
    // notes are withheld from them (never shown as none).
    const created = await admin.request('POST', '/api/v1/admin/users', {
      username: 'manager-b@northshire',
      displayName: 'Site B manager',
      roles: ['shift_manager'],
      siteIds: [siteB],
      password: PASSWORD,
      reason: 'Covers the site B shift tonight',
    });
    expect(created.statusCode, created.body).toBe(201);
    const managerB = new Client(t.app, t.clock);
    expect((await managerB.signIn('manager-b@northshire')).statusCode).toBe(200);
    const seen = (await rows(managerB)).find((r) => r.caseId === held)!;
    expect(seen.patient?.specialNotes).toBe('withheld');
    expect(seen.patient?.name).toBe('Margaret Queueworth');
  });

  it('a record outside one’s sites is read by break-glass with a reason in the body, and the read is audited', async () => {
    // Everyone here works at site A: the record is registered at site B with break-glass.
    const registered = await clinician.request(
      'POST',
      '/api/v1/patients',
      {
        homeSiteId: siteB,
        record: {
          givenName: 'Walter',
          familyName: 'Glassbreak',
          dateOfBirth: '1950-07-01',
          sex: 'male',
          specialNotes: [{ kind: 'dnacpr', text: 'DNACPR in place, form at home.' }],
        },
      },
      { 'x-break-glass-reason': 'Registering a visitor from another area' },
    );
    expect(registered.statusCode, registered.body).toBe(201);
    const { patientId } = registered.json() as { patientId: string };
    expect((await clinician.request('GET', `/api/v1/patients/${patientId}`)).statusCode).toBe(403);
    const short = await clinician.request('POST', `/api/v1/patients/${patientId}/break-glass`, {
      reason: 'need it',
    });
    expect(short.statusCode).toBe(400);
    expect(short.body).toContain('body.reason');
    // An adviser's role cannot break glass at all.
    const adviserTry = await adviser.request('POST', `/api/v1/patients/${patientId}/break-glass`, {
      reason: 'Calling back now: need to know of any DNACPR',
    });
    expect(adviserTry.statusCode).toBe(403);

    const reason = 'Calling back now: need to know of any DNACPR';
    const read = await clinician.request('POST', `/api/v1/patients/${patientId}/break-glass`, { reason });
    expect(read.statusCode, read.body).toBe(200);
    const view = read.json() as { breakGlass: boolean; record: { specialNotes: unknown[] } };
    expect(view.breakGlass).toBe(true);
    expect(view.record.specialNotes).toEqual([{ kind: 'dnacpr', text: 'DNACPR in place, form at home.' }]);
    const audits = await t.node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'audit.access')
      .where('payload', 'like', `%${patientId}%`)
      .execute();
    const flagged = audits
      .map((a) => JSON.parse(String(a.payload)) as { action: string; breakGlass: boolean; reason?: string })
      // The registration at site B was a break-glass write; the read is what this test is about.
      .filter((a) => a.breakGlass && a.action === 'read');
    expect(flagged).toEqual([expect.objectContaining({ breakGlass: true, reason })]);
  });
});
