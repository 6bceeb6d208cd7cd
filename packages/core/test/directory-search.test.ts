import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { greatCircleKm, searchDirectory } from '../src/directory/search.ts';
import {
  WEEKDAYS,
  type DirectorySearchQuery,
  type ExclusionReason,
  type OpeningTimes,
} from '../src/directory/types.ts';
import { ENGLAND_AND_WALES_BANK_HOLIDAYS } from '../src/messaging/working-days.ts';
import { P, SERVICES, service } from './directory-fixtures.ts';

const at = (iso: string) => Date.parse(iso);

function query(fields: Partial<DirectorySearchQuery> & { at: string }): DirectorySearchQuery {
  const { at: when, ...rest } = fields;
  return {
    dxCode: 'Dx03',
    symptomGroup: 'chest-pain',
    ageYears: 40,
    sex: 'male',
    location: P,
    maxDistanceKm: 25,
    fromMs: at(when),
    withinMinutes: 60,
    ...rest,
  };
}

const D: ExclusionReason = 'disposition_not_accepted';
const CLOSED: ExclusionReason = 'closed_for_timeframe';
const FAR: ExclusionReason = 'too_far';
const RED: ExclusionReason = 'capacity_red';
const AGE: ExclusionReason = 'age_out_of_range';
const SEX: ExclusionReason = 'sex_not_accepted';
const GROUP: ExclusionReason = 'symptom_group_not_accepted';

interface Row {
  name: string;
  query: DirectorySearchQuery;
  ranked: string[];
  /** The opening words of the ranked services, in order. */
  opening?: string[];
  excluded: Record<string, ExclusionReason[]>;
}

