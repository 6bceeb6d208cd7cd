import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caseReference } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { outgoingIssues } from '../../src/fhir/validate.ts';
import { DeliveryWorker } from '../../src/messaging/delivery.ts';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { FhirReceiver } from '../../src/receiver/receiver.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { answerTo, validationRequest, type Bundle, type Json } from '../support/inbound-bundles.ts';
import { messageBundle } from '../support/message-bundle.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Messages in, on both stores, through the real HTTP application: a sending system authenticated by
 * its bearer token posts FHIR message Bundles to /fhir/R4/$process-message. A 999 Category 3/4
 * validation request opens a case in the CAS queue with its deadline and marking, in one commit with
 * the record of the message; the clinician's outcome goes back as a `response` message through the
 * outbox to a receiver that is not ours; a late business answer to one of our messages is recorded.
 */

const TOKENS = {
  north: 'north-ambulance-token-0123456789',
  south: 'south-ambulance-token-0123456789',
  /** Northshire's credential that names an endpoint only Southshire has. */
  misconfigured: 'misconfigured-token-0123456789ab',
  /** Another Northshire system (a GP practice), which may not answer the ambulance service's messages. */
  practice: 'practice-token-0123456789abcdefgh',
};
const sha = (token: string) => createHash('sha256').update(token).digest('hex');
const NHS_NUMBER = '9434765919';
const PATH = '/fhir/R4/$process-message';

