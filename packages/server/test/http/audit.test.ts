import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Acceptance: reading a patient-like protected record yields exactly one audit event with the right
 * actor, and the ledger verifies afterwards. Also: field-level rules, break-glass, the audit API.
 */
describe.each(STORE_KINDS)('audit of patient data on %s', (kind) => {
  let t: TestApp;
  let patientId: string;
  let otherSitePatient: string;
  const clients: Record<string, Client> = {};

  beforeAll(async () => {
    t = await startTestApp(kind);
    for (const role of [
      'health_adviser',
      'clinician',
      'receptionist',
      'dispatcher',
      'auditor',
      'shift_manager',
    ] as const) {
      clients[role] = new Client(t.app, t.clock);
      const r = await clients[role].signIn(`${role}@northshire`);
      if (r.statusCode !== 200) throw new Error(`${role} could not sign in: ${r.body}`);
    }
    const north = t.providers[0]!;
    const record = {
      givenName: 'Ada',
      familyName: 'Testperson',
      dateOfBirth: '1948-03-02',
      sex: 'female',
      nhsNumber: '999 000 0018',
      specialNotes: [{ kind: 'dnacpr', text: 'DNACPR form at the bedside' }],
      clinicalNotes: 'COPD, home oxygen',
      accessInstructions: 'Key safe by the back door, code 4321',
    };
    // Registered by a clinician: an adviser's role may not write clinical notes or access instructions.
    const created = await clients.clinician!.request('POST', '/api/v1/patients', {
      homeSiteId: north.sites[0],
      record,
    });
    expect(created.statusCode, created.body).toBe(201);
    patientId = (created.json() as { patientId: string }).patientId;
    // The other site's patient is registered by a clinician who works there (every test user
    // works at site A, and clinical notes are only written by a role that reads them).
    await t.accounts.create(
      north.tenant,
      {
        username: `clinician.b@${north.tenant}`,
        displayName: 'Clinician at site B',
        roles: ['clinician'],
        siteIds: [north.sites[1]!],
        password: PASSWORD,
      },
      'system:test',
    );
    const clinicianB = new Client(t.app, t.clock);
    expect((await clinicianB.signIn(`clinician.b@${north.tenant}`)).statusCode).toBe(200);
    const other = await clinicianB.request('POST', '/api/v1/patients', {
      homeSiteId: north.sites[1],
      record: { ...record, nhsNumber: undefined, givenName: 'Bo' },
    });
    expect(other.statusCode, other.body).toBe(201);
    otherSitePatient = (other.json() as { patientId: string }).patientId;
  });
  afterAll(async () => t?.close());

  const auditEvents = async () =>
    (await t.node.ledger.readTenant('northshire', null, 100_000))
      .filter((e) => e.type === 'audit.access')
      .map((e) => ({ ...e, payload: JSON.parse(e.payloadJson) as Record<string, unknown> }));

  it('one read yields exactly one audit event naming the actor, role, site and fields; the ledger verifies', async () => {
    const before = await auditEvents();
    const r = await clients.clinician!.request('GET', `/api/v1/patients/${patientId}`);
    expect(r.statusCode, r.body).toBe(200);
    const after = await auditEvents();
    const added = after.slice(before.length);
    expect(added).toHaveLength(1);
    const north = t.providers[0]!;
    expect(added[0]!.actor).toBe(`user:${north.users.clinician.userId}`);
    expect(added[0]!.payload).toMatchObject({
      userId: north.users.clinician.userId,
      roles: ['clinician'],
      siteIds: [north.sites[0]],
      action: 'read',
      resourceType: 'patient',
      resourceId: patientId,
      breakGlass: false,
    });
    expect(added[0]!.payload.fields).toEqual(
      expect.arrayContaining(['specialNotes', 'clinicalNotes', 'accessInstructions']),
    );
    const report = await verifyStore(t.node.store, ledgerCrypto);
    expect(report.faults).toEqual([]);
  });

  it('shows special notes first and applies field-level rules per role', async () => {
    const view = async (role: string) =>
      (await clients[role]!.request('GET', `/api/v1/patients/${patientId}`)).json() as {
        record: Record<string, unknown>;
        withheld: string[];
      };
    const clinician = await view('clinician');
    expect(Object.keys(clinician.record)[0]).toBe('specialNotes');
    expect(clinician.record.clinicalNotes).toBe('COPD, home oxygen');
    expect(clinician.record.accessInstructions).toContain('Key safe');
    const receptionist = await view('receptionist');
    expect(receptionist.record.clinicalNotes).toBeUndefined();
    expect(receptionist.record.accessInstructions).toBeUndefined();
    expect(receptionist.withheld.sort()).toEqual(['accessInstructions', 'clinicalNotes']);
    expect(receptionist.record.specialNotes).toEqual([
      { kind: 'dnacpr', text: 'DNACPR form at the bedside' },
    ]);
    const dispatcher = await view('dispatcher');
    expect(dispatcher.record.accessInstructions).toContain('Key safe');
    expect(dispatcher.record.clinicalNotes).toBeUndefined();
    const adviser = await view('health_adviser');
    expect(adviser.record.accessInstructions).toBeUndefined();
  });

  it('break-glass: outside your sites needs a stated reason and is flagged for review', async () => {
    const refused = await clients.clinician!.request('GET', `/api/v1/patients/${otherSitePatient}`);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ detail: expect.stringContaining('X-Break-Glass-Reason') });
    const receptionist = await clients.receptionist!.request(
      'GET',
      `/api/v1/patients/${otherSitePatient}`,
      undefined,
      { 'x-break-glass-reason': 'patient arrived at our centre' },
    );
    expect(receptionist.statusCode).toBe(403); // no break-glass permission
    const opened = await clients.clinician!.request(
      'GET',
      `/api/v1/patients/${otherSitePatient}`,
      undefined,
      { 'x-break-glass-reason': 'patient rang our line, their site is closed' },
    );
    expect(opened.statusCode).toBe(200);
    expect(opened.json()).toMatchObject({ breakGlass: true });
    const flagged = await clients.auditor!.request('GET', '/api/v1/audit?breakGlass=true');
    expect(flagged.statusCode).toBe(200);
    const events = (
      flagged.json() as { events: { resourceId: string; reason: string; breakGlass: boolean }[] }
    ).events;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      resourceId: otherSitePatient,
      reason: 'patient rang our line, their site is closed',
      breakGlass: true,
    });
  });

  it('lets auditors filter the trail by patient, user and time range, and nobody else read it', async () => {
    const north = t.providers[0]!;
    const byPatient = (
      await clients.auditor!.request('GET', `/api/v1/audit?patientId=${patientId}`)
    ).json() as { events: { resourceId: string; action: string }[] };
    expect(byPatient.events.length).toBeGreaterThanOrEqual(5);
    expect(byPatient.events.every((e) => e.resourceId === patientId)).toBe(true);
    const byUser = (
      await clients.auditor!.request('GET', `/api/v1/audit?userId=${north.users.receptionist.userId}`)
    ).json() as { events: { userId: string; action: string }[] };
    expect(byUser.events.map((e) => e.action)).toEqual(
      expect.arrayContaining(['read', 'denied', 'sign_in.password']),
    );
    expect(byUser.events.every((e) => e.userId === north.users.receptionist.userId)).toBe(true);
    const future = (
      await clients.auditor!.request('GET', '/api/v1/audit?from=2030-01-01T00:00:00Z')
    ).json() as { events: unknown[] };
    expect(future.events).toEqual([]);
    const bad = await clients.auditor!.request('GET', '/api/v1/audit?from=yesterday');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ path: 'query.from' }] });
    expect((await clients.clinician!.request('GET', '/api/v1/audit')).statusCode).toBe(403);
  });

  it('audits searches and sign-ins, and records no password or code', async () => {
    const r = await clients.health_adviser!.request('POST', '/api/v1/patients/search', {
      nhsNumber: '9990000018',
    });
    expect((r.json() as { patients: { patientId: string }[] }).patients.map((p) => p.patientId)).toEqual([
      patientId,
    ]);
    const all = await t.node.ledger.readTenant('northshire', null, 100_000);
    expect(all.some((e) => e.type === 'audit.access' && e.payloadJson.includes('"action":"search"'))).toBe(
      true,
    );
    const text = all.map((e) => e.payloadJson).join('\n');
    expect(text).not.toContain('correct horse battery staple');
  });
});
