import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DirectoryServiceDefinition } from '@holdfast/core';
import { nameBasedUuid } from '../../src/node/ids.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { startTestApp, type TestApp } from '../support/http.ts';
import { eventsAfter, ledgerPosition, setUpWorld, type World } from '../support/route-samples.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The Directory of Services through the HTTP API on both stores: services set, changed and removed
 * by a provider admin, capacity set by staff, directory files imported (all or nothing) and exported,
 * postcodes imported, and the search for a real case triaged to an ED/UTC disposition.
 */

const HOME = { latitude: 54.0, longitude: -1.5 };
const KM = 1 / 111.2;
const ED_CODES = ['SAMPLE-ED-1H', 'SAMPLE-ED-4H', 'SAMPLE-UTC-4H'];
const ALL_DAY = { opens: '08:00', closes: '22:00' };

/** Services are named in the tests ('s-ed'); their ids are UUIDs made from the names. */
const ID = (name: string) => nameBasedUuid(`directory-test:${name}`);
const names = new Map<string, string>();
const nameOf = (serviceId: string) => names.get(serviceId) ?? serviceId;

function definition(
  name: string,
  kmNorth: number,
  fields: Partial<DirectoryServiceDefinition> = {},
): DirectoryServiceDefinition {
  const serviceId = ID(name);
  names.set(serviceId, name);
  return {
    serviceId,
    name: `Service ${name}`,
    odsCode: 'NSX01',
    type: 'urgent_treatment_centre',
    address: ['1 Made-up Street', 'Northshire'],
    postcode: 'NS1 1AA',
    latitude: HOME.latitude + kmNorth * KM,
    longitude: HOME.longitude,
    phone: null,
    openingTimes: {
      alwaysOpen: false,
      weekly: {
        mon: [ALL_DAY],
        tue: [ALL_DAY],
        wed: [ALL_DAY],
        thu: [ALL_DAY],
        fri: [ALL_DAY],
        sat: [ALL_DAY],
        sun: [ALL_DAY],
      },
      bankHolidays: null,
      exceptions: [],
    },
    dispositions: ED_CODES,
    symptomGroups: [],
    ageRange: { minYears: 0, maxYears: null },
    sexes: [],
    referral: { kind: 'walk_in' },
    booking: null,
    notClinicallyValidated: true,
    ...fields,
  };
}

const POSTCODES = `pcd,pcd2,pcds,dointr,doterm,oscty,lat,long
"NS1 1AA","NS1  1AA","NS1 1AA","202401","","E10000001",${HOME.latitude},${HOME.longitude}
"NS1 2AB","NS1  2AB","NS1 2AB","202401","","E10000001",54.5,-1.2
"NS9 9ZZ","NS9  9ZZ","NS9 9ZZ","202401","202501","E10000001",99.999999,0.000000
`;

