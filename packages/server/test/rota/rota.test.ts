import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { DispatchWorld, HOUR } from '../dispatch/support.ts';
import { caseAt } from '../support/cases.ts';

interface ShiftJson {
  shiftId: string;
  userName: string;
  role: string;
  location: { kind: string; id: string | null };
  startMs: number;
}

/**
 * The rota on both stores: a CSV import is all or nothing (problems by line and column, nothing
 * stored); who is on duty now and next; and the CAS queue offers a site's waiting cases only to the
 * clinicians on duty there once a rota covers it (no rota: as before).
 */
describe.each(STORE_KINDS)('the rota on %s', (kind) => {
  const w = new DispatchWorld();
  beforeAll(async () => {
    await w.start(kind);
  });
  afterAll(async () => {
    await w.stop();
  });

  const london = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' '); // the test clock is in winter: UK time is UTC

  it('imports a rota file whole or not at all', async () => {
    const now = w.t.clock.nowMs();
    const users = w.t.providers[0]!.users;
    const start = now + 48 * HOUR;
    const good = `${users.clinician.username},clinician,site,${w.site},${london(start)},${london(start + 8 * HOUR)}`;
    const bad = [
      'user,role,location,locationId,start,end',
      good,
      `nobody@northshire,clinician,cas,,${london(start)},${london(start + 8 * HOUR)}`,
      `${users.driver.username},pilot,car,car-1,${london(start)},${london(start + 8 * HOUR)}`,
    ].join('\n');
    const refused = await w.clients.shift_manager.request('POST', '/api/v1/rota/import', { csv: bad });
    expect(refused.statusCode).toBe(400);
    const problems = (refused.json() as { problems: { line: number; field: string }[] }).problems;
    expect(problems).toEqual(expect.arrayContaining([expect.objectContaining({ line: 4, field: 'role' })]));
    const listed = async () =>
      (
        await w.json<{ shifts: ShiftJson[] }>(
          'shift_manager',
          'GET',
          `/api/v1/rota/shifts?from=${start - HOUR}&to=${start + HOUR}`,
        )
      ).shifts;
    expect(await listed()).toEqual([]);
    // An unknown user is named against its line too, and still nothing is stored.
    const unknown = await w.clients.shift_manager.request('POST', '/api/v1/rota/import', {
      csv: [
        'user,role,location,locationId,start,end',
        good,
        `nobody@northshire,clinician,cas,,${london(start)},${london(start + HOUR)}`,
      ].join('\n'),
    });
    expect(unknown.statusCode).toBe(400);
    expect((unknown.json() as { problems: unknown[] }).problems).toEqual([
      expect.objectContaining({ line: 3, field: 'user' }),
    ]);
    expect(await listed()).toEqual([]);
    const ok = await w.clients.shift_manager.request('POST', '/api/v1/rota/import', {
      csv: `user,role,location,locationId,start,end\n${good}\n`,
    });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(await listed()).toEqual([
      expect.objectContaining({ userName: users.clinician.username, role: 'clinician', startMs: start }),
    ]);
  });

  it('the CAS queue offers a covered site’s waiting cases only to the clinicians on duty there', async () => {
    const { caseId } = await caseAt(w.clients.health_adviser, w.protocols, w.site, 'speak_to_primary_care');
    const queueOf = async (role: 'clinician' | 'prescriber') =>
      (await w.json<{ cases: { caseId: string }[]; rota?: unknown }>(role, 'GET', '/api/v1/queue')).cases.map(
        (c) => c.caseId,
      );
    // No rota covers the site now: everyone with the permission sees the case (as before rotas).
    expect(await queueOf('clinician')).toContain(caseId);
    expect(await queueOf('prescriber')).toContain(caseId);
    // The clinician goes on duty at the site: the prescriber, not on duty, is no longer offered it.
    await w.shift('clinician', { kind: 'site', id: w.site });
    expect(await queueOf('clinician')).toContain(caseId);
    expect(await queueOf('prescriber')).not.toContain(caseId);
    const claim = await w.clients.prescriber.request('POST', `/api/v1/cases/${caseId}/claim`);
    expect(claim.statusCode).toBe(403);
    expect(claim.body).toMatch(/not on duty/);
    expect((await w.clients.clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);

    const now = await w.json<{ onDuty: ShiftJson[]; next: ShiftJson[] }>('driver', 'GET', '/api/v1/rota/now');
    expect(now.onDuty.map((s) => s.userName)).toContain(w.user('clinician').username);
  });
});
