import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { eventsAfter, ledgerPosition, nhsNumberFor } from '../support/route-samples.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The local patient index through HTTP: fuzzy search by name, date of birth and postcode; the
 * initial load from FHIR R4 Patient NDJSON with its per-line report; the repeat-caller flag; special
 * notes per role. Every read, search and import is one audit event.
 */

const NHS_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
const PHARMACY_URL = 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy';
const HOUR = 3600_000;

/** Distinct well-formed NHS numbers (neighbouring seeds can give the same number). */
function nhsNumbers(count: number, from: number): string[] {
  const out = new Set<string>();
  for (let n = from; out.size < count; n++) out.add(nhsNumberFor(n));
  return [...out];
}

const spaced = (n: string) => `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;
const arabicIndic = (n: string) => [...n].map((d) => String.fromCodePoint(0x0660 + Number(d))).join('');
/** The same number with its check digit changed: well-formed, never valid. */
const badCheckDigit = (n: string) => `${n.slice(0, 9)}${(Number(n[9]) + 1) % 10}`;

function fhirPatient(nhs: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id: 'local-123',
    meta: { profile: ['https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient'] },
    identifier: [
      { system: 'https://example.org/local-mrn', value: 'MRN-1' },
      { system: NHS_SYSTEM, value: nhs },
    ],
    name: [
      { use: 'old', family: 'Formerly', given: ['Old'] },
      { use: 'official', family: 'Imported', given: ['Iona', 'May'], prefix: ['Ms'] },
    ],
    gender: 'female',
    birthDate: '1941-12-24',
    address: [
      { use: 'temp', line: ['Flat 2', '7 Harbour Row'], city: 'Whitby', postalCode: 'yo21 3pu' },
      { use: 'home', line: ['1 Sample Street'], city: 'Leeds', postalCode: 'ls14ap' },
      { use: 'old', line: ['9 Gone Away'], postalCode: 'M1 1AE' },
    ],
    telecom: [
      { system: 'email', value: 'iona@example.org' },
      { system: 'phone', value: '0113 496 0000', use: 'home', rank: 2 },
      { system: 'phone', value: '07700 900123', use: 'mobile', rank: 1 },
    ],
    generalPractitioner: [
      {
        type: 'Organization',
        identifier: { system: ODS_SYSTEM, value: 'b86001' },
        display: 'Sample Street Surgery',
      },
    ],
    extension: [
      {
        url: PHARMACY_URL,
        valueReference: { identifier: { system: ODS_SYSTEM, value: 'FA123' }, display: 'Corner Pharmacy' },
      },
    ],
    ...overrides,
  };
}

const ndjson = (...lines: unknown[]) =>
  lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n');

describe.each(STORE_KINDS)('the patient index on %s', (kind) => {
  let t: TestApp;
  let site: string;
  const clients: Record<string, Client> = {};

  beforeAll(async () => {
    // Sessions long enough for the repeat-caller test to move the clock on by hours.
    t = await startTestApp(kind, {
      providers: ['northshire'],
      idleTimeoutMs: 7 * 24 * HOUR,
      absoluteTimeoutMs: 14 * 24 * HOUR,
    });
    site = t.providers[0]!.sites[0]!;
    for (const role of ['health_adviser', 'clinician', 'receptionist', 'dispatcher'] as const) {
      clients[role] = new Client(t.app, t.clock);
      const r = await clients[role].signIn(`${role}@northshire`);
      if (r.statusCode !== 200) throw new Error(`${role} could not sign in: ${r.body}`);
    }
  });
  afterAll(async () => t?.close());

  const adviser = () => clients.health_adviser!;

  async function register(record: Record<string, unknown>): Promise<string> {
    // Clinical notes and access instructions are written by a role that may read them (the adviser may not).
    const protectedFields = 'clinicalNotes' in record || 'accessInstructions' in record;
    const r = await (protectedFields ? clients.clinician! : adviser()).request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: { sex: 'unknown', specialNotes: [], ...record },
    });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { patientId: string }).patientId;
  }

  /** Runs a request and returns what it appended to the ledger, audit events apart. */
  async function appended<T>(fn: () => Promise<T>) {
    const before = await ledgerPosition(t);
    const result = await fn();
    const events = await eventsAfter(t, before);
    return {
      result,
      audits: events.filter((e) => e.type === 'audit.access'),
      others: events.filter((e) => !e.type.startsWith('audit.')),
    };
  }

  describe('fuzzy search by name, date of birth and postcode', () => {
    const ids: Record<string, string> = {};
    type Found = {
      patientId: string;
      score: number;
      postcode: string | null;
      match: Record<string, string>;
    };

    beforeAll(async () => {
      ids.siobhan = await register({
        givenName: 'Siobh\u00e1n', // NFC
        familyName: 'O\u2019Brien',
        dateOfBirth: '1980-05-17',
        sex: 'female',
        postcode: 'BT7 1NN',
      });
      // Her twin: same family name, date of birth and address.
      ids.twin = await register({
        givenName: 'Aoife',
        familyName: "O'Brien",
        dateOfBirth: '1980-05-17',
        postcode: 'BT7 1NN',
      });
      // Another woman of the same name and date of birth, elsewhere.
      ids.namesake = await register({
        givenName: 'Siobhan',
        familyName: 'OBrien',
        dateOfBirth: '1980-05-17',
        postcode: 'LS1 4AP',
      });
      // Same name, born a day later.
      ids.dayLater = await register({
        givenName: 'Siobhan',
        familyName: "O'Brien",
        dateOfBirth: '1980-05-18',
        postcode: 'BT7 1NN',
      });
      // Typed in decomposed form (NFD).
      ids.zoe = await register({
        givenName: 'Zoe\u0308',
        familyName: 'A\u030angstro\u0308m',
        dateOfBirth: '1975-01-02',
        postcode: 'M1 1AE',
      });
    });

    async function search(body: Record<string, unknown>): Promise<Found[]> {
      const r = await adviser().request('POST', '/api/v1/patients/search', body);
      expect(r.statusCode, r.body).toBe(200);
      return (r.json() as { patients: Found[] }).patients;
    }
    const idsOf = (found: Found[]) => found.map((p) => p.patientId);

    it("finds Siobhán O’Brien from 'siobhan obrien'; not her twin, nor the same name born a day later", async () => {
      const found = await search({ familyName: 'obrien', givenName: 'siobhan', dateOfBirth: '1980-05-17' });
      expect(idsOf(found).sort()).toEqual([ids.siobhan, ids.namesake].sort());
      expect(found[0]).toMatchObject({
        score: 90,
        match: { familyName: 'exact', givenName: 'exact', postcode: 'not_given' },
      });
      // Without a given name the twin is a candidate too.
      const family = await search({ familyName: 'OBRIEN', dateOfBirth: '1980-05-17' });
      expect(idsOf(family).sort()).toEqual([ids.siobhan, ids.twin, ids.namesake].sort());
    });

    it('tolerates a typo in each name, and no more than the name’s length allows', async () => {
      const typo = await search({ familyName: "O'Brein", givenName: 'Siobahn', dateOfBirth: '1980-05-17' });
      expect(idsOf(typo)).toContain(ids.siobhan);
      expect(typo.find((p) => p.patientId === ids.siobhan)!.match).toMatchObject({
        familyName: 'typo',
        givenName: 'typo',
      });
      expect(
        idsOf(await search({ familyName: 'OBrien', givenName: 'Aofie', dateOfBirth: '1980-05-17' })),
      ).toEqual([ids.twin]);
      expect(await search({ familyName: 'OBrennan', dateOfBirth: '1980-05-17' })).toEqual([]);
      expect(await search({ familyName: 'OBrien', givenName: 'Sinead', dateOfBirth: '1980-05-17' })).toEqual(
        [],
      );
    });

    it('matches NFC input against an NFD record and NFD input against an NFC record', async () => {
      const nfc = await search({
        familyName: '\u00c5ngstr\u00f6m',
        givenName: 'Zo\u00eb',
        dateOfBirth: '1975-01-02',
      });
      expect(idsOf(nfc)).toEqual([ids.zoe]);
      expect(nfc[0]!.match).toMatchObject({ familyName: 'exact', givenName: 'exact' });
      const plain = await search({ familyName: 'angstrom', givenName: 'zoe', dateOfBirth: '1975-01-02' });
      expect(idsOf(plain)).toEqual([ids.zoe]);
      const nfd = await search({
        familyName: 'O\u2019Brien',
        givenName: 'Siobha\u0301n',
        dateOfBirth: '1980-05-17',
        postcode: 'BT7 1NN',
      });
      expect(nfd[0]).toMatchObject({ patientId: ids.siobhan, score: 100 });
    });

    it('ignores zero-width and right-to-left characters in what is typed', async () => {
      const found = await search({
        familyName: 'O\u200bBri\u200den\u200f',
        givenName: '\u202eSiob\u2066han\u202c',
        dateOfBirth: '1980-05-17',
      });
      expect(idsOf(found)).toContain(ids.siobhan);
      expect(found.find((p) => p.patientId === ids.siobhan)!.match.familyName).toBe('exact');
    });

    it('ranks by postcode whatever its spacing and case: the patient at that address first', async () => {
      for (const postcode of ['bt71nn', ' BT7  1NN ', 'Bt7 1nN', '\uff22\uff34\uff17 \uff11\uff2e\uff2e']) {
        const found = await search({
          familyName: "O'Brien",
          givenName: 'Siobhan',
          dateOfBirth: '1980-05-17',
          postcode,
        });
        expect(idsOf(found), postcode).toEqual([ids.siobhan, ids.namesake]);
        expect(found.map((p) => p.match.postcode)).toEqual(['exact', 'different']);
        expect(found[0]!.postcode).toBe('BT7 1NN');
      }
      const leeds = await search({
        familyName: "O'Brien",
        givenName: 'Siobhan',
        dateOfBirth: '1980-05-17',
        postcode: 'ls1 4ap',
      });
      expect(idsOf(leeds)).toEqual([ids.namesake, ids.siobhan]);
      const typo = await search({
        familyName: "O'Brien",
        givenName: 'Siobhan',
        dateOfBirth: '1980-05-17',
        postcode: 'BT7 1MN',
      });
      expect(typo.map((p) => [p.patientId, p.match.postcode])).toEqual([
        [ids.siobhan, 'typo'],
        [ids.namesake, 'different'],
      ]);
    });

    it('never matches another date of birth', async () => {
      for (const dateOfBirth of ['1980-05-16', '1980-05-19', '1981-05-17', '1908-05-17'])
        expect(await search({ familyName: "O'Brien", givenName: 'Siobhán', dateOfBirth })).toEqual([]);
      expect(idsOf(await search({ familyName: "O'Brien", dateOfBirth: '1980-05-18' }))).toEqual([
        ids.dayLater,
      ]);
    });

    it('records exactly one audit event per search, and stores nothing else', async () => {
      for (const body of [
        { familyName: 'obrien', givenName: 'siobhan', dateOfBirth: '1980-05-17', postcode: 'BT7 1NN' },
        { familyName: 'nobody', dateOfBirth: '1980-05-17' },
      ]) {
        const { audits, others } = await appended(() => search(body));
        expect(others).toEqual([]);
        expect(audits).toHaveLength(1);
        expect(audits[0]!.payload).toMatchObject({
          action: 'search',
          resourceType: 'patient',
          userId: t.providers[0]!.users.health_adviser.userId,
          breakGlass: false,
        });
      }
    });

    it('refuses a name with no letters and a postcode that cannot be one, naming the field', async () => {
      for (const [body, path] of [
        [{ familyName: '\u200b\u200f', dateOfBirth: '1980-05-17' }, 'body.familyName'],
        [{ familyName: 'OBrien', givenName: "'-", dateOfBirth: '1980-05-17' }, 'body.givenName'],
        [{ familyName: 'OBrien', dateOfBirth: '1980-05-17', postcode: '<script>' }, 'body.postcode'],
        [{ familyName: 'OBrien', dateOfBirth: '1980-05-17', postcode: 'LS1 4AP 1234' }, 'body.postcode'],
      ] as const) {
        const r = await adviser().request('POST', '/api/v1/patients/search', body);
        expect(r.statusCode, JSON.stringify(body)).toBe(400);
        expect((r.json() as { errors: { path: string }[] }).errors.map((e) => e.path)).toContain(path);
      }
    });
  });

  describe('initial load from FHIR R4 Patient NDJSON', () => {
    const numbers = nhsNumbers(12, 900_000);
    const good = [numbers[0]!, numbers[1]!, numbers[2]!];
    const goodFile = ndjson(
      fhirPatient(spaced(good[0]!)),
      fhirPatient(`${good[1]!.slice(0, 3)}-${good[1]!.slice(3, 6)}-${good[1]!.slice(6)}`, {
        name: [{ family: 'Second', given: ['Sam'] }],
        gender: 'male',
        extension: undefined,
        generalPractitioner: undefined,
        telecom: undefined,
        address: [{ line: ['2 Sample Street'], postalCode: 'LS1 4AP' }],
      }),
      '',
      fhirPatient(good[2]!, {
        name: [{ family: 'Third', given: ['Tam'] }],
        gender: undefined,
        address: undefined,
      }),
    ).replace(/\n/g, '\r\n');

    async function importFile(text: string, client = adviser(), homeSiteId = site) {
      return client.request('POST', '/api/v1/patients/import', { homeSiteId, ndjson: text });
    }

    it('imports a good file, maps the fields it needs, and records one audit event for the import', async () => {
      const { result: r, audits, others } = await appended(() => importFile(goodFile));
      expect(r.statusCode, r.body).toBe(200);
      const report = r.json() as {
        imported: number;
        failed: number;
        lines: { line: number; ok: boolean; patientId?: string }[];
      };
      expect(report).toMatchObject({ imported: 3, failed: 0 });
      expect(report.lines.map((l) => [l.line, l.ok])).toEqual([
        [1, true],
        [2, true],
        [4, true], // line 3 is blank
      ]);
      expect(others.map((e) => e.type)).toEqual([
        'patient.registered',
        'patient.registered',
        'patient.registered',
      ]);
      expect(audits).toHaveLength(1);
      expect(audits[0]!.payload).toMatchObject({
        action: 'write',
        resourceType: 'patient',
        breakGlass: false,
      });
      expect(audits[0]!.payload.fields).toEqual(
        expect.arrayContaining([
          'nhsNumber',
          'registeredPractice',
          'nominatedPharmacy',
          'gender',
          'postcode',
        ]),
      );

      const first = await clients.clinician!.request('GET', `/api/v1/patients/${report.lines[0]!.patientId}`);
      expect(first.statusCode, first.body).toBe(200);
      expect((first.json() as { record: unknown }).record).toEqual({
        specialNotes: [],
        nhsNumber: good[0],
        givenName: 'Iona May',
        familyName: 'Imported',
        dateOfBirth: '1941-12-24',
        sex: 'female',
        gender: 'female',
        phone: '07700 900123',
        otherPhones: [{ use: 'home', number: '0113 496 0000' }],
        address: '1 Sample Street, Leeds',
        postcode: 'LS1 4AP',
        otherAddresses: [{ use: 'temporary', text: 'Flat 2, 7 Harbour Row, Whitby', postcode: 'YO21 3PU' }],
        registeredPractice: { odsCode: 'B86001', name: 'Sample Street Surgery' },
        nominatedPharmacy: { odsCode: 'FA123', name: 'Corner Pharmacy' },
        // No meta.lastUpdated in the file: confirmed as of the import (the test clock).
        lastConfirmedAt: '2026-11-29T09:00:00.000Z',
      });
      const third = await clients.clinician!.request('GET', `/api/v1/patients/${report.lines[2]!.patientId}`);
      expect((third.json() as { record: { sex: string; gender?: string } }).record).toMatchObject({
        sex: 'unknown',
      });
      expect((third.json() as { record: { gender?: string } }).record.gender).toBeUndefined();

      // In the index: by NHS number, and by name, date of birth and either postcode.
      const byNumber = await adviser().request('POST', '/api/v1/patients/search', { nhsNumber: good[1] });
      expect(
        (byNumber.json() as { patients: { patientId: string }[] }).patients.map((p) => p.patientId),
      ).toEqual([report.lines[1]!.patientId]);
      const byTemporaryAddress = await adviser().request('POST', '/api/v1/patients/search', {
        familyName: 'imported',
        givenName: 'iona',
        dateOfBirth: '1941-12-24',
        postcode: 'YO213PU',
      });
      expect(byTemporaryAddress.json()).toMatchObject({
        patients: [{ patientId: report.lines[0]!.patientId, match: { postcode: 'exact' } }],
      });
    });

    it('stores only the valid lines of a file with bad ones, and reports each bad line with the paths at fault', async () => {
      const fresh = numbers[3]!;
      const markers = ['Quillfeather', 'Zebedee'];
      const named = { name: [{ family: markers[0], given: [markers[1]] }] };
      const file = ndjson(
        fhirPatient(fresh, named), // 1: good
        fhirPatient(badCheckDigit(numbers[4]!), named), // 2: check digit
        fhirPatient(arabicIndic(numbers[5]!), named), // 3: Arabic-Indic digits
        { resourceType: 'Observation', status: 'final', subject: { display: markers[0] } }, // 4
        `{"resourceType":"Patient","name":[{"family":"${markers[0]}"`, // 5: cut short
        fhirPatient(numbers[6]!, {
          ...named,
          birthDate: undefined,
          gender: 'F',
          generalPractitioner: [{ identifier: { system: ODS_SYSTEM, value: 'not an ODS code' } }],
          address: [{ use: 'home', postalCode: 'NOT A POSTCODE' }],
        }), // 6: several problems at once
        fhirPatient(spaced(fresh), named), // 7: repeats line 1
        fhirPatient(good[0]!, named), // 8: already in the index
        fhirPatient(numbers[7]!, {
          ...named,
          identifier: [{ system: 'https://example.org/mrn', value: markers[0] }],
        }), // 9
        fhirPatient(numbers[8]!, { ...named, birthDate: '1941-12' }), // 10: partial date
        `{"resourceType":"Patient","__proto__":{"isAdmin":true}}`, // 11
        fhirPatient(numbers[9]!, { ...named, name: [{ family: markers[0], given: [] }] }), // 12
        '[1,2,3]', // 13
        `{"resourceType":"Patient","resourceType":"Patient"}`, // 14
        fhirPatient(numbers[10]!, { ...named, telecom: [{ system: 'phone', value: 'call me maybe' }] }), // 15
      );
      const { result: r, audits, others } = await appended(() => importFile(file));
      expect(r.statusCode, r.body).toBe(200);
      const report = r.json() as { imported: number; failed: number; lines: unknown[] };
      expect(report.imported).toBe(1);
      expect(report.failed).toBe(14);
      const digits =
        "must use the digits 0-9 only (other scripts' digits and full-width digits are not accepted)";
      expect(report.lines).toEqual([
        { line: 1, ok: true, patientId: expect.any(String) },
        {
          line: 2,
          ok: false,
          errors: [
            {
              path: 'identifier[1].value',
              message: 'is not a valid NHS number (the check digit does not match)',
            },
          ],
        },
        { line: 3, ok: false, errors: [{ path: 'identifier[1].value', message: digits }] },
        {
          line: 4,
          ok: false,
          errors: [
            {
              path: 'resourceType',
              message: 'must be "Patient": this import takes FHIR R4 Patient resources only',
            },
          ],
        },
        {
          line: 5,
          ok: false,
          errors: [{ path: '$', message: 'is not valid JSON (one FHIR resource per line)' }],
        },
        {
          line: 6,
          ok: false,
          errors: [
            { path: 'birthDate', message: 'must hold the date of birth' },
            { path: 'gender', message: 'must be male, female, other or unknown (FHIR AdministrativeGender)' },
            { path: 'address[0].postalCode', message: 'must be a UK postcode, e.g. LS1 4AP' },
            {
              path: 'generalPractitioner[0].identifier.value',
              message: 'must be an ODS organisation code: 3 to 6 letters and digits, e.g. A81001',
            },
          ],
        },
        {
          line: 7,
          ok: false,
          errors: [{ path: 'identifier[1].value', message: 'repeats the NHS number of line 1' }],
        },
        {
          line: 8,
          ok: false,
          errors: [
            {
              path: 'identifier[1].value',
              message: 'a patient with this NHS number is already in the index (not imported again)',
            },
          ],
        },
        {
          line: 9,
          ok: false,
          errors: [
            {
              path: 'identifier',
              message: `must include the NHS number (an identifier with system ${NHS_SYSTEM})`,
            },
          ],
        },
        {
          line: 10,
          ok: false,
          errors: [
            {
              path: 'birthDate',
              message:
                'must be a full date of birth (YYYY-MM-DD) that exists: a year or a month alone cannot be matched',
            },
          ],
        },
        {
          line: 11,
          ok: false,
          errors: [{ path: '$', message: 'contains a forbidden key (__proto__ or constructor)' }],
        },
        {
          line: 12,
          ok: false,
          errors: [{ path: 'name[0].given', message: 'must hold at least one given name' }],
        },
        {
          line: 13,
          ok: false,
          errors: [{ path: '$', message: 'must be a JSON object: one FHIR resource per line' }],
        },
        {
          line: 14,
          ok: false,
          errors: [{ path: 'resourceType', message: 'appears more than once in the same object' }],
        },
        {
          line: 15,
          ok: false,
          errors: [
            {
              path: 'telecom[0].value',
              message: 'must be a telephone number: digits 0-9, spaces, + ( ) - and .',
            },
          ],
        },
      ]);
      // Only line 1 was stored, with one audit event for the import.
      expect(others).toHaveLength(1);
      expect(others[0]).toMatchObject({
        type: 'patient.registered',
        payload: { record: { nhsNumber: fresh } },
      });
      expect(audits).toHaveLength(1);
      // The report repeats no patient data: no names, no NHS numbers in any script.
      for (const s of [
        ...markers,
        ...numbers.slice(4, 11),
        badCheckDigit(numbers[4]!),
        arabicIndic(numbers[5]!),
        '1941-12',
      ])
        expect(r.body).not.toContain(s);
    });

    it('stores nothing twice when the same file is sent again', async () => {
      const { result: r, others, audits } = await appended(() => importFile(goodFile));
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ imported: 0, failed: 3 });
      expect(others).toEqual([]);
      expect(audits).toHaveLength(1);
    });

    it('refuses the whole upload for another provider’s site, an over-long line or no resources', async () => {
      const cases: [string, string, string][] = [
        ['00000000-0000-4000-8000-000000000000', goodFile, 'body.homeSiteId'],
        [site, `${JSON.stringify(fhirPatient(numbers[11]!))}\n${'x'.repeat(70_000)}`, 'body.ndjson'],
        [site, '\n \r\n\n', 'body.ndjson'],
        [site, '', 'body.ndjson'],
      ];
      for (const [homeSiteId, text, path] of cases) {
        const { result: r, others } = await appended(() => importFile(text, adviser(), homeSiteId));
        expect(r.statusCode, r.body).toBe(400);
        expect((r.json() as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual([path]);
        expect(others).toEqual([]);
      }
      const long = await importFile(`${JSON.stringify(fhirPatient(numbers[11]!))}\n${'x'.repeat(70_000)}`);
      expect(long.json()).toMatchObject({
        errors: [{ message: expect.stringContaining('line 2 is longer than') }],
      });
    });

    it('is for roles that register patients', async () => {
      const r = await importFile(goodFile, clients.dispatcher);
      expect(r.statusCode).toBe(403);
    });
  });

  describe('repeat callers: 3 or more cases of one patient within 96 hours', () => {
    let nowMs: number;

    async function call(patientId: string, hoursAgo: number): Promise<void> {
      const r = await adviser().request('POST', '/api/v1/calls', {
        siteId: site,
        receivedAt: new Date(nowMs - hoursAgo * HOUR).toISOString(),
        patientId,
        caller: {
          name: 'Sam Caller',
          relationship: 'self',
          callbackNumber: '0113 496 0123',
          callbackNumberReadBack: true,
        },
        location: 'At home',
        presentingComplaint: 'Feeling unwell',
      });
      expect(r.statusCode, r.body).toBe(201);
    }

    async function flag(patientId: string) {
      const r = await adviser().request('GET', `/api/v1/patients/${patientId}`);
      expect(r.statusCode, r.body).toBe(200);
      return (r.json() as { repeatCaller: { cases96h: number; flagged: boolean } }).repeatCaller;
    }

    it('flags at the third case inside the window, not for one just outside it, and follows the clock', async () => {
      nowMs = t.clock.nowMs();
      const patient = await register({ givenName: 'Rhys', familyName: 'Repeat', dateOfBirth: '1990-01-01' });
      const other = await register({ givenName: 'Ola', familyName: 'Other', dateOfBirth: '1990-01-01' });
      expect(await flag(patient)).toEqual({ cases96h: 0, flagged: false });
      await call(patient, 1);
      await call(patient, 50);
      expect(await flag(patient)).toEqual({ cases96h: 2, flagged: false });
      await call(patient, 96 + 1 / 60); // a minute outside the window
      await call(other, 2); // another patient's case
      expect(await flag(patient)).toEqual({ cases96h: 2, flagged: false });
      await call(patient, 95);
      expect(await flag(patient)).toEqual({ cases96h: 3, flagged: true });
      expect(await flag(other)).toEqual({ cases96h: 1, flagged: false });
      // Two hours on, the case of 95 hours ago has left the window.
      t.clock.advance(2 * HOUR);
      expect(await flag(patient)).toEqual({ cases96h: 2, flagged: false });
    });

    it('counts a case exactly 96 hours old, and the call being taken now', async () => {
      nowMs = t.clock.nowMs();
      const patient = await register({ givenName: 'Edie', familyName: 'Edge', dateOfBirth: '1990-02-02' });
      await call(patient, 96);
      await call(patient, 10);
      await call(patient, 0);
      expect(await flag(patient)).toEqual({ cases96h: 3, flagged: true });
    });

    it('is part of the audited view: one audit event per read', async () => {
      nowMs = t.clock.nowMs();
      const patient = await register({ givenName: 'Aud', familyName: 'Ited', dateOfBirth: '1990-03-03' });
      const { audits, others } = await appended(() => flag(patient));
      expect(others).toEqual([]);
      expect(audits).toHaveLength(1);
      expect(audits[0]!.payload).toMatchObject({ action: 'read', resourceId: patient });
      expect(audits[0]!.payload.fields).toContain('repeatCaller');
    });
  });

  describe('one record per NHS number', () => {
    it('refuses to register an NHS number already in the index, naming the record that has it; racing twins make one record', async () => {
      const [nhsNumber, racing] = nhsNumbers(2, 950_000);
      const first = await register({
        givenName: 'Ada',
        familyName: 'Once',
        dateOfBirth: '1960-01-01',
        nhsNumber,
      });
      const { result, others } = await appended(() =>
        adviser().request('POST', '/api/v1/patients', {
          homeSiteId: site,
          record: {
            sex: 'unknown',
            specialNotes: [],
            givenName: 'Ada',
            familyName: 'Twice',
            dateOfBirth: '1960-01-01',
            nhsNumber,
          },
        }),
      );
      expect(result.statusCode).toBe(409);
      expect(result.body).toContain(`patient ${first}`);
      expect(result.body).not.toContain(nhsNumber!);
      expect(others).toEqual([]);
      // Two registrations of one number at the same moment: one record, one refusal.
      const both = await Promise.all(
        [1, 2].map(() =>
          adviser().request('POST', '/api/v1/patients', {
            homeSiteId: site,
            record: {
              sex: 'unknown',
              specialNotes: [],
              givenName: 'Bo',
              familyName: 'Race',
              dateOfBirth: '1970-01-01',
              nhsNumber: racing,
            },
          }),
        ),
      );
      expect(both.map((r) => r.statusCode).sort()).toEqual([201, 409]);
      const found = await adviser().request('POST', '/api/v1/patients/search', { nhsNumber: racing });
      expect((found.json() as { patients: unknown[] }).patients).toHaveLength(1);
    });
  });

  describe('special notes', () => {
    it('come first; a safeguarding note’s text only for clinical staff and crews, its existence for all', async () => {
      const patient = await register({
        givenName: 'Nell',
        familyName: 'Notes',
        dateOfBirth: '1930-04-04',
        specialNotes: [
          { kind: 'dnacpr', text: 'DNACPR form at the bedside' },
          { kind: 'safeguarding', text: 'Safeguarding plan: call the social worker' },
        ],
        accessInstructions: 'Key safe by the back door',
      });
      const view = async (role: string) =>
        (await clients[role]!.request('GET', `/api/v1/patients/${patient}`)).json() as {
          record: Record<string, unknown>;
          withheld: string[];
        };
      for (const role of ['clinician', 'dispatcher']) {
        const v = await view(role);
        expect(Object.keys(v.record).slice(0, 2), role).toEqual(['specialNotes', 'accessInstructions']);
        expect(v.record.specialNotes).toEqual([
          { kind: 'dnacpr', text: 'DNACPR form at the bedside' },
          { kind: 'safeguarding', text: 'Safeguarding plan: call the social worker' },
        ]);
      }
      for (const role of ['health_adviser', 'receptionist']) {
        const v = await view(role);
        expect(Object.keys(v.record)[0], role).toBe('specialNotes');
        expect(v.record.specialNotes).toEqual([
          { kind: 'dnacpr', text: 'DNACPR form at the bedside' },
          { kind: 'safeguarding', withheld: true },
        ]);
        expect(v.withheld).toEqual(expect.arrayContaining(['accessInstructions', 'specialNotes[1].text']));
        expect(JSON.stringify(v)).not.toContain('social worker');
      }
    });
  });
});
