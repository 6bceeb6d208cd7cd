import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * End to end through HTTP: call → identify → triage → disposition → queue → claim → two failed
 * call-backs → escalation → consultation with NEWS2 → outcome → closed; the ledger verifies.
 * And two clinicians claiming one case at the same moment: exactly one wins, every time.
 */
const CLAIM_TRIALS = Number(process.env.HOLDFAST_CLAIM_TRIALS ?? 200);

describe.each(STORE_KINDS)('a case from call to close on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let prescriber: Client;
  let auditor: Client;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  let site: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    prescriber = new Client(t.app, t.clock);
    auditor = new Client(t.app, t.clock);
    for (const [c, u] of [
      [auditor, 'auditor@northshire'],
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
      [prescriber, 'prescriber@northshire'],
    ] as const) {
      const r = await c.signIn(u);
      if (r.statusCode !== 200) throw new Error(`${u}: ${r.body}`);
    }
  });
  afterAll(async () => t?.close());

  it('runs the whole journey and the ledger verifies afterwards', async () => {
    const patient = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: {
        givenName: 'Ada',
        familyName: 'Flowtest',
        dateOfBirth: '1950-05-05',
        sex: 'female',
        nhsNumber: '9990000018',
        specialNotes: [{ kind: 'end_of_life', text: 'On an end-of-life care plan' }],
      },
    });
    const patientId = (patient.json() as { patientId: string }).patientId;
    const { caseId, last } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
    expect(last.status).toBe('disposition');
    if (last.status === 'disposition') expect(last.content.label).toMatch(/not clinically validated/);
    expect((await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, { patientId })).statusCode).toBe(
      204,
    );

    const queue = await clinician.request('GET', '/api/v1/queue');
    expect(queue.statusCode, queue.body).toBe(200);
    const entry = (
      queue.json() as { cases: { caseId: string; timing: string; disposition: { notice?: string } }[] }
    ).cases.find((c) => c.caseId === caseId);
    expect(entry).toMatchObject({
      timing: 'on_time',
      disposition: { notice: expect.stringMatching(/not clinically validated/) },
    });

    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
    const taken = await prescriber.request('POST', `/api/v1/cases/${caseId}/claim`);
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ heldBy: t.providers[0]!.users.clinician.userId });

    const first = await clinician.request('POST', `/api/v1/cases/${caseId}/callback-attempts`, {
      outcome: 'no_answer',
    });
    expect(first.json()).toMatchObject({ escalated: false });
    const second = await clinician.request('POST', `/api/v1/cases/${caseId}/callback-attempts`, {
      outcome: 'voicemail',
    });
    expect(second.json()).toMatchObject({ escalated: true, prompt: expect.stringMatching(/welfare check/) });

    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode).toBe(204);
    const recorded = await clinician.request('POST', `/api/v1/cases/${caseId}/consultation/record`, {
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
      plan: 'Antibiotics via the on-call prescriber',
      safetyNetting: 'Call 999 if breathing gets worse',
    });
    expect(recorded.statusCode, recorded.body).toBe(200);
    // RR 22 → 2, SpO2 95 → 1, air → 0, BP 105 → 1, pulse 112 → 2, alert → 0, 38.4 → 1: total 7, high.
    expect(recorded.json()).toMatchObject({ news2: { total: 7, band: 'high', complete: true } });
    // A high score with advice and close needs the clinician's reason.
    const outcome = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'advice_and_close',
      news2Reason: 'Known COPD, observations at her usual baseline; care plan says treat at home',
    });
    expect(outcome.statusCode, outcome.body).toBe(200);
    expect(outcome.json()).toMatchObject({
      status: 'closed',
      // Closing ends the welfare-check escalation.
      escalated: false,
      news2: { total: 7, band: 'high', complete: true, present: 7, of: 7 },
    });
    // An outcome on a closed case is refused, and nothing is stored.
    const again = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, { outcome: 'refer' });
    expect(again.statusCode).toBe(409);

    const left = (await clinician.request('GET', '/api/v1/queue')).json() as { cases: { caseId: string }[] };
    expect(left.cases.some((c) => c.caseId === caseId)).toBe(false);
    expect((await verifyStore(t.node.store, ledgerCrypto)).faults).toEqual([]);

    // National reporting for the month: exactly this one call, answered, triaged, assessed by a
    // clinician, with one "speak to primary care" disposition (not bookable until booking exists).
    const report = await auditor.request('GET', '/api/v1/reports/iuc-adc?period=2026-11');
    expect(report.statusCode, report.body).toBe(200);
    const items = Object.fromEntries(
      (report.json() as { items: { item: string; value: number }[] }).items.map((i) => [i.item, i.value]),
    );
    expect(items).toEqual({
      A01: 1,
      A03: 1,
      // A hand-entered call has no telephony timings: it counts in no B item.
      B01: 0,
      B02: 0,
      B03: 0,
      B04: 0,
      B05: 0,
      B06: 0,
      B07: 0,
      C01: 1,
      D01: 1,
      E01: 1,
      E02: 0,
      E04: 0,
      E07: 0,
      E08: 0,
      E10: 0,
      E11: 1,
      E12: 0,
      E16: 0,
    });
  });

  it('acts on each disposition kind: ambulance request, referral, self-care advice and close', async () => {
    const ambulance = await caseAt(adviser, protocols, site, 'ambulance');
    expect((await adviser.request('GET', `/api/v1/cases/${ambulance.caseId}`)).json()).toMatchObject({
      status: 'ambulance_requested',
      disposition: { kind: 'ambulance', ambulanceCategory: expect.any(Number) },
    });
    const ed = await caseAt(adviser, protocols, site, 'ed_utc');
    expect((await adviser.request('GET', `/api/v1/cases/${ed.caseId}`)).json()).toMatchObject({
      status: 'referral_pending',
    });
    const self = await caseAt(adviser, protocols, site, 'self_care');
    expect((await adviser.request('GET', `/api/v1/cases/${self.caseId}`)).json()).toMatchObject({
      status: 'closed',
      disposition: { kind: 'self_care' },
    });
  });

  it('refuses an answer the question does not offer and a step out of order, storing nothing', async () => {
    const opened = await adviser.request('POST', '/api/v1/calls', {
      siteId: site,
      caller: {
        name: 'Pat',
        relationship: 'self',
        callbackNumber: '0113 496 0124',
        callbackNumberReadBack: true,
      },
      location: 'Home',
      presentingComplaint: 'Headache',
    });
    const caseId = (opened.json() as { caseId: string }).caseId;
    const pathwayId = [...protocols.keys()][0]!;
    const started = (
      await adviser.request('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId })
    ).json() as { node: { id: string } };
    const before = (await adviser.request('GET', `/api/v1/cases/${caseId}`)).json() as {
      triage: { answers: unknown[] };
    };
    const unoffered = await adviser.request('POST', `/api/v1/cases/${caseId}/triage/answers`, {
      nodeId: started.node.id,
      value: 'no-such-option',
    });
    expect(unoffered.statusCode).toBe(400);
    expect(unoffered.json()).toMatchObject({ errors: [{ path: 'body.value' }] });
    const outOfOrder = await adviser.request('POST', `/api/v1/cases/${caseId}/triage/answers`, {
      nodeId: 'not-the-current-question',
      value: 'yes',
    });
    expect(outOfOrder.statusCode).toBe(409);
    const after = (await adviser.request('GET', `/api/v1/cases/${caseId}`)).json() as {
      triage: { answers: unknown[] };
    };
    expect(after.triage.answers).toEqual(before.triage.answers);
  });

  it('refuses an oversize note with a clear 4xx naming the field, and stores nothing', async () => {
    const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
    expect((await clinician.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode).toBe(204);
    const before = (await t.node.ledger.readTenant('northshire', null, 1_000_000)).length;
    const r = await clinician.request('POST', `/api/v1/cases/${caseId}/consultation/record`, {
      history: 'x'.repeat(10_001),
    });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({
      errors: [{ path: 'body.history', message: expect.stringMatching(/at most 10000 characters/) }],
    });
    expect((await t.node.ledger.readTenant('northshire', null, 1_000_000)).length).toBe(before);
  });

  it(`two clinicians claiming one case at the same moment: exactly one wins, and each order of arrival wins sometimes (${CLAIM_TRIALS} trials)`, async () => {
    const wins = { clinician: 0, prescriber: 0 };
    const tick = () => new Promise<void>((r) => setImmediate(r));
    for (let trial = 0; trial < CLAIM_TRIALS; trial++) {
      const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
      // Who sends first alternates, and the second follows after 0-2 turns of the event loop, so
      // the race is run in both orders and at different overlaps (a fixed order would only ever
      // show the first sender winning).
      const [first, second] = trial % 2 === 0 ? [clinician, prescriber] : [prescriber, clinician];
      const firstSent = first.request('POST', `/api/v1/cases/${caseId}/claim`);
      for (let i = 0; i < Math.floor(trial / 2) % 3; i++) await tick();
      const secondSent = second.request('POST', `/api/v1/cases/${caseId}/claim`);
      const [x, y] = await Promise.all([firstSent, secondSent]);
      const [a, b] = first === clinician ? [x, y] : [y, x];
      const statuses = [a.statusCode, b.statusCode].sort();
      expect(statuses, `trial ${trial}`).toEqual([200, 409]);
      const loser = a.statusCode === 409 ? a : b;
      const winnerId =
        a.statusCode === 200
          ? t.providers[0]!.users.clinician.userId
          : t.providers[0]!.users.prescriber.userId;
      expect(loser.json()).toMatchObject({ heldBy: winnerId });
      const claims = (await t.node.ledger.readTenant('northshire', null, 1_000_000)).filter(
        (e) => e.type === 'case.claimed' && e.payloadJson.includes(caseId),
      );
      expect(claims).toHaveLength(1);
      wins[a.statusCode === 200 ? 'clinician' : 'prescriber']++;
    }
    // Both arrival orders were run and each clinician won some: a claim that always went to one of
    // them (whoever the server happened to take first) would not show that the check decides.
    if (CLAIM_TRIALS >= 4) {
      expect(wins.clinician, JSON.stringify(wins)).toBeGreaterThan(0);
      expect(wins.prescriber, JSON.stringify(wins)).toBeGreaterThan(0);
    }
  });
});
