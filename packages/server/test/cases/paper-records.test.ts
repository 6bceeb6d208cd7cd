import { caseReference, hasPermission } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

interface Timeline {
  record: { timeline: { at: string; type: string; by: string | null; what: string; enteredAt?: string }[] };
}

/**
 * Back-entry after an outage (issue 13 §3): paper is matched to its case by the short reference the
 * downtime pack prints, and what was done on it is entered with the time written on the paper. The
 * record shows it at that time, marked as from paper, with who typed it in. Both stores.
 */
describe.each(STORE_KINDS)('paper records entered back on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let otherProvider: Client;
  let site: string;
  const tenant = 'northshire';
  const HOUR = 3_600_000;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: [tenant, 'southvale'] });
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    otherProvider = new Client(t.app, t.clock);
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
      [otherProvider, 'health_adviser@southvale'],
    ] as const) {
      const r = await c.signIn(u);
      if (r.statusCode !== 200) throw new Error(r.body);
    }
  });
  afterAll(async () => t?.close());

  async function openCall(): Promise<string> {
    const res = await adviser.request('POST', '/api/v1/calls', {
      siteId: site,
      caller: {
        name: 'Sam Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Earache',
    });
    expect(res.statusCode, res.body).toBe(201);
    return (res.json() as { caseId: string }).caseId;
  }

  const iso = (ms: number) => new Date(ms).toISOString();
  /** Time passes (the outage): sessions end meanwhile, so everyone signs in again. */
  async function later(ms: number): Promise<void> {
    t.clock.advance(ms);
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
    ] as const) {
      const r = await c.signIn(u);
      if (r.statusCode !== 200) throw new Error(r.body);
    }
  }
  const eventCount = async () => (await t.node.ledger.readChain(tenant, t.node.identity.node, 1)).length;

  it('finds the case by the reference on the paper, however it was written, and only in your provider', async () => {
    const caseId = await openCall();
    const ref = caseReference(caseId);
    for (const written of [ref, ref.toLowerCase(), ref.replace('-', ''), ` ${ref.replace('-', ' ')} `]) {
      const res = await adviser.request('GET', `/api/v1/cases/by-reference/${encodeURIComponent(written)}`);
      expect(res.statusCode, res.body).toBe(200);
      expect((res.json() as { cases: { caseId: string; status: string }[] }).cases).toEqual([
        expect.objectContaining({ caseId, status: expect.any(String) }),
      ]);
    }
    const whole = await adviser.request('GET', `/api/v1/cases/by-reference/${caseId}`);
    expect((whole.json() as { cases: { caseId: string }[] }).cases.map((c) => c.caseId)).toEqual([caseId]);
    // Another provider's case is not found, as an unknown reference is not.
    const elsewhere = await otherProvider.request('GET', `/api/v1/cases/by-reference/${ref}`);
    expect(elsewhere.statusCode).toBe(404);
    expect(elsewhere.body).not.toContain(caseId);
    const unknown = await adviser.request('GET', '/api/v1/cases/by-reference/0000-0000');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toMatch(/case with that reference at your sites not found/);
    for (const bad of ['3F2A-9C1', 'ZZZZ-9C1B', `${ref}x`]) {
      const res = await adviser.request('GET', `/api/v1/cases/by-reference/${bad}`);
      expect(res.statusCode, bad).toBe(400);
      expect(res.body).toMatch(/reference.*must be a case reference such as 3F2A-9C1B/);
    }
  });

  it('shows a paper record at the time written on it, marked as from paper, with who typed it in', async () => {
    const caseId = await openCall();
    const opened = t.clock.nowMs();
    await later(HOUR);
    const note = await adviser.request('POST', `/api/v1/cases/${caseId}/notes`, {
      text: 'Noted before the outage',
    });
    expect(note.statusCode, note.body).toBe(201);
    // The outage: the call-back was made on paper half an hour after the call came in, typed in later.
    await later(2 * HOUR);
    const res = await adviser.request('POST', `/api/v1/cases/${caseId}/paper-records`, {
      kind: 'callback',
      happenedAt: iso(opened + HOUR / 2),
      writtenBy: 'Sam Reid, adviser',
      text: 'Rang back: no answer, voicemail left',
    });
    expect(res.statusCode, res.body).toBe(201);
    const record = (await adviser.request('GET', `/api/v1/cases/${caseId}`)).json() as Timeline;
    const timeline = record.record.timeline;
    const paper = timeline.find((e) => e.type === 'case.paper_record_entered')!;
    expect(paper).toEqual({
      at: iso(opened + HOUR / 2),
      type: 'case.paper_record_entered',
      by: expect.stringMatching(/./),
      what: 'On paper, call-back written by Sam Reid, adviser: Rang back: no answer, voicemail left',
      enteredAt: iso(t.clock.nowMs()),
    });
    // In the order things happened: before the note typed an hour after the call, not after it.
    const types = timeline.map((e) => e.type);
    expect(types.indexOf('case.paper_record_entered')).toBeLessThan(types.indexOf('case.note_added'));
    expect(timeline.map((e) => e.at)).toEqual([...timeline.map((e) => e.at)].sort());
  });

  it('refuses a time that cannot be the paper’s, naming the field, and stores nothing', async () => {
    const caseId = await openCall();
    const received = t.clock.nowMs();
    await later(HOUR);
    const before = await eventCount();
    const body = { kind: 'call', writtenBy: 'Sam Reid', text: 'Caller rang again, worse' };
    for (const [happenedAt, words] of [
      [iso(t.clock.nowMs() + HOUR), /happenedAt.*is in the future/],
      [iso(received - 2 * HOUR), /happenedAt.*is before this case's call came in.*check the case reference/],
      ['2026-12-06T02:14:00', /happenedAt.*must be a date and time with its zone/],
      ['yesterday', /happenedAt.*must be a date and time with its zone/],
    ] as const) {
      const res = await adviser.request('POST', `/api/v1/cases/${caseId}/paper-records`, {
        ...body,
        happenedAt,
      });
      expect(res.statusCode, happenedAt).toBe(400);
      expect(res.body).toMatch(words);
    }
    for (const [change, words] of [
      [{ kind: 'memo' }, /kind.*must be one of call, triage, clinical, callback, outcome, other/],
      [{ writtenBy: '  ' }, /writtenBy.*say who wrote it on the paper/],
      [{ text: '' }, /text.*type what the paper says/],
    ] as const) {
      const res = await adviser.request('POST', `/api/v1/cases/${caseId}/paper-records`, {
        ...body,
        happenedAt: iso(received + 60_000),
        ...change,
      });
      expect(res.statusCode).toBe(400);
      expect(res.body).toMatch(words);
    }
    expect(await eventCount()).toBe(before);
  });

  it('clinical notes from paper are entered by a clinician and withheld from roles that may not read them', async () => {
    const caseId = await openCall();
    const received = t.clock.nowMs();
    await later(HOUR);
    const body = {
      kind: 'clinical',
      happenedAt: iso(received + 20 * 60_000),
      writtenBy: 'Dr Okafor',
      text: 'Otitis media; amoxicillin advised; safety-netting given',
    };
    const refused = await adviser.request('POST', `/api/v1/cases/${caseId}/paper-records`, body);
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toMatch(/clinical notes from paper are entered by a clinician/);
    const entered = await clinician.request('POST', `/api/v1/cases/${caseId}/paper-records`, body);
    expect(entered.statusCode, entered.body).toBe(201);
    const asClinician = (await clinician.request('GET', `/api/v1/cases/${caseId}`)).json() as Timeline;
    expect(asClinician.record.timeline.map((e) => e.what)).toContain(
      'On paper, clinical notes written by Dr Okafor: Otitis media; amoxicillin advised; safety-netting given',
    );
    expect(hasPermission(['health_adviser'], 'patients.clinical_notes.read')).toBe(false);
    const asAdviser = (await adviser.request('GET', `/api/v1/cases/${caseId}`)).json() as Timeline;
    const line = asAdviser.record.timeline.find((e) => e.type === 'case.paper_record_entered')!.what;
    expect(line).toBe('On paper, clinical notes written by Dr Okafor (withheld for this role)');
  });
});
