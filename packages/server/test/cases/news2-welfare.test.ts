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
 * NEWS2 and the welfare check through HTTP, on both stores (issue 11):
 * - a score from one observation is stored and shown as partial (1 of 7, no total), and the queue
 *   ranks it as unknown, ahead of a complete low score, never as low;
 * - NEWS2 of 5 or more, or a single red 3, with a non-urgent outcome is refused without the
 *   clinician's reason (400 naming body.news2Reason), and the reason is stored with the outcome;
 * - NEWS2 is not computed for a patient under 16 or pregnant: the answer says which score is needed;
 * - a welfare check is recorded (who, when, outcome) and the escalation clears when the patient is
 *   reached (a welfare check, an answered call-back) and when the case closes;
 * - an old v1 consultation event with a partial score still folds, read as partial.
 */

/** All seven parameters, each in its zero band: NEWS2 0, complete. */
const ALL_NORMAL = {
  respirationRate: 16,
  spo2: 97,
  airOrOxygen: 'air',
  systolicBp: 120,
  pulse: 70,
  consciousness: 'alert',
  temperature: 37.0,
} as const;

interface News2Json {
  total: number | null;
  band: string | null;
  complete: boolean;
  present: number;
  of: number;
}
interface CaseJson {
  caseId: string;
  status: string;
  escalated: boolean;
  news2: News2Json | null;
  news2NotApplicable: { reason: string; message: string } | null;
  welfareChecks: {
    recordedBy: string;
    recordedAt: string;
    checkedBy: string;
    checkedAt: string;
    outcome: string;
    details?: string;
  }[];
}

