import { createHash } from 'node:crypto';
import { caseReference } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { validationRequest, type Bundle } from '../support/inbound-bundles.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * A 999 validation request names its patient by NHS number. A number typed wrong at the ambulance
 * service can be another person's number in our index (hazard H24): when the message's date of
 * birth differs from that record's, the case is left unidentified for the clinician
 * (`details_differ`), never filed under that person. Same date, or none given: matched as before.
 */

const TOKEN = 'north-ambulance-token-0123456789';
const NHS_NUMBER = '9990000018';

describe.each(STORE_KINDS)('matching the patient of a 999 validation request on %s', (kind) => {
  let t: TestApp;
  let clinician: Client;
  let patientId: string;

  beforeAll(async () => {
    t = await startTestApp(kind, {
      providers: ['northshire'],
      inboundCredentials: ([north]) => [
        {
          tenant: 'northshire',
          endpointId: 'north-ambulance',
          siteId: north!.sites[0]!,
          tokenSha256: createHash('sha256').update(TOKEN).digest('hex'),
        },
      ],
    });
    // The answer to the ambulance service goes through the outbox; nothing is delivered in this test.
    await t.messaging.setEndpoint('northshire', 'user:admin', {
      endpointId: 'north-ambulance',
      name: 'North Ambulance Service',
      kinds: ['ambulance_request', 'response'],
      odsCode: null,
      transport: { type: 'http', url: 'http://127.0.0.1:9/', clientCertificate: null },
      phone: '0300 123 4567',
      acceptWithinSeconds: 30,
    });
    clinician = new Client(t.app, t.clock);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
    const registered = await clinician.request('POST', '/api/v1/patients', {
      homeSiteId: t.providers[0]!.sites[0],
      record: {
        givenName: 'Ada',
        familyName: 'Validation',
        dateOfBirth: '1940-04-04',
        sex: 'female',
        nhsNumber: NHS_NUMBER,
        specialNotes: [{ kind: 'dnacpr', text: 'DNACPR in place' }],
      },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    patientId = (registered.json() as { patientId: string }).patientId;
  });
  afterAll(async () => t?.close());

  /** Posts a request; returns the case it opened and how its patient was matched. */
  async function validate(birthDate?: string) {
    const r = await t.app.inject({
      method: 'POST',
      url: '/fhir/R4/$process-message',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(
        validationRequest({ category: 3, nhsNumber: NHS_NUMBER, ...(birthDate ? { birthDate } : {}) }),
      ),
    });
    expect(r.statusCode, r.body).toBe(200);
    const answer = r.json() as Bundle;
    const reference = (answer.entry[1]!.resource.identifier as { value: string }[])[0]!.value;
    const queue = await clinician.request('GET', '/api/v1/queue');
    const entry = (
      queue.json() as { cases: { caseId: string; ambulanceValidation: { patientMatch: string } | null }[] }
    ).cases.find((c) => caseReference(c.caseId) === reference)!;
    const detail = await clinician.request('GET', `/api/v1/cases/${entry.caseId}`);
    return {
      patientMatch: entry.ambulanceValidation!.patientMatch,
      patientId: (detail.json() as { patientId: string | null }).patientId,
    };
  }

  it('another date of birth: left unidentified (details_differ), not filed under the record with the number', async () => {
    expect(await validate('1985-09-12')).toEqual({ patientMatch: 'details_differ', patientId: null });
    const stored = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['v', 'payload'])
      .where('type', '=', 'inbound.validation_requested')
      .execute();
    expect(
      stored.map((r) => [Number(r.v), (JSON.parse(r.payload) as { patientMatch: string }).patientMatch]),
    ).toEqual([[2, 'details_differ']]);
  });

  it('the same date of birth, or none given: matched to the record', async () => {
    expect(await validate('1940-04-04')).toEqual({ patientMatch: 'matched', patientId });
    expect(await validate()).toEqual({ patientMatch: 'matched', patientId });
  });
});
