import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { outgoingIssues } from '../../src/fhir/validate.ts';
import { DeliveryWorker } from '../../src/messaging/delivery.ts';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { ScriptedReceiver } from '../support/scripted-receiver.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The 999 handover through HTTP on both stores: an ambulance disposition is only proposed until the
 * adviser confirms it; confirming queues the request to the ambulance service in the same commit;
 * the adviser sees it accepted with the incident reference, or, when it is not accepted within the
 * ambulance service's window, is told to phone, and the phone handover is recorded and the electronic
 * request stopped. Never "requested" before the ambulance service has said so.
 */
describe.each(STORE_KINDS)('999 handover on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let site: string;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  const receiver = new ScriptedReceiver();
  let worker: DeliveryWorker;

  beforeAll(async () => {
    await receiver.start();
    t = await startTestApp(kind, { providers: ['northshire'] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    worker = new DeliveryWorker(
      { store: t.node.store, ledger: t.node.ledger, clock: t.clock, tenant: 'northshire' },
      { http: new HttpTransport({ timeoutMs: 2_000 }) },
    );
  });

  afterAll(async () => {
    await worker.stop();
    await t.close();
    await receiver.stop();
  });

  async function json<T>(client: Client, method: string, url: string, body?: unknown): Promise<T> {
    const r = await client.request(method, url, body);
    expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return r.json() as T;
  }

  async function eventTypes(caseId: string): Promise<string[]> {
    const rows = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'payload'])
      .orderBy('pos')
      .execute();
    return rows.filter((r) => r.payload.includes(caseId)).map((r) => r.type);
  }

  it('with no ambulance service configured: proposed, confirmed, then the adviser is told to phone', async () => {
    const { caseId, last } = await caseAt(adviser, protocols, site, 'ambulance', { confirm: false });
    expect(last.status).toBe('disposition');
    // Proposed only: nothing acted on, nothing sent.
    let c = await json<{ status: string }>(adviser, 'GET', `/api/v1/cases/${caseId}`);
    expect(c.status).toBe('disposition_reached');
    expect(await eventTypes(caseId)).not.toContain('case.ambulance_requested');
    const dx = last.status === 'disposition' ? last.disposition.dxCode : '';
    // Confirming a disposition other than the one proposed is refused.
    const wrong = await adviser.request('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
      dxCode: 'Dx99',
    });
    expect(wrong.statusCode).toBe(409);
    expect(wrong.body).toContain(`the disposition is now ${dx}`);
    await json(adviser, 'POST', `/api/v1/cases/${caseId}/disposition/confirm`, { dxCode: dx });
    c = await json<{ status: string }>(adviser, 'GET', `/api/v1/cases/${caseId}`);
    expect(c.status).toBe('ambulance_requested');
    const again = await adviser.request('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
      dxCode: dx,
    });
    expect(again.statusCode).toBe(409);
    const h = await json<{ state: string }>(adviser, 'GET', `/api/v1/cases/${caseId}/ambulance-handover`);
    expect(h.state).toBe('no_endpoint');
  });

  it('an answer changed before confirming withdraws the proposed ambulance, and nothing is sent', async () => {
    const { caseId, last } = await caseAt(adviser, protocols, site, 'ambulance', { confirm: false });
    expect(last.status).toBe('disposition');
    const firstStep = last.path[0]!;
    const protocol = [...protocols.values()].find((p) => p.content.pathwayId === last.content.pathwayId)!;
    const question = protocol.nodes[firstStep.nodeId] as { options?: { id: string }[] } | undefined;
    // Every shipped pathway starts with a life-threatening question answered one of two ways.
    const other = question?.options?.find((o) => o.id !== firstStep.value);
    expect(other, `${firstStep.nodeId} has another answer`).toBeDefined();
    const changed = await json<{ status: string }>(
      adviser,
      'POST',
      `/api/v1/cases/${caseId}/triage/changes`,
      {
        nodeId: firstStep.nodeId,
        value: other!.id,
      },
    );
    const types = await eventTypes(caseId);
    expect(types).toContain('case.disposition_withdrawn');
    expect(types).not.toContain('case.ambulance_requested');
    expect(types).not.toContain('message.queued');
    const c = await json<{ status: string }>(adviser, 'GET', `/api/v1/cases/${caseId}`);
    expect(c.status).toBe(changed.status === 'disposition' ? 'disposition_reached' : 'in_triage');
  });

  describe('with the ambulance service configured', () => {
    beforeAll(async () => {
      // Set as a provider admin would (the admin route is exercised in the route samples).
      await t.messaging.setEndpoint('northshire', 'user:admin', {
        endpointId: 'ambulance',
        name: 'North Ambulance Service',
        kinds: ['ambulance_request'],
        odsCode: 'RX9',
        transport: { type: 'http', url: receiver.url, clientCertificate: null },
        phone: '0300 123 4567',
        acceptWithinSeconds: 30,
      });
    });

    it('confirming queues the request in the same commit; the screen shows waiting, then accepted with the incident reference', async () => {
      receiver.received.length = 0;
      receiver.fallback = { status: 200, body: 'ok-with-reference' };
      const { caseId, last } = await caseAt(adviser, protocols, site, 'ambulance', { confirm: false });
      const dx = last.status === 'disposition' ? last.disposition.dxCode : '';
      await json(adviser, 'POST', `/api/v1/cases/${caseId}/disposition/confirm`, { dxCode: dx });
      const committed = await t.node.store.db
        .selectFrom('ledger_events')
        .select(['type', 'seq'])
        .where('type', 'in', ['case.ambulance_requested', 'message.queued'])
        .orderBy('seq', 'desc')
        .limit(2)
        .execute();
      expect(committed.map((r) => r.type).sort()).toEqual(['case.ambulance_requested', 'message.queued']);
      expect(Math.abs(Number(committed[0]!.seq) - Number(committed[1]!.seq))).toBe(1);
      let h = await json<{ state: string; destination: string; reference: string | null }>(
        adviser,
        'GET',
        `/api/v1/cases/${caseId}/ambulance-handover`,
      );
      expect(h.state).toBe('waiting');
      expect(h.destination).toBe('North Ambulance Service');
      await worker.runOnce();
      h = await json(adviser, 'GET', `/api/v1/cases/${caseId}/ambulance-handover`);
      expect(h.state).toBe('accepted');
      expect(h.reference).toBe('INC-4711');
      // What reached the ambulance service: a FHIR message with the category, call-back number and triage path.
      expect(receiver.received).toHaveLength(1);
      const bundle = JSON.parse(receiver.received[0]!.body) as {
        type: string;
        entry: { resource: Record<string, unknown> }[];
      };
      expect(bundle.type).toBe('message');
      // It passed the outgoing validator (R4 definitions and UK Core rules) before it left.
      expect(outgoingIssues(bundle as never)).toEqual([]);
      const byType = (rt: string) => bundle.entry.map((e) => e.resource).find((r) => r.resourceType === rt)!;
      expect(byType('MessageHeader').id).toBe(receiver.received[0]!.id);
      expect(JSON.stringify(byType('ServiceRequest').category)).toMatch(/Ambulance response category [1-4]/);
      expect(JSON.stringify(byType('RelatedPerson').telecom)).toContain('0113 496 0123');
      const answers = (byType('QuestionnaireResponse').item as unknown[]).length;
      expect(answers).toBe(last.path.length);
    });

    it('not accepted within 30 s: phone now, with the number; the phone handover is recorded and the request stopped', async () => {
      receiver.received.length = 0;
      receiver.fallback = { status: 503 };
      const { caseId, last } = await caseAt(adviser, protocols, site, 'ambulance', { confirm: false });
      const dx = last.status === 'disposition' ? last.disposition.dxCode : '';
      await json(adviser, 'POST', `/api/v1/cases/${caseId}/disposition/confirm`, { dxCode: dx });
      await worker.runOnce();
      // The shift dashboard counts it as needing attention from the moment the adviser must phone.
      const manager = new Client(t.app, t.clock);
      expect((await manager.signIn('shift_manager@northshire')).statusCode).toBe(200);
      const needingAttention = async () =>
        (await json<{ messagesNeedingAttention: number | null }>(manager, 'GET', '/api/v1/dashboard'))
          .messagesNeedingAttention;
      t.clock.advance(29_000);
      let h = await json<{ state: string; phone: string | null }>(
        adviser,
        'GET',
        `/api/v1/cases/${caseId}/ambulance-handover`,
      );
      expect(h.state).toBe('waiting');
      expect(await needingAttention()).toBe(0);
      t.clock.advance(1_000);
      h = await json(adviser, 'GET', `/api/v1/cases/${caseId}/ambulance-handover`);
      expect(h.state).toBe('phone_now');
      expect(await needingAttention()).toBe(1);
      // The Messages screen's list uses the same rule as the dashboard's count.
      const listed = await json<{ messages: { caseId: string; overdue: boolean }[] }>(
        manager,
        'GET',
        '/api/v1/messages?needsAttention=true',
      );
      expect(listed.messages.filter((m) => m.caseId === caseId).map((m) => m.overdue)).toEqual([true]);
      expect(h.phone).toBe('0300 123 4567');
      const missing = await adviser.request('POST', `/api/v1/cases/${caseId}/ambulance-handover/phone`, {});
      expect(missing.statusCode).toBe(400);
      expect(missing.body).toContain('spokeTo');
      const phoned = await json<{ state: string; reference: string; phoned: { spokeTo: string } }>(
        adviser,
        'POST',
        `/api/v1/cases/${caseId}/ambulance-handover/phone`,
        { spokeTo: 'Call-taker 41', reference: 'INC-9001' },
      );
      expect(phoned.state).toBe('phoned');
      expect(phoned.reference).toBe('INC-9001');
      expect(phoned.phoned.spokeTo).toBe('Call-taker 41');
      expect(await needingAttention()).toBe(0);
      // The electronic request is cancelled: nothing more goes to the ambulance service.
      const sentBefore = receiver.received.length;
      t.clock.advance(120_000);
      await worker.runOnce();
      expect(receiver.received).toHaveLength(sentBefore);
      const twice = await adviser.request('POST', `/api/v1/cases/${caseId}/ambulance-handover/phone`, {
        spokeTo: 'Call-taker 41',
      });
      expect(twice.statusCode).toBe(409);
    });

    it("a clinician's upgrade in a consultation sends the request too, with the category the clinician chose", async () => {
      receiver.received.length = 0;
      receiver.fallback = { status: 200, body: 'ok-with-reference' };
      // A case for a clinician (not an ambulance at triage), upgraded after assessment.
      const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
      const clinician = new Client(t.app, t.clock);
      expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
      expect((await clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
      expect((await clinician.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode).toBe(204);
      // The category is chosen, never assumed: an upgrade without one is refused and sends nothing.
      const without = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, {
        outcome: 'upgrade_to_ambulance',
      });
      expect(without.statusCode).toBe(400);
      expect(without.body).toContain('ambulanceCategory');
      expect(await eventTypes(caseId)).not.toContain('message.queued');
      await json(clinician, 'POST', `/api/v1/cases/${caseId}/outcome`, {
        outcome: 'upgrade_to_ambulance',
        ambulanceCategory: 3,
      });
      const types = await eventTypes(caseId);
      expect(types).toContain('case.ambulance_requested');
      expect(types.filter((type) => type === 'message.queued')).toHaveLength(1);
      let h = await json<{ state: string; reference: string | null }>(
        clinician,
        'GET',
        `/api/v1/cases/${caseId}/ambulance-handover`,
      );
      expect(h.state).toBe('waiting');
      await worker.runOnce();
      expect(receiver.received).toHaveLength(1);
      const bundle = JSON.parse(receiver.received[0]!.body) as {
        entry: { resource: Record<string, unknown> }[];
      };
      const request = bundle.entry.map((e) => e.resource).find((r) => r.resourceType === 'ServiceRequest')!;
      expect(JSON.stringify(request.category)).toContain('Ambulance response category 3');
      expect(JSON.stringify(request.reasonCode)).toContain('Clinician upgrade');
      expect(outgoingIssues(bundle as never)).toEqual([]);
      h = await json(clinician, 'GET', `/api/v1/cases/${caseId}/ambulance-handover`);
      expect(h).toMatchObject({ state: 'accepted', reference: 'INC-4711' });
    });
  });
});
