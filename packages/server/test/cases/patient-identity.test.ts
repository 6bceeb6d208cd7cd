import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { nhsNumberFor } from '../support/route-samples.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * A case's patient is never replaced silently (hazard H20): the same patient again stores nothing;
 * another patient is refused unless it is a correction naming the patient the case has now and
 * why, compared inside the commit; a patient outside the age range of the pathway already started
 * is refused; a closed case keeps its patient.
 */
describe.each(STORE_KINDS)('who a case is for, on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let site: string;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  let registered = 0;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    site = t.providers[0]!.sites[0]!;
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    // Another person at another desk, for the race below (clinicians identify patients too).
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
  });
  afterAll(async () => t?.close());

  async function patient(
    givenName: string,
    dateOfBirth = '1980-02-02',
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    registered += 1;
    const r = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: {
        nhsNumber: nhsNumberFor(900 + registered),
        givenName,
        familyName: 'Identity',
        dateOfBirth,
        sex: 'unknown',
        specialNotes: [],
        ...extra,
      },
    });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { patientId: string }).patientId;
  }

  async function openCall(): Promise<string> {
    const r = await adviser.request('POST', '/api/v1/calls', {
      siteId: site,
      caller: {
        name: 'Sam Caller',
        relationship: 'parent',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Fever',
    });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { caseId: string }).caseId;
  }

  async function identifications(caseId: string) {
    const rows = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['v', 'payload'])
      .where('type', '=', 'case.patient_identified')
      .orderBy('pos')
      .execute();
    return rows
      .map((r) => ({ v: Number(r.v), payload: JSON.parse(r.payload) as Record<string, unknown> }))
      .filter((r) => r.payload.caseId === caseId);
  }

  async function patientOf(caseId: string): Promise<string | null> {
    const r = await adviser.request('GET', `/api/v1/cases/${caseId}`);
    expect(r.statusCode, r.body).toBe(200);
    return (r.json() as { patientId: string | null }).patientId;
  }

  it('the same patient again stores nothing; another is refused unless it corrects, naming whom and why', async () => {
    const ada = await patient('Ada');
    const bea = await patient('Bea');
    const caseId = await openCall();
    const url = `/api/v1/cases/${caseId}/patient`;

    expect((await adviser.request('POST', url, { patientId: ada })).statusCode).toBe(204);
    expect((await adviser.request('POST', url, { patientId: ada })).statusCode).toBe(204);
    expect(await identifications(caseId)).toHaveLength(1);

    const silent = await adviser.request('POST', url, { patientId: bea });
    expect(silent.statusCode).toBe(409);
    expect(silent.json()).toMatchObject({
      detail: `this case already has a patient (patient ${ada}): to correct it, send replacing (that patient's id) and a reason`,
    });

    const noReason = await adviser.request('POST', url, { patientId: bea, replacing: ada });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json()).toMatchObject({
      errors: [
        {
          path: 'body.reason',
          message: 'is required to correct the patient: say why (at least 10 characters)',
        },
      ],
    });

    // Naming the patient the case already has identifies nothing new.
    const same = await adviser.request('POST', url, {
      patientId: ada,
      replacing: bea,
      reason: 'Selected the wrong twin',
    });
    expect(same.statusCode).toBe(204);
    expect(await patientOf(caseId)).toBe(ada);
    expect(await identifications(caseId)).toHaveLength(1);

    const corrected = await adviser.request('POST', url, {
      patientId: bea,
      replacing: ada,
      reason: 'Selected the wrong twin',
    });
    expect(corrected.statusCode, corrected.body).toBe(204);
    expect(await patientOf(caseId)).toBe(bea);
    expect(await identifications(caseId)).toEqual([
      { v: 2, payload: { caseId, patientId: ada } },
      {
        v: 2,
        payload: { caseId, patientId: bea, replaces: { patientId: ada, reason: 'Selected the wrong twin' } },
      },
    ]);

    // A correction written against who the case had before is refused: it changed meanwhile.
    const late = await adviser.request('POST', url, {
      patientId: ada,
      replacing: ada,
      reason: 'Back to the first one',
    });
    expect(late.statusCode).toBe(409);
    expect(late.json()).toMatchObject({
      detail:
        "the case's patient is no longer the one you are replacing: reload the case and check who it is for",
    });
    expect(await patientOf(caseId)).toBe(bea);
  });

  it('a case without a patient takes no correction, and an unknown patient is named as the field', async () => {
    const caseId = await openCall();
    const ada = await patient('Ada');
    const r = await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, {
      patientId: ada,
      replacing: ada,
      reason: 'Not a correction at all',
    });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({
      errors: [{ path: 'body.replacing', message: 'must be left out: the case has no patient yet' }],
    });
    const unknown = await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, {
      patientId: '00000000-0000-4000-8000-000000000000',
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({
      errors: [{ path: 'body.patientId', message: 'is not a patient of your provider' }],
    });
    expect(await identifications(caseId)).toHaveLength(0);
  });

  it('an adviser and a clinician identifying different patients at once: one wins, the other is told', async () => {
    const ada = await patient('Ada');
    const bea = await patient('Bea');
    for (let trial = 0; trial < 5; trial++) {
      const caseId = await openCall();
      const url = `/api/v1/cases/${caseId}/patient`;
      const [a, b] = await Promise.all([
        adviser.request('POST', url, { patientId: ada }),
        clinician.request('POST', url, { patientId: bea }),
      ]);
      expect([a.statusCode, b.statusCode].sort()).toEqual([204, 409]);
      const winner = a.statusCode === 204 ? ada : bea;
      expect(await patientOf(caseId)).toBe(winner);
      expect(await identifications(caseId)).toEqual([{ v: 2, payload: { caseId, patientId: winner } }]);
    }
  });

  it('a 76-year-old is not made the patient of a case triaged on the under-5 pathway; a child is', async () => {
    const elder = await patient('Elder', '1950-01-01');
    const child = await patient('Child', `${new Date(t.clock.nowMs()).getUTCFullYear() - 3}-01-01`);
    const caseId = await openCall();
    const started = await adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
      pathwayId: 'fever-child-under-5',
    });
    expect(started.statusCode, started.body).toBe(200);
    const refused = await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, { patientId: elder });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({
      errors: [
        {
          path: 'body.patientId',
          message:
            "cannot be this case's patient: triage has started on a pathway not for them (this pathway is for patients aged under 5)",
        },
      ],
    });
    expect(await patientOf(caseId)).toBeNull();
    expect(
      (await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, { patientId: child })).statusCode,
    ).toBe(204);
    // Nor by correction.
    const corrected = await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, {
      patientId: elder,
      replacing: child,
      reason: 'It was the grandparent',
    });
    expect(corrected.statusCode).toBe(400);
    expect(await patientOf(caseId)).toBe(child);
  });

  it('a patient whose record says they have died is identified only when the adviser confirms it', async () => {
    const died = await patient('Dora', '1930-03-03', { deceasedAt: '2026-10-01' });
    const caseId = await openCall();
    const url = `/api/v1/cases/${caseId}/patient`;
    const unconfirmed = await adviser.request('POST', url, { patientId: died });
    expect(unconfirmed.statusCode).toBe(400);
    expect(unconfirmed.json()).toMatchObject({
      errors: [
        {
          path: 'body.deceasedConfirmed',
          message:
            'must be true to identify this patient: their record says they have died; confirm with the caller that the call is about them',
        },
      ],
    });
    expect(await patientOf(caseId)).toBeNull();
    expect(
      (await adviser.request('POST', url, { patientId: died, deceasedConfirmed: true })).statusCode,
    ).toBe(204);
    expect(await patientOf(caseId)).toBe(died);
  });

  it('a call opened for a patient whose record says they have died needs the same confirmation', async () => {
    const died = await patient('Edna', '1931-04-04', { deceasedAt: '2026-09-01' });
    const body = {
      siteId: site,
      caller: {
        name: 'A relative',
        relationship: 'relative',
        callbackNumber: '0113 496 0124',
        callbackNumberReadBack: true,
      },
      patientId: died,
      location: 'At home',
      presentingComplaint: 'Breathless',
    };
    const before = await t.node.store.db
      .selectFrom('ledger_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('type', '=', 'case.opened')
      .executeTakeFirstOrThrow();
    const unconfirmed = await adviser.request('POST', '/api/v1/calls', body);
    expect(unconfirmed.statusCode).toBe(400);
    expect((unconfirmed.json() as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual([
      'body.deceasedConfirmed',
    ]);
    const after = await t.node.store.db
      .selectFrom('ledger_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('type', '=', 'case.opened')
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
    const confirmed = await adviser.request('POST', '/api/v1/calls', { ...body, deceasedConfirmed: true });
    expect(confirmed.statusCode, confirmed.body).toBe(201);
    expect(await patientOf((confirmed.json() as { caseId: string }).caseId)).toBe(died);
  });

  it('a closed case keeps its patient', async () => {
    const ada = await patient('Ada');
    const bea = await patient('Bea');
    const { caseId } = await caseAt(adviser, protocols, site, 'self_care', { patientId: ada });
    expect(
      ((await adviser.request('GET', `/api/v1/cases/${caseId}`)).json() as { status: string }).status,
    ).toBe('closed');
    const r = await adviser.request('POST', `/api/v1/cases/${caseId}/patient`, {
      patientId: bea,
      replacing: ada,
      reason: 'Noticed after the call',
    });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({
      detail:
        'the case is closed: its patient can no longer be set or changed (the Post Event Message was decided at the close)',
    });
    expect(await patientOf(caseId)).toBe(ada);
  });
});