describe.each(STORE_KINDS)('NEWS2 and welfare checks on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  let site: string;
  let clinicianId: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    clinicianId = t.providers[0]!.users.clinician.userId;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
    ] as const) {
      const r = await c.signIn(u);
      if (r.statusCode !== 200) throw new Error(`${u}: ${r.body}`);
    }
  });
  afterAll(async () => t?.close());

  /** A queued call-back case (received at `receivedAt` when given), optionally for a patient. */
  async function queued(options: { receivedAt?: string; patientId?: string } = {}): Promise<string> {
    const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care', {
      ...(options.receivedAt ? { receivedAt: options.receivedAt } : {}),
    });
    if (options.patientId) {
      const r = await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, {
        patientId: options.patientId,
      });
      expect(r.statusCode, r.body).toBe(204);
    }
    return caseId;
  }

  async function ok(method: string, url: string, body?: unknown) {
    const r = await clinician.request(method as 'POST', url, body);
    expect(r.statusCode, r.body).toBeLessThan(300);
    return r;
  }

  /** Claimed and in consultation by the clinician. */
  async function consulting(caseId: string): Promise<void> {
    await ok('POST', `/api/v1/cases/${caseId}/claim`);
    await ok('POST', `/api/v1/cases/${caseId}/consultation`);
  }

  async function record(caseId: string, body: Record<string, unknown>) {
    const r = await clinician.request('POST', `/api/v1/cases/${caseId}/consultation/record`, body);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as {
      news2: (News2Json & { response: string; remoteAdvice: string }) | null;
      news2NotApplicable: { reason: string; message: string } | null;
    };
  }

  async function detail(caseId: string): Promise<CaseJson> {
    const r = await clinician.request('GET', `/api/v1/cases/${caseId}`);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as CaseJson;
  }

  async function queueCases(): Promise<(CaseJson & { caseId: string })[]> {
    const r = await clinician.request('GET', '/api/v1/queue');
    expect(r.statusCode, r.body).toBe(200);
    return (r.json() as { cases: (CaseJson & { caseId: string })[] }).cases;
  }

  async function registerPatient(dateOfBirth: string, familyName: string): Promise<string> {
    const r = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: { givenName: 'Test', familyName, dateOfBirth, sex: 'female', specialNotes: [] },
    });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { patientId: string }).patientId;
  }

  it('a one-observation score is stored as partial (1 of 7, no total) and the queue ranks it as unknown, not low', async () => {
    // Three calls at the same moment with the same disposition: equal deadlines, so the clinical
    // priority alone orders them.
    const receivedAt = new Date(t.clock.nowMs() - 60_000).toISOString();
    const complete = await queued({ receivedAt });
    const partial = await queued({ receivedAt });
    await consulting(complete);
    await consulting(partial);

    const full = await record(complete, { observations: ALL_NORMAL });
    expect(full.news2).toMatchObject({ total: 0, band: 'low', complete: true, present: 7, of: 7 });
    const one = await record(partial, { observations: { temperature: 37.0 } });
    expect(one.news2).toMatchObject({ total: null, band: null, complete: false, present: 1, of: 7 });
    expect(one.news2!.response).toBe(
      'Score incomplete: 1 of 7 parameters recorded, so the risk is not known',
    );

    // Stored as partial: the event carries no total.
    const stored = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['v', 'payload'])
      .where('subject', '=', `case:${partial}`)
      .where('type', '=', 'case.consultation_recorded')
      .executeTakeFirstOrThrow();
    expect(Number(stored.v)).toBe(2);
    expect((JSON.parse(stored.payload) as { news2: unknown }).news2).toEqual({
      total: null,
      band: null,
      complete: false,
      present: 1,
    });

    // Shown as partial on the case and in the queue, and ranked ahead of the complete low score.
    expect((await detail(partial)).news2).toEqual({
      total: null,
      band: null,
      complete: false,
      present: 1,
      of: 7,
    });
    const cases = await queueCases();
    const rowOf = (id: string) => cases.find((c) => c.caseId === id)!;
    expect(rowOf(partial).news2).toEqual({ total: null, band: null, complete: false, present: 1, of: 7 });
    expect(rowOf(complete).news2).toEqual({ total: 0, band: 'low', complete: true, present: 7, of: 7 });
    const order = cases.map((c) => c.caseId);
    expect(order.indexOf(partial)).toBeLessThan(order.indexOf(complete));
  });

  it('an old v1 consultation event with a partial score still folds, read as partial (not "NEWS2 0")', async () => {
    const caseId = await queued();
    await consulting(caseId);
    // As the code before v2 stored it: the sum of what was measured as the total, banded low.
    await t.node.ledger.append([
      {
        tenant: t.providers[0]!.tenant,
        type: 'case.consultation_recorded',
        v: 1,
        actor: `user:${clinicianId}`,
        payload: {
          caseId,
          clinicianId,
          observations: { temperature: 37.0, pulse: 70 },
          news2: { total: 0, band: 'low', complete: false },
        },
      },
    ]);
    expect((await detail(caseId)).news2).toEqual({
      total: null,
      band: null,
      complete: false,
      present: 2,
      of: 7,
    });
  });

  it.each([
    [
      'NEWS2 5 (medium)',
      { ...ALL_NORMAL, respirationRate: 21, pulse: 120, temperature: 38.5 },
      'NEWS2 5 (medium)',
    ],
    ['a single red 3', { ...ALL_NORMAL, consciousness: 'new_confusion' }, 'NEWS2 3 (low-medium)'],
  ])(
    '%s with a non-urgent outcome is refused without a reason (400 naming body.news2Reason); with one it is stored',
    async (_name, observations, words) => {
      const caseId = await queued();
      await consulting(caseId);
      await record(caseId, { observations });

      for (const outcome of ['advice_and_close', 'book_appointment']) {
        const refused = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, { outcome });
        expect(refused.statusCode, refused.body).toBe(400);
        const problem = refused.json() as { errors: { path: string; message: string }[] };
        expect(problem.errors).toEqual([
          {
            path: 'body.news2Reason',
            message: `is required: ${words} asks for an urgent response, so say why this outcome is right for the patient`,
          },
        ]);
      }
      // Nothing was stored: still in consultation, no outcome.
      expect((await detail(caseId)).status).toBe('in_consultation');

      const reason = 'Known COPD: these are her usual observations, agreed plan to manage at home';
      const accepted = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, {
        outcome: 'advice_and_close',
        news2Reason: reason,
      });
      expect(accepted.statusCode, accepted.body).toBe(200);
      expect((accepted.json() as CaseJson).status).toBe('closed');
      const confirmed = await t.node.store.db
        .selectFrom('ledger_events')
        .select(['payload'])
        .where('subject', '=', `case:${caseId}`)
        .where('type', '=', 'case.news2_outcome_confirmed')
        .execute();
      expect(confirmed.map((r) => JSON.parse(r.payload) as unknown)).toEqual([
        expect.objectContaining({ clinicianId, outcome: 'advice_and_close', reason }),
      ]);
    },
  );

  it('an urgent outcome after a raised NEWS2 needs no reason, and a low complete score none either', async () => {
    const raised = await queued();
    await consulting(raised);
    await record(raised, {
      observations: { ...ALL_NORMAL, systolicBp: 90, airOrOxygen: 'oxygen', pulse: 120 },
    });
    const upgrade = await clinician.request('POST', `/api/v1/cases/${raised}/outcome`, {
      outcome: 'upgrade_to_ambulance',
      ambulanceCategory: 2,
    });
    expect(upgrade.statusCode, upgrade.body).toBe(200);

    const low = await queued();
    await consulting(low);
    await record(low, { observations: ALL_NORMAL });
    const closed = await clinician.request('POST', `/api/v1/cases/${low}/outcome`, {
      outcome: 'advice_and_close',
    });
    expect(closed.statusCode, closed.body).toBe(200);
  });

  it('NEWS2 is not computed for an identified patient under 16: the answer says a paediatric score is needed', async () => {
    const child = await registerPatient('2016-04-01', 'Childnews');
    const caseId = await queued({ patientId: child });
    await consulting(caseId);
    const r = await record(caseId, { observations: ALL_NORMAL });
    expect(r.news2).toBeNull();
    expect(r.news2NotApplicable).toEqual({
      reason: 'under_16',
      message: expect.stringMatching(
        /^NEWS2 is not used for patients under 16: a paediatric early warning score/,
      ),
    });
    const shown = await detail(caseId);
    expect(shown.news2).toBeNull();
    expect(shown.news2NotApplicable).toMatchObject({ reason: 'under_16' });
    const row = (await queueCases()).find((c) => c.caseId === caseId)!;
    expect(row.news2).toBeNull();
    expect(row.news2NotApplicable).toMatchObject({ reason: 'under_16' });
  });

  it('an unidentified patient under 16 by the age given at the call: not computed either', async () => {
    const caseId = await queued();
    await consulting(caseId);
    const r = await record(caseId, { observations: ALL_NORMAL, statedAgeYears: 9 });
    expect(r).toMatchObject({ news2: null, news2NotApplicable: { reason: 'under_16' } });
  });

  it('NEWS2 is not computed in pregnancy: the answer says an obstetric score is needed', async () => {
    const adult = await registerPatient('1994-02-02', 'Pregnews');
    const caseId = await queued({ patientId: adult });
    await consulting(caseId);
    const r = await record(caseId, { observations: ALL_NORMAL, pregnancy: 'yes' });
    expect(r.news2).toBeNull();
    expect(r.news2NotApplicable).toEqual({
      reason: 'pregnant',
      message: expect.stringMatching(
        /^NEWS2 is not used in pregnancy or up to 6 weeks after birth: an obstetric/,
      ),
    });
    expect((await detail(caseId)).news2NotApplicable).toMatchObject({ reason: 'pregnant' });
    // Not pregnant: scored as usual.
    const again = await record(caseId, { observations: ALL_NORMAL, pregnancy: 'no' });
    expect(again.news2).toMatchObject({ total: 0, complete: true });
    expect((await detail(caseId)).news2NotApplicable).toBeNull();
  });

  /** Claimed by the clinician with two failed call-backs: escalated for a welfare check. */
  async function escalated(): Promise<string> {
    const caseId = await queued();
    await ok('POST', `/api/v1/cases/${caseId}/claim`);
    await ok('POST', `/api/v1/cases/${caseId}/callback-attempts`, { outcome: 'no_answer' });
    const second = await ok('POST', `/api/v1/cases/${caseId}/callback-attempts`, { outcome: 'voicemail' });
    expect(second.json()).toMatchObject({ escalated: true });
    return caseId;
  }

  it('a welfare check is recorded (who, when, outcome); reaching the patient clears the escalation', async () => {
    const caseId = await escalated();
    const notReached = await clinician.request('POST', `/api/v1/cases/${caseId}/welfare-checks`, {
      checkedBy: 'police',
      checkedAt: '2026-11-29T03:20:00Z',
      outcome: 'not_reached',
      details: 'No answer at the door',
    });
    expect(notReached.statusCode, notReached.body).toBe(200);
    expect(notReached.json()).toMatchObject({ escalated: true });

    const reached = await clinician.request('POST', `/api/v1/cases/${caseId}/welfare-checks`, {
      checkedBy: 'next_of_kin',
      outcome: 'patient_reached',
    });
    expect(reached.statusCode, reached.body).toBe(200);
    const shown = reached.json() as CaseJson;
    expect(shown.escalated).toBe(false);
    expect(shown.welfareChecks).toEqual([
      {
        recordedBy: clinicianId,
        recordedAt: expect.any(String),
        checkedBy: 'police',
        checkedAt: '2026-11-29T03:20:00Z',
        outcome: 'not_reached',
        details: 'No answer at the door',
      },
      {
        recordedBy: clinicianId,
        recordedAt: expect.any(String),
        checkedBy: 'next_of_kin',
        // Defaults to the node's clock.
        checkedAt: new Date(t.clock.nowMs()).toISOString(),
        outcome: 'patient_reached',
      },
    ]);
    const row = (await queueCases()).find((c) => c.caseId === caseId)!;
    expect(row.escalated).toBe(false);

    // Nothing left to check: refused, naming why.
    const again = await clinician.request('POST', `/api/v1/cases/${caseId}/welfare-checks`, {
      checkedBy: 'clinician',
      outcome: 'patient_reached',
    });
    expect(again.statusCode).toBe(409);
    expect(again.body).toMatch(/not escalated/);
    // A check in the future is refused, naming the field.
    const later = await clinician.request('POST', `/api/v1/cases/${caseId}/welfare-checks`, {
      checkedBy: 'clinician',
      checkedAt: new Date(t.clock.nowMs() + 3_600_000).toISOString(),
      outcome: 'patient_reached',
    });
    expect(later.statusCode).toBe(400);
    expect(later.json()).toMatchObject({
      errors: [{ path: 'body.checkedAt', message: 'must not be in the future' }],
    });
    // A bad field is named.
    const bad = await clinician.request('POST', `/api/v1/cases/${caseId}/welfare-checks`, {
      checkedBy: 'neighbour',
      outcome: 'patient_reached',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/body\.checkedBy/);
  });

  it('an answered call-back clears the escalation', async () => {
    const caseId = await escalated();
    await ok('POST', `/api/v1/cases/${caseId}/callback-attempts`, { outcome: 'answered' });
    expect((await detail(caseId)).escalated).toBe(false);
    expect((await queueCases()).find((c) => c.caseId === caseId)!.escalated).toBe(false);
  });

  it('closing the case clears the escalation', async () => {
    const caseId = await escalated();
    await ok('POST', `/api/v1/cases/${caseId}/consultation`);
    const closed = await clinician.request('POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'advice_and_close',
    });
    expect(closed.statusCode, closed.body).toBe(200);
    expect(closed.json()).toMatchObject({ status: 'closed', escalated: false });
    const cleared = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['payload'])
      .where('subject', '=', `case:${caseId}`)
      .where('type', '=', 'case.escalation_cleared')
      .execute();
    expect(cleared.map((r) => JSON.parse(r.payload) as unknown)).toEqual([{ caseId, reason: 'case_closed' }]);
  });
});
