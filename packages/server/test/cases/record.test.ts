import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * A record people can read (C5): after the outcome, the case still shows its consultation, triage
 * path and what happened (GET /api/v1/cases/:id); a patient's previous encounters across the
 * provider's sites, under the record's access rule; consultation drafts that survive a reload or a
 * sign-out; and a case held by a clinician who signs out (or whose session ends) goes back to the
 * queue, recorded as a fact.
 */
interface RecordBody {
  status: string;
  claimedBy: string | null;
  record: {
    triagePath: { question: string; answer: string }[];
    consultations: Record<string, unknown>[];
    timeline: { type: string; by: string | null; what: string }[];
    withheld: string[];
  };
}

describe.each(STORE_KINDS)('the readable record on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let prescriber: Client;
  let manager: Client;
  let otherProvider: Client;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  let siteA: string;
  let siteB: string;

  beforeAll(async () => {
    t = await startTestApp(kind);
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    [siteA, siteB] = t.providers[0]!.sites as [string, string];
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    prescriber = new Client(t.app, t.clock);
    manager = new Client(t.app, t.clock);
    otherProvider = new Client(t.app, t.clock);
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
      [prescriber, 'prescriber@northshire'],
      [manager, 'shift_manager@northshire'],
      [otherProvider, 'clinician@southshire'],
    ] as const)
      expect((await c.signIn(u)).statusCode).toBe(200);
  });
  afterAll(async () => t?.close());

  const register = async (homeSiteId: string, familyName: string, nhsNumber: string) => {
    // Every test user works at site A: a record homed elsewhere is registered with break-glass.
    const elsewhere = homeSiteId !== siteA;
    const r = await (elsewhere ? clinician : adviser).request(
      'POST',
      '/api/v1/patients',
      {
        homeSiteId,
        record: {
          givenName: 'Rita',
          familyName,
          dateOfBirth: '1960-02-03',
          sex: 'female',
          nhsNumber,
          specialNotes: [],
        },
      },
      elsewhere ? { 'x-break-glass-reason': 'Registering a visitor from another area' } : undefined,
    );
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { patientId: string }).patientId;
  };

  it('a closed case still shows its consultation, triage path, call-backs and outcome', async () => {
    const { caseId } = await caseAt(adviser, protocols, siteA, 'speak_to_primary_care');
    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
    await clinician.request('POST', `/api/v1/cases/${caseId}/callback-attempts`, { outcome: 'no_answer' });
    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode).toBe(204);
    const recorded = await clinician.request('POST', `/api/v1/cases/${caseId}/consultation/record`, {
      history: 'Headache for two days, worse on bending',
      examination: 'Alert, no neck stiffness',
      observations: {
        respirationRate: 16,
        spo2: 98,
        airOrOxygen: 'air',
        systolicBp: 128,
        pulse: 72,
        consciousness: 'alert',
        temperature: 37.0,
      },
      assessment: 'Tension-type headache',
      plan: 'Paracetamol, fluids, rest',
      safetyNetting: 'Call back if vision changes or a rash appears',
    });
    expect(recorded.statusCode, recorded.body).toBe(200);
    const outcome = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'advice_and_close',
    });
    expect(outcome.json()).toMatchObject({ status: 'closed' });

    const read = await clinician.request('GET', `/api/v1/cases/${caseId}`);
    expect(read.statusCode, read.body).toBe(200);
    const body = read.json() as RecordBody;
    expect(body.status).toBe('closed');
    expect(body.record.consultations).toEqual([
      expect.objectContaining({
        clinicianName: 'clinician of northshire',
        history: 'Headache for two days, worse on bending',
        examination: 'Alert, no neck stiffness',
        observations: expect.objectContaining({ respirationRate: 16, spo2: 98, temperature: 37 }),
        assessment: 'Tension-type headache',
        plan: 'Paracetamol, fluids, rest',
        safetyNetting: 'Call back if vision changes or a rash appears',
        news2: { total: 0, band: 'low', complete: true, present: 7 },
      }),
    ]);
    expect(body.record.triagePath.length).toBeGreaterThan(3);
    expect(body.record.triagePath[0]).toEqual({ question: expect.any(String), answer: expect.any(String) });
    const whats = body.record.timeline.map((e) => e.what);
    expect(whats[0]).toBe('Call received: Feeling unwell');
    expect(whats).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^Triage on the pathway "/),
        expect.stringMatching(/^Disposition proposed: /),
        'Queued for a clinician (CAS queue)',
        'Claimed by clinician of northshire',
        'Call-back attempt 1: no answer',
        'Consultation started by clinician of northshire',
        'Consultation notes saved (NEWS2 0)',
        'Outcome: advice given and closed',
        'The case was closed',
      ]),
    );
    expect(body.record.withheld).toEqual([]);

    // A health adviser sees that a consultation happened and by whom, not the notes (the clinical
    // notes rule of the patient record).
    const asAdviser = (await adviser.request('GET', `/api/v1/cases/${caseId}`)).json() as RecordBody;
    expect(asAdviser.record.withheld).toEqual(['consultations']);
    expect(asAdviser.record.consultations).toEqual([
      expect.objectContaining({ withheld: true, clinicianName: 'clinician of northshire' }),
    ]);
    expect(JSON.stringify(asAdviser.record)).not.toContain('Tension-type headache');
    // Another provider's clinician gets nothing.
    expect((await otherProvider.request('GET', `/api/v1/cases/${caseId}`)).statusCode).toBe(404);
  });

  it("lists a patient's previous encounters across the provider's sites, under the record's access rule", async () => {
    const patientId = await register(siteA, 'Encounter', '9990000026');
    const first = await caseAt(adviser, protocols, siteA, 'speak_to_primary_care', { patientId });
    t.clock.advance(60_000);
    // The adviser (of site A) takes a call for site B: the same provider, another site.
    const second = await caseAt(adviser, protocols, siteB, 'self_care', { patientId });
    const r = await clinician.request('GET', `/api/v1/patients/${patientId}/encounters`);
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as {
      breakGlass: boolean;
      encounters: {
        caseId: string;
        siteId: string;
        siteName: string;
        status: string;
        disposition: unknown;
      }[];
    };
    expect(body.breakGlass).toBe(false);
    expect(body.encounters.map((e) => e.caseId)).toEqual([second.caseId, first.caseId]);
    expect(body.encounters[0]).toMatchObject({
      siteId: siteB,
      siteName: 'northshire site B',
      status: 'closed',
    });
    expect(body.encounters[1]).toMatchObject({ siteId: siteA, status: 'queued' });

    // The read is audited with the cases shown.
    const audit = await t.node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'audit.access')
      .where('tenant', '=', 'northshire')
      .execute();
    expect(
      audit.some((a) => a.payload.includes('"encounters"') && a.payload.includes(`case:${second.caseId}`)),
    ).toBe(true);

    // Another provider: not found. A role without case reads (the auditor): refused.
    expect((await otherProvider.request('GET', `/api/v1/patients/${patientId}/encounters`)).statusCode).toBe(
      404,
    );
    const auditor = new Client(t.app, t.clock);
    expect((await auditor.signIn('auditor@northshire')).statusCode).toBe(200);
    expect((await auditor.request('GET', `/api/v1/patients/${patientId}/encounters`)).statusCode).toBe(403);
  });

  it('a patient of another site needs break-glass with a reason, as the record does', async () => {
    const patientId = await register(siteB, 'Elsewhere', '9990000034');
    await caseAt(adviser, protocols, siteB, 'self_care', { patientId });
    // Every test user works at site A only.
    const refused = await clinician.request('GET', `/api/v1/patients/${patientId}/encounters`);
    expect(refused.statusCode).toBe(403);
    const noReason = await manager.request('GET', `/api/v1/patients/${patientId}/encounters`);
    expect(noReason.statusCode).toBe(403);
    expect(noReason.body).toContain('X-Break-Glass-Reason');
    const glass = await manager.request('GET', `/api/v1/patients/${patientId}/encounters`, undefined, {
      'x-break-glass-reason': 'Safeguarding concern raised by the crew',
    });
    expect(glass.statusCode, glass.body).toBe(200);
    expect(glass.json()).toMatchObject({ breakGlass: true, encounters: [expect.anything()] });
  });

  it('keeps a consultation draft per clinician until it is saved', async () => {
    const { caseId } = await caseAt(adviser, protocols, siteA, 'speak_to_primary_care');
    const draftUrl = `/api/v1/cases/${caseId}/consultation/draft`;
    // Only the clinician holding the case keeps a draft on it.
    expect((await clinician.request('PUT', draftUrl, { history: 'x' })).statusCode).toBe(409);
    await clinician.request('POST', `/api/v1/cases/${caseId}/claim`);
    await clinician.request('POST', `/api/v1/cases/${caseId}/consultation`);
    const put = await clinician.request('PUT', draftUrl, {
      history: 'Typed, not saved  ',
      observations: { pulse: '88', spo2Scale: '1' },
    });
    expect(put.statusCode, put.body).toBe(200);
    expect((await clinician.request('GET', draftUrl)).json()).toMatchObject({
      draft: { history: 'Typed, not saved  ', observations: { pulse: '88', spo2Scale: '1' } },
      updatedAt: expect.any(String),
    });
    // Nobody else reads it, and it is not part of the case's record.
    expect((await prescriber.request('GET', draftUrl)).json()).toEqual({ draft: null, updatedAt: null });
    const read = (await prescriber.request('GET', `/api/v1/cases/${caseId}`)).json() as RecordBody;
    expect(JSON.stringify(read)).not.toContain('Typed, not saved');
    // Bad input names the field.
    const bad = await clinician.request('PUT', draftUrl, { history: 'y'.repeat(10_001) });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('body.history');
    // Saving the consultation puts it in the record and throws the draft away.
    await clinician.request('POST', `/api/v1/cases/${caseId}/consultation/record`, {
      history: 'Typed, saved',
    });
    expect((await clinician.request('GET', draftUrl)).json()).toEqual({ draft: null, updatedAt: null });
  });

  it('a case held by a clinician who signs out goes back to the queue, recorded with why', async () => {
    const { caseId } = await caseAt(adviser, protocols, siteA, 'speak_to_primary_care');
    const leaving = new Client(t.app, t.clock);
    leaving.totpSecret = clinician.totpSecret;
    expect((await leaving.signIn('clinician@northshire')).statusCode).toBe(200);
    await leaving.request('POST', `/api/v1/cases/${caseId}/claim`);
    await leaving.request('POST', `/api/v1/cases/${caseId}/consultation`);
    await leaving.request('PUT', `/api/v1/cases/${caseId}/consultation/draft`, { history: 'half typed' });
    // Signed out on one PC while still signed in on another: still theirs.
    expect((await leaving.request('POST', '/api/v1/auth/sign-out')).statusCode).toBe(204);
    expect(((await manager.request('GET', `/api/v1/cases/${caseId}`)).json() as RecordBody).status).toBe(
      'in_consultation',
    );
    // Signed out everywhere: released at once, with the fact saying why.
    expect((await clinician.request('POST', '/api/v1/auth/sign-out')).statusCode).toBe(204);
    const after = (await manager.request('GET', `/api/v1/cases/${caseId}`)).json() as RecordBody;
    expect(after.status).toBe('queued');
    expect(after.claimedBy).toBeNull();
    expect(after.record.timeline.map((e) => e.what)).toContain(
      'Released back to the queue because clinician of northshire signed out while holding it; they had typed notes that were not saved',
    );
    // Another clinician can take it.
    expect((await prescriber.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
    // The clinician signs in again: the draft is still theirs to read.
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
    expect(
      (await clinician.request('GET', `/api/v1/cases/${caseId}/consultation/draft`)).json(),
    ).toMatchObject({
      draft: { history: 'half typed' },
    });
  });

  it('a case held by a clinician whose session ended is released by the sweep', async () => {
    const { caseId } = await caseAt(adviser, protocols, siteA, 'speak_to_primary_care');
    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
    // Nothing expired yet: nothing released.
    expect(await t.heldCases.sweep()).toEqual([]);
    // 31 minutes without a request from the clinician: their session has ended (idle timeout).
    t.clock.advance(31 * 60_000);
    expect(await t.heldCases.sweep()).toContain(caseId);
    const reader = new Client(t.app, t.clock);
    reader.totpSecret = manager.totpSecret;
    expect((await reader.signIn('shift_manager@northshire')).statusCode).toBe(200);
    const after = (await reader.request('GET', `/api/v1/cases/${caseId}`)).json() as RecordBody;
    expect(after.status).toBe('queued');
    expect(after.record.timeline.at(-1)).toMatchObject({
      type: 'case.released_at_session_end',
      what: 'Released back to the queue because clinician of northshire was signed out (session ended) while holding it',
    });
  });
});
