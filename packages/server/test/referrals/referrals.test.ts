import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeliveryWorker } from '../../src/messaging/delivery.ts';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import {
  ED_NORTH,
  UTC_RIVER,
  UTC_WALK,
  ED_GONE,
  SERVICES,
  ServiceReceiverProcess,
} from '../support/service-receiver.ts';
import { nhsNumberFor } from '../support/tenant-data.ts';
import { validationRequest } from '../support/inbound-bundles.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/** The bearer token the ED's system uses to post to us (its did-not-attend messages). */
const ED_TOKEN = 'emergency-department-north-token-0123456789';

/**
 * Referrals and bookings end to end on both stores, with `holdfast receiver --kind service` as its
 * own process over real HTTP: an ED/UTC disposition is referred to a chosen service (recorded with
 * what was offered), the BaRS referral goes through the outbox and the case shows it accepted with
 * the receiver's reference; a refusal and a did-not-attend of a patient with a safeguarding flag are
 * alerts the shift manager sees until acknowledged; a phone-only service takes a recorded phone
 * referral; a slot is booked only once the service accepts it, and one slot is never booked twice.
 */
describe.each(STORE_KINDS)('referrals and bookings on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let manager: Client;
  let clinician: Client;
  let site: string;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  const ed = new ServiceReceiverProcess('Northtown Emergency Department');
  let worker: DeliveryWorker;
  let inboundUrl = '';

  beforeAll(async () => {
    await ed.start();
    t = await startTestApp(kind, {
      providers: ['northshire'],
      inboundCredentials: (providers) => [
        {
          tenant: providers[0]!.tenant,
          endpointId: 'ed-north',
          siteId: providers[0]!.sites[0]!,
          tokenSha256: createHash('sha256').update(ED_TOKEN).digest('hex'),
        },
      ],
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address() as { port: number };
    inboundUrl = `http://127.0.0.1:${address.port}/fhir/R4/$process-message`;
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    manager = new Client(t.app, t.clock);
    expect((await manager.signIn('shift_manager@northshire')).statusCode).toBe(200);
    clinician = new Client(t.app, t.clock);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
    for (const [endpointId, url, kinds] of [
      ['ed-north', `${ed.url}/messages`, ['referral']],
      ['ed-north-slots', `${ed.url}/fhir`, ['booking']],
      // Nothing listens there: its slots cannot be read.
      ['ed-gone', 'http://127.0.0.1:9/fhir', ['referral', 'booking']],
    ] as const)
      await t.messaging.setEndpoint('northshire', 'user:admin', {
        endpointId,
        name: endpointId,
        kinds: [...kinds],
        odsCode: null,
        transport: { type: 'http', url, clientCertificate: null },
        phone: null,
        acceptWithinSeconds: 600,
      });
    for (const service of SERVICES) await t.directory.set('northshire', 'user:admin', service);
    worker = new DeliveryWorker(
      { store: t.node.store, ledger: t.node.ledger, clock: t.clock, tenant: 'northshire' },
      { http: new HttpTransport({ timeoutMs: 5_000 }) },
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await t?.close();
    await ed.stop();
  });

  async function json<T>(client: Client, method: string, url: string, body?: unknown): Promise<T> {
    const r = await client.request(method, url, body);
    expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return r.json() as T;
  }

  interface Referral {
    state: string;
    referralId: string;
    service: { serviceId: string; name: string };
    reference: string | null;
    reason: string | null;
    offered: string[];
    reasonIfNotFirst: string | null;
    messageId: string | null;
    phoned: { spokeTo: string; reference: string | null } | null;
    booking?: { state: string; slot: { slotId: string }; reference: string | null; reason: string | null };
  }

  const edCase = async (patientId?: string) =>
    (await caseAt(adviser, protocols, site, 'ed_utc', patientId ? { patientId } : {})).caseId;

  const referToEd = (caseId: string) =>
    json<Referral>(adviser, 'POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: ED_NORTH,
      searchId: 'search-1',
      offered: [ED_NORTH, UTC_RIVER, UTC_WALK],
    });

  it('ED disposition → referral to the chosen service → accepted by the receiver, with its reference', async () => {
    const caseId = await edCase();
    expect((await json<{ status: string }>(adviser, 'GET', `/api/v1/cases/${caseId}`)).status).toBe(
      'referral_pending',
    );
    expect((await json<Referral>(adviser, 'GET', `/api/v1/cases/${caseId}/referral`)).state).toBe('none');
    // The ranked services the adviser is shown, nearest first; the choice quotes the search.
    const search = await json<{ searchId: string; ranked: { service: { serviceId: string } }[] }>(
      adviser,
      'GET',
      `/api/v1/directory/search?caseId=${caseId}&latitude=53.8&longitude=-1.55&distanceKm=50`,
    );
    const offered = search.ranked.map((r) => r.service.serviceId);
    expect(offered).toEqual([ED_NORTH, UTC_RIVER, UTC_WALK, ED_GONE]);
    const referred = await json<Referral>(adviser, 'POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: ED_NORTH,
      searchId: search.searchId,
      offered,
    });
    expect(referred).toMatchObject({
      state: 'waiting',
      service: { serviceId: ED_NORTH, name: 'Northtown Emergency Department' },
      offered,
      searchId: search.searchId,
      reasonIfNotFirst: null,
    });
    // The choice and the referral message are one commit.
    const committed = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'seq', 'payload'])
      .where('type', 'in', ['referral.chosen', 'message.queued'])
      .orderBy('seq', 'desc')
      .limit(2)
      .execute();
    expect(committed.map((r) => r.type).sort()).toEqual(['message.queued', 'referral.chosen']);
    expect(Math.abs(Number(committed[0]!.seq) - Number(committed[1]!.seq))).toBe(1);
    const queued = JSON.parse(committed.find((r) => r.type === 'message.queued')!.payload) as {
      kind: string;
      bundle: { entry: { resource: { resourceType: string; code?: { text: string } } }[] };
      invalid?: unknown;
    };
    expect(queued.kind).toBe('referral');
    expect(queued.invalid).toBeUndefined();
    expect(queued.bundle.entry.map((e) => e.resource.resourceType)).toEqual([
      'MessageHeader',
      'ServiceRequest',
      'Encounter',
      'Location',
      'QuestionnaireResponse',
    ]);
    expect(queued.bundle.entry[1]!.resource.code!.text).toMatch(/^[A-Za-z0-9-]+: \S/);

    await worker.runOnce();
    const accepted = await json<Referral>(adviser, 'GET', `/api/v1/cases/${caseId}/referral`);
    expect(accepted.state).toBe('accepted');
    expect(accepted.reference).toMatch(/^REF-\d{6}$/);
    // Referred once: a second referral while this one stands is refused.
    const again = await adviser.request('POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: ED_NORTH,
      offered: [ED_NORTH],
    });
    expect(again.statusCode).toBe(409);
    expect(again.body).toContain('referred already');
  });

  it("a clinician's consultation outcome 'referral' names a service by the same route", async () => {
    const caseId = (await caseAt(adviser, protocols, site, 'speak_to_primary_care')).caseId;
    // In consultation the outcome is not chosen yet: no referral.
    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode).toBe(204);
    const early = await clinician.request('POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: ED_NORTH,
      offered: [ED_NORTH],
    });
    expect(early.statusCode).toBe(409);
    const outcome = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, { outcome: 'refer' });
    expect(outcome.statusCode, outcome.body).toBe(200);
    expect((await json<{ status: string }>(clinician, 'GET', `/api/v1/cases/${caseId}`)).status).toBe(
      'referral_pending',
    );
    const referred = await json<Referral>(clinician, 'POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: ED_NORTH,
      offered: [ED_NORTH, UTC_RIVER],
    });
    expect(referred.state).toBe('waiting');
    const chosen = await t.node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'referral.chosen')
      .execute();
    const mine = chosen
      .map((r) => JSON.parse(r.payload) as { caseId: string; byClinicianId: string | null })
      .find((p) => p.caseId === caseId)!;
    expect(mine.byClinicianId).toBe(t.providers[0]!.users.clinician.userId);
    await worker.runOnce();
    expect((await json<Referral>(clinician, 'GET', `/api/v1/cases/${caseId}/referral`)).state).toBe(
      'accepted',
    );
  });

  it('a refusal raises an alert on the dashboard and the list, until acknowledged with a reason', async () => {
    const caseId = await edCase();
    await ed.refuseNext('No capacity: department closed to referrals');
    await referToEd(caseId);
    await worker.runOnce();
    const refused = await json<Referral>(adviser, 'GET', `/api/v1/cases/${caseId}/referral`);
    expect(refused.state).toBe('rejected');
    expect(refused.reason).toContain('No capacity: department closed to referrals');
    const dashboard = await json<{ referralAlerts: number }>(manager, 'GET', '/api/v1/dashboard');
    expect(dashboard.referralAlerts).toBe(1);
    const list = await json<{
      alerts: { referralId: string; caseId: string; alert: string; words: string }[];
    }>(manager, 'GET', '/api/v1/referrals?needsAttention=true');
    expect(list.alerts).toHaveLength(1);
    expect(list.alerts[0]).toMatchObject({ caseId, alert: 'rejected', referralId: refused.referralId });
    expect(list.alerts[0]!.words).toContain('Northtown Emergency Department refused the referral');
    // An acknowledgement needs its reason, and a manager's role.
    const noReason = await manager.request('POST', `/api/v1/referrals/${refused.referralId}/acknowledge`, {
      alert: 'rejected',
    });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.body).toContain('body.reason');
    const byAdviser = await adviser.request('POST', `/api/v1/referrals/${refused.referralId}/acknowledge`, {
      alert: 'rejected',
      reason: 'phoned the UTC instead',
    });
    expect(byAdviser.statusCode).toBe(403);
    const acknowledged = await json<{ alerts: unknown[] }>(
      manager,
      'POST',
      `/api/v1/referrals/${refused.referralId}/acknowledge`,
      { alert: 'rejected', reason: 'Referred to Riverside UTC by phone instead' },
    );
    expect(acknowledged.alerts).toHaveLength(0);
    expect((await json<{ referralAlerts: number }>(manager, 'GET', '/api/v1/dashboard')).referralAlerts).toBe(
      0,
    );
    // The refused referral ended: another service may now be chosen, with a reason it was not the first.
    const notFirst = await adviser.request('POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: UTC_RIVER,
      offered: [ED_NORTH, UTC_RIVER],
      phoneReferral: { spokeTo: 'Nurse Jones' },
    });
    expect(notFirst.statusCode).toBe(400);
    expect(notFirst.body).toContain('body.reasonIfNotFirst');
    const phoned = await json<Referral>(adviser, 'POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: UTC_RIVER,
      offered: [ED_NORTH, UTC_RIVER],
      reasonIfNotFirst: 'The emergency department refused the referral',
      phoneReferral: { spokeTo: 'Nurse Jones', reference: 'UTC-77' },
    });
    expect(phoned).toMatchObject({
      state: 'phoned',
      reference: 'UTC-77',
      phoned: { spokeTo: 'Nurse Jones' },
    });
  });

  it('a did-not-attend for a patient with a safeguarding flag raises an alert; without one it does not', async () => {
    const register = async (k: number, notes: { kind: string; text: string }[]) => {
      const r = await adviser.request('POST', '/api/v1/patients', {
        homeSiteId: site,
        record: {
          givenName: 'Rita',
          familyName: `Referral${k}`,
          dateOfBirth: '1960-02-03',
          sex: 'female',
          nhsNumber: nhsNumberFor(0, 900 + k + (kind === 'sqlite' ? 0 : 50)),
          specialNotes: notes,
        },
      });
      expect(r.statusCode, r.body).toBe(201);
      return (r.json() as { patientId: string }).patientId;
    };
    const flagged = await register(1, [
      { kind: 'safeguarding', text: 'Made-up note: child protection plan' },
    ]);
    const plain = await register(2, []);
    const before = (
      await json<{ alerts: unknown[] }>(manager, 'GET', '/api/v1/referrals?needsAttention=true')
    ).alerts.length;
    const results: Record<string, Referral> = {};
    for (const [name, patientId] of [
      ['flagged', flagged],
      ['plain', plain],
    ] as const) {
      const caseId = await edCase(patientId);
      const referred = await referToEd(caseId);
      await worker.runOnce();
      expect((await json<Referral>(adviser, 'GET', `/api/v1/cases/${caseId}/referral`)).state).toBe(
        'accepted',
      );
      const sent = await ed.didNotAttend(referred.messageId!, inboundUrl, ED_TOKEN);
      expect(sent.status, JSON.stringify(sent)).toBe(200);
      results[name] = await json<Referral>(adviser, 'GET', `/api/v1/cases/${caseId}/referral`);
      expect(results[name]!.state).toBe('did_not_attend');
    }
    const alerts = (
      await json<{ alerts: { alert: string; referralId: string; words: string }[] }>(
        manager,
        'GET',
        '/api/v1/referrals?needsAttention=true',
      )
    ).alerts;
    expect(alerts.length).toBe(before + 1);
    expect(alerts.find((a) => a.alert === 'did_not_attend')).toMatchObject({
      referralId: results.flagged!.referralId,
    });
    expect(alerts.some((a) => a.referralId === results.plain!.referralId)).toBe(false);
    // The flag travelled with the referral, as a Flag the receiver may see.
    const queued = await t.node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'message.queued')
      .execute();
    const flaggedBundle = queued
      .map(
        (r) =>
          JSON.parse(r.payload) as {
            messageId: string;
            bundle: { entry: { resource: { resourceType: string } }[] };
          },
      )
      .find((p) => p.messageId === results.flagged!.messageId)!;
    expect(flaggedBundle.bundle.entry.some((e) => e.resource.resourceType === 'Flag')).toBe(true);
  });

  it('a walk-in service records the advice only; a phone-only service needs who took the referral', async () => {
    const walk = await edCase();
    const walkIn = await json<Referral>(adviser, 'POST', `/api/v1/cases/${walk}/referral`, {
      serviceId: UTC_WALK,
      offered: [UTC_WALK],
    });
    expect(walkIn.state).toBe('walk_in');
    expect(walkIn.messageId).toBeNull();
    const phone = await edCase();
    const missing = await adviser.request('POST', `/api/v1/cases/${phone}/referral`, {
      serviceId: UTC_RIVER,
      offered: [UTC_RIVER],
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('body.phoneReferral');
    expect(missing.body).toContain('takes referrals by phone');
    const phoned = await json<Referral>(adviser, 'POST', `/api/v1/cases/${phone}/referral`, {
      serviceId: UTC_RIVER,
      offered: [UTC_RIVER],
      phoneReferral: { spokeTo: 'Receptionist at the UTC' },
    });
    expect(phoned).toMatchObject({ state: 'phoned', reference: null });
  });

  it('bad input is a 400 naming the field; a case with no referral disposition is a 409', async () => {
    const caseId = await edCase();
    const cases: [unknown, string][] = [
      [{ offered: [] }, 'body.serviceId'],
      [{ serviceId: ED_NORTH }, 'body.offered'],
      [{ serviceId: 'no-such-service', offered: [] }, 'body.serviceId'],
      [{ serviceId: ED_NORTH, offered: [UTC_RIVER] }, 'body.reasonIfNotFirst'],
      [{ serviceId: ED_NORTH, offered: [], surprise: 1 }, 'body'],
    ];
    for (const [body, field] of cases) {
      const r = await adviser.request('POST', `/api/v1/cases/${caseId}/referral`, body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.body).toContain(field);
    }
    expect((await json<Referral>(adviser, 'GET', `/api/v1/cases/${caseId}/referral`)).state).toBe('none');
    const selfCare = (await caseAt(adviser, protocols, site, 'speak_to_primary_care')).caseId;
    const wrong = await adviser.request('POST', `/api/v1/cases/${selfCare}/referral`, {
      serviceId: ED_NORTH,
      offered: [ED_NORTH],
    });
    expect(wrong.statusCode).toBe(409);
    const slotsOfNone = await adviser.request('GET', `/api/v1/cases/${caseId}/booking/slots`);
    expect(slotsOfNone.statusCode).toBe(400);
    expect(slotsOfNone.body).toContain('query.serviceId');
  });

  it('a booking is shown booked only once the service accepts it; one slot is never booked twice', async () => {
    const first = await edCase();
    const second = await edCase();
    const { slots } = await json<{ slots: { slotId: string; start: string; end: string }[] }>(
      adviser,
      'GET',
      `/api/v1/cases/${first}/booking/slots?serviceId=${ED_NORTH}`,
    );
    expect(slots.length).toBeGreaterThan(2);
    expect(slots[0]!.start < slots[1]!.start).toBe(true);
    const slotId = slots[0]!.slotId;
    // Both ask for the same free slot before the service has heard of either.
    const a = await json<{ state: string }>(adviser, 'POST', `/api/v1/cases/${first}/booking`, {
      serviceId: ED_NORTH,
      slotId,
    });
    expect(a.state, JSON.stringify(a)).toBe('waiting');
    const b = await json<{ state: string }>(adviser, 'POST', `/api/v1/cases/${second}/booking`, {
      serviceId: ED_NORTH,
      slotId,
    });
    expect(b.state).toBe('waiting');
    expect((await json<Referral>(adviser, 'GET', `/api/v1/cases/${first}/referral`)).booking!.state).toBe(
      'waiting',
    );
    await worker.runOnce();
    const one = (await json<Referral>(adviser, 'GET', `/api/v1/cases/${first}/referral`)).booking!;
    const two = (await json<Referral>(adviser, 'GET', `/api/v1/cases/${second}/referral`)).booking!;
    const states = [one.state, two.state].sort();
    expect(states).toEqual(['booked', 'refused']);
    const refused = one.state === 'refused' ? one : two;
    expect(refused.reason).toContain('no longer free');
    // The service no longer offers the slot; asking for it now is refused before anything is sent.
    const after = await json<{ slots: { slotId: string }[] }>(
      adviser,
      'GET',
      `/api/v1/cases/${first}/booking/slots?serviceId=${ED_NORTH}`,
    );
    expect(after.slots.some((s) => s.slotId === slotId)).toBe(false);
    const third = await edCase();
    const late = await adviser.request('POST', `/api/v1/cases/${third}/booking`, {
      serviceId: ED_NORTH,
      slotId,
    });
    expect(late.statusCode).toBe(400);
    expect(late.body).toContain('body.slotId');
  });

  it('a referral in from another service (999 → CAS, not a validation) enters the CAS queue, once', async () => {
    const deadline = new Date(t.clock.nowMs() + 90 * 60_000).toISOString();
    const bundle = validationRequest({ category: 3, incident: 'NAS-REF-1', deadline });
    const sr = bundle.entry[1]!.resource;
    // A referral carries no ambulance response category: it is not a validation.
    delete sr.category;
    sr.code = { text: 'Clinical assessment by a GP out of hours' };
    const post = () =>
      t.app.inject({
        method: 'POST',
        url: '/fhir/R4/$process-message',
        headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${ED_TOKEN}` },
        payload: JSON.stringify(bundle),
      });
    const r = await post();
    expect(r.statusCode, r.body).toBe(200);
    const answer = r.json() as { entry: { resource: { resourceType: string } }[] };
    expect(answer.entry[1]!.resource.resourceType).toBe('Encounter');
    const label =
      'Referral from North Ambulance Service (reference NAS-REF-1): Clinical assessment by a GP out of hours';
    const queued = async () =>
      (
        await json<{ cases: { caseId: string; deadline: string; disposition: { label: string } }[] }>(
          clinician,
          'GET',
          '/api/v1/queue',
        )
      ).cases.filter((c) => c.disposition.label === label);
    const entries = await queued();
    expect(entries).toHaveLength(1);
    expect(entries[0]!.deadline).toBe(deadline);
    const received = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['v', 'payload'])
      .where('type', '=', 'inbound.received')
      .execute();
    const referralsIn = received.filter(
      (e) => (JSON.parse(e.payload) as { kind: string }).kind === 'referral',
    );
    expect(referralsIn).toHaveLength(1);
    expect(Number(referralsIn[0]!.v)).toBe(2);
    // The same message again: the same answer, no second case.
    const again = await post();
    expect(again.statusCode).toBe(200);
    expect(again.body).toBe(r.body);
    expect(await queued()).toHaveLength(1);
  });

  it('a service whose slots cannot be read is a 502 naming the service, not the patient', async () => {
    const caseId = await edCase();
    const r = await adviser.request('GET', `/api/v1/cases/${caseId}/booking/slots?serviceId=${ED_GONE}`);
    expect(r.statusCode).toBe(502);
    expect(r.body).toContain('Closed Hospital Emergency Department');
    expect(r.body).not.toContain('Sam Caller');
    const noBooking = await adviser.request(
      'GET',
      `/api/v1/cases/${caseId}/booking/slots?serviceId=${UTC_RIVER}`,
    );
    expect(noBooking.statusCode).toBe(400);
    expect(noBooking.body).toContain('does not take bookings');
  });
});
