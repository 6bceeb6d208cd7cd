import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { pdfTexts } from '../downtime/pdf-text.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

interface Row {
  at: string;
  firstAt: string;
  count: number;
  event: string;
  user: { userId: string; name: string | null } | null;
  record: {
    kind: string;
    reference: string | null;
    patientName: string | null;
    nhsNumber: string | null;
  } | null;
  breakGlass: boolean;
}

/**
 * The auditor's trail with names: filters by NHS number and user name (in the body, never the URL),
 * refused in words when they match nothing; repeated reads of one record by one user within a minute
 * grouped into one row with a count while the ledger keeps each; CSV and PDF exports, themselves audited.
 */
describe.each(STORE_KINDS)('audit trail with names on %s', (kind) => {
  let t: TestApp;
  let patientId: string;
  const clients: Record<string, Client> = {};
  const search = async (body: Record<string, unknown>) => {
    const r = await clients.auditor!.request('POST', '/api/v1/audit/search', body);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as { rows: Row[]; events: number };
  };

  beforeAll(async () => {
    t = await startTestApp(kind);
    for (const role of ['health_adviser', 'clinician', 'auditor'] as const) {
      clients[role] = new Client(t.app, t.clock);
      expect((await clients[role].signIn(`${role}@northshire`)).statusCode).toBe(200);
    }
    const created = await clients.health_adviser!.request('POST', '/api/v1/patients', {
      homeSiteId: t.providers[0]!.sites[0],
      record: {
        givenName: 'Ada',
        familyName: 'Testperson',
        dateOfBirth: '1948-03-02',
        sex: 'female',
        nhsNumber: '999 000 0018',
        specialNotes: [],
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    patientId = (created.json() as { patientId: string }).patientId;
  });
  afterAll(async () => t?.close());

  it('groups three reads by one user within a minute into one row (the ledger keeps three), and names who and whose', async () => {
    const ledgerReads = async () =>
      (await t.node.ledger.readTenant('northshire', null, 100_000)).filter(
        (e) =>
          e.type === 'audit.access' && e.payloadJson.includes(patientId) && e.payloadJson.includes('"read"'),
      ).length;
    const before = await ledgerReads();
    for (let i = 0; i < 3; i++) {
      expect((await clients.clinician!.request('GET', `/api/v1/patients/${patientId}`)).statusCode).toBe(200);
      t.clock.advance(20_000);
    }
    // Two minutes later: a new row.
    t.clock.advance(120_000);
    expect((await clients.clinician!.request('GET', `/api/v1/patients/${patientId}`)).statusCode).toBe(200);
    expect((await ledgerReads()) - before).toBe(4);

    const { rows } = await search({ nhsNumber: '999-000-0018', userName: 'clinician of northshire' });
    const reads = rows.filter((r) => r.event === 'Opened a patient record');
    expect(reads.map((r) => r.count)).toEqual([1, 3]);
    expect(Date.parse(reads[1]!.at) - Date.parse(reads[1]!.firstAt)).toBe(40_000);
    expect(reads[0]).toMatchObject({
      user: { name: 'clinician of northshire' },
      record: { kind: 'patient', patientName: 'Ada Testperson', nhsNumber: '9990000018' },
    });
    // The user name filter matches a login name too, in any case; nobody else's events come back.
    const byLogin = await search({ userName: 'CLINICIAN@northshire' });
    expect(byLogin.rows.every((r) => r.user?.name === 'clinician of northshire')).toBe(true);
    // The patient's registration by the adviser is found by the NHS number as well.
    const all = await search({ nhsNumber: '9990000018' });
    expect(
      all.rows.some(
        (r) => r.user?.name === 'health_adviser of northshire' && r.event === 'Changed a patient record',
      ),
    ).toBe(true);
  });

  it('refuses in plain words an NHS number or a user name that matches nothing, and a malformed one', async () => {
    const none = await clients.auditor!.request('POST', '/api/v1/audit/search', {
      nhsNumber: '943 476 5919',
    });
    expect(none.statusCode).toBe(400);
    expect(none.json()).toMatchObject({
      errors: [{ path: 'body.nhsNumber', message: 'matches no patient on record: check the number' }],
    });
    const bad = await clients.auditor!.request('POST', '/api/v1/audit/search', { nhsNumber: '999 000 0019' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      errors: [
        { path: 'body.nhsNumber', message: 'is not a valid NHS number (the check digit does not match)' },
      ],
    });
    const nobody = await clients.auditor!.request('POST', '/api/v1/audit/search', {
      userName: 'Nobody Atall',
    });
    expect(nobody.statusCode).toBe(400);
    expect(nobody.json()).toMatchObject({
      errors: [{ path: 'body.userName', message: 'matches no user of your provider: check the name' }],
    });
    expect((await clients.clinician!.request('POST', '/api/v1/audit/search', {})).statusCode).toBe(403);
  });

  it('exports the filtered trail as CSV and as PDF, and each export is recorded in the trail', async () => {
    const csv = await clients.auditor!.request('POST', '/api/v1/audit/export', {
      nhsNumber: '9990000018',
      userName: 'clinician of northshire',
      format: 'csv',
    });
    expect(csv.statusCode, csv.body).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="audit-trail-.*\.csv"$/);
    const lines = csv.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'When (UK time),Times,Event,User,Roles,Record,Patient,NHS number,Break-glass reason,First of the group (UK time),Ledger node,Ledger seq',
    );
    expect(lines.slice(1).map((l) => l.split(',').slice(1, 8).join(','))).toEqual([
      '1,Opened a patient record,clinician of northshire,clinician,patient,Ada Testperson,999 000 0018',
      '3,Opened a patient record,clinician of northshire,clinician,patient,Ada Testperson,999 000 0018',
    ]);

    const pdf = await clients.auditor!.request('POST', '/api/v1/audit/export', {
      nhsNumber: '9990000018',
      format: 'pdf',
    });
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    expect(pdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
    const text = pdfTexts(pdf.rawPayload).join('\n');
    expect(text).toContain('Ada Testperson');
    expect(text).toContain('999 000 0018');
    expect(text).toContain('NHS number 9990000018');

    const exports = (await search({ userName: 'auditor of northshire' })).rows.filter(
      (r) => r.event === 'Exported the audit trail',
    );
    expect(exports).toHaveLength(2);
    const recorded = (await t.node.ledger.readTenant('northshire', null, 100_000)).filter(
      (e) => e.type === 'audit.export',
    );
    expect(recorded.map((e) => JSON.parse(e.payloadJson) as { format: string; rows: number })).toEqual([
      expect.objectContaining({ format: 'csv', rows: 2 }),
      expect.objectContaining({ format: 'pdf' }),
    ]);
    // The ledger's export event names the patient by id, never by the NHS number typed.
    expect(recorded.map((e) => e.payloadJson).join('')).not.toContain('9990000018');
  });
});