// Disposition × location × time of day. Times are UTC instants; London is GMT in winter, BST in summer.
const TABLE: Row[] = [
  {
    name: 'ED disposition, Wednesday 14:00 in winter: green before amber before unknown capacity',
    query: query({ at: '2026-12-09T14:00:00Z' }),
    ranked: ['B-utc', 'E-sdec', 'A-ed'],
    opening: ['open until 22:00', 'open until 20:00', 'open 24 hours'],
    excluded: {
      'C-ooh': [D, CLOSED],
      'D-pharmacy': [D],
      'F-far-ed': [FAR],
      'G-crisis': [GROUP],
      'H-red-utc': [RED],
      'I-women': [SEX],
      'J-children': [AGE],
      'K-closed-today': [CLOSED], // a dated exception: closed all that day
    },
  },
  {
    name: 'ED disposition at 23:00: only the 24-hour ED is open within the hour',
    query: query({ at: '2026-12-09T23:00:00Z' }),
    ranked: ['A-ed'],
    excluded: {
      'B-utc': [CLOSED],
      'C-ooh': [D],
      'D-pharmacy': [D, CLOSED],
      'E-sdec': [CLOSED],
      'F-far-ed': [FAR],
      'G-crisis': [GROUP],
      'H-red-utc': [RED],
      'I-women': [SEX],
      'J-children': [AGE],
      'K-closed-today': [CLOSED],
    },
  },
  {
    name: 'a 10-hour timeframe from 23:00: services opening at 08:00 come after the open one',
    query: query({ at: '2026-12-09T23:00:00Z', withinMinutes: 600 }),
    ranked: ['A-ed', 'B-utc', 'E-sdec', 'K-closed-today'],
    opening: ['open 24 hours', 'opens Thu 08:00', 'opens Thu 08:00', 'opens Thu 08:00'],
    excluded: {
      'C-ooh': [D],
      'D-pharmacy': [D],
      'F-far-ed': [FAR],
      'G-crisis': [GROUP],
      'H-red-utc': [RED],
      'I-women': [SEX],
      'J-children': [AGE],
    },
  },
  {
    name: 'a mental-health symptom group reaches the crisis service',
    query: query({ at: '2026-12-09T14:00:00Z', symptomGroup: 'mental-health' }),
    ranked: ['B-utc', 'E-sdec', 'A-ed', 'G-crisis'],
    excluded: {
      'C-ooh': [D, CLOSED],
      'D-pharmacy': [D],
      'F-far-ed': [FAR],
      'H-red-utc': [RED],
      'I-women': [SEX],
      'J-children': [AGE],
      'K-closed-today': [CLOSED],
    },
  },
  {
    name: 'bank holiday (Monday 28 December 2026): the UTC keeps bank-holiday hours, the OOH base its Monday',
    query: query({
      at: '2026-12-28T11:00:00Z',
      dxCode: 'Dx05',
      symptomGroup: null,
      sex: 'female',
      withinMinutes: 120,
    }),
    ranked: ['B-utc'],
    opening: ['open until 16:00'],
    excluded: {
      'A-ed': [D],
      'C-ooh': [CLOSED],
      'D-pharmacy': [D, CLOSED],
      'E-sdec': [D],
      'F-far-ed': [D, FAR],
      'G-crisis': [D],
      'H-red-utc': [RED],
      'I-women': [D],
      'J-children': [AGE],
      'K-closed-today': [D],
    },
  },
  {
    name: 'bank holiday: the pharmacy, open on Mondays, is closed',
    query: query({ at: '2026-12-28T11:00:00Z', dxCode: 'Dx10', symptomGroup: null }),
    ranked: [],
    excluded: {
      'A-ed': [D],
      'B-utc': [D],
      'C-ooh': [D, CLOSED],
      'D-pharmacy': [CLOSED],
      'E-sdec': [D],
      'F-far-ed': [D, FAR],
      'G-crisis': [D],
      'H-red-utc': [D, RED],
      'I-women': [D, SEX],
      'J-children': [D, AGE],
      'K-closed-today': [D],
    },
  },
  {
    name: 'an ordinary Monday: the pharmacy is open',
    query: query({ at: '2026-12-07T11:00:00Z', dxCode: 'Dx10', symptomGroup: null }),
    ranked: ['D-pharmacy'],
    opening: ['open until 17:30'],
    excluded: {
      'A-ed': [D],
      'B-utc': [D],
      'C-ooh': [D, CLOSED],
      'E-sdec': [D],
      'F-far-ed': [D, FAR],
      'G-crisis': [D],
      'H-red-utc': [D, RED],
      'I-women': [D, SEX],
      'J-children': [D, AGE],
      'K-closed-today': [D],
    },
  },
  ...(
    [
      ['2026-03-29', '2026'],
      ['2027-03-28', '2027'],
    ] as const
  ).map(([day, year]): Row => ({
    // 07:30 UTC is 08:30 BST: the UTC opened at 08:00 BST (07:00 UTC); the OOH base's night
    // session ended at 08:00 BST. Read as UTC, it would be the other way round.
    name: `spring-forward Sunday ${year}, 07:30 UTC (08:30 BST), 15 minutes`,
    query: query({ at: `${day}T07:30:00Z`, dxCode: 'Dx05', symptomGroup: null, withinMinutes: 15 }),
    ranked: ['B-utc'],
    opening: ['open until 22:00'],
    excluded: {
      'A-ed': [D],
      'C-ooh': [CLOSED],
      'D-pharmacy': [D, CLOSED],
      'E-sdec': [D, CLOSED],
      'F-far-ed': [D, FAR],
      'G-crisis': [D],
      'H-red-utc': [RED],
      'I-women': [D, SEX],
      'J-children': [AGE],
      'K-closed-today': [D],
    },
  })),
  ...(
    [
      ['2026-10-25', '2026'],
      ['2027-10-31', '2027'],
    ] as const
  ).map(([day, year]): Row => ({
    // 07:30 UTC is 07:30 GMT: the UTC opens at 08:00 GMT; the OOH base's session that began at
    // 18:30 BST on Saturday runs to 08:00 GMT, a 14½-hour night.
    name: `fall-back Sunday ${year}, 07:30 UTC (07:30 GMT), 15 minutes`,
    query: query({ at: `${day}T07:30:00Z`, dxCode: 'Dx05', symptomGroup: null, withinMinutes: 15 }),
    ranked: ['C-ooh'],
    opening: ['open until 08:00'],
    excluded: {
      'A-ed': [D],
      'B-utc': [CLOSED],
      'D-pharmacy': [D, CLOSED],
      'E-sdec': [D, CLOSED],
      'F-far-ed': [D, FAR],
      'G-crisis': [D],
      'H-red-utc': [RED],
      'I-women': [D, SEX],
      'J-children': [AGE],
      'K-closed-today': [D, CLOSED],
    },
  })),
  {
    name: 'a patient 50 km south: only the far ED is within 25 km',
    query: query({
      at: '2026-12-09T14:00:00Z',
      location: { latitude: P.latitude - 50 / 111.2, longitude: P.longitude },
    }),
    ranked: ['F-far-ed'],
    excluded: {
      'A-ed': [FAR],
      'B-utc': [FAR],
      'C-ooh': [D, FAR, CLOSED],
      'D-pharmacy': [D, FAR],
      'E-sdec': [FAR],
      'G-crisis': [GROUP, FAR],
      'H-red-utc': [FAR, RED],
      'I-women': [SEX, FAR],
      'J-children': [AGE, FAR],
      'K-closed-today': [FAR, CLOSED],
    },
  },
];

