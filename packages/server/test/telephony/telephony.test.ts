import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { computeIucAdc, parseReportingPeriod, type IucAdcReport } from '../../src/reports/iuc-adc.ts';
import { telephonyDb } from '../../src/telephony/projection.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, SAMPLE_TELEPHONY_TOKEN, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Call timings from the telephony (C13): call events posted by the provider's telephony with its
 * bearer token, each stored once; a call tied to the case the adviser opens for it (by the call id
 * the adviser's screen carries, or by the caller's line) or kept as a call of its own; and the IUC ADC
 * call-answering items B01–B07 computed exactly from the timestamps, with hand-entered calls as the
 * untimed fallback.
 */

const DAY = '2026-11-20';
const at = (time: string) => `${DAY}T${time}Z`;

/**
 * November 2026 as the telephony saw it (times UTC = GMT). Answered after waiting (s): 20, 60, 90
 * (calls c1–c3) and 5, 10, 15, 30, 45, 61, 100, 200 (a1–a8); abandoned after 3, 45, 120 (x1–x3); one
 * caller hung up during the introductory message (i1). c1's case carries its call id, c2's case is
 * found by the caller's line; the rest have no case.
 */
const ANSWERED: [id: string, offered: string, waitSeconds: number, line: string][] = [
  ['c1', '10:00:00', 20, '0113 496 0001'],
  ['c2', '10:05:00', 60, '0113 496 0002'],
  ['c3', '10:10:00', 90, '0113 496 0003'],
  ['a1', '11:00:00', 5, '0113 496 0011'],
  ['a2', '11:01:00', 10, '0113 496 0012'],
  ['a3', '11:02:00', 15, '0113 496 0013'],
  ['a4', '11:03:00', 30, '0113 496 0014'],
  ['a5', '11:04:00', 45, '0113 496 0015'],
  ['a6', '11:05:00', 61, '0113 496 0016'],
  ['a7', '11:06:00', 100, '0113 496 0017'],
  ['a8', '11:07:00', 200, '0113 496 0018'],
];
const ABANDONED: [id: string, offered: string, waitSeconds: number][] = [
  ['x1', '12:00:00', 3],
  ['x2', '12:10:00', 45],
  ['x3', '12:20:00', 120],
];

/**
 * Expected: waits to answer sorted 5 10 15 20 30 45 60 61 90 100 200 (n = 11): B01 = 7 (≤ 60 s),
 * B03 = 636, B04 = the 11th (⌈0.95 × 11⌉) = 200, B05 = the 10th (⌈0.9 × 11⌉) = 100. Waits to abandon
 * 3 45 120: B06 = 168, B07 = the 3rd (⌈0.95 × 3⌉) = 120. B02 = 3 timed + 1 entered by hand.
 * A01 = 14 offered + 2 cases entered by hand; A03 = 11 + 1.
 */
const NOVEMBER = {
  A01: 16,
  A03: 12,
  B01: 7,
  B02: 4,
  B03: 636,
  B04: 200,
  B05: 100,
  B06: 168,
  B07: 120,
};

const plusSeconds = (iso: string, s: number) => new Date(Date.parse(iso) + s * 1000).toISOString();
const valuesOf = (r: IucAdcReport) => Object.fromEntries(r.items.map((i) => [i.item, i.value]));

