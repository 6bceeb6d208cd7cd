import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { patientsDb } from '../../src/patients/projection.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { textWith } from '../downtime/pdf-text.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { eventsAfter, ledgerPosition, nhsNumberFor } from '../support/route-samples.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * What PDS records carry, through HTTP on both stores (issue 11, patient identity): security labels
 * (restricted records withhold address and contacts from every role; a break-glass read with a
 * reason releases them and is audited), the date of death, ended names, addresses and practice
 * registrations (history kept, only current ones used, by the clock at read time), interpreter need,
 * emergency contacts and the NHS number's verification status.
 */

const NHS_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const VERIFICATION_URL =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus';
const COMMUNICATION_URL = 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSCommunication';
const PHARMACY_URL = 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy';
const DAY = 86_400_000;

const nhs = {
  restricted: nhsNumberFor(7101),
  veryRestricted: nhsNumberFor(7111),
  deceased: nhsNumberFor(7121),
  moved: nhsNumberFor(7131),
  deceasedNoDate: nhsNumberFor(7141),
};

function patient(nhsNumber: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    identifier: [
      {
        system: NHS_SYSTEM,
        value: nhsNumber,
        extension: [
          {
            url: VERIFICATION_URL,
            valueCodeableConcept: {
              coding: [
                {
                  system: 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus',
                  code: '01',
                  display: 'Number present and verified',
                },
              ],
            },
          },
        ],
      },
    ],
    name: [{ use: 'official', family: 'Pds', given: ['Test'] }],
    gender: 'female',
    birthDate: '1970-01-01',
    ...extra,
  };
}

const contactDetails = {
  address: [{ use: 'home', line: ['4 Hidden Lane'], city: 'Leeds', postalCode: 'LS2 9JT' }],
  telecom: [{ system: 'phone', value: '07700 900555', use: 'mobile' }],
  generalPractitioner: [{ identifier: { system: ODS_SYSTEM, value: 'B86002' }, display: 'Lane Surgery' }],
  contact: [
    {
      relationship: [{ coding: [{ code: 'C', display: 'Emergency Contact' }] }],
      name: { given: ['Sam'], family: 'Pds' },
      telecom: [{ system: 'phone', value: '07700 900666' }],
    },
  ],
};

const pharmacy = {
  url: PHARMACY_URL,
  valueReference: { identifier: { system: ODS_SYSTEM, value: 'FA124' }, display: 'Lane Pharmacy' },
};

const RESTRICTED = patient(nhs.restricted, {
  meta: {
    lastUpdated: '2026-10-01T12:00:00+00:00',
    security: [{ system: CONFIDENTIALITY, code: 'R', display: 'restricted' }],
  },
  name: [{ use: 'official', family: 'Hidden', given: ['Rhiannon'] }],
  ...contactDetails,
  extension: [pharmacy],
});

const VERY_RESTRICTED = patient(nhs.veryRestricted, {
  meta: { security: [{ system: CONFIDENTIALITY, code: 'V' }] },
  name: [{ use: 'official', family: 'Hidden', given: ['Vera'] }],
  ...contactDetails,
});

const DECEASED = patient(nhs.deceased, {
  name: [{ use: 'official', family: 'Gone', given: ['Dora'] }],
  deceasedDateTime: '2026-11-20T14:30:00+00:00',
  address: [{ use: 'home', line: ['9 Past Road'], postalCode: 'LS6 2AB' }],
  extension: [
    {
      url: COMMUNICATION_URL,
      extension: [
        { url: 'language', valueCodeableConcept: { coding: [{ code: 'pl', display: 'Polish' }] } },
        { url: 'interpreterRequired', valueBoolean: true },
      ],
    },
  ],
  contact: contactDetails.contact,
});

