import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { patientsDb } from '../../src/patients/projection.ts';
import { checkProjections, describeProjectionCheck } from '../../src/projections/check.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { eventsAfter, ledgerPosition, nhsNumberFor } from '../support/route-samples.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Changing a registered patient's details through HTTP on both stores (issue 11, patient identity):
 * only changed fields are stored, with who and when; bad input stores nothing; a stale version is
 * refused; roles, tenants and the sites rule of reads apply; a restricted record's withheld fields
 * stay out of the general record. Special notes, and a safeguarding concern raised from a case.
 */

type View = {
  version: number;
  record: Record<string, unknown> & { specialNotes: { kind: string; text?: string; withheld?: true }[] };
};
type History = { type: string; by: string; at: string; fields: string[]; kind?: string; caseId?: string };

describe.each(STORE_KINDS)('editing a patient on %s', (kind) => {
  let t: TestApp;
  let tenant: string;
  let siteA: string;
  let siteB: string;
  const clients: Record<string, Client> = {};
  let other: Client;
  let seed = 9100;

  beforeAll(async () => {
    t = await startTestApp(kind);
    tenant = t.providers[0]!.tenant;
    [siteA, siteB] = t.providers[0]!.sites as [string, string];
    for (const role of ['health_adviser', 'clinician', 'dispatcher', 'receptionist'] as const) {
      clients[role] = new Client(t.app, t.clock);
      const r = await clients[role].signIn(`${role}@northshire`);
      if (r.statusCode !== 200) throw new Error(`${role} could not sign in: ${r.body}`);
    }
    other = new Client(t.app, t.clock);
    await other.signIn('health_adviser@southshire');
  });
  afterAll(async () => t?.close());

  const adviser = () => clients.health_adviser!;

  async function register(record: Record<string, unknown> = {}, homeSiteId = siteA): Promise<string> {
    // The adviser works at site A; a record homed at another site is registered with break-glass.
    const elsewhere = homeSiteId !== siteA;
    const by = elsewhere ? clients.clinician! : adviser();
    const headers = elsewhere
      ? { 'x-break-glass-reason': 'Registering a visitor from another area' }
      : undefined;
    const r = await by.request(
      'POST',
      '/api/v1/patients',
      {
        homeSiteId,
        record: {
          nhsNumber: nhsNumberFor(seed++),
          givenName: 'Edna',
          familyName: 'Edited',
          dateOfBirth: '1950-03-04',
          sex: 'female',
          phone: '0113 496 0001',
          address: '1 Old Road, Leeds',
          postcode: 'LS1 1AA',
          specialNotes: [],
          ...record,
        },
      },
      headers,
    );
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { patientId: string }).patientId;
  }

  const read = async (patientId: string, as = adviser()) => {
    const r = await as.request('GET', `/api/v1/patients/${patientId}`);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as View;
  };

  const history = async (patientId: string) => {
    const r = await adviser().request('GET', `/api/v1/patients/${patientId}/history`);
    expect(r.statusCode, r.body).toBe(200);
    return (r.json() as { history: History[] }).history;
  };

  const nonAudit = async (before: number) =>
    (await eventsAfter(t, before)).filter((e) => !e.type.startsWith('audit.'));

  it('stores only the changed fields, shows them on the record and lists who and when in the history', async () => {
    const patientId = await register();
    const before = await ledgerPosition(t);
    t.clock.advance(60_000);
    const r = await adviser().request('PATCH', `/api/v1/patients/${patientId}`, {
      version: 1,
      changes: {
        address: '7 New Street, Leeds',
        postcode: 'LS2 2BB',
        // The same number as on the record: not a change.
        phone: '0113 496 0001',
        interpreter: { required: true, language: 'Polish' },
        registeredPractice: { odsCode: 'B86001', name: 'Sample Street Surgery' },
        nominatedPharmacy: { odsCode: 'FA123' },
        emergencyContacts: [{ relationship: 'daughter', name: 'Ola', phone: '0113 496 0002' }],
      },
    });
    expect(r.statusCode, r.body).toBe(200);
    const fields = [
      'address',
      'postcode',
      'registeredPractice',
      'nominatedPharmacy',
      'interpreter',
      'emergencyContacts',
    ];
    expect(r.json()).toEqual({ patientId, version: 2, changed: fields });
    const events = await nonAudit(before);
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('patient.details_changed');
    expect(events[0]!.payload.fields).toEqual(fields);
    expect(Object.keys(events[0]!.payload.changes as object).sort()).toEqual([...fields].sort());

    const view = await read(patientId);
    expect(view.version).toBe(2);
    expect(view.record).toMatchObject({
      address: '7 New Street, Leeds',
      postcode: 'LS2 2BB',
      phone: '0113 496 0001',
      interpreter: { required: true, language: 'Polish' },
      registeredPractice: { odsCode: 'B86001' },
    });
    // Found by the new postcode.
    const found = await adviser().request('POST', '/api/v1/patients/search', {
      familyName: 'Edited',
      dateOfBirth: '04/03/1950',
      postcode: 'LS2 2BB',
    });
    expect(
      (found.json() as { patients: { patientId: string }[] }).patients.map((p) => p.patientId),
    ).toContain(patientId);

    const h = await history(patientId);
    expect(h.map((e) => e.type)).toEqual(['registered', 'details_changed']);
    expect(h[1]).toMatchObject({ by: 'health_adviser of northshire', fields });
    expect(Date.parse(h[1]!.at)).toBeGreaterThan(Date.parse(h[0]!.at));
    expect(JSON.stringify(h)).not.toMatch(/New Street|Polish/);

    // Nothing different: nothing stored, the version stays.
    const again = await nonAudit(await ledgerPosition(t));
    const same = await adviser().request('PATCH', `/api/v1/patients/${patientId}`, {
      version: 2,
      changes: { postcode: 'LS2 2BB' },
    });
    expect(same.json()).toEqual({ patientId, version: 2, changed: [] });
    expect(again).toHaveLength(0);
  });

  it('adds allergies, each with an optional reaction', async () => {
    const patientId = await register();
    const r = await clients.clinician!.request('PATCH', `/api/v1/patients/${patientId}`, {
      version: 1,
      changes: {
        allergies: [{ substance: 'Penicillin', reaction: 'Rash and swelling' }, { substance: 'Latex' }],
      },
    });
    expect(r.statusCode, r.body).toBe(200);
    expect((await read(patientId)).record.allergies).toEqual([
      { substance: 'Penicillin', reaction: 'Rash and swelling' },
      { substance: 'Latex' },
    ]);
    expect((await history(patientId))[1]).toMatchObject({
      by: 'clinician of northshire',
      fields: ['allergies'],
    });
  });

  it('refuses bad input naming the field in plain words, and stores nothing', async () => {
    const patientId = await register();
    const before = await ledgerPosition(t);
    const cases: [unknown, string][] = [
      [
        { version: 1, changes: { registeredPractice: { odsCode: 'not a code' } } },
        'body.changes.registeredPractice.odsCode',
      ],
      [{ version: 1, changes: { allergies: [{ substance: '' }] } }, 'body.changes.allergies.0.substance'],
      [{ version: 1, changes: { givenName: 'Renamed' } }, 'body.changes'],
      [{ version: 1, changes: {} }, 'body.changes'],
      [{ changes: { address: '2 Road' } }, 'body.version'],
    ];
    for (const [body, path] of cases) {
      const r = await adviser().request('PATCH', `/api/v1/patients/${patientId}`, body);
      expect(r.statusCode, r.body).toBe(400);
      const problem = r.json() as { errors: { path: string; message: string }[] };
      expect(
        problem.errors.map((e) => e.path),
        r.body,
      ).toContain(path);
    }
    expect(await nonAudit(before)).toHaveLength(0);
    expect((await read(patientId)).version).toBe(1);
  });

  it('refuses an edit made on a stale version (409) and keeps the first edit', async () => {
    const patientId = await register();
    const first = await adviser().request('PATCH', `/api/v1/patients/${patientId}`, {
      version: 1,
      changes: { phone: '0113 496 0011' },
    });
    expect(first.statusCode).toBe(200);
    const before = await ledgerPosition(t);
    const stale = await clients.clinician!.request('PATCH', `/api/v1/patients/${patientId}`, {
      version: 1,
      changes: { phone: '0113 496 0022' },
    });
    expect(stale.statusCode, stale.body).toBe(409);
    expect(stale.body).toMatch(/changed by someone else/);
    expect(await nonAudit(before)).toHaveLength(0);
    expect((await read(patientId)).record.phone).toBe('0113 496 0011');

    // Two edits racing on the same version: one is stored, the other refused (checked in the commit).
    const racing = await Promise.all(
      ['0113 496 0033', '0113 496 0044'].map((phone) =>
        adviser().request('PATCH', `/api/v1/patients/${patientId}`, { version: 2, changes: { phone } }),
      ),
    );
    expect(racing.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    expect((await read(patientId)).version).toBe(3);
  });

  it('lets only roles with patients.edit change a record (403 otherwise)', async () => {
    const patientId = await register();
    for (const role of ['dispatcher', 'receptionist']) {
      const r = await clients[role]!.request('PATCH', `/api/v1/patients/${patientId}`, {
        version: 1,
        changes: { address: '3 Road' },
      });
      expect(r.statusCode, role).toBe(403);
      const note = await clients[role]!.request('POST', `/api/v1/patients/${patientId}/special-notes`, {
        kind: 'other',
        text: 'A note',
      });
      expect(note.statusCode, role).toBe(403);
    }
  });

  it('keeps tenants apart and applies the sites rule of reads (break-glass with a reason)', async () => {
    const patientId = await register();
    const cross = await other.request('PATCH', `/api/v1/patients/${patientId}`, {
      version: 1,
      changes: { address: '3 Road' },
    });
    expect(cross.statusCode).toBe(404);

    const atSiteB = await register({}, siteB);
    const edit = { version: 1, changes: { address: '4 Road' } };
    expect((await adviser().request('PATCH', `/api/v1/patients/${atSiteB}`, edit)).statusCode).toBe(403);
    const reason = { 'x-break-glass-reason': 'Patient moved to our area tonight' };
    // The adviser has no break-glass permission; the clinician has, and must give a reason.
    expect((await adviser().request('PATCH', `/api/v1/patients/${atSiteB}`, edit, reason)).statusCode).toBe(
      403,
    );
    expect((await clients.clinician!.request('PATCH', `/api/v1/patients/${atSiteB}`, edit)).statusCode).toBe(
      403,
    );
    const before = await ledgerPosition(t);
    const ok = await clients.clinician!.request('PATCH', `/api/v1/patients/${atSiteB}`, edit, reason);
    expect(ok.statusCode, ok.body).toBe(200);
    const audit = (await eventsAfter(t, before)).find((e) => e.type === 'audit.access');
    expect(audit?.payload).toMatchObject({ action: 'write', breakGlass: true, resourceId: atSiteB });
  });

  it('puts a restricted record’s changed address and contacts in the restricted part only', async () => {
    const patientId = await register({ confidentiality: 'R' });
    const before = await ledgerPosition(t);
    const r = await adviser().request('PATCH', `/api/v1/patients/${patientId}`, {
      version: 1,
      changes: {
        address: '9 Secret Close',
        postcode: 'LS9 9ZZ',
        emergencyContacts: [{ name: 'Friend', phone: '0113 496 0099' }],
        interpreter: { required: true, language: 'Welsh' },
      },
    });
    expect(r.statusCode, r.body).toBe(200);
    const [event] = await nonAudit(before);
    expect(event!.payload.changes).toEqual({ interpreter: { required: true, language: 'Welsh' } });
    expect(event!.payload.restricted).toMatchObject({ address: '9 Secret Close', postcode: 'LS9 9ZZ' });
    const rows = await t.node.store.withTenant(tenant, async (trx) => ({
      general: await patientsDb(trx)
        .selectFrom('patients')
        .select(['record', 'postcodes'])
        .where('patient_id', '=', patientId)
        .executeTakeFirstOrThrow(),
      restricted: await patientsDb(trx)
        .selectFrom('patient_restricted')
        .select('fields')
        .where('patient_id', '=', patientId)
        .executeTakeFirstOrThrow(),
    }));
    expect(rows.general.record).not.toMatch(/Secret Close|LS9|0113 496 0099/);
    expect(rows.general.postcodes).toBe('');
    expect(rows.restricted.fields).toMatch(/9 Secret Close/);
    const view = await read(patientId);
    expect(view.record.address).toBeUndefined();
    expect(view.record.interpreter).toEqual({ required: true, language: 'Welsh' });
    const released = await clients.clinician!.request('POST', `/api/v1/patients/${patientId}/restricted`, {
      reason: 'Crew cannot find the address',
    });
    expect(released.json()).toMatchObject({ fields: { address: '9 Secret Close' } });
  });

  it('adds special notes and raises a safeguarding concern from a case, seen on the case and the patient', async () => {
    const patientId = await register();
    const note = await adviser().request('POST', `/api/v1/patients/${patientId}/special-notes`, {
      kind: 'dnacpr',
      text: 'DNACPR form at home',
    });
    expect(note.statusCode, note.body).toBe(201);
    const bad = await adviser().request('POST', `/api/v1/patients/${patientId}/special-notes`, {
      kind: 'gossip',
      text: 'x',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/body\.kind/);

    const opened = await adviser().request('POST', '/api/v1/calls', {
      siteId: siteA,
      caller: {
        name: 'Sam',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      patientId,
      location: 'At home',
      presentingComplaint: 'Fall',
    });
    expect(opened.statusCode, opened.body).toBe(201);
    const caseId = (opened.json() as { caseId: string }).caseId;
    const before = await ledgerPosition(t);
    const raised = await adviser().request('POST', `/api/v1/cases/${caseId}/safeguarding-concerns`, {
      concern: 'Unexplained bruising; caller afraid of partner',
    });
    expect(raised.statusCode, raised.body).toBe(201);
    expect((await nonAudit(before)).map((e) => e.type)).toEqual([
      'case.safeguarding_concern_raised',
      'patient.special_note_added',
    ]);

    const record = (await clients.clinician!.request('GET', `/api/v1/cases/${caseId}`)).json() as {
      record: { timeline: { type: string; by: string | null; what: string }[] };
    };
    expect(record.record.timeline.find((e) => e.type === 'case.safeguarding_concern_raised')).toMatchObject({
      by: 'health_adviser of northshire',
      what: expect.stringMatching(/Safeguarding concern raised/),
    });
    const forClinician = await read(patientId, clients.clinician!);
    expect(forClinician.record.specialNotes).toEqual([
      { kind: 'dnacpr', text: 'DNACPR form at home' },
      { kind: 'safeguarding', text: 'Unexplained bruising; caller afraid of partner' },
    ]);
    // A role that does not act on it sees that the note exists, not its text.
    expect((await read(patientId, clients.receptionist!)).record.specialNotes[1]).toEqual({
      kind: 'safeguarding',
      withheld: true,
    });
    const h = await history(patientId);
    expect(h.slice(1)).toMatchObject([
      { type: 'special_note_added', kind: 'dnacpr', by: 'health_adviser of northshire' },
      { type: 'special_note_added', kind: 'safeguarding', caseId },
    ]);

    // A case without an identified patient: nothing to put the note on.
    const anonymous = await adviser().request('POST', '/api/v1/calls', {
      siteId: siteA,
      caller: {
        name: 'Sam',
        relationship: 'self',
        callbackNumber: '0113 496 0124',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Fall',
    });
    const noPatient = await adviser().request(
      'POST',
      `/api/v1/cases/${(anonymous.json() as { caseId: string }).caseId}/safeguarding-concerns`,
      { concern: 'Worried' },
    );
    expect(noPatient.statusCode).toBe(409);
  });

  it('rebuilds the same rows from the ledger after edits, notes and restricted changes', async () => {
    // Runs last: every edit above is in the ledger. A rebuild must fold them to the live rows
    // (record, postcodes, version, restricted part) on every node.
    const check = await checkProjections(t.node.store, t.node.projections.projections, t.node.registry);
    expect(check.ok, describeProjectionCheck(check)).toBe(true);
  });
});
