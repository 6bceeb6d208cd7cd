import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Finding the right patient when the caller is unsure (hazard H30, H31): a date of birth typed day
 * first whatever the browser's language, found with day and month swapped, with only the year, or
 * by date of birth and postcode without the family name; exact dates first; results that tell two
 * people at one postcode apart (age, sex, first address line, practice). The test clock reads
 * 29 November 2026.
 */

type Found = {
  patientId: string;
  givenName: string;
  dateOfBirth: string;
  ageYears: number;
  sex: string;
  addressLine: string | null;
  practice: string | null;
  postcode: string | null;
  score: number;
  match: Record<string, string>;
};

describe.each(STORE_KINDS)('searching for a patient the caller is unsure about, on %s', (kind) => {
  let t: TestApp;
  let site: string;
  let adviser: Client;
  const ids: Record<string, string> = {};

  async function register(record: Record<string, unknown>): Promise<string> {
    const r = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: { sex: 'unknown', specialNotes: [], ...record },
    });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { patientId: string }).patientId;
  }

  async function search(body: Record<string, unknown>): Promise<Found[]> {
    const r = await adviser.request('POST', '/api/v1/patients/search', body);
    expect(r.statusCode, r.body).toBe(200);
    return (r.json() as { patients: Found[] }).patients;
  }

  async function refused(body: Record<string, unknown>) {
    const r = await adviser.request('POST', '/api/v1/patients/search', body);
    expect(r.statusCode, r.body).toBe(400);
    return (r.json() as { errors: { path: string; message: string }[] }).errors;
  }

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    // Born 3 May 1980; a caller on a month-first PC, or reading it back, says 5 March.
    ids.nia = await register({
      givenName: 'Nia',
      familyName: 'Okafor',
      dateOfBirth: '1980-05-03',
      sex: 'female',
      address: '7 Harbour Row, Whitby',
      postcode: 'YO21 3PU',
      registeredPractice: { odsCode: 'B86001', name: 'Harbour Surgery' },
    });
    // Another Okafor really born 5 March 1980: the exact match for "05/03/1980".
    ids.march = await register({
      givenName: 'Nkem',
      familyName: 'Okafor',
      dateOfBirth: '1980-03-05',
      sex: 'male',
      postcode: 'LS1 4AP',
    });
    // Same year, another day; and another year.
    ids.december = await register({ givenName: 'Obi', familyName: 'Okafor', dateOfBirth: '1980-12-24' });
    ids.otherYear = await register({ givenName: 'Nia', familyName: 'Okafor', dateOfBirth: '1981-05-03' });
    // Nia's neighbour at the same postcode, same date of birth: told apart by sex, address, practice.
    ids.neighbour = await register({
      givenName: 'Ruth',
      familyName: 'Abbott',
      dateOfBirth: '1980-05-03',
      sex: 'female',
      address: 'Flat 2, 9 Harbour Row, Whitby',
      postcode: 'YO21 3PU',
      registeredPractice: { odsCode: 'B86002' },
    });
  });
  afterAll(async () => t?.close());

  it('reads the date of birth day first (03/05/1980 is 3 May) and says why 31/02 or 12/31 cannot be', async () => {
    for (const dateOfBirth of ['03/05/1980', '3/5/1980', '03.05.1980', '1980-05-03']) {
      const found = await search({ familyName: 'Okafor', givenName: 'Nia', dateOfBirth });
      expect(
        found.map((p) => [p.patientId, p.match.dateOfBirth]),
        dateOfBirth,
      ).toEqual([[ids.nia, 'exact']]);
    }
    for (const [dateOfBirth, message] of [
      ['31/02/1980', 'is not a real date: February 1980 has 29 days, not 31'],
      ['12/31/1980', 'has no month 31: write the day first, then the month (31/12/1980, not 12/31/1980)'],
      ['03/05/80', 'needs the year in full (four digits): 80 could mean 1980 or 2080'],
      ['01/01/2999', 'is in the future (1 January 2999)'],
    ])
      expect(await refused({ familyName: 'Okafor', dateOfBirth })).toEqual([
        { path: 'body.dateOfBirth', message },
      ]);
  });

  it('finds a patient whose day and month were swapped, after every exact match', async () => {
    const found = await search({ familyName: 'Okafor', dateOfBirth: '05/03/1980' });
    expect(found.map((p) => [p.patientId, p.match.dateOfBirth])).toEqual([
      [ids.march, 'exact'],
      [ids.nia, 'day_month_swapped'],
    ]);
    // Even when the swapped one matches the given name and postcode better, the exact one is first.
    const better = await search({
      familyName: 'Okafor',
      givenName: 'Nia',
      dateOfBirth: '05/03/1980',
      postcode: 'YO21 3PU',
    });
    expect(better.map((p) => p.patientId)).toEqual([ids.nia]);
    expect(better[0]!.match.dateOfBirth).toBe('day_month_swapped');
    const both = await search({ familyName: 'Okafor', dateOfBirth: '05/03/1980', postcode: 'YO21 3PU' });
    // Nia scores as well as Nkem here (her postcode makes up for the swap) and her name sorts
    // first: only the date-of-birth rank puts Nkem above her.
    expect(both.map((p) => p.patientId)).toEqual([ids.march, ids.nia]);
    expect(both[1]!.score).toBeGreaterThanOrEqual(both[0]!.score);
  });

  it('finds everyone of that family name born in a year when only the year is known', async () => {
    const found = await search({ familyName: 'okafor', dateOfBirth: '1980' });
    expect(found.map((p) => p.patientId).sort()).toEqual([ids.nia, ids.march, ids.december].sort());
    expect(new Set(found.map((p) => p.match.dateOfBirth))).toEqual(new Set(['year']));
    expect(
      (await search({ familyName: 'okafor', givenName: 'nia', dateOfBirth: '1981' })).map((p) => p.patientId),
    ).toEqual([ids.otherYear]);
    expect(await refused({ dateOfBirth: '1980', postcode: 'YO21 3PU' })).toEqual([
      { path: 'body.familyName', message: 'is needed when only the year of birth is known' },
    ]);
  });

  it('finds by date of birth and postcode without a family name; both people there, told apart', async () => {
    const found = await search({ dateOfBirth: '03/05/1980', postcode: 'yo213pu' });
    expect(found.map((p) => p.patientId).sort()).toEqual([ids.nia, ids.neighbour].sort());
    const byId = Object.fromEntries(found.map((p) => [p.patientId, p]));
    expect(byId[ids.nia!]).toMatchObject({
      ageYears: 46,
      sex: 'female',
      addressLine: '7 Harbour Row',
      practice: 'Harbour Surgery',
      postcode: 'YO21 3PU',
      match: { dateOfBirth: 'exact', familyName: 'not_given', postcode: 'exact' },
    });
    expect(byId[ids.neighbour!]).toMatchObject({ addressLine: 'Flat 2', practice: 'B86002', sex: 'female' });
    // Another postcode finds nobody; no postcode at all is refused, naming the field.
    expect(await search({ dateOfBirth: '03/05/1980', postcode: 'M1 1AE' })).toEqual([]);
    expect(await refused({ dateOfBirth: '03/05/1980' })).toEqual([
      { path: 'body.familyName', message: 'is needed, or the postcode with the full date of birth' },
    ]);
  });

  it('refuses mixing an NHS number with other details, and a search with no date of birth', async () => {
    expect((await refused({ nhsNumber: '9434765919', familyName: 'Okafor' })).map((e) => e.path)).toEqual([
      'body.familyName',
    ]);
    expect((await refused({ familyName: 'Okafor' })).map((e) => e.path)).toEqual(['body.dateOfBirth']);
  });
});
