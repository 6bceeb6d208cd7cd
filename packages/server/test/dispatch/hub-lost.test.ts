import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_CARS, demoVehicleId } from '../../src/dispatch/demo.ts';
import { dispatchDb } from '../../src/dispatch/projection.ts';
import { ApiSession, MemoryTotpSecrets } from '../../src/simulate/api-client.ts';
import { Store } from '../../src/store/store.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import {
  answers,
  asClient,
  initDemoHubOnPostgres,
  serveHubAndSite,
  serve,
  stop,
  until,
} from '../support/processes.ts';

/** What a store holds of one visit and one car: where the hub's copy is compared with the site's. */
async function dispatchRows(store: Store, visitId: string, vehicleId: string) {
  try {
    const db = dispatchDb(store.db);
    const visit = await db
      .selectFrom('dispatch_visits')
      .select(['state'])
      .where('visit_id', '=', visitId)
      .executeTakeFirst();
    const allocations = await db
      .selectFrom('dispatch_allocations')
      .select(['vehicle_id', 'node'])
      .where('visit_id', '=', visitId)
      .execute();
    const car = await db
      .selectFrom('dispatch_vehicles')
      .select(['status'])
      .where('vehicle_id', '=', vehicleId)
      .executeTakeFirst();
    return { visit: visit?.state ?? null, allocations, status: car?.status ?? null };
  } finally {
    await store.close();
  }
}

/**
 * A dispatch site whose hub is lost keeps dispatching: real processes on loopback, a hub on
 * PostgreSQL (the demo provider with its sample cars and their crews on the rota) and a site on
 * SQLite. The cars reach the site by sync; the hub is SIGKILLed; at the site a clinician's outcome
 * asks for a home visit, the dispatcher allocates a car, the driver (put on the car's shift at the
 * site) records that the car is travelling. The hub returns and, by sync, holds the same visit,
 * the one allocation made at the site, and the car travelling.
 */
describe('a dispatch site whose hub is lost', () => {
  it('allocates a car and the crew records its status; after the hub returns everything has synced', async () => {
    const { hubDir, hubEnv, databaseUrl, password, token } = await initDemoHubOnPostgres();
    const started = await serveHubAndSite(hubDir, hubEnv, token);
    const { hubPort, siteDir, sitePort } = started;
    let hub = started.hub;
    const siteStore = () => Store.open({ dialect: 'sqlite', file: join(siteDir, 'holdfast.sqlite') });
    // The demo's sample cars (two crewed now by made-up staff on the rota) reach the site by sync.
    const vehicleId = demoVehicleId(DEMO_CARS[0]!);
    await until(
      'the demo cars at the site',
      async () => {
        const store = await siteStore();
        try {
          return await dispatchDb(store.db).selectFrom('dispatch_vehicles').select('vehicle_id').execute();
        } finally {
          await store.close();
        }
      },
      (rows) => rows.length === DEMO_CARS.length,
    );
    // The hub is lost.
    await stop(hub, 'SIGKILL');

    const secrets = new MemoryTotpSecrets();
    const base = new URL(`http://localhost:${sitePort}`);
    const as = (username: string) => new ApiSession(base, { username, password }, { secrets });
    const [adviser, clinician, dispatcher, driver, manager] = [
      as('health-adviser@northshire'),
      as('clinician@northshire'),
      as('dispatcher@northshire'),
      as('driver@northshire'),
      as('shift-manager@northshire'),
    ];
    const siteId = (await adviser.signIn()).siteIds[0]!;
    for (const s of [clinician, dispatcher, driver, manager]) await s.signIn();

    // The shift manager puts the demo driver on the sample car's shift (at the site, hub away).
    const now = Date.now();
    const shift = await manager.call('POST', '/api/v1/rota/shifts', {
      userName: 'driver@northshire',
      role: 'driver',
      location: { kind: 'car', id: vehicleId },
      startMs: now - 3_600_000,
      endMs: now + 8 * 3_600_000,
    });
    expect(shift.status, JSON.stringify(shift.json)).toBe(201);

    // A patient with an address (written by the clinician: an adviser may not write access
    // instructions); the clinician's outcome asks for a home visit within 2 hours.
    const patient = await clinician.call<{ patientId: string }>('POST', '/api/v1/patients', {
      homeSiteId: siteId,
      record: {
        givenName: 'Nora',
        familyName: 'Hubless',
        dateOfBirth: '1938-04-05',
        sex: 'female',
        specialNotes: [],
        address: '5 Sample Lane, Southport',
        postcode: 'NS9 2TC',
        accessInstructions: 'Key safe code 1357 (sample)',
      },
    });
    expect(patient.status, JSON.stringify(patient.json)).toBe(201);
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    const { caseId } = await caseAt(asClient(adviser), protocols, siteId, 'speak_to_primary_care', {
      patientId: patient.json.patientId,
    });
    expect((await clinician.call('POST', `/api/v1/cases/${caseId}/claim`)).status).toBe(200);
    expect((await clinician.call('POST', `/api/v1/cases/${caseId}/consultation`)).status).toBe(204);
    const outcome = await clinician.call('POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'home_visit',
      homeVisit: { withinHours: 2, reason: 'Cannot get to the centre (sample, not clinically validated)' },
    });
    expect(outcome.status, JSON.stringify(outcome.json)).toBeLessThan(300);
    const listed = await dispatcher.call<{ visits: { visitId: string }[] }>(
      'GET',
      `/api/v1/visits?caseId=${caseId}`,
    );
    expect(listed.json.visits).toHaveLength(1);
    const visitId = listed.json.visits[0]!.visitId;

    // The dispatcher allocates the sample car; its crew is on shift on the rota the site holds.
    const allocated = await dispatcher.call<{ visit: { status: string; vehicleId: string } }>(
      'POST',
      `/api/v1/visits/${visitId}/allocate`,
      { vehicleId },
    );
    expect(allocated.status, JSON.stringify(allocated.json)).toBe(200);
    expect(allocated.json.visit).toMatchObject({ status: 'allocated', vehicleId });

    // The crew's phone: the visit is theirs, and the car is travelling.
    const me = await driver.call<{ vehicle: { vehicleId: string }; visit: { visitId: string } }>(
      'GET',
      '/api/v1/crew/me',
    );
    expect(me.json.vehicle.vehicleId).toBe(vehicleId);
    expect(me.json.visit.visitId).toBe(visitId);
    const travelling = await driver.call<{ recorded: boolean; vehicle: { status: string } }>(
      'POST',
      '/api/v1/crew/status',
      { status: 'travelling' },
    );
    expect(travelling.json).toMatchObject({ recorded: true, vehicle: { status: 'travelling' } });
    expect(await answers(`http://127.0.0.1:${hubPort}/health`)).toBe(false);
    const atSite = await dispatchRows(await siteStore(), visitId, vehicleId);
    expect(atSite).toEqual({
      visit: 'open',
      allocations: [{ vehicle_id: vehicleId, node: 'site-a' }],
      status: 'travelling',
    });

    // The hub returns: by sync it holds what the site did, once.
    hub = await serve(hubDir, hubPort, hubEnv);
    await until(
      'the hub holds the visit, the allocation and the car travelling',
      async () =>
        dispatchRows(
          await Store.open({ dialect: 'postgres', connectionString: databaseUrl }),
          visitId,
          vehicleId,
        ),
      (rows) => JSON.stringify(rows) === JSON.stringify(atSite),
    );
  }, 240_000);
});
