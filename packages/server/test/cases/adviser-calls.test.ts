import type { StoredEvent } from '@holdfast/core';
import type { TriageProtocol } from '@holdfast/core/triage/pack';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { computeIucAdc, parseReportingPeriod } from '../../src/reports/iuc-adc.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Calls never drop out of sight (issue 12, "The adviser"): each adviser's open calls, ending a call
 * with a reason, the shift manager's calls open too long, free-text notes with plain limits, and a
 * confirmed disposition corrected only as a recorded re-triage. Both stores.
 */
describe.each(STORE_KINDS)('the adviser’s calls on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let manager: Client;
  let receptionist: Client;
  let otherAdviser: Client;
  let site: string;
  let protocols: Map<string, TriageProtocol>;
  const tenant = 'northshire';

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: [tenant, 'southvale'] });
    site = t.providers[0]!.sites[0]!;
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    manager = new Client(t.app, t.clock);
    receptionist = new Client(t.app, t.clock);
    otherAdviser = new Client(t.app, t.clock);
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
      [manager, 'shift_manager@northshire'],
      [receptionist, 'receptionist@northshire'],
      [otherAdviser, 'health_adviser@southvale'],
    ] as const) {
      const r = await c.signIn(u);
      if (r.statusCode !== 200) throw new Error(r.body);
    }
  });
  afterAll(async () => t?.close());

  async function openCall(by: Client, complaint = 'Chest pain'): Promise<string> {
    const res = await by.request('POST', '/api/v1/calls', {
      siteId: site,
      caller: {
        name: 'Sam Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: complaint,
    });
    expect(res.statusCode, res.body).toBe(201);
    return (res.json() as { caseId: string }).caseId;
  }

  async function myCalls(by: Client): Promise<{ caseId: string; status: string; callerName: string }[]> {
    const res = await by.request('GET', '/api/v1/calls/mine');
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { calls: { caseId: string; status: string; callerName: string }[] }).calls;
  }

  async function eventsOf(caseId: string): Promise<StoredEvent[]> {
    const chain = await t.node.ledger.readChain(tenant, t.node.identity.node, 1);
    return chain.filter((e) => e.payloadJson.includes(caseId));
  }

  async function status(caseId: string): Promise<string> {
    const res = await adviser.request('GET', `/api/v1/cases/${caseId}`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { status: string }).status;
  }

  it('lists only my own unfinished calls, of my provider, until each is confirmed or ended', async () => {
    const mineBefore = (await myCalls(adviser)).map((c) => c.caseId);
    const first = await openCall(adviser, 'Headache');
    const theirs = await openCall(clinician, 'Cough');
    const confirmed = (await caseAt(adviser, protocols, site, 'speak_to_primary_care')).caseId;
    const proposed = (await caseAt(adviser, protocols, site, 'ambulance', { confirm: false })).caseId;

    const mine = await myCalls(adviser);
    const ids = mine.map((c) => c.caseId).filter((id) => !mineBefore.includes(id));
    // Oldest first; these two came in at the same (test clock) time.
    expect(new Set(ids)).toEqual(new Set([first, proposed]));
    expect(mine.find((c) => c.caseId === proposed)!.status).toBe('disposition_reached');
    expect(mine.find((c) => c.caseId === first)!.callerName).toBe('Sam Caller');
    expect(ids).not.toContain(confirmed);
    expect((await myCalls(clinician)).map((c) => c.caseId)).toContain(theirs);
    expect((await myCalls(clinician)).map((c) => c.caseId)).not.toContain(first);
    // Another provider's adviser sees none of this provider's calls.
    expect(await myCalls(otherAdviser)).toEqual([]);
    // The list shows callers' words: it is audited, and only for those who take calls.
    const audits = (await t.node.ledger.readChain(tenant, t.node.identity.node, 1)).filter(
      (e) => e.type === 'audit.access' && e.payloadJson.includes('my_open_calls'),
    );
    expect(audits.length).toBeGreaterThanOrEqual(3);
    expect((await receptionist.request('GET', '/api/v1/calls/mine')).statusCode).toBe(403);
  });

  it('ends a call with a reason: it leaves the calls with advisers, nothing is acted on, no message is queued', async () => {
    const proposed = (await caseAt(adviser, protocols, site, 'ambulance', { confirm: false })).caseId;
    const dashboard = async () =>
      (
        (await manager.request('GET', '/api/v1/dashboard')).json() as {
          sites: { siteId: string; callsWaiting: number }[];
        }
      ).sites.find((s) => s.siteId === site)!.callsWaiting;
    const waitingBefore = await dashboard();

    const noDetail = await adviser.request('POST', `/api/v1/cases/${proposed}/end-call`, { reason: 'other' });
    expect(noDetail.statusCode).toBe(400);
    expect(noDetail.json()).toMatchObject({
      errors: [{ path: 'body.details', message: 'say why the call ended' }],
    });
    const badReason = await adviser.request('POST', `/api/v1/cases/${proposed}/end-call`, {
      reason: 'bored',
    });
    expect(badReason.statusCode).toBe(400);
    expect(JSON.stringify(badReason.json())).toContain(
      'must be one of: caller_hung_up, wrong_number, transferred, other',
    );

    const ended = await adviser.request('POST', `/api/v1/cases/${proposed}/end-call`, {
      reason: 'caller_hung_up',
    });
    expect(ended.statusCode, ended.body).toBe(204);
    expect(await status(proposed)).toBe('call_ended');
    expect(await dashboard()).toBe(waitingBefore - 1);
    expect((await myCalls(adviser)).map((c) => c.caseId)).not.toContain(proposed);

    const types = (await eventsOf(proposed)).map((e) => e.type);
    expect(types).toContain('case.call_ended');
    expect(types).not.toContain('case.ambulance_requested');
    expect(types).not.toContain('case.closed');
    expect(types.filter((ty) => ty.startsWith('message.'))).toEqual([]);
    // No practice message either way (a close decides one: sent, or recorded as not sent).
    expect(types.filter((ty) => ty.startsWith('pem.'))).toEqual([]);
    const selfCare = (await caseAt(adviser, protocols, site, 'self_care')).caseId;
    const closedTypes = (await eventsOf(selfCare)).map((e) => e.type);
    expect(closedTypes.some((ty) => ty === 'pem.not_sent' || ty === 'message.queued')).toBe(true);
    const endEvent = (await eventsOf(proposed)).find((e) => e.type === 'case.call_ended')!;
    expect(JSON.parse(endEvent.payloadJson)).toEqual({
      caseId: proposed,
      reason: 'caller_hung_up',
      proposalDropped: true,
    });
    const detail = (await adviser.request('GET', `/api/v1/cases/${proposed}`)).json() as {
      record: { timeline: { what: string }[] };
    };
    expect(detail.record.timeline.map((l) => l.what)).toContain(
      'Call ended without a confirmed disposition: the caller hung up; the proposed disposition was not acted on',
    );
    // Ended is final, and a confirmed disposition is not ended this way.
    const again = await adviser.request('POST', `/api/v1/cases/${proposed}/end-call`, {
      reason: 'wrong_number',
    });
    expect(again.statusCode).toBe(409);
    const confirmedCase = (await caseAt(adviser, protocols, site, 'speak_to_primary_care')).caseId;
    const late = await adviser.request('POST', `/api/v1/cases/${confirmedCase}/end-call`, {
      reason: 'transferred',
    });
    expect(late.statusCode).toBe(409);
    const other = await openCall(adviser);
    const withText = await adviser.request('POST', `/api/v1/cases/${other}/end-call`, {
      reason: 'other',
      details: 'Caller will ring their own GP',
    });
    expect(withText.statusCode, withText.body).toBe(204);
  });

  it('counts an ended call in IUC ADC as answered, with no final disposition (its proposal dropped)', async () => {
    const items = async () =>
      Object.fromEntries(
        (await computeIucAdc(t.node.store, tenant, parseReportingPeriod('2026-11'))).items.map((i) => [
          i.item,
          i.value,
        ]),
      );
    const proposed = (await caseAt(adviser, protocols, site, 'ambulance', { confirm: false })).caseId;
    const before = await items();
    const ended = await adviser.request('POST', `/api/v1/cases/${proposed}/end-call`, {
      reason: 'transferred',
    });
    expect(ended.statusCode, ended.body).toBe(204);
    const after = await items();
    expect(after.A01).toBe(before.A01);
    expect(after.A03).toBe(before.A03);
    expect(after.B02).toBe(before.B02);
    expect(after.C01).toBe(before.C01);
    expect(after.E01).toBe(Number(before.E01) - 1);
    expect(after.E02).toBe(Number(before.E02) - 1);
  });

  it('lists calls idle longer than 20 minutes for the shift manager, with the adviser’s name', async () => {
    const idle = await openCall(adviser, 'Back pain');
    const before = (await manager.request('GET', '/api/v1/calls/open-too-long')).json() as {
      calls: { caseId: string }[];
    };
    expect(before.calls.map((c) => c.caseId)).not.toContain(idle);
    t.clock.advance(21 * 60_000);
    const busy = await openCall(adviser, 'Sore throat');
    const list = await manager.request('GET', '/api/v1/calls/open-too-long');
    expect(list.statusCode, list.body).toBe(200);
    const body = list.json() as {
      thresholdMinutes: number;
      calls: { caseId: string; adviserName: string; minutesSinceActivity: number }[];
    };
    expect(body.thresholdMinutes).toBe(20);
    const row = body.calls.find((c) => c.caseId === idle)!;
    expect(row).toMatchObject({ adviserName: 'health_adviser of northshire', minutesSinceActivity: 21 });
    expect(body.calls.map((c) => c.caseId)).not.toContain(busy);
    const dash = (await manager.request('GET', '/api/v1/dashboard')).json() as { callsOpenTooLong: number };
    expect(dash.callsOpenTooLong).toBe(body.calls.length);
    expect((await adviser.request('GET', '/api/v1/calls/open-too-long')).statusCode).toBe(403);
    // Ended, it is no longer open too long.
    await adviser.request('POST', `/api/v1/cases/${idle}/end-call`, { reason: 'wrong_number' });
    const after = (await manager.request('GET', '/api/v1/calls/open-too-long')).json() as {
      calls: { caseId: string }[];
    };
    expect(after.calls.map((c) => c.caseId)).not.toContain(idle);
  });

  it('adds a free-text note to the case record; limits refused in plain words', async () => {
    const caseId = await openCall(adviser);
    const tooLong = await adviser.request('POST', `/api/v1/cases/${caseId}/notes`, {
      text: 'x'.repeat(1001),
    });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json()).toMatchObject({
      errors: [{ path: 'body.text', message: 'must be at most 1000 characters (it has 1001)' }],
    });
    expect(tooLong.body).not.toContain('Too big');
    const empty = await adviser.request('POST', `/api/v1/cases/${caseId}/notes`, { text: '   ' });
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toMatchObject({ errors: [{ path: 'body.text', message: 'write the note first' }] });
    const added = await adviser.request('POST', `/api/v1/cases/${caseId}/notes`, {
      text: 'Caller is the neighbour; daughter on her way',
    });
    expect(added.statusCode, added.body).toBe(201);
    expect(
      (await receptionist.request('POST', `/api/v1/cases/${caseId}/notes`, { text: 'hello' })).statusCode,
    ).toBe(403);
    const detail = (await clinician.request('GET', `/api/v1/cases/${caseId}`)).json() as {
      record: { timeline: { what: string; by: string | null }[] };
    };
    expect(detail.record.timeline).toContainEqual(
      expect.objectContaining({
        what: 'Note: Caller is the neighbour; daughter on her way',
        by: 'health_adviser of northshire',
      }),
    );
  });

  it('words a limit of any route plainly (the central error map), never in the library’s words', async () => {
    const res = await adviser.request('POST', '/api/v1/calls', {
      siteId: site,
      caller: {
        name: 'N'.repeat(101),
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Cough',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      errors: [{ path: 'body.caller.name', message: 'must be at most 100 characters (it has 101)' }],
    });
  });

  it('corrects a confirmed disposition only as a recorded re-triage, and only while nobody holds the case', async () => {
    const { caseId, last } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
    expect(await status(caseId)).toBe('queued');
    const noReason = await adviser.request('POST', `/api/v1/cases/${caseId}/disposition/correct`, {
      reason: '',
    });
    expect(noReason.statusCode).toBe(400);
    const corrected = await adviser.request('POST', `/api/v1/cases/${caseId}/disposition/correct`, {
      reason: 'Mis-keyed the answer about breathing',
    });
    expect(corrected.statusCode, corrected.body).toBe(204);
    expect(await status(caseId)).toBe('in_triage');
    const events = await eventsOf(caseId);
    const started = events.filter((e) => e.type === 'case.triage_started').at(-1)!;
    expect(JSON.parse(started.payloadJson)).toEqual({
      caseId,
      retriagedBy: t.providers[0]!.users.health_adviser.userId,
    });
    const fact = events.find((e) => e.type === 'case.disposition_corrected')!;
    expect(fact.seq).toBe(started.seq - 1);
    expect(JSON.parse(fact.payloadJson)).toMatchObject({ reason: 'Mis-keyed the answer about breathing' });
    const timeline = (
      (await adviser.request('GET', `/api/v1/cases/${caseId}`)).json() as {
        record: { timeline: { what: string }[] };
      }
    ).record.timeline.map((l) => l.what);
    expect(timeline).toContain(
      `Confirmed disposition ${last.status === 'disposition' ? last.disposition.dxCode : ''} corrected, back to triage: Mis-keyed the answer about breathing`,
    );
    expect(timeline).toContain('Sent back to triage by health_adviser of northshire');
    // Back with the adviser: on their open calls again.
    expect((await myCalls(adviser)).map((c) => c.caseId)).toContain(caseId);

    const ambulance = (await caseAt(adviser, protocols, site, 'ambulance')).caseId;
    const refused = await adviser.request('POST', `/api/v1/cases/${ambulance}/disposition/correct`, {
      reason: 'Wrong answer',
    });
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('phone them to change or cancel it');
  });
});
