import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

/**
 * The CAS queue is the work of a user's own sites: a clinician of site A neither sees nor claims a
 * case of site B (which had produced reconciliation items with no real conflict when clinicians
 * worked every site's queue); working across sites is a permission of its own (the shift manager's).
 */
describe.each(STORE_KINDS)('the queue keeps to a user’s sites on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let manager: Client;
  let siteA: string;
  let siteB: string;
  let caseA: string;
  let caseB: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    [siteA, siteB] = t.providers[0]!.sites as [string, string];
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    manager = new Client(t.app, t.clock);
    // Every user of the test provider belongs to site A only.
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
      [manager, 'shift_manager@northshire'],
    ] as const)
      expect((await c.signIn(u)).statusCode).toBe(200);
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    caseA = (await caseAt(adviser, protocols, siteA, 'speak_to_primary_care')).caseId;
    caseB = (await caseAt(adviser, protocols, siteB, 'speak_to_primary_care')).caseId;
  });

  afterAll(async () => {
    await t.close();
  });

  const queueIds = async (client: Client, query = ''): Promise<{ status: number; ids: string[] }> => {
    const r = await client.request('GET', `/api/v1/queue${query}`);
    const ids =
      r.statusCode === 200 ? (r.json() as { cases: { caseId: string }[] }).cases.map((c) => c.caseId) : [];
    return { status: r.statusCode, ids };
  };

  it('a clinician of site A sees site A’s case and not site B’s, and may not ask for site B', async () => {
    const mine = await queueIds(clinician);
    expect(mine.ids).toContain(caseA);
    expect(mine.ids).not.toContain(caseB);
    const other = await queueIds(clinician, `?siteId=${siteB}`);
    expect(other.status).toBe(403);
  });

  it('a clinician of site A cannot claim site B’s case, and is told why', async () => {
    const r = await clinician.request('POST', `/api/v1/cases/${caseB}/claim`);
    expect(r.statusCode).toBe(403);
    expect(r.body).toContain('not one of yours');
    const ok = await clinician.request('POST', `/api/v1/cases/${caseA}/claim`);
    expect(ok.statusCode).toBe(200);
  });

  it('the shift manager, who works across sites, sees both', async () => {
    const all = await queueIds(manager);
    expect(all.ids).toEqual(expect.arrayContaining([caseA, caseB]));
    expect((await queueIds(manager, `?siteId=${siteB}`)).ids).toEqual([caseB]);
  });
});