describe.each(STORE_KINDS)('telephony call events on %s', (kind) => {
  let t: TestApp;
  let site: string;
  let adviser: Client;

  const post = (body: unknown, token: string | null = SAMPLE_TELEPHONY_TOKEN) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/telephony/call-events',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      payload: JSON.stringify(body),
    });
  const event = async (callId: string, name: string, when: string, callerLine?: string) => {
    const r = await post({ callId, event: name, at: when, ...(callerLine ? { callerLine } : {}) });
    expect(r.statusCode, r.body).toBe(201);
    return r.json() as { caseId: string | null };
  };
  const telephonyEvents = async () =>
    (await t.node.ledger.readTenant('northshire', null, 100_000)).filter(
      (e) => e.type === 'telephony.call_event',
    ).length;
  const openCall = (body: Record<string, unknown>) =>
    adviser.request('POST', '/api/v1/calls', {
      siteId: site,
      answered: true,
      caller: {
        name: 'Rae Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0999',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Unwell',
      ...body,
    });
  const callRow = (callId: string) =>
    t.node.store.withTenant('northshire', (trx) =>
      telephonyDb(trx)
        .selectFrom('telephony_calls')
        .selectAll()
        .where('tenant', '=', 'northshire')
        .where('call_id', '=', callId)
        .executeTakeFirstOrThrow(),
    );

  let c1Case: string;
  let c2Case: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire', 'southshire'] });
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    const signed = await adviser.signIn('health_adviser@northshire');
    expect(signed.statusCode, signed.body).toBe(200);

    for (const [id, offered, wait, line] of ANSWERED) {
      await event(id, 'offered', at(offered), line);
      await event(id, 'answered', plusSeconds(at(offered), wait), line);
    }
    for (const [id, offered, wait] of ABANDONED) {
      await event(id, 'offered', at(offered));
      await event(id, 'abandoned', plusSeconds(at(offered), wait));
    }
    await event('i1', 'abandoned', at('13:00:00'), '0113 496 0031'); // during the introductory message
    // October's call: offered 23:59:30 GMT on 31 October, answered in November.
    await event('oct-1', 'offered', '2026-10-31T23:59:30Z', '0113 496 0041');
    await event('oct-1', 'answered', '2026-11-01T00:00:30Z', '0113 496 0041');

    // c1's case: the adviser's screen carries the call id.
    const one = await openCall({ receivedAt: at('10:01:00'), telephonyCallId: 'c1' });
    expect(one.statusCode, one.body).toBe(201);
    c1Case = (one.json() as { caseId: string }).caseId;
    // c2's case: found by the caller's line (typed in another form), answered two minutes before.
    const two = await openCall({
      receivedAt: at('10:08:00'),
      caller: {
        name: 'Rae Caller',
        relationship: 'self',
        callbackNumber: '+44 113 496 0002',
        callbackNumberReadBack: true,
      },
    });
    expect(two.statusCode, two.body).toBe(201);
    c2Case = (two.json() as { caseId: string }).caseId;
    // The fallback: two calls entered by hand, with no telephony record (a line no call came from).
    expect((await openCall({ receivedAt: at('14:00:00') })).statusCode).toBe(201);
    expect((await openCall({ receivedAt: at('14:10:00'), answered: false })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('takes events only from a telephony system with its bearer token; the tenant is the credential’s', async () => {
    const before = await telephonyEvents();
    const body = { callId: 'z1', event: 'offered', at: at('09:00:00') };
    const none = await post(body, null);
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.json()).toMatchObject({ code: 'unauthenticated' });
    expect((await post(body, 'not-the-telephony-token-at-all')).statusCode).toBe(401);
    // A signed-in adviser is not a telephony system either.
    expect((await adviser.request('POST', '/api/v1/telephony/call-events', body)).statusCode).toBe(401);
    expect(await telephonyEvents()).toBe(before);
    const south = await t.node.store.withTenant('southshire', (trx) =>
      telephonyDb(trx).selectFrom('telephony_calls').selectAll().where('tenant', '=', 'southshire').execute(),
    );
    expect(south).toEqual([]);
  });

  it('refuses bad input with a 400 naming the field, and a time in the future', async () => {
    await event('o1', 'offered', at('16:00:00'));
    const before = await telephonyEvents();
    const now = t.clock.nowMs();
    const cases: [unknown, string, RegExp][] = [
      [{ event: 'offered', at: at('09:00:00') }, 'body.callId', /required/],
      [{ callId: 'has space', event: 'offered', at: at('09:00:00') }, 'body.callId', /call id/],
      [{ callId: 'z2', event: 'ringing', at: at('09:00:00') }, 'body.event', /offered, answered, abandoned/],
      [{ callId: 'z2', event: 'offered', at: '20/11/2026 09:00' }, 'body.at', /ISO 8601/],
      [
        { callId: 'z2', event: 'offered', at: at('09:00:00'), callerLine: 'call me' },
        'body.callerLine',
        /phone/,
      ],
      [{ callId: 'z2', event: 'offered', at: at('09:00:00'), extra: 1 }, 'body.extra', /not a known field/],
      [{ callId: 'z2', event: 'offered', at: '2030-01-01T09:00:00Z' }, 'body.at', /in the future/],
      [{ callId: 'z2', event: 'offered', at: new Date(now + 3 * 60_000).toISOString() }, 'body.at', /future/],
      // Answered before it was offered.
      [{ callId: 'o1', event: 'answered', at: at('15:59:59') }, 'body.at', /before the call was offered/],
    ];
    for (const [body, path, message] of cases) {
      const r = await post(body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      const problem = r.json() as { code: string; errors: { path: string; message: string }[] };
      expect(problem.code).toBe('validation_failed');
      expect(problem.errors, JSON.stringify(body)).toEqual(
        expect.arrayContaining([{ path, message: expect.stringMatching(message) }]),
      );
    }
    expect(await telephonyEvents()).toBe(before);
    // Within the clock-skew allowance (one minute ahead of the node) is accepted.
    const skewed = await post({ callId: 'z3', event: 'offered', at: new Date(now + 60_000).toISOString() });
    expect(skewed.statusCode, skewed.body).toBe(201);
  });

  it('stores each event once per call id: a repeat answers the same, another time conflicts', async () => {
    const before = await telephonyEvents();
    const again = await post({ callId: 'c3', event: 'answered', at: plusSeconds(at('10:10:00'), 90) });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual({
      callId: 'c3',
      event: 'answered',
      recorded: false,
      offeredAt: '2026-11-20T10:10:00.000Z',
      answeredAt: '2026-11-20T10:11:30.000Z',
      abandonedAt: null,
      caseId: null,
    });
    const other = await post({ callId: 'c3', event: 'answered', at: at('10:12:00') });
    expect(other.statusCode).toBe(409);
    expect(other.json()).toMatchObject({ code: 'conflict', detail: expect.stringMatching(/another time/) });
    const both = await post({ callId: 'c3', event: 'abandoned', at: at('10:12:00') });
    expect(both.statusCode).toBe(409);
    expect(both.json()).toMatchObject({
      detail: expect.stringMatching(/answered: it cannot also be abandoned/),
    });
    // Racing repeats of a new event store it once.
    const racing = await Promise.all(
      [1, 2, 3].map(() => post({ callId: 'r1', event: 'offered', at: at('15:00:00') })),
    );
    expect(racing.map((r) => r.statusCode).sort()).toEqual([200, 200, 201]);
    expect(await telephonyEvents()).toBe(before + 1);
  });

  it('ties a call to its case by the call id on the adviser’s screen, or by the caller’s line', async () => {
    expect(await callRow('c1')).toMatchObject({ case_id: c1Case, linked_by: 'call_id' });
    expect(await callRow('c2')).toMatchObject({ case_id: c2Case, linked_by: 'caller_line' });
    expect(await callRow('c3')).toMatchObject({ case_id: null, caller_line: '01134960003' });
    // The telephony is told the case when it repeats an event.
    const repeat = await post({ callId: 'c1', event: 'answered', at: plusSeconds(at('10:00:00'), 20) });
    expect(repeat.json()).toMatchObject({ recorded: false, caseId: c1Case });
    // A call already tied to a case cannot be tied to another.
    const twice = await openCall({ receivedAt: at('10:30:00'), telephonyCallId: 'c1' });
    expect(twice.statusCode).toBe(400);
    expect(twice.json()).toMatchObject({
      errors: [{ path: 'body.telephonyCallId', message: 'is already tied to another case' }],
    });
    const badId = await openCall({ telephonyCallId: 'not an id' });
    expect(badId.statusCode).toBe(400);
    expect(badId.json()).toMatchObject({ errors: [{ path: 'body.telephonyCallId' }] });
  });

  it('computes B01–B07 exactly from the timestamps, with hand-entered calls as the untimed fallback', async () => {
    const november = await computeIucAdc(t.node.store, 'northshire', parseReportingPeriod('2026-11'), {
      tenantFilter: true,
      clock: t.clock,
    });
    // o1, z3 and r1 (posted by the tests above: offered in November, no answer yet) are received too.
    const unanswered = 3;
    expect(valuesOf(november)).toMatchObject({ ...NOVEMBER, A01: NOVEMBER.A01 + unanswered });
    expect(november.items.slice(0, 9).map((i) => i.item)).toEqual([
      'A01',
      'A03',
      'B01',
      'B02',
      'B03',
      'B04',
      'B05',
      'B06',
      'B07',
    ]);
    expect(november.callSources).toEqual({
      telephonyCalls: 14 + unanswered,
      telephonyCallsWithCase: 2,
      telephonyCallsWithoutCase: 12 + unanswered,
      endedDuringIntroduction: 1,
      casesEnteredByHand: 2,
    });
    expect(november.notices).toEqual(
      expect.arrayContaining([expect.stringMatching(/^2 call\(s\) have no telephony record/)]),
    );
    // October: the call offered at 23:59:30 GMT on the 31st, answered after 60 s.
    const october = await computeIucAdc(t.node.store, 'northshire', parseReportingPeriod('2026-10'));
    expect(valuesOf(october)).toMatchObject({ A01: 1, A03: 1, B01: 1, B02: 0, B03: 60, B04: 60, B05: 60 });
    // Another provider's telephony calls are its own.
    const south = await computeIucAdc(t.node.store, 'southshire', parseReportingPeriod('2026-11'));
    expect(valuesOf(south)).toMatchObject({ A01: 0, B01: 0, B02: 0, B03: 0 });
  });

  it('refuses a call dated in the future (beyond a small clock-skew allowance), naming body.receivedAt', async () => {
    for (const receivedAt of ['2030-01-01T09:00:00Z', new Date(t.clock.nowMs() + 3 * 60_000).toISOString()]) {
      const r = await openCall({ receivedAt });
      expect(r.statusCode, receivedAt).toBe(400);
      expect(r.json()).toMatchObject({
        code: 'validation_failed',
        errors: [{ path: 'body.receivedAt', message: expect.stringMatching(/in the future/) }],
      });
    }
    const skewed = await openCall({ receivedAt: new Date(t.clock.nowMs() + 60_000).toISOString() });
    expect(skewed.statusCode, skewed.body).toBe(201);
  });
});