describe('Directory search: the table of cases', () => {
  it.each(TABLE.map((row) => [row.name, row] as const))('%s', (_name, row) => {
    const result = searchDirectory(SERVICES, row.query);
    expect(result.ranked.map((r) => r.service.serviceId)).toEqual(row.ranked);
    expect(result.ranked.map((r) => r.rank)).toEqual(row.ranked.map((_, i) => i + 1));
    if (row.opening) expect(result.ranked.map((r) => r.opening)).toEqual(row.opening);
    expect(Object.fromEntries(result.excluded.map((e) => [e.serviceId, e.reasons]))).toEqual(row.excluded);
    // Every service is either ranked or left out, once.
    expect(result.ranked.length + result.excluded.length).toBe(SERVICES.length);
  });

  it('words every reason for leaving a service out', () => {
    const result = searchDirectory(SERVICES, query({ at: '2026-12-09T14:00:00Z', dxCode: 'Dx10' }));
    const words = Object.fromEntries(result.excluded.map((e) => [e.serviceId, e.words]));
    expect(words['C-ooh']).toBe(
      'Does not take Dx10 dispositions; closed for the whole timeframe (60 minutes; opens 18:30)',
    );
    expect(words['H-red-utc']).toBe('Does not take Dx10 dispositions; capacity red: not taking patients');
    const far = searchDirectory(SERVICES, query({ at: '2026-12-09T14:00:00Z' })).excluded;
    expect(far.find((e) => e.serviceId === 'F-far-ed')?.words).toBe('50 km away, beyond the 25 km searched');
    expect(far.find((e) => e.serviceId === 'J-children')?.words).toBe('Sees people aged 0 to 15 only');
    expect(far.find((e) => e.serviceId === 'I-women')?.words).toBe('Sees female patients only');
  });

  it('gives the distance by great circle (about 3 km to the UTC) and whether each is open now', () => {
    const result = searchDirectory(SERVICES, query({ at: '2026-12-09T23:00:00Z', withinMinutes: 600 }));
    const utc = result.ranked.find((r) => r.service.serviceId === 'B-utc')!;
    expect(utc.distanceKm).toBeCloseTo(3, 1);
    expect(utc.openNow).toBe(false);
    expect(utc.opensAtMs).toBe(at('2026-12-10T08:00:00Z'));
    expect(result.ranked[0]!.openNow).toBe(true);
  });

  it('an unknown age, sex or symptom group leaves nobody out on that ground', () => {
    const result = searchDirectory(
      SERVICES,
      query({ at: '2026-12-09T14:00:00Z', ageYears: null, sex: 'unknown', symptomGroup: null }),
    );
    expect(result.ranked.map((r) => r.service.serviceId)).toEqual([
      'B-utc',
      'E-sdec',
      'A-ed',
      'G-crisis',
      'J-children',
      'I-women',
    ]);
  });
});

// ---- the property: a service closed for the whole timeframe is never offered -----------------

const londonWallClock = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

/** Wall-clock reading of an instant, worked out independently of the code under test. */
function wall(ms: number): { date: string; minute: number } {
  const p = Object.fromEntries(londonWallClock.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, minute: Number(p.hour) * 60 + Number(p.minute) };
}

