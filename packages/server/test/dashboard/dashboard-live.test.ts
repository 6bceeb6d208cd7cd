import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DashboardCase, OutstandingAmbulanceRequest, StaffOnDuty } from '../../src/dashboard/routes.ts';
import { hoursOfLondonDay } from '../../src/dashboard/hourly.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

interface Dashboard {
  cases: DashboardCase[];
  ambulanceRequestsOutstanding: OutstandingAmbulanceRequest[] | null;
  messagesNeedingAttention: number | null;
  staffOnDuty: StaffOnDuty[] | null;
  staffSignedIn: number | null;
}
interface Hourly {
  date: string;
  compareWith: string;
  hours: {
    slot: string;
    label: string;
    calls: number | null;
    breaches: number | null;
    callsLastWeek: number | null;
    breachesLastWeek: number | null;
  }[];
}

describe('UK hours of a day', () => {
  it('has 24 hours on an ordinary day, 23 on the spring change and 25 on the autumn change', () => {
    expect(hoursOfLondonDay('2026-11-29')).toHaveLength(24);
    const spring = hoursOfLondonDay('2026-03-29');
    expect(spring.map((h) => h.label).slice(0, 3)).toEqual(['00:00', '02:00', '03:00']);
    expect(spring[0]!.startMs).toBe(Date.UTC(2026, 2, 29, 0));
    expect(spring[1]!.startMs).toBe(Date.UTC(2026, 2, 29, 1));
    const autumn = hoursOfLondonDay('2026-10-25');
    expect(autumn).toHaveLength(25);
    expect(autumn.map((h) => h.label).slice(0, 4)).toEqual(['00:00', '01:00 BST', '01:00 GMT', '02:00']);
    // Midnight in summer is 23:00 UTC the day before.
    expect(autumn[0]!.startMs).toBe(Date.UTC(2026, 9, 24, 23));
    expect(autumn[2]!.startMs).toBe(Date.UTC(2026, 9, 25, 1));
  });
});

/**
 * The dashboard's lists behind its figures (open cases without patient details, ambulance requests
 * not yet accepted, staff signed in by role) and its per-hour trends against the same weekday a week
 * earlier, computed from the cases projection with the injected clock, clock-change days included.
 */