/** Moved house, changed name and practice; a temporary address ending ten days after the import. */
const MOVED = patient(nhs.moved, {
  meta: { lastUpdated: '2026-09-15T08:00:00Z' },
  name: [
    { use: 'official', family: 'Maiden', given: ['Mo'], period: { start: '1990-01-01', end: '2019-06-01' } },
    { use: 'official', family: 'Married', given: ['Mo'], period: { start: '2019-06-02' } },
  ],
  address: [
    { use: 'home', line: ['1 Old Street'], postalCode: 'M1 1AE', period: { end: '2024-03-31' } },
    { use: 'home', line: ['2 New Street'], postalCode: 'LS1 4AP', period: { start: '2024-04-01' } },
    { use: 'temp', line: ['Respite Home'], postalCode: 'YO21 3PU', period: { end: '2026-12-09' } },
  ],
  generalPractitioner: [
    {
      identifier: { system: ODS_SYSTEM, value: 'A81001', period: { end: '2024-03-31' } },
      display: 'Old Surgery',
    },
    {
      identifier: { system: ODS_SYSTEM, value: 'B86001', period: { start: '2024-04-01' } },
      display: 'New Surgery',
    },
  ],
});

describe.each(STORE_KINDS)('what PDS records carry, on %s', (kind) => {
  let t: TestApp;
  let site: string;
  let tenant: string;
  let adviser: Client;
  let clinician: Client;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestApp(kind, {
      providers: ['northshire'],
      idleTimeoutMs: 60 * DAY,
      absoluteTimeoutMs: 60 * DAY,
    });
    site = t.providers[0]!.sites[0]!;
    tenant = t.providers[0]!.tenant;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
    const res = await adviser.request('POST', '/api/v1/patients/import', {
      homeSiteId: site,
      ndjson: [
        RESTRICTED,
        VERY_RESTRICTED,
        DECEASED,
        MOVED,
        patient(nhs.deceasedNoDate, { deceasedBoolean: true }),
      ]
        .map((p) => JSON.stringify(p))
        .join('\n'),
    });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json() as {
      lines: { line: number; ok: boolean; patientId?: string; errors?: unknown }[];
    };
    for (const [i, key] of (['restricted', 'veryRestricted', 'deceased', 'moved'] as const).entries())
      ids[key] = report.lines[i]!.patientId!;
    expect(report.lines.slice(0, 4).every((l) => l.ok)).toBe(true);
    // Deceased without a date: refused (not stored as alive), naming the element.
    expect(report.lines[4]).toEqual({
      line: 5,
      ok: false,
      errors: [
        { path: 'deceasedBoolean', message: 'must come with the date of death (deceasedDateTime) instead' },
      ],
    });
  }, 120_000);
  afterAll(async () => t?.close());

  type View = {
    record: Record<string, unknown>;
    withheld: string[];
    restricted: { confidentiality: string; withheld: string[] } | null;
  };
  const read = async (who: Client, id: string) => {
    const r = await who.request('GET', `/api/v1/patients/${id}`);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as View;
  };

  describe('restricted records (PDS security labels R and V)', () => {
    const withheldFields = [
      'address',
      'emergencyContacts',
      'nominatedPharmacy',
      'phone',
      'postcode',
      'registeredPractice',
    ];

    it('withholds address, telephone, practice, pharmacy and contacts from the call handler and the clinician alike', async () => {
      for (const who of [adviser, clinician]) {
        const view = await read(who, ids.restricted!);
        expect(view.restricted).toEqual({ confidentiality: 'R', withheld: withheldFields });
        expect(view.withheld).toEqual(expect.arrayContaining(withheldFields));
        for (const f of withheldFields) expect(view.record[f], f).toBeUndefined();
        expect(JSON.stringify(view)).not.toMatch(/Hidden Lane|LS2 9JT|900555|900666|B86002|FA124/);
        expect(view.record).toMatchObject({
          givenName: 'Rhiannon',
          familyName: 'Hidden',
          confidentiality: 'R',
        });
      }
      const very = await read(adviser, ids.veryRestricted!);
      expect(very.restricted?.confidentiality).toBe('V');
      expect(very.record.address).toBeUndefined();
    });

    it('keeps the withheld fields out of the general record row, search results and the downtime pack', async () => {
      const row = await t.node.store.withTenant(tenant, (trx) =>
        patientsDb(trx)
          .selectFrom('patients')
          .select(['record', 'postcodes'])
          .where('patient_id', '=', ids.restricted!)
          .executeTakeFirstOrThrow(),
      );
      expect(row.record).not.toMatch(/Hidden Lane|LS2 9JT|900555|B86002|FA124/);
      expect(row.postcodes).toBe('');

      const found = await adviser.request('POST', '/api/v1/patients/search', { nhsNumber: nhs.restricted });
      expect(found.json()).toMatchObject({
        patients: [{ patientId: ids.restricted, postcode: null, restricted: true }],
      });

      const call = await adviser.request('POST', '/api/v1/calls', {
        siteId: site,
        caller: {
          name: 'Rhiannon Hidden',
          relationship: 'self',
          callbackNumber: '0113 496 0111',
          callbackNumberReadBack: true,
        },
        location: 'Not given',
        presentingComplaint: 'Cough',
      });
      expect(call.statusCode, call.body).toBe(201);
      const caseId = (call.json() as { caseId: string }).caseId;
      const linked = await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, {
        patientId: ids.restricted,
      });
      expect(linked.statusCode, linked.body).toBe(204);
      const pack = await adviser.request('GET', '/api/v1/downtime-pack.pdf');
      expect(pack.statusCode).toBe(200);
      const text = textWith(pack.rawPayload, ['Rhiannon Hidden']).replace(/\s+/g, ' ');
      expect(text).toContain('restricted record: address and contacts withheld');
      expect(text).not.toMatch(/Hidden Lane|LS2 9JT|900555/);
    });

    it('releases them to a break-glass read only, with a reason, recorded as its own audit event', async () => {
      const url = `/api/v1/patients/${ids.restricted}/restricted`;
      // The call handler has no break-glass permission.
      expect((await adviser.request('POST', url, { reason: 'Crew cannot find the house' })).statusCode).toBe(
        403,
      );
      const noReason = await clinician.request('POST', url, {});
      expect(noReason.statusCode).toBe(400);
      expect(noReason.body).toContain('body.reason');
      const shortReason = await clinician.request('POST', url, { reason: 'need it' });
      expect(shortReason.statusCode).toBe(400);
      expect(shortReason.body).toContain('body.reason');

      const before = await ledgerPosition(t);
      const res = await clinician.request('POST', url, { reason: 'Ambulance crew cannot find the patient' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({
        patientId: ids.restricted,
        confidentiality: 'R',
        fields: {
          address: '4 Hidden Lane, Leeds',
          postcode: 'LS2 9JT',
          phone: '07700 900555',
          registeredPractice: { odsCode: 'B86002', name: 'Lane Surgery' },
          nominatedPharmacy: { odsCode: 'FA124', name: 'Lane Pharmacy' },
          emergencyContacts: [{ relationship: 'Emergency Contact', name: 'Sam Pds', phone: '07700 900666' }],
        },
      });
      const events = await eventsAfter(t, before);
      expect(events.map((e) => e.type)).toEqual(['audit.access']);
      expect(events[0]!.payload).toMatchObject({
        action: 'read',
        resourceId: ids.restricted,
        breakGlass: true,
        reason: 'Ambulance crew cannot find the patient',
      });
      expect((events[0]!.payload.fields as string[]).sort()).toEqual(
        withheldFields.map((f) => `restricted.${f}`).sort(),
      );
      // Nothing to break glass for on an unrestricted record.
      const plain = await clinician.request('POST', `/api/v1/patients/${ids.moved}/restricted`, {
        reason: 'Ambulance crew cannot find the patient',
      });
      expect(plain.statusCode).toBe(409);
    });
  });

  describe('deceased patients', () => {
    it('keeps the date of death on the record and in search results', async () => {
      const view = await read(adviser, ids.deceased!);
      expect(view.record.deceasedAt).toBe('2026-11-20T14:30:00+00:00');
      const found = await adviser.request('POST', '/api/v1/patients/search', { nhsNumber: nhs.deceased });
      expect(found.json()).toMatchObject({ patients: [{ deceasedAt: '2026-11-20T14:30:00+00:00' }] });
      expect((await read(adviser, ids.moved!)).record.deceasedAt).toBeUndefined();
    });

    it('shows the death in the downtime pack', async () => {
      const call = await adviser.request('POST', '/api/v1/calls', {
        siteId: site,
        caller: {
          name: 'A relative',
          relationship: 'relative',
          callbackNumber: '0113 496 0222',
          callbackNumberReadBack: true,
        },
        location: 'At home',
        presentingComplaint: 'Cough',
      });
      const caseId = (call.json() as { caseId: string }).caseId;
      expect(
        (
          await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, {
            patientId: ids.deceased,
            deceasedConfirmed: true,
          })
        ).statusCode,
      ).toBe(204);
      const pack = await adviser.request('GET', '/api/v1/downtime-pack.pdf');
      expect(textWith(pack.rawPayload, ['Dora Gone'])).toContain('DIED 2026-11-20');
    });
  });

  describe('deceased patients in the CAS queue', () => {
    it('marks the queue row with the date of death', async () => {
      const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
      const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care', {
        patientId: ids.deceased,
        deceasedConfirmed: true,
      });
      const { caseId: other } = await caseAt(adviser, protocols, site, 'speak_to_primary_care', {
        patientId: ids.moved,
      });
      const queue = await clinician.request('GET', '/api/v1/queue');
      expect(queue.statusCode, queue.body).toBe(200);
      const rows = (queue.json() as { cases: { caseId: string; patientDeceasedAt?: string }[] }).cases;
      expect(rows.find((r) => r.caseId === caseId)?.patientDeceasedAt).toBe('2026-11-20T14:30:00+00:00');
      expect(rows.find((r) => r.caseId === other)).toBeDefined();
      expect(rows.find((r) => r.caseId === other)?.patientDeceasedAt).toBeUndefined();
    });
  });

  describe('names, addresses and GP registrations that have ended', () => {
    it('uses only the current ones, keeps the history and says when the record was last confirmed', async () => {
      const view = await read(adviser, ids.moved!);
      expect(view.record).toMatchObject({
        givenName: 'Mo',
        familyName: 'Married',
        address: '2 New Street',
        postcode: 'LS1 4AP',
        otherAddresses: [{ use: 'temporary', text: 'Respite Home', postcode: 'YO21 3PU' }],
        registeredPractice: { odsCode: 'B86001', name: 'New Surgery' },
        lastConfirmedAt: '2026-09-15T08:00:00.000Z',
      });
      expect(view.record.addresses).toHaveLength(3);
      expect(view.record.practices).toEqual([
        { odsCode: 'A81001', name: 'Old Surgery', end: '2024-03-31' },
        { odsCode: 'B86001', name: 'New Surgery', start: '2024-04-01' },
      ]);
      expect(view.record.names).toHaveLength(2);
    });

    it('decides what is current by the clock when the record is read, not when it was imported', async () => {
      const before = t.clock.nowMs();
      try {
        // The temporary address ends on 9 December: on the 10th it is history.
        t.clock.set(Date.UTC(2026, 11, 10, 9, 0, 0));
        const view = await read(adviser, ids.moved!);
        expect(view.record.otherAddresses).toBeUndefined();
        expect(view.record.address).toBe('2 New Street');
        expect(view.record.addresses).toHaveLength(3);
        const found = await adviser.request('POST', '/api/v1/patients/search', {
          familyName: 'Married',
          dateOfBirth: '1970-01-01',
        });
        expect(found.json()).toMatchObject({ patients: [{ patientId: ids.moved, postcode: 'LS1 4AP' }] });
      } finally {
        t.clock.set(before);
      }
    });
  });

  describe('interpreter need, emergency contact and NHS number verification', () => {
    it('keeps and returns them', async () => {
      const view = await read(clinician, ids.deceased!);
      expect(view.record).toMatchObject({
        interpreter: { required: true, language: 'Polish' },
        emergencyContacts: [{ relationship: 'Emergency Contact', name: 'Sam Pds', phone: '07700 900666' }],
        nhsNumberVerification: { code: '01' },
      });
    });

    it('refuses an unknown verification status code, naming the element', async () => {
      const bad = patient(nhsNumberFor(7151), {});
      (
        bad.identifier as { extension: { valueCodeableConcept: { coding: { code: string }[] } }[] }[]
      )[0]!.extension[0]!.valueCodeableConcept.coding[0]!.code = '99';
      const res = await adviser.request('POST', '/api/v1/patients/import', {
        homeSiteId: site,
        ndjson: JSON.stringify(bad),
      });
      expect(res.json()).toMatchObject({
        imported: 0,
        lines: [
          {
            ok: false,
            errors: [
              {
                path: 'identifier[0].extension[0].valueCodeableConcept',
                message: 'must hold an NHS number verification status code, 01 to 08',
              },
            ],
          },
        ],
      });
    });
  });
});
