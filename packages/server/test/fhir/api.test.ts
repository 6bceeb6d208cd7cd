import type { AddressInfo } from 'node:net';
import type { Bundle, Observation, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { Client } from 'fhir-kit-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { outgoingIssues } from '../../src/fhir/validate.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client as HttpClient, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The read-only FHIR API through a real FHIR client library (fhir-kit-client) against a listening
 * server: Patient by NHS number, a case's resources, paging, and isolation between providers; errors
 * as OperationOutcomes; unknown API paths never answer the web app.
 */

const NHS_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
const NHS_NUMBER = '9990000018';

describe.each(STORE_KINDS)('FHIR R4 API on %s', (kind) => {
  let t: TestApp;
  let baseUrl: string;
  let patientId: string;
  let caseId: string;
  const sessions: Record<string, HttpClient> = {};

  /** fhir-kit-client carrying a signed-in user's session cookie. */
  const fhirAs = (who: string) =>
    new Client({
      baseUrl,
      customHeaders: { cookie: sessions[who]!.cookie!, accept: 'application/fhir+json' },
    });

  /** The status and OperationOutcome of a request fhir-kit-client refused to return. */
  async function refusal(p: Promise<unknown>): Promise<{ status: number; outcome: OperationOutcome }> {
    try {
      await p;
    } catch (error) {
      const response = (error as { response?: { status: number; data: OperationOutcome } }).response;
      if (!response) throw error;
      return { status: response.status, outcome: response.data };
    }
    throw new Error('expected the request to be refused');
  }

  beforeAll(async () => {
    t = await startTestApp(kind);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/fhir/R4`;
    for (const [who, username] of [
      ['adviser', 'health_adviser@northshire'],
      ['clinician', 'clinician@northshire'],
      ['auditor', 'auditor@northshire'],
      ['other', 'clinician@southshire'],
    ] as const) {
      const c = new HttpClient(t.app, t.clock);
      const r = await c.signIn(username);
      if (r.statusCode !== 200) throw new Error(`${username}: ${r.body}`);
      sessions[who] = c;
    }
    const site = t.providers[0]!.sites[0]!;
    const adviser = sessions.adviser!;
    const clinician = sessions.clinician!;
    const registered = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: {
        nhsNumber: NHS_NUMBER,
        givenName: 'Ada',
        familyName: 'Fhirtest',
        dateOfBirth: '1950-05-05',
        sex: 'female',
        phone: '07700 900123',
        address: '1 Sample Street, Leeds',
        postcode: 'LS1 4AP',
        registeredPractice: { odsCode: 'B86001', name: 'Sample Practice' },
        specialNotes: [{ kind: 'dnacpr', text: 'DNACPR form at the bedside' }],
      },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    patientId = (registered.json() as { patientId: string }).patientId;
    const { protocols } = await requireProtocolPack(SAMPLE_PACK_DIR);
    caseId = (await caseAt(adviser, protocols, site, 'speak_to_primary_care', { patientId })).caseId;
    for (const [path, body] of [
      ['claim', undefined],
      ['consultation', undefined],
      [
        'consultation/record',
        {
          history: 'Breathless since this morning',
          observations: {
            respirationRate: 22,
            spo2: 95,
            airOrOxygen: 'air',
            systolicBp: 105,
            pulse: 112,
            consciousness: 'alert',
            temperature: 38.4,
          },
          assessment: 'Possible chest infection',
        },
      ],
      // NEWS2 7 (high): advice and close needs the clinician's reason.
      [
        'outcome',
        { outcome: 'advice_and_close', news2Reason: 'Seen by own GP today; plan agreed with them' },
      ],
    ] as const) {
      const r = await clinician.request('POST', `/api/v1/cases/${caseId}/${path}`, body);
      expect(r.statusCode, `${path}: ${r.body}`).toBeLessThan(300);
    }
  });
  afterAll(async () => t?.close());

  it('metadata: a CapabilityStatement for FHIR 4.0.1 listing what is served', async () => {
    const cs = (await new Client({ baseUrl }).capabilityStatement()) as unknown as Resource & {
      fhirVersion: string;
      rest: { resource: { type: string }[] }[];
    };
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    expect(cs.rest[0]!.resource.map((r) => r.type)).toEqual([
      'Patient',
      'Encounter',
      'ServiceRequest',
      'QuestionnaireResponse',
      'Observation',
      'Composition',
    ]);
  });

  it('fhir-kit-client reads the Patient by NHS number and the case’s resources; all valid, reads audited', async () => {
    const client = fhirAs('clinician');
    const before = (await t.node.ledger.readTenant('northshire', null, 1_000_000)).length;

    const found = (await client.search({
      resourceType: 'Patient',
      searchParams: { identifier: `${NHS_SYSTEM}|${NHS_NUMBER}` },
    })) as unknown as Bundle;
    expect(found).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    const patient = found.entry![0]!.resource!;
    expect(patient).toMatchObject({
      resourceType: 'Patient',
      id: patientId,
      identifier: [{ system: NHS_SYSTEM, value: NHS_NUMBER }],
      generalPractitioner: [
        { identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'B86001' } },
      ],
    });
    expect(await client.read({ resourceType: 'Patient', id: patientId })).toMatchObject({ id: patientId });

    const encounters = (await client.search({
      resourceType: 'Encounter',
      searchParams: { patient: `Patient/${patientId}` },
    })) as unknown as Bundle;
    expect(encounters.total).toBe(1);
    expect(encounters.entry![0]!.resource).toMatchObject({ id: caseId, status: 'finished' });

    const read = async (resourceType: string) =>
      (await client.read({ resourceType, id: caseId })) as unknown as Resource & Record<string, unknown>;
    const encounter = await read('Encounter');
    const serviceRequest = await read('ServiceRequest');
    const questionnaireResponse = await read('QuestionnaireResponse');
    const composition = await read('Composition');
    expect(encounter).toMatchObject({
      resourceType: 'Encounter',
      subject: { reference: `Patient/${patientId}` },
    });
    expect(serviceRequest).toMatchObject({
      resourceType: 'ServiceRequest',
      status: 'completed',
      intent: 'order',
    });
    expect((questionnaireResponse.item as unknown[]).length).toBeGreaterThan(0);
    expect(composition).toMatchObject({ resourceType: 'Composition', status: 'final' });

    const observations = (await client.search({
      resourceType: 'Observation',
      searchParams: { encounter: `Encounter/${caseId}` },
    })) as unknown as Bundle;
    expect(observations.total).toBe(8);
    const total = observations.entry!.at(-1)!.resource as Observation;
    expect(total.valueQuantity?.value).toBe(7);
    expect(await client.read({ resourceType: 'Observation', id: total.id! })).toMatchObject({ id: total.id });

    for (const r of [patient, encounter, serviceRequest, questionnaireResponse, composition, observations])
      expect(outgoingIssues(r), `${r.resourceType}`).toEqual([]);

    // Every patient and case read went into the audit trail.
    const audit = (await t.node.ledger.readTenant('northshire', null, 1_000_000))
      .slice(before)
      .filter((e) => e.type === 'audit.access')
      .map((e) => JSON.parse(e.payloadJson) as { resourceType: string; action: string; resourceId?: string });
    expect(audit.filter((a) => a.resourceType === 'patient' && a.action === 'search')).toHaveLength(1);
    expect(
      audit.filter((a) => a.resourceType === 'patient' && a.resourceId === patientId).length,
    ).toBeGreaterThanOrEqual(2);
    expect(
      audit.filter((a) => a.resourceType === 'case' && a.resourceId === caseId).length,
    ).toBeGreaterThanOrEqual(6);
  });

  it('_count pages a search; next links lead through every match exactly once', async () => {
    const client = fhirAs('clinician');
    let bundle = (await client.search({
      resourceType: 'Observation',
      searchParams: { encounter: caseId, _count: 3 },
    })) as unknown as Bundle;
    const ids: string[] = [];
    let pages = 0;
    for (;;) {
      pages++;
      expect(bundle.total).toBe(8);
      expect(bundle.entry!.length).toBeLessThanOrEqual(3);
      ids.push(...bundle.entry!.map((e) => e.resource!.id!));
      const next = client.nextPage({
        bundle: bundle as unknown as Parameters<typeof client.nextPage>[0]['bundle'],
      });
      if (!next) break;
      bundle = (await next) as unknown as Bundle;
    }
    expect(pages).toBe(3);
    expect(ids).toHaveLength(8);
    expect(new Set(ids).size).toBe(8);
    expect(bundle.link!.find((l) => l.relation === 'previous')!.url).toContain('_offset=3');
  });

  it('a user of another provider gets nothing: empty searches and 404s', async () => {
    const other = fhirAs('other');
    const byNhs = (await other.search({
      resourceType: 'Patient',
      searchParams: { identifier: `${NHS_SYSTEM}|${NHS_NUMBER}` },
    })) as unknown as Bundle;
    expect(byNhs.total).toBe(0);
    expect(byNhs.entry).toEqual([]);
    for (const resourceType of [
      'Patient',
      'Encounter',
      'ServiceRequest',
      'QuestionnaireResponse',
      'Composition',
    ]) {
      const id = resourceType === 'Patient' ? patientId : caseId;
      const refused = await refusal(other.read({ resourceType, id }));
      expect(refused.status, resourceType).toBe(404);
      expect(refused.outcome).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ code: 'not-found' }],
      });
    }
    for (const [resourceType, searchParams] of [
      ['Observation', { encounter: caseId }],
      ['Composition', { encounter: caseId }],
      ['Encounter', { patient: patientId }],
    ] as const) {
      const b = (await other.search({ resourceType, searchParams })) as unknown as Bundle;
      expect(b.total, resourceType).toBe(0);
      expect(JSON.stringify(b)).not.toContain(NHS_NUMBER);
    }
  });

  it('errors are OperationOutcomes with the right status', async () => {
    const anonymous = await refusal(new Client({ baseUrl }).read({ resourceType: 'Patient', id: patientId }));
    expect(anonymous.status).toBe(401);
    expect(anonymous.outcome.issue![0]!.code).toBe('login');

    // The auditor reads audit trails and reports, not patient records.
    const auditor = await refusal(fhirAs('auditor').read({ resourceType: 'Encounter', id: caseId }));
    expect(auditor.status).toBe(403);
    expect(auditor.outcome.issue![0]!.code).toBe('forbidden');

    const clinician = fhirAs('clinician');
    const badCount = await refusal(
      clinician.search({ resourceType: 'Observation', searchParams: { encounter: caseId, _count: 0 } }),
    );
    expect(badCount.status).toBe(400);
    expect(badCount.outcome.issue![0]).toMatchObject({ code: 'invalid', expression: ['query._count'] });

    const wrongSystem = await refusal(
      clinician.search({ resourceType: 'Patient', searchParams: { identifier: `urn:other|${NHS_NUMBER}` } }),
    );
    expect(wrongSystem.status).toBe(400);
    expect(wrongSystem.outcome.issue![0]!.expression).toEqual(['query.identifier']);

    const badCheckDigit = await refusal(
      clinician.search({ resourceType: 'Patient', searchParams: { identifier: `${NHS_SYSTEM}|9990000019` } }),
    );
    expect(badCheckDigit.status).toBe(400);
    expect(JSON.stringify(badCheckDigit.outcome)).not.toContain('9990000019');

    const notOurs = await refusal(clinician.read({ resourceType: 'Observation', id: 'abc' }));
    expect(notOurs.status).toBe(400);
    expect(notOurs.outcome.issue![0]!.expression).toEqual(['params.id']);

    const unknown = await refusal(
      clinician.read({ resourceType: 'Encounter', id: '00000000-0000-4000-8000-000000000000' }),
    );
    expect(unknown.status).toBe(404);
  });

  it('unknown API paths answer 404 (OperationOutcome under /fhir, problem+json elsewhere), never the web app', async () => {
    const http = sessions.clinician!;
    for (const path of [
      '/fhir/Patient',
      '/fhir',
      '/fhir/R4/Unknown',
      '/fhir/R4/Patient/x/y',
      '/fhir/R5/metadata',
    ]) {
      const r = await http.request('GET', path);
      expect(r.statusCode, path).toBe(404);
      expect(r.headers['content-type'], path).toMatch(/^application\/fhir\+json/);
      expect(r.json(), path).toMatchObject({
        resourceType: 'OperationOutcome',
        issue: [{ code: 'not-found' }],
      });
    }
    for (const path of ['/api/v2/patients', '/api/nothing', '/health/extra']) {
      const r = await http.request('GET', path);
      expect(r.statusCode, path).toBe(404);
      expect(r.headers['content-type'], path).toMatch(/^application\/problem\+json/);
    }
    // Screens of the web app still get the app.
    const screen = await http.request('GET', '/queue');
    expect(screen.statusCode).toBe(200);
    expect(screen.headers['content-type']).toMatch(/^text\/html/);
  });
});