describe.each(STORE_KINDS)('live dashboard figures on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let manager: Client;
  const signIn = async (username: string) => {
    const c = new Client(t.app, t.clock);
    expect((await c.signIn(username)).statusCode).toBe(200);
    return c;
  };
  const read = async <T>(client: Client, url: string): Promise<T> => {
    const r = await client.request('GET', url);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as T;
  };

  beforeAll(async () => {
    t = await startTestApp(kind, {
      providers: ['northshire'],
      idleTimeoutMs: 400 * 24 * 3600_000,
      absoluteTimeoutMs: 400 * 24 * 3600_000,
    });
    adviser = await signIn('health_adviser@northshire');
    manager = await signIn('shift_manager@northshire');
  });
  afterAll(async () => t?.close());

  it('lists the cases behind each figure, the 999 requests not yet accepted, and staff signed in by role', async () => {
    const pack = await requireProtocolPack(SAMPLE_PACK_DIR);
    const [siteA] = t.providers[0]!.sites as [string];
    await t.messaging.setEndpoint('northshire', 'user:admin', {
      endpointId: 'ambulance',
      name: 'North Ambulance Service',
      kinds: ['ambulance_request'],
      odsCode: 'RX9',
      // Nothing delivers in this test (no worker runs): the request stays queued, not accepted.
      transport: { type: 'http', url: 'http://127.0.0.1:9/fhir', clientCertificate: null },
      phone: '0300 123 4567',
      acceptWithinSeconds: 30,
    });
    const queued = await caseAt(adviser, pack.protocols, siteA, 'speak_to_primary_care');
    const ambulance = await caseAt(adviser, pack.protocols, siteA, 'ambulance');

    const d = await read<Dashboard>(manager, '/api/v1/dashboard?list=queue');
    expect(d.cases.find((c) => c.caseId === queued.caseId)).toMatchObject({
      stage: 'queue',
      status: 'queued',
      timing: 'on_time',
      escalated: false,
      claimed: false,
    });
    expect(d.ambulanceRequestsOutstanding).toEqual([
      expect.objectContaining({ caseId: ambulance.caseId, siteId: siteA, state: 'queued', overdue: false }),
    ]);
    // Two people signed in (adviser and manager), one of each role.
    expect(d.staffSignedIn).toBe(2);
    expect(d.staffOnDuty).toEqual([
      { role: 'health_adviser', count: 1 },
      { role: 'shift_manager', count: 1 },
    ]);
    // Only the list asked for is sent.
    expect(d.cases.every((c) => c.stage === 'queue')).toBe(true);
    expect((await read<Dashboard>(manager, '/api/v1/dashboard')).cases).toEqual([]);
    // No caller or patient details in the lists.
    expect(JSON.stringify(d)).not.toMatch(/Sam Caller|496 0123|Feeling unwell/);

    // Past the ambulance service's 30 s window the request is overdue, and a message needs attention.
    t.clock.advance(31_000);
    const late = await read<Dashboard>(manager, '/api/v1/dashboard');
    expect(late.ambulanceRequestsOutstanding).toEqual([
      expect.objectContaining({ caseId: ambulance.caseId, overdue: true }),
    ]);
    expect(late.messagesNeedingAttention).toBe(1);
    // Handed over by phone: the electronic request is cancelled and leaves the list.
    const phoned = await adviser.request(
      'POST',
      `/api/v1/cases/${ambulance.caseId}/ambulance-handover/phone`,
      {
        spokeTo: 'Control room',
      },
    );
    expect(phoned.statusCode, phoned.body).toBe(200);
    expect((await read<Dashboard>(manager, '/api/v1/dashboard')).ambulanceRequestsOutstanding).toEqual([]);

    // An auditor signs in: three people; sees the figures but not the messages (not theirs to see).
    const auditor = await signIn('auditor@northshire');
    const audited = await read<Dashboard>(auditor, '/api/v1/dashboard');
    expect(audited.staffSignedIn).toBe(3);
    expect(audited.ambulanceRequestsOutstanding).toBeNull();
    expect(audited.messagesNeedingAttention).toBeNull();
    // …and signs out: counted no more.
    expect((await auditor.request('POST', '/api/v1/auth/sign-out')).statusCode).toBeLessThan(300);
    expect((await read<Dashboard>(manager, '/api/v1/dashboard')).staffOnDuty).toEqual([
      { role: 'health_adviser', count: 1 },
      { role: 'shift_manager', count: 1 },
    ]);
  });

  it('counts calls and breaches per UK hour of the autumn clock-change day against a week earlier', async () => {
    const pack = await requireProtocolPack(SAMPLE_PACK_DIR);
    const [, siteB] = t.providers[0]!.sites as [string, string];
    t.clock.set(Date.UTC(2026, 9, 25, 12, 0));
    // 00:30 UTC is 01:30 BST (the first 01:00), 01:30 UTC is 01:30 GMT (the second).
    const first = await caseAt(adviser, pack.protocols, siteB, 'speak_to_primary_care', {
      receivedAt: '2026-10-25T00:30:00Z',
    });
    await caseAt(adviser, pack.protocols, siteB, 'speak_to_primary_care', {
      receivedAt: '2026-10-25T01:30:00Z',
    });
    await caseAt(adviser, pack.protocols, siteB, 'speak_to_primary_care', {
      receivedAt: '2026-10-18T00:30:00Z',
    });
    const h = await read<Hourly>(manager, `/api/v1/dashboard/hourly?siteId=${siteB}`);
    expect(h.date).toBe('2026-10-25');
    expect(h.compareWith).toBe('2026-10-18');
    expect(h.hours).toHaveLength(25);
    const at = (label: string) => h.hours.find((p) => p.label === label)!;
    expect(at('01:00 BST')).toMatchObject({ calls: 1, callsLastWeek: 1 });
    expect(at('01:00 GMT')).toMatchObject({ calls: 1, callsLastWeek: null });
    // Hours of today not begun yet are null, not zero.
    expect(at('13:00')).toMatchObject({ calls: null, breaches: null, callsLastWeek: 0 });
    // Every call is still open past its deadline: each breached in the hour its deadline passed.
    const d = await read<Dashboard>(manager, '/api/v1/dashboard?list=breached');
    const deadline = Date.parse(d.cases.find((c) => c.caseId === first.caseId)!.deadline!);
    const breachHour = h.hours.find((p) => p.breaches !== null && p.breaches > 0)!;
    const hours = hoursOfLondonDay('2026-10-25');
    expect(hours.find((x) => x.slot === breachHour.slot)!.startMs).toBeLessThanOrEqual(deadline);
    expect(h.hours.reduce((a, p) => a + (p.breaches ?? 0), 0)).toBe(2);
    expect(h.hours.reduce((a, p) => a + (p.breachesLastWeek ?? 0), 0)).toBe(1);
  });

  it('keeps the spring’s missing hour from the week before, and refuses a bad date in words', async () => {
    const pack = await requireProtocolPack(SAMPLE_PACK_DIR);
    const [, siteB] = t.providers[0]!.sites as [string, string];
    t.clock.set(Date.UTC(2026, 2, 29, 23, 30));
    await caseAt(adviser, pack.protocols, siteB, 'speak_to_primary_care', {
      receivedAt: '2026-03-22T01:30:00Z',
    });
    await caseAt(adviser, pack.protocols, siteB, 'speak_to_primary_care', {
      receivedAt: '2026-03-29T01:30:00Z',
    });
    const h = await read<Hourly>(manager, `/api/v1/dashboard/hourly?siteId=${siteB}&date=2026-03-29`);
    expect(h.hours).toHaveLength(24);
    const at = (label: string) => h.hours.find((p) => p.label === label)!;
    // 01:30 UTC on the 22nd is 01:30 GMT; on the 29th it is 02:30 BST (01:00 does not exist).
    expect(at('01:00')).toMatchObject({ calls: null, callsLastWeek: 1 });
    expect(at('02:00')).toMatchObject({ calls: 1, callsLastWeek: 0 });
    const bad = await manager.request('GET', '/api/v1/dashboard/hourly?date=2026-02-30');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      errors: [{ path: 'query.date', message: 'must be a date as YYYY-MM-DD' }],
    });
    expect((await adviser.request('GET', '/api/v1/dashboard/hourly')).statusCode).toBe(403);
  });
});