describe.each(STORE_KINDS)('Directory of Services (%s)', (kind) => {
  let t: TestApp;
  let w: World;
  const admin = () => w.clients.provider_admin;
  const adviser = () => w.clients.health_adviser;

  beforeAll(async () => {
    t = await startTestApp(kind);
    w = await setUpWorld(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a provider admin adds, changes and removes services; staff set capacity; advisers see them', async () => {
    const added = await admin().request('POST', '/api/v1/admin/directory/services', definition('crud-1', 3));
    expect(added.statusCode, added.body).toBe(200);
    const before = await ledgerPosition(t);
    const changed = await admin().request(
      'POST',
      '/api/v1/admin/directory/services',
      definition('crud-1', 3, { name: 'Renamed UTC', postcode: 'ns1 1aa' }),
    );
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({ name: 'Renamed UTC', postcode: 'NS1 1AA', capacity: null });
    const events = await eventsAfter(t, before);
    expect(events.map((e) => [e.type, e.payload.version])).toEqual([['directory.service_set', 2]]);

    const capacity = await w.clients.shift_manager.request(
      'POST',
      `/api/v1/directory/services/${ID('crud-1')}/capacity`,
      {
        status: 'amber',
        note: 'four-hour wait',
      },
    );
    expect(capacity.statusCode, capacity.body).toBe(200);
    expect(capacity.json()).toMatchObject({
      capacity: {
        status: 'amber',
        note: 'four-hour wait',
        setAtMs: t.clock.nowMs(),
        setBy: `user:${w.provider.users.shift_manager.userId}`,
      },
    });
    // An adviser may read the directory but not set capacity.
    const refused = await adviser().request('POST', `/api/v1/directory/services/${ID('crud-1')}/capacity`, {
      status: 'red',
    });
    expect(refused.statusCode).toBe(403);
    const listed = await adviser().request('GET', '/api/v1/directory/services');
    expect(
      (listed.json() as { services: { serviceId: string; capacity: unknown }[] }).services,
    ).toContainEqual(
      expect.objectContaining({
        serviceId: ID('crud-1'),
        name: 'Renamed UTC',
        capacity: expect.objectContaining({ status: 'amber' }),
      }),
    );

    const removed = await admin().request('DELETE', `/api/v1/admin/directory/services/${ID('crud-1')}`, {
      reason: 'closed down',
    });
    expect(removed.statusCode, removed.body).toBe(204);
    const after = (await adviser().request('GET', '/api/v1/directory/services')).json() as {
      services: { serviceId: string }[];
    };
    expect(after.services.map((s) => s.serviceId)).not.toContain(ID('crud-1'));
    expect(
      (
        await admin().request('DELETE', `/api/v1/admin/directory/services/${ID('crud-1')}`, {
          reason: 'again',
        })
      ).statusCode,
    ).toBe(404);
  });

  it('a service with a bad field is refused naming it; nothing is recorded', async () => {
    const before = await ledgerPosition(t);
    const bad = await admin().request('POST', '/api/v1/admin/directory/services', {
      ...definition('bad-1', 1),
      latitude: 40,
    });
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as { errors: { path: string; message: string }[] }).errors).toEqual([
      { path: 'body.latitude', message: 'must be a UK latitude (49 to 61)' },
    ]);
    expect(await ledgerPosition(t)).toBe(before);
  });

  it('a directory file with a bad row is refused with line and field, and nothing is imported', async () => {
    const csv = (
      await admin().request('POST', '/api/v1/admin/directory/import', {
        services: [definition('file-1', 1), definition('file-2', 2)],
      })
    ).statusCode;
    expect(csv).toBe(200);
    const exported = await admin().request('GET', '/api/v1/admin/directory/export?format=csv');
    expect(exported.statusCode).toBe(200);
    expect(exported.headers['content-type']).toMatch(/^text\/csv/);
    const lines = exported.body.trimEnd().split('\n');
    // A third service, whose line 3 of the file gives a minimum age of "ten".
    const third = lines[1]!.replace(ID('file-1'), ID('file-3')).replace('Service file-1', 'Service file-3');
    const file = [lines[0], lines[1], third.replace(/,0,,/, ',ten,,'), lines[2]].join('\n');
    const before = await ledgerPosition(t);
    const refused = await admin().request('POST', '/api/v1/admin/directory/import', file, {
      'content-type': 'text/csv',
    });
    expect(refused.statusCode, refused.body).toBe(400);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect((refused.json() as { problems: unknown[] }).problems).toEqual([
      { line: 3, field: 'minAgeYears', message: 'must be a number' },
    ]);
    expect((refused.json() as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual([
      'body.csv',
    ]);
    expect(await ledgerPosition(t)).toBe(before);
    const services = (await adviser().request('GET', '/api/v1/directory/services')).json() as {
      services: { serviceId: string }[];
    };
    expect(services.services.map((s) => s.serviceId)).not.toContain(ID('file-3'));

    // JSON: the field's path inside the body.
    const json = await admin().request('POST', '/api/v1/admin/directory/import', {
      services: [definition('file-4', 1), { ...definition('file-5', 1), type: 'chemist' }],
    });
    expect(json.statusCode).toBe(400);
    expect((json.json() as { problems: { line: number; field: string }[] }).problems).toMatchObject([
      { line: 2, field: 'type' },
    ]);
    expect((json.json() as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual([
      'body.services.1.type',
    ]);
    expect(await ledgerPosition(t)).toBe(before);
  });

  it('export round-trips: CSV and JSON exports import back to the same services', async () => {
    const read = async () =>
      ((await adviser().request('GET', '/api/v1/directory/services')).json() as { services: unknown[] })
        .services;
    await admin().request('POST', '/api/v1/admin/directory/services', {
      ...definition('round-1', 4),
      phone: '01632 960001',
      openingTimes: {
        alwaysOpen: false,
        weekly: {
          mon: [{ opens: '18:30', closes: '08:00' }],
          tue: [],
          wed: [],
          thu: [],
          fri: [],
          sat: [ALL_DAY],
          sun: [],
        },
        bankHolidays: [],
        exceptions: [{ date: '2026-12-25', sessions: [], note: 'Christmas Day' }],
      },
      ageRange: { minYears: 16, maxYears: 64 },
      sexes: ['female'],
      referral: { kind: 'phone', phone: '01632 960002' },
      booking: { slotsEndpointId: 'slots-1' },
    });
    const services = await read();
    for (const format of ['csv', 'json'] as const) {
      const exported = await admin().request('GET', `/api/v1/admin/directory/export?format=${format}`);
      const back = await admin().request(
        'POST',
        '/api/v1/admin/directory/import',
        format === 'csv' ? exported.body : exported.body,
        { 'content-type': format === 'csv' ? 'text/csv' : 'application/json' },
      );
      expect(back.statusCode, back.body).toBe(200);
      expect(back.json()).toEqual({ imported: services.length });
      expect(await read()).toEqual(services);
    }
  });

  it('postcodes import from an ONS-layout file; an unknown postcode is a 400 naming postcode', async () => {
    const imported = await admin().request('POST', '/api/v1/admin/postcodes/import', POSTCODES, {
      'content-type': 'text/csv',
    });
    expect(imported.statusCode, imported.body).toBe(200);
    expect(imported.json()).toMatchObject({ rows: 3, imported: 2, withoutPlace: 1 });
    expect(await t.directory.locate('ns11aa')).toEqual({ postcode: 'NS1 1AA', ...HOME });
    expect(await t.directory.locate('NS9 9ZZ')).toBeNull();

    const bad = await admin().request(
      'POST',
      '/api/v1/admin/postcodes/import',
      `pcds,lat,long\nNS2 1AA,54.1,-1.4\nNS2 1AB,north,-1.4\n`,
      { 'content-type': 'text/csv' },
    );
    expect(bad.statusCode).toBe(400);
    expect((bad.json() as { problems: unknown[] }).problems).toEqual([
      { line: 3, field: 'lat', message: 'must be a number' },
    ]);
    expect(await t.directory.locate('NS2 1AA')).toBeNull();

    const missing = await admin().request(
      'POST',
      '/api/v1/admin/postcodes/import',
      `postcode,easting\nNS2 1AA,1\n`,
      {
        'content-type': 'text/csv',
      },
    );
    expect((missing.json() as { problems: { field: string }[] }).problems.map((p) => p.field)).toEqual([
      'lat',
      'long',
    ]);
  });

  it('search for a case triaged to an ED/UTC disposition: ranked, with every left-out service and why', async () => {
    // Sunday 29 November 2026, 09:00 GMT (the test clock).
    await admin().request('POST', '/api/v1/admin/directory/import', {
      services: [
        definition('s-ed', 1, {
          type: 'emergency_department',
          openingTimes: { ...definition('x', 0).openingTimes, alwaysOpen: true },
        }),
        definition('s-utc', 2),
        definition('s-gp', 0.5, { type: 'gp_practice', dispositions: ['Dx05'] }),
        definition('s-far', 60),
        definition('s-night', 1.5, {
          openingTimes: {
            ...definition('x', 0).openingTimes,
            weekly: { ...definition('x', 0).openingTimes.weekly, sun: [{ opens: '18:30', closes: '08:00' }] },
          },
        }),
      ],
    });
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    const { caseId } = await caseAt(adviser(), protocols, w.site, 'ed_utc');
    const before = await ledgerPosition(t);
    const search = async (query: string) =>
      adviser().request('GET', `/api/v1/directory/search?caseId=${caseId}&${query}`);

    const r = await search('postcode=NS1%201AA');
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as {
      ranked: { service: { serviceId: string }; opening: string; openNow: boolean; rank: number }[];
      excluded: { serviceId: string; reasons: string[]; words: string }[];
      query: {
        dxCode: string;
        symptomGroup: string | null;
        withinMinutes: number;
        location: unknown;
        ageYears: unknown;
      };
      searchId: string;
    };
    const ids = (list: { service: { serviceId: string } }[]) =>
      list.map((x) => nameOf(x.service.serviceId)).filter((name) => name.startsWith('s-'));
    expect(ids(body.ranked)).toEqual(['s-ed', 's-utc']);
    expect(body.ranked.find((x) => x.service.serviceId === ID('s-utc'))?.opening).toBe('open until 22:00');
    const excluded = Object.fromEntries(
      body.excluded
        .map((e) => [nameOf(e.serviceId), e.reasons] as const)
        .filter(([name]) => name.startsWith('s-')),
    );
    expect(excluded).toEqual({
      's-gp': ['disposition_not_accepted'],
      's-far': ['too_far'],
      's-night': ['closed_for_timeframe'],
    });
    expect(ED_CODES).toContain(body.query.dxCode);
    expect(body.query.location).toEqual(HOME);
    expect(body.query.ageYears).toBeNull();
    expect(typeof body.query.symptomGroup).toBe('string');
    expect([60, 240]).toContain(body.query.withinMinutes);
    expect(body.searchId).toMatch(/^[0-9a-f]{32}$/);
    // Reading the case is audited; nothing else is recorded.
    const events = await eventsAfter(t, before);
    expect(events.map((e) => [e.type, e.payload.resourceId, e.payload.fields])).toEqual([
      ['audit.access', caseId, ['directory_search']],
    ]);

    // Capacity counts before distance: green at the UTC puts it first.
    await w.clients.clinician.request('POST', `/api/v1/directory/services/${ID('s-utc')}/capacity`, {
      status: 'green',
    });
    const green = (
      await search(`latitude=${HOME.latitude}&longitude=${HOME.longitude}`)
    ).json() as typeof body;
    expect(ids(green.ranked)).toEqual(['s-utc', 's-ed']);
    // Red leaves it out, with its reason, for a person to choose from the excluded list if they must.
    await w.clients.clinician.request('POST', `/api/v1/directory/services/${ID('s-utc')}/capacity`, {
      status: 'red',
    });
    const red = (await search('postcode=NS1 1AA')).json() as typeof body;
    expect(ids(red.ranked)).toEqual(['s-ed']);
    expect(red.excluded.find((e) => e.serviceId === ID('s-utc'))).toMatchObject({
      reasons: ['capacity_red'],
      words: 'Capacity red: not taking patients',
    });

    const unknown = await search('postcode=NS7 7QQ');
    expect(unknown.statusCode).toBe(400);
    expect((unknown.json() as { errors: { path: string; message: string }[] }).errors).toEqual([
      {
        path: 'postcode',
        message: 'is not in the postcode table: check it, or give the latitude and longitude instead',
      },
    ]);
    const neither = await adviser().request('GET', `/api/v1/directory/search?caseId=${caseId}`);
    expect(neither.statusCode).toBe(400);
    expect((neither.json() as { errors: { path: string }[] }).errors.map((e) => e.path)).toEqual([
      'query.postcode',
    ]);
  });
});
