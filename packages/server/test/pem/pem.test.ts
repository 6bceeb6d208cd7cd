import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { outgoingIssues } from '../../src/fhir/validate.ts';
import { DeliveryWorker } from '../../src/messaging/delivery.ts';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { PEM_SECTIONS } from '../../src/pem/document.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { pdfTexts } from '../downtime/pdf-text.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';
import { ScriptedReceiver } from '../support/scripted-receiver.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The Post Event Message through HTTP on both stores: a closed case's practice gets a FHIR document
 * in the same commit as the close (self-care confirmed, or a clinician's outcome), never for a
 * never-send disposition; a patient without a practice, or a practice without an endpoint, is
 * recorded and reported; the PDF names the patient, the practice and every section.
 */
describe.each(STORE_KINDS)('Post Event Message on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let manager: Client;
  let site: string;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  const receiver = new ScriptedReceiver();
  let worker: DeliveryWorker;
  const patients = { withPractice: '', noPractice: '', noEndpoint: '' };

  beforeAll(async () => {
    await receiver.start();
    t = await startTestApp(kind, { providers: ['northshire'] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    manager = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
    expect((await manager.signIn('shift_manager@northshire')).statusCode).toBe(200);
    worker = new DeliveryWorker(
      { store: t.node.store, ledger: t.node.ledger, clock: t.clock, tenant: 'northshire' },
      { http: new HttpTransport({ timeoutMs: 2_000 }) },
    );
    await t.messaging.setEndpoint('northshire', 'user:admin', {
      endpointId: 'practice-b86001',
      name: 'Sample Street Surgery',
      kinds: ['post_event_message'],
      odsCode: 'B86001',
      transport: { type: 'http', url: receiver.url, clientCertificate: null },
      phone: null,
      acceptWithinSeconds: 3600,
    });
    const register = async (givenName: string, practice?: { odsCode: string; name: string }) => {
      const r = await adviser.request('POST', '/api/v1/patients', {
        homeSiteId: site,
        record: {
          givenName,
          familyName: 'Pemtest',
          dateOfBirth: '1950-05-05',
          sex: 'female',
          specialNotes: [],
          ...(practice ? { registeredPractice: practice } : {}),
        },
      });
      expect(r.statusCode, r.body).toBe(201);
      return (r.json() as { patientId: string }).patientId;
    };
    patients.withPractice = await register('Ada', { odsCode: 'B86001', name: 'Sample Street Surgery' });
    patients.noPractice = await register('Bea');
    patients.noEndpoint = await register('Cyd', { odsCode: 'C99001', name: 'Far Away Practice' });
  });

  afterAll(async () => {
    await worker.stop();
    await t.close();
    await receiver.stop();
  });

  async function json<T>(client: Client, method: string, url: string, body?: unknown): Promise<T> {
    const r = await client.request(method, url, body);
    expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return (r.body ? r.json() : null) as T;
  }

  async function eventsOf(caseId: string) {
    const rows = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'seq', 'payload'])
      .orderBy('pos')
      .execute();
    return rows
      .filter((r) => r.payload.includes(caseId))
      .map((r) => ({
        type: r.type,
        seq: Number(r.seq),
        payload: JSON.parse(r.payload) as Record<string, unknown>,
      }));
  }

  type Bundle = { type: string; entry: { resource: Record<string, unknown> }[] };
  type Section = { title: string; text: { div: string } };

  it('self-care confirmed: the PEM (for information) is queued with the close, due 08:00 next working day, and delivered', async () => {
    receiver.received.length = 0;
    receiver.fallback = { status: 200, body: 'ok-with-reference' };
    // The test clock starts on Sunday 29 November 2026: due Monday 30 November, 08:00 GMT.
    const { caseId } = await caseAt(adviser, protocols, site, 'self_care', {
      patientId: patients.withPractice,
    });
    const events = await eventsOf(caseId);
    const closed = events.find((e) => e.type === 'case.closed')!;
    const queued = events.find((e) => e.type === 'message.queued')!;
    expect(closed).toBeDefined();
    expect(queued.payload.kind).toBe('post_event_message');
    expect(queued.payload.endpointId).toBe('practice-b86001');
    // One commit: the close and the message are next to each other in the chain.
    expect(Math.abs(queued.seq - closed.seq)).toBe(1);
    expect(new Date(queued.payload.failAtMs as number).toISOString()).toBe('2026-11-30T08:00:00.000Z');
    expect(queued.payload.summary).toBe('Post Event Message, for information');
    expect(queued.payload.invalid).toBeUndefined();
    const bundle = queued.payload.bundle as Bundle;
    expect(bundle.type).toBe('document');
    expect(outgoingIssues(bundle as never)).toEqual([]);
    const composition = bundle.entry[0]!.resource as {
      resourceType: string;
      title: string;
      section: Section[];
    };
    expect(composition.resourceType).toBe('Composition');
    expect(composition.title).toBe('Post Event Message — for information');
    expect(composition.section.map((s) => s.title)).toEqual([...PEM_SECTIONS]);
    expect(composition.section.at(-1)!.text.div).toContain(
      'For information: no action is asked of the practice.',
    );
    await worker.runOnce();
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.id).toBe(queued.payload.messageId);
    const m = await json<{ state: string }>(
      manager,
      'GET',
      `/api/v1/messages/${queued.payload.messageId as string}`,
    );
    expect(m.state).toBe('accepted');
  });

  it('a clinician prescribes and closes a contact-primary-care case: for action, with what and by when, and NEWS2 in the document', async () => {
    const { caseId } = await caseAt(adviser, protocols, site, 'contact_primary_care', {
      patientId: patients.withPractice,
    });
    await json(clinician, 'POST', `/api/v1/cases/${caseId}/claim`);
    await json(clinician, 'POST', `/api/v1/cases/${caseId}/consultation`);
    await json(clinician, 'POST', `/api/v1/cases/${caseId}/consultation/record`, {
      history: 'Cough for three days',
      observations: {
        respirationRate: 22,
        spo2: 95,
        airOrOxygen: 'air',
        systolicBp: 120,
        pulse: 96,
        consciousness: 'alert',
        temperature: 38.2,
      },
      safetyNetting: 'Call back if breathless',
    });
    await json(clinician, 'POST', `/api/v1/cases/${caseId}/outcome`, { outcome: 'prescribe' });
    // NEWS2 5 (RR 22, SpO2 95, pulse 96, 38.2): advice and close needs the clinician's reason.
    await json(clinician, 'POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'advice_and_close',
      news2Reason: 'Chest infection, well on the phone; antibiotics started, review by own GP tomorrow',
    });
    const queued = (await eventsOf(caseId)).find((e) => e.type === 'message.queued')!;
    expect(queued.payload.summary).toBe('Post Event Message, for action');
    expect(queued.payload.invalid).toBeUndefined();
    const bundle = queued.payload.bundle as Bundle;
    const sections = (bundle.entry[0]!.resource as { section: Section[] }).section;
    const followUp = sections.find((s) => s.title === 'Follow-up')!.text.div;
    expect(followUp).toContain('For action: The patient was advised to contact the practice');
    expect(followUp).toContain('A medicine was prescribed out of hours');
    // By the end of core hours on the next working day (Monday 30 November, 18:30 UK time).
    expect(followUp).toContain('By: Mon 30 Nov 2026 18:30 GMT (UK time)');
    expect(sections.find((s) => s.title === 'Observations (NEWS2)')!.text.div).toContain('NEWS2 total score');
    expect(sections.find((s) => s.title === 'Advice given')!.text.div).toContain('Call back if breathless');
    expect(bundle.entry.filter((e) => e.resource.resourceType === 'Observation').length).toBeGreaterThan(1);
  });

  it('never for a never-send disposition (Dx28 pharmacist): the close records why, and nothing is queued', async () => {
    const { caseId, last } = await caseAt(adviser, protocols, site, 'pharmacy', {
      patientId: patients.withPractice,
    });
    expect(last.status === 'disposition' ? last.disposition.dxCode : '').toBe('Dx28');
    const close = await clinician.request('POST', `/api/v1/cases/${caseId}/close`);
    expect(close.statusCode, close.body).toBe(204);
    const events = await eventsOf(caseId);
    expect(events.map((e) => e.type)).toContain('case.closed');
    expect(events.map((e) => e.type)).not.toContain('message.queued');
    expect(events.find((e) => e.type === 'pem.not_sent')!.payload.reason).toBe('never_send_disposition');
    const pdf = await adviser.request('GET', `/api/v1/cases/${caseId}/pem.pdf`);
    expect(pdf.statusCode).toBe(409);
    expect(pdf.body).toContain('no Post Event Message is sent for disposition Dx28');
  });

  it('a patient registered at a site the closer does not work at: the close still queues the PEM', async () => {
    await t.accounts.create(
      'northshire',
      {
        username: 'both-sites@northshire',
        displayName: 'Adviser of both sites',
        roles: ['health_adviser'],
        siteIds: t.providers[0]!.sites,
        password: PASSWORD,
      },
      'system:test',
    );
    const both = new Client(t.app, t.clock);
    expect((await both.signIn('both-sites@northshire')).statusCode).toBe(200);
    const registered = await both.request('POST', '/api/v1/patients', {
      homeSiteId: t.providers[0]!.sites[1],
      record: {
        givenName: 'Dee',
        familyName: 'Pemtest',
        dateOfBirth: '1960-06-06',
        sex: 'male',
        specialNotes: [],
        registeredPractice: { odsCode: 'B86001', name: 'Sample Street Surgery' },
      },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const patientId = (registered.json() as { patientId: string }).patientId;
    // The adviser works at site A only; the patient's record is at site B.
    const { caseId } = await caseAt(adviser, protocols, site, 'self_care', { patientId });
    const events = await eventsOf(caseId);
    expect(events.map((e) => e.type)).toContain('case.closed');
    expect(events.find((e) => e.type === 'message.queued')!.payload.kind).toBe('post_event_message');
  });

  it('the report lists an undelivered PEM (overdue from 08:00) and the cases with no practice or no endpoint', async () => {
    receiver.fallback = { status: 503 };
    const from = new Date(t.clock.nowMs() - 60_000).toISOString();
    const undelivered = await caseAt(adviser, protocols, site, 'self_care', {
      patientId: patients.withPractice,
    });
    const noPractice = await caseAt(adviser, protocols, site, 'self_care', {
      patientId: patients.noPractice,
    });
    const noEndpoint = await caseAt(adviser, protocols, site, 'self_care', {
      patientId: patients.noEndpoint,
    });
    for (const c of [noPractice, noEndpoint])
      expect((await eventsOf(c.caseId)).map((e) => e.type)).not.toContain('message.queued');
    await worker.runOnce();
    const to = new Date(t.clock.nowMs() + 60_000).toISOString();
    type Report = {
      undelivered: { caseId: string; state: string; dueAt: string; overdue: boolean }[];
      notSent: { caseId: string; reason: string; odsCode: string | null }[];
    };
    const url = `/api/v1/reports/pem?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
    let report = await json<Report>(manager, 'GET', url);
    const row = report.undelivered.find((u) => u.caseId === undelivered.caseId)!;
    expect(row).toBeDefined();
    expect(row.dueAt).toBe('2026-11-30T08:00:00.000Z');
    expect(row.overdue).toBe(false);
    expect(report.notSent).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          caseId: noPractice.caseId,
          reason: 'no_registered_practice',
          odsCode: null,
        }),
        expect.objectContaining({
          caseId: noEndpoint.caseId,
          reason: 'no_practice_endpoint',
          odsCode: 'C99001',
        }),
      ]),
    );
    // A never-send disposition is by rule, not a practice left untold: not listed.
    expect(report.notSent.every((n) => n.reason !== 'never_send_disposition')).toBe(true);
    t.clock.set(Date.parse('2026-11-30T08:00:00Z'));
    // Sessions lapse overnight: sign in again.
    for (const [client, username] of [
      [manager, 'shift_manager@northshire'],
      [adviser, 'health_adviser@northshire'],
    ] as const)
      expect((await client.signIn(username)).statusCode).toBe(200);
    report = await json<Report>(manager, 'GET', url);
    expect(report.undelivered.find((u) => u.caseId === undelivered.caseId)!.overdue).toBe(true);
    const bad = await manager.request(
      'GET',
      `/api/v1/reports/pem?from=yesterday&to=${encodeURIComponent(to)}`,
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('from');
    expect((await adviser.request('GET', url)).statusCode).toBe(403);
  });

  it('the PDF names the patient, the practice and every section, and says the triage content is sample', async () => {
    const { caseId } = await caseAt(adviser, protocols, site, 'self_care', {
      patientId: patients.noEndpoint,
    });
    const r = await adviser.request('GET', `/api/v1/cases/${caseId}/pem.pdf`);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toBe('application/pdf');
    const text = pdfTexts(r.rawPayload).join('\n');
    expect(text).toContain('Cyd Pemtest');
    expect(text).toContain('Far Away Practice (ODS C99001)');
    for (const title of PEM_SECTIONS) expect(text).toContain(title);
    expect(text).toContain('not clinically validated');
    const audits = await t.node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'audit.access')
      .execute();
    expect(audits.some((a) => a.payload.includes(caseId) && a.payload.includes('pem.pdf'))).toBe(true);
    // Not closed yet: refused, saying why.
    const open = await caseAt(adviser, protocols, site, 'self_care', {
      patientId: patients.noEndpoint,
      confirm: false,
    });
    const refused = await adviser.request('GET', `/api/v1/cases/${open.caseId}/pem.pdf`);
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('not closed');
  });
});