describe.each(STORE_KINDS)('messages in on %s', (kind) => {
  let t: TestApp;
  let clinician: Client;
  let southClinician: Client;
  let manager: Client;
  let patientId: string;
  let receiver: FhirReceiver;
  let worker: DeliveryWorker;
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-inbound-'));

  beforeAll(async () => {
    receiver = new FhirReceiver({
      kind: 'ambulance',
      name: 'North Ambulance Service',
      storeFile: join(dir, `ambulance-${kind}.ndjson`),
    });
    await receiver.start();
    t = await startTestApp(kind, {
      inboundCredentials: ([north, south]) => [
        {
          tenant: 'northshire',
          endpointId: 'north-ambulance',
          siteId: north!.sites[0]!,
          tokenSha256: sha(TOKENS.north),
        },
        {
          tenant: 'southshire',
          endpointId: 'south-ambulance',
          siteId: south!.sites[0]!,
          tokenSha256: sha(TOKENS.south),
        },
        {
          tenant: 'northshire',
          endpointId: 'south-ambulance',
          siteId: north!.sites[0]!,
          tokenSha256: sha(TOKENS.misconfigured),
        },
        {
          tenant: 'northshire',
          endpointId: 'practice-b86001',
          siteId: north!.sites[0]!,
          tokenSha256: sha(TOKENS.practice),
        },
      ],
    });
    const endpoint = (endpointId: string, name: string, url: string) => ({
      endpointId,
      name,
      kinds: ['ambulance_request' as const, 'response' as const],
      odsCode: null,
      transport: { type: 'http' as const, url, clientCertificate: null },
      phone: '0300 123 4567',
      acceptWithinSeconds: 30,
    });
    await t.messaging.setEndpoint(
      'northshire',
      'user:admin',
      endpoint('north-ambulance', 'North Ambulance Service', receiver.url),
    );
    await t.messaging.setEndpoint(
      'southshire',
      'user:admin',
      endpoint('south-ambulance', 'South Ambulance Service', 'http://127.0.0.1:9/'),
    );
    await t.messaging.setEndpoint('northshire', 'user:admin', {
      ...endpoint('practice-b86001', 'Sample Street Surgery', 'http://127.0.0.1:9/'),
      kinds: ['post_event_message'],
      odsCode: 'B86001',
    });
    clinician = new Client(t.app, t.clock);
    southClinician = new Client(t.app, t.clock);
    manager = new Client(t.app, t.clock);
    const adviser = new Client(t.app, t.clock);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
    expect((await southClinician.signIn('clinician@southshire')).statusCode).toBe(200);
    expect((await manager.signIn('shift_manager@northshire')).statusCode).toBe(200);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    const registered = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: t.providers[0]!.sites[0],
      record: {
        givenName: 'Ada',
        familyName: 'Validation',
        dateOfBirth: '1940-04-04',
        sex: 'female',
        nhsNumber: NHS_NUMBER,
        specialNotes: [],
      },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    patientId = (registered.json() as { patientId: string }).patientId;
    worker = new DeliveryWorker(
      { store: t.node.store, ledger: t.node.ledger, clock: t.clock, tenant: 'northshire' },
      { http: new HttpTransport({ timeoutMs: 5_000 }) },
    );
  });

  afterAll(async () => {
    await worker.stop();
    await t.close();
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (token: string | null, bundle: unknown) =>
    t.app.inject({
      method: 'POST',
      url: PATH,
      headers: {
        'content-type': 'application/fhir+json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      payload: JSON.stringify(bundle),
    });

  async function counts() {
    const events = await t.node.store.db
      .selectFrom('ledger_events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    const cases = await t.node.store.db
      .selectFrom('cases' as never)
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    return { events: Number(events.n), cases: Number((cases as { n: string }).n) };
  }

  async function eventsOf(caseId: string) {
    const rows = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'seq', 'tenant', 'payload'])
      .orderBy('pos')
      .execute();
    return rows
      .filter((r) => r.payload.includes(caseId))
      .map((r) => ({
        type: r.type,
        seq: Number(r.seq),
        tenant: r.tenant,
        payload: JSON.parse(r.payload) as Json,
      }));
  }

  type QueueCase = {
    caseId: string;
    deadline: string;
    presentingComplaint: string;
    callbackNumber?: string;
    disposition: { label: string | null; timeframeMinutes: number };
    ambulanceValidation: {
      incidentReference: string;
      category: number;
      deadlineFrom: string;
      patientMatch: string;
    } | null;
  };
  async function queueOf(client: Client): Promise<QueueCase[]> {
    const r = await client.request('GET', '/api/v1/queue');
    expect(r.statusCode, r.body).toBe(200);
    return (r.json() as { cases: QueueCase[] }).cases;
  }

  /** The case an accepted validation request opened, from our answer's Encounter reference. */
  async function caseOfAnswer(body: string): Promise<string> {
    const answer = JSON.parse(body) as Bundle;
    const reference = (answer.entry[1]!.resource.identifier as { value: string }[])[0]!.value;
    const row = await t.node.store.db
      .selectFrom('inbound_messages' as never)
      .select(['case_id' as never])
      .execute();
    const ids = (row as { case_id: string | null }[]).flatMap((r) => (r.case_id ? [r.case_id] : []));
    const found = ids.find((id) => caseReference(id) === reference);
    expect(found, 'the answer names the case it opened').toBeDefined();
    return found!;
  }

  it('refuses a sender without a known credential: 401 OperationOutcome, nothing stored', async () => {
    const before = await counts();
    const bundle = validationRequest({ category: 3 });
    for (const token of [null, 'not-a-configured-token-at-all-0000']) {
      const r = await post(token, bundle);
      expect(r.statusCode).toBe(401);
      expect(r.headers['content-type']).toContain('application/fhir+json');
      expect(r.headers['www-authenticate']).toBe('Bearer');
      const outcome = r.json() as { resourceType: string; issue: { code: string; expression?: string[] }[] };
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0]!.code).toBe('login');
      expect(outcome.issue[0]!.expression).toEqual(['headers.authorization']);
    }
    expect(await counts()).toEqual(before);
  });

  it('keeps providers apart: the tenant is the credential’s, and an endpoint of another provider is refused', async () => {
    const before = await counts();
    const refused = await post(TOKENS.misconfigured, validationRequest({ category: 3 }));
    expect(refused.statusCode).toBe(403);
    expect(await counts()).toEqual(before);

    const south = await post(TOKENS.south, validationRequest({ category: 3, incident: 'SAS-1' }));
    expect(south.statusCode, south.body).toBe(200);
    const caseId = await caseOfAnswer(south.body);
    const events = await eventsOf(caseId);
    expect(new Set(events.map((e) => e.tenant))).toEqual(new Set(['southshire']));
    expect((await queueOf(southClinician)).map((c) => c.caseId)).toContain(caseId);
    expect((await queueOf(clinician)).map((c) => c.caseId)).not.toContain(caseId);
  });

  it('a Category 3 request with a deadline: a case in the CAS queue, marked, due when asked, in one commit with the message', async () => {
    const messageId = randomUUID();
    const deadline = new Date(t.clock.nowMs() + 45 * 60_000).toISOString();
    const r = await post(
      TOKENS.north,
      validationRequest({ messageId, category: 3, incident: 'NAS-4711', deadline, nhsNumber: NHS_NUMBER }),
    );
    expect(r.statusCode, r.body).toBe(200);
    const answer = r.json() as Bundle;
    expect(outgoingIssues(answer as never)).toEqual([]);
    expect(answer.entry[0]!.resource.response).toEqual({ identifier: messageId, code: 'ok' });
    const caseId = await caseOfAnswer(r.body);

    const entry = (await queueOf(clinician)).find((c) => c.caseId === caseId)!;
    expect(entry).toBeDefined();
    expect(entry.deadline).toBe(deadline);
    expect(entry.presentingComplaint).toBe('Fall at home, pain in the hip');
    expect(entry.callbackNumber).toBe('07700 900123');
    expect(entry.disposition.label).toBe('999 ambulance validation, category 3 (incident NAS-4711)');
    expect(entry.ambulanceValidation).toEqual({
      incidentReference: 'NAS-4711',
      category: 3,
      deadline,
      deadlineFrom: 'message',
      patientMatch: 'matched',
    });
    const detail = await clinician.request('GET', `/api/v1/cases/${caseId}`);
    expect((detail.json() as { patientId: string }).patientId).toBe(patientId);

    const events = (await eventsOf(caseId)).filter((e) => e.type !== 'audit.access');
    expect(events.map((e) => e.type)).toEqual([
      'case.opened',
      'case.call_answered',
      'case.triage_started',
      'case.disposition_reached',
      'case.disposition_details',
      'case.queued_for_clinician',
      'inbound.validation_requested',
      'inbound.received',
    ]);
    // One append: the case and the record of the message sit next to each other in the chain.
    expect(events.map((e) => e.seq - events[0]!.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('a Category 4 request without a deadline gets the default window (60 minutes)', async () => {
    const r = await post(TOKENS.north, validationRequest({ category: 4, incident: 'NAS-4712' }));
    expect(r.statusCode, r.body).toBe(200);
    const caseId = await caseOfAnswer(r.body);
    const entry = (await queueOf(clinician)).find((c) => c.caseId === caseId)!;
    expect(entry.deadline).toBe(new Date(t.clock.nowMs() + 60 * 60_000).toISOString());
    expect(entry.ambulanceValidation).toMatchObject({
      category: 4,
      deadlineFrom: 'default',
      patientMatch: 'no_nhs_number',
    });
  });

  it('refuses Category 1 and 2: 422, they are dispatched, not validated; nothing stored', async () => {
    const before = await counts();
    for (const category of [1, 2]) {
      const r = await post(TOKENS.north, validationRequest({ category }));
      expect(r.statusCode).toBe(422);
      const outcome = r.json() as { issue: { details: { text: string }; expression: string[] }[] };
      expect(outcome.issue[0]!.details.text).toContain('Category 1 and 2 calls are not validated by the CAS');
      expect(outcome.issue[0]!.expression).toEqual([
        'Bundle.entry[1].resource.category',
        'body.entry.1.resource.category',
      ]);
    }
    expect(await counts()).toEqual(before);
  });

  it('refuses an invalid Bundle naming the field (not its value); nothing stored', async () => {
    const before = await counts();
    const r = await post(
      TOKENS.north,
      validationRequest({ category: 3, serviceRequest: { status: 'secret-value-xyz' } }),
    );
    expect(r.statusCode).toBe(400);
    const outcome = r.json() as { issue: { expression: string[] }[] };
    expect(outcome.issue.flatMap((i) => i.expression)).toContain('Bundle.entry[1].resource.status');
    expect(r.body).not.toContain('secret-value-xyz');
    const missingPhone = validationRequest({ category: 3 });
    delete missingPhone.entry[2]!.resource.telecom;
    const noPhone = await post(TOKENS.north, missingPhone);
    expect(noPhone.statusCode).toBe(422);
    expect((noPhone.json() as { issue: { expression: string[] }[] }).issue[0]!.expression).toEqual([
      'Bundle.entry[2].resource.telecom',
      'body.entry.2.resource.telecom',
    ]);
    expect(await counts()).toEqual(before);
  });

  it('a repeat of the same message creates nothing and gets the same answer', async () => {
    const bundle = validationRequest({ category: 3, incident: 'NAS-4713' });
    const first = await post(TOKENS.north, bundle);
    expect(first.statusCode, first.body).toBe(200);
    const after = await counts();
    const second = await post(TOKENS.north, bundle);
    expect(second.statusCode).toBe(200);
    expect(second.body).toBe(first.body);
    expect(await counts()).toEqual(after);
    const validations = await t.node.store.db
      .selectFrom('ambulance_validations' as never)
      .select(['incident_reference' as never])
      .execute();
    expect(
      (validations as { incident_reference: string }[]).filter((v) => v.incident_reference === 'NAS-4713'),
    ).toHaveLength(1);
    // Two copies at once (a sender retrying before its first answer came): still one case.
    const racing = validationRequest({ category: 4, incident: 'NAS-4714' });
    const beforeRace = await counts();
    const [a, b] = await Promise.all([post(TOKENS.north, racing), post(TOKENS.north, racing)]);
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect(b.body).toBe(a.body);
    const afterRace = await counts();
    expect(afterRace.cases).toBe(beforeRace.cases + 1);
    // The same id with other content is not the same message.
    const changed = structuredClone(bundle);
    (changed.entry[1]!.resource.reasonCode as { text: string }[])[0]!.text = 'Something else';
    const conflict = await post(TOKENS.north, changed);
    expect(conflict.statusCode).toBe(409);
    expect(await counts()).toEqual(afterRace);
  });

  async function validated(incident: string): Promise<{ caseId: string; messageId: string }> {
    const messageId = randomUUID();
    const r = await post(TOKENS.north, validationRequest({ messageId, category: 3, incident }));
    expect(r.statusCode, r.body).toBe(200);
    const caseId = await caseOfAnswer(r.body);
    for (const step of ['claim', 'consultation'])
      expect((await clinician.request('POST', `/api/v1/cases/${caseId}/${step}`)).statusCode).toBeLessThan(
        300,
      );
    return { caseId, messageId };
  }

  it('the clinician’s outcome goes back as a response message, in the same commit, and the receiver accepts it', async () => {
    const upgraded = await validated('NAS-5001');
    const up = await clinician.request('POST', `/api/v1/cases/${upgraded.caseId}/outcome`, {
      outcome: 'upgrade_to_ambulance',
      ambulanceCategory: 2,
    });
    expect(up.statusCode, up.body).toBe(200);
    const notNeeded = await validated('NAS-5002');
    const advice = await clinician.request('POST', `/api/v1/cases/${notNeeded.caseId}/outcome`, {
      outcome: 'advice_and_close',
    });
    expect(advice.statusCode, advice.body).toBe(200);

    for (const [c, words] of [
      [upgraded, 'Ambulance still needed, category 2'],
      [notNeeded, 'Ambulance not needed: advice given by a CAS clinician, case closed'],
    ] as const) {
      const events = await eventsOf(c.caseId);
      const recorded = events.find((e) => e.type === 'case.outcome_recorded')!;
      const queued = events.filter((e) => e.type === 'message.queued');
      // Exactly one message, the response: no new ambulance request, no PEM to the ambulance service.
      expect(queued.map((q) => q.payload.kind)).toEqual(['response']);
      const q = queued[0]!;
      expect(q.payload.endpointId).toBe('north-ambulance');
      expect(q.payload.summary).toBe(`Validation outcome: ${words}`);
      expect(q.payload.invalid).toBeUndefined();
      expect(q.seq - recorded.seq).toBeGreaterThan(0);
      expect(q.seq - recorded.seq).toBeLessThan(5);
      const bundle = q.payload.bundle as Bundle;
      expect(bundle.entry[0]!.resource.response).toEqual({ identifier: c.messageId, code: 'ok' });
      expect((bundle.entry[1]!.resource.businessStatus as { text: string }).text).toBe(words);
    }
    // Closing the upgraded case later sends nothing more.
    expect((await clinician.request('POST', `/api/v1/cases/${upgraded.caseId}/close`)).statusCode).toBe(204);
    expect((await eventsOf(upgraded.caseId)).filter((e) => e.type === 'message.queued')).toHaveLength(1);

    const before = receiver.count;
    await worker.runOnce();
    expect(receiver.count).toBe(before + 2);
    const list = await manager.request('GET', '/api/v1/messages?kind=response');
    expect(list.statusCode, list.body).toBe(200);
    const messages = (list.json() as { messages: { caseId: string; state: string; reference: string }[] })
      .messages;
    for (const c of [upgraded, notNeeded]) {
      const m = messages.find((x) => x.caseId === c.caseId)!;
      expect(m.state).toBe('accepted');
      expect(m.reference).toMatch(/^INC-\d{6}$/);
    }
  });

  it('a business answer that comes later is recorded on our message, once, and only from the system it was sent to', async () => {
    const messageId = randomUUID();
    await t.messaging.queue('northshire', 'system:test', {
      messageId,
      kind: 'ambulance_request',
      endpointId: 'north-ambulance',
      caseId: null,
      siteId: null,
      bundle: messageBundle(messageId),
      summary: 'Test message',
      failAfterMs: 3_600_000,
    });
    const answer = answerTo(messageId, 'ok', 'NAS-9001');
    const before = await counts();
    // Another provider's system: not our message as far as it can tell. Another system of ours: not its to answer.
    const fromSouth = await post(TOKENS.south, answer);
    expect(fromSouth.statusCode, fromSouth.body).toBe(404);
    expect((await post(TOKENS.practice, answer)).statusCode).toBe(403);
    expect((await post(TOKENS.north, answerTo(randomUUID(), 'ok'))).statusCode).toBe(404);
    expect(await counts()).toEqual(before);

    const first = await post(TOKENS.north, answer);
    expect(first.statusCode, first.body).toBe(200);
    expect((first.json() as Bundle).entry[0]!.resource.response).toEqual({
      identifier: answer.entry[0]!.resource.id,
      code: 'ok',
    });
    expect(outgoingIssues(first.json() as never)).toEqual([]);
    const m = await manager.request('GET', `/api/v1/messages/${messageId}`);
    expect(m.json()).toMatchObject({ state: 'accepted', reference: 'NAS-9001' });
    const after = await counts();
    expect(after.events).toBe(before.events + 2);
    const again = await post(TOKENS.north, answer);
    expect(again.statusCode).toBe(200);
    expect(again.body).toBe(first.body);
    expect(await counts()).toEqual(after);

    // A refusal is recorded as a rejection with its reason.
    const refusedId = randomUUID();
    await t.messaging.queue('northshire', 'system:test', {
      messageId: refusedId,
      kind: 'ambulance_request',
      endpointId: 'north-ambulance',
      caseId: null,
      siteId: null,
      bundle: messageBundle(refusedId),
      summary: 'Test message',
      failAfterMs: 3_600_000,
    });
    expect((await post(TOKENS.north, answerTo(refusedId, 'fatal-error'))).statusCode).toBe(200);
    const refused = await manager.request('GET', `/api/v1/messages/${refusedId}`);
    expect(refused.json()).toMatchObject({ state: 'rejected', reason: 'no crews for that area' });
  });
});