const m = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
const dayBefore = (iso: string) =>
  new Date(Date.parse(`${iso}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);

function sessionsOnDate(times: OpeningTimes, date: string) {
  const exception = times.exceptions.find((e) => e.date === date);
  if (exception) return exception.sessions;
  if (times.bankHolidays && ENGLAND_AND_WALES_BANK_HOLIDAYS.has(date)) return times.bankHolidays;
  return times.weekly[WEEKDAYS[(new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7]!];
}

/** Open at this instant by the clocks on the wall: today's sessions, or last night's still running. */
function openByTheWallClock(times: OpeningTimes, ms: number): boolean {
  if (times.alwaysOpen) return true;
  const { date, minute } = wall(ms);
  const today = sessionsOnDate(times, date).some((s) => {
    const closes = m(s.closes) <= m(s.opens) ? 1440 : m(s.closes);
    return minute >= m(s.opens) && minute < closes;
  });
  const lastNight = sessionsOnDate(times, dayBefore(date)).some(
    (s) => m(s.closes) <= m(s.opens) && minute < m(s.closes),
  );
  return today || lastNight;
}

const hhmm = fc
  .tuple(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 15, 30, 45))
  .map(([h, mm]) => `${String(h).padStart(2, '0')}:${String(mm).padStart(2, '0')}`);
const closes = fc.oneof(hhmm, fc.constant('24:00'));
const sessions = fc.array(fc.record({ opens: hhmm, closes }), { maxLength: 2 });
// Instants around the clock changes and bank holidays of 2026–2027, and ordinary days, to the minute.
const instants = fc.oneof(
  fc.constantFrom(
    '2026-03-28',
    '2026-03-29',
    '2026-10-24',
    '2026-10-25',
    '2027-03-28',
    '2027-10-31',
    '2026-12-25',
    '2026-12-28',
  ),
  fc.integer({ min: 0, max: 700 }).map((d) => new Date(Date.UTC(2026, 0, 1 + d)).toISOString().slice(0, 10)),
);
const openingTimes: fc.Arbitrary<OpeningTimes> = fc.record({
  alwaysOpen: fc.boolean().map((b) => b && Math.random() < 0.2),
  weekly: fc.record({
    mon: sessions,
    tue: sessions,
    wed: sessions,
    thu: sessions,
    fri: sessions,
    sat: sessions,
    sun: sessions,
  }),
  bankHolidays: fc.option(sessions, { nil: null }),
  exceptions: fc.uniqueArray(fc.record({ date: instants, sessions }), {
    maxLength: 2,
    selector: (e) => e.date,
  }),
});

describe('Directory search: a service closed for the whole timeframe is never offered', () => {
  it('holds for any opening times and timeframe, checked minute by minute against the wall clock', () => {
    fc.assert(
      fc.property(
        openingTimes,
        instants,
        fc.integer({ min: 0, max: 1439 }),
        fc.integer({ min: 0, max: 720 }),
        (times, date, minuteOfDay, withinMinutes) => {
          const fromMs = Date.parse(`${date}T00:00:00Z`) + minuteOfDay * 60_000;
          const result = searchDirectory([service('S', { kmNorth: 1, openingTimes: times })], {
            dxCode: 'Dx03',
            symptomGroup: null,
            ageYears: null,
            sex: null,
            location: P,
            maxDistanceKm: 25,
            fromMs,
            withinMinutes,
          });
          let openSomeMinute = false;
          for (let t = fromMs; t <= fromMs + withinMinutes * 60_000 && !openSomeMinute; t += 60_000)
            openSomeMinute = openByTheWallClock(times, t);
          if (!openSomeMinute) {
            expect(result.ranked).toEqual([]);
            expect(result.excluded[0]?.reasons).toEqual(['closed_for_timeframe']);
          }
          // And the other way: offered only when open at some minute of the timeframe.
          if (result.ranked.length > 0) expect(openSomeMinute).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('Great-circle distance', () => {
  it('agrees with geolib within 0.5 % across Britain', async () => {
    const { getDistance } = await import('geolib');
    const places = [
      { latitude: 50.1, longitude: -5.5 },
      { latitude: 51.5074, longitude: -0.1278 },
      { latitude: 53.8, longitude: -1.55 },
      { latitude: 55.95, longitude: -3.19 },
      { latitude: 58.5, longitude: -3.1 },
    ];
    for (const a of places)
      for (const b of places) {
        const ours = greatCircleKm(a, b);
        const theirs = getDistance(a, b, 1) / 1000;
        expect(Math.abs(ours - theirs)).toBeLessThanOrEqual(Math.max(0.005 * theirs, 0.001));
      }
    // London to Edinburgh, about 534 km.
    expect(greatCircleKm(places[1]!, places[3]!)).toBeCloseTo(534, -1);
  });
});
