import { getDistance } from 'geolib';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.ts';
import {
  AVERAGE_SPEED_KMH,
  ON_SCENE_MINUTES,
  ROAD_FACTOR,
  compareVisits,
  estimateArrivalMs,
  estimateBusyUntilMs,
  roadDistanceKm,
  suggestCars,
  visitTiming,
  type CarForSuggestion,
  type VisitForSuggestion,
} from '../src/dispatch/suggest.ts';
import { crewOf, type Shift } from '../src/rota/shifts.ts';

const MIN = 60_000;
// 10:00 UTC on a winter Saturday: London shows GMT, so the reasons' clock times equal UTC.
const NOW = Date.UTC(2026, 11, 5, 10, 0);

/**
 * The geometry of the table: every car sits due north or south of the visit on the same meridian, so
 * the great-circle distance is the Earth's mean radius × the latitude difference in radians. One km
 * of straight line is 1 / (6371.0088 × π / 180) = 0.0089932° of latitude. With the road factor 1.4 and
 * 40 km/h, a straight line of d km takes d × 1.4 / 40 h = d × 2.1 minutes.
 */
const KM_PER_DEGREE = (6371.0088 * Math.PI) / 180;
const VISIT_LAT = 52.2;
const VISIT_LON = -1.5;
const north = (km: number) => ({ lat: VISIT_LAT + km / KM_PER_DEGREE, lon: VISIT_LON });
const south = (km: number) => ({ lat: VISIT_LAT - km / KM_PER_DEGREE, lon: VISIT_LON });

function visit(deadlineMinutes: number, overrides: Partial<VisitForSuggestion> = {}): VisitForSuggestion {
  return {
    visitId: 'visit-1',
    lat: VISIT_LAT,
    lon: VISIT_LON,
    deadlineMs: NOW + deadlineMinutes * MIN,
    priority: 2,
    ...overrides,
  };
}

function car(
  callSign: string,
  at: { lat: number; lon: number },
  overrides: Partial<CarForSuggestion> = {},
): CarForSuggestion {
  return {
    vehicleId: `v-${callSign}`,
    callSign,
    status: 'available',
    lat: at.lat,
    lon: at.lon,
    positionAtMs: NOW - MIN,
    busyUntilMs: null,
    crewOnShift: true,
    ...overrides,
  };
}

/** A busy car on scene: free `minutes` from now, and it leaves from where it is. */
const busyFor = (minutes: number): Partial<CarForSuggestion> => ({
  status: 'on_scene',
  busyUntilMs: NOW + minutes * MIN,
});

interface Case {
  name: string;
  /** The arithmetic, written out. */
  working: string;
  visit: VisitForSuggestion;
  cars: CarForSuggestion[];
  /** Call signs in the order suggested (cars left out are not listed). */
  order: string[];
  /** Arrival of each listed car, minutes from now. */
  etaMinutes: number[];
  meetsDeadline: boolean[];
}

const CASES: Case[] = [
  {
    name: 'two free cars: the nearer one',
    working: `A 10 km: 10 × 1.4 = 14 km by road, 14 / 40 h = 21 min.
              B 20 km: 28 km by road, 42 min. Deadline in 2 h: both make it; A arrives first.`,
    visit: visit(120),
    cars: [car('B', north(20)), car('A', south(10))],
    order: ['A', 'B'],
    etaMinutes: [21, 42],
    meetsDeadline: [true, true],
  },
  {
    name: 'a busy nearer car that finishes soon beats a free further one',
    working: `N (busy) 2 km: free in 30 min, then 2.8 km by road = 4.2 min → 34.2 min.
              F (free) 20 km: 28 km by road = 42 min → 42 min. N arrives 7.8 min earlier.`,
    visit: visit(120),
    cars: [car('F', north(20)), car('N', south(2), busyFor(30))],
    order: ['N', 'F'],
    etaMinutes: [34.2, 42],
    meetsDeadline: [true, true],
  },
  {
    name: 'a free further car beats a busy nearer one that finishes late',
    working: `N (busy) 2 km: free in 60 min, then 4.2 min → 64.2 min.
              F (free) 20 km: 42 min. F arrives 22.2 min earlier.`,
    visit: visit(120),
    cars: [car('N', south(2), busyFor(60)), car('F', north(20))],
    order: ['F', 'N'],
    etaMinutes: [42, 64.2],
    meetsDeadline: [true, true],
  },
  {
    name: 'deadline pressure: only the busy nearer car makes it',
    working: `Deadline in 35 min. N (busy 30 min, 2 km): 30 + 4.2 = 34.2 min ≤ 35 → meets.
              F (free, 20 km): 42 min > 35 → misses by 7 min.`,
    visit: visit(35),
    cars: [car('F', north(20)), car('N', south(2), busyFor(30))],
    order: ['N', 'F'],
    etaMinutes: [34.2, 42],
    meetsDeadline: [true, false],
  },
  {
    name: 'deadline pressure: nobody makes it, the least late first',
    working: `Deadline in 20 min. A free 10 km: 21 min (1 min late). B free 15 km: 21 km by road =
              31.5 min (11.5 min late). Both miss; A is the least late.`,
    visit: visit(20),
    cars: [car('B', north(15)), car('A', south(10))],
    order: ['A', 'B'],
    etaMinutes: [21, 31.5],
    meetsDeadline: [false, false],
  },
  {
    name: 'a car whose crew is off shift is not offered, however near',
    working: `X 1 km would arrive in 2.1 min but has no crew on shift; O is off duty (0.5 km).
              Only A (10 km, 21 min) is offered.`,
    visit: visit(120),
    cars: [
      car('X', north(1), { crewOnShift: false }),
      car('O', north(0.5), { status: 'off_duty' }),
      car('A', south(10)),
    ],
    order: ['A'],
    etaMinutes: [21],
    meetsDeadline: [true],
  },
  {
    name: 'a tie on arrival and distance: by call sign, so every node suggests the same car',
    working: `Alpha 10 km north and Bravo 10 km south: both 14 km by road, 21 min. Equal → call sign.`,
    visit: visit(120),
    cars: [car('Bravo', south(10)), car('Alpha', north(10))],
    order: ['Alpha', 'Bravo'],
    etaMinutes: [21, 21],
    meetsDeadline: [true, true],
  },
  {
    name: 'the deadline instant itself is met',
    working: `A 10 km: 21 min; deadline in exactly 21 min → meets (arrival ≤ deadline).`,
    visit: visit(21.001),
    cars: [car('A', south(10))],
    order: ['A'],
    etaMinutes: [21],
    meetsDeadline: [true],
  },
  {
    name: 'a busy car starts its next journey from its current visit (freeAt), not its position',
    working: `T is travelling: at 30 km now, free in 40 min at its visit 4 km from ours →
              40 + 4 × 2.1 = 48.4 min. F free 25 km: 52.5 min. T first.`,
    visit: visit(120),
    cars: [
      car('F', north(25)),
      car('T', south(30), { status: 'travelling', busyUntilMs: NOW + 40 * MIN, freeAt: south(4) }),
    ],
    order: ['T', 'F'],
    etaMinutes: [48.4, 52.5],
    meetsDeadline: [true, true],
  },
  {
    name: 'a car on scene whose finish is not known is taken as busy for a full visit, not free',
    working: `U on scene 1 km away, no finish given: free in ${ON_SCENE_MINUTES} min, then 2.1 min → 32.1 min.
              A free 10 km: 21 min. A first.`,
    visit: visit(120),
    cars: [car('U', north(1), { status: 'on_scene', busyUntilMs: null }), car('A', south(10))],
    order: ['A', 'U'],
    etaMinutes: [21, 32.1],
    meetsDeadline: [true, true],
  },
];

/** Arrival instants are whole milliseconds rounded up: within 1 ms of the worked figure. */
function expectMinutes(actualMs: number, minutes: number): void {
  expect(Math.abs(actualMs - (NOW + minutes * MIN))).toBeLessThanOrEqual(1);
}

describe('suggestCars: hand-worked cases', () => {
  it('uses the documented road factor and speed (the working below assumes 1.4 and 40 km/h)', () => {
    expect(ROAD_FACTOR).toBe(1.4);
    expect(AVERAGE_SPEED_KMH).toBe(40);
  });

  it.each(CASES)('$name', (c) => {
    const out = suggestCars(c.visit, c.cars, NOW);
    expect(out.map((s) => s.callSign)).toEqual(c.order);
    out.forEach((s, i) => expectMinutes(s.etaMs, c.etaMinutes[i]!));
    expect(out.map((s) => s.meetsDeadline)).toEqual(c.meetsDeadline);
    // The estimate the list gives is the one estimateArrivalMs gives for the same car.
    for (const s of out) {
      const input = c.cars.find((x) => x.vehicleId === s.vehicleId)!;
      expect(s.etaMs).toBe(estimateArrivalMs(input, c.visit, NOW));
    }
  });

  it('breaks a tie on arrival in favour of the car that is free now', () => {
    // F is free 10 km away: 21 min. B is busy for 21 − 2.1 = 18.9 min at 1 km (2.1 min): also 21 min.
    // Both instants are taken from estimateArrivalMs so that they are equal to the millisecond.
    const v = visit(120);
    const free = car('Zulu', north(10));
    const freeEta = estimateArrivalMs(free, v, NOW);
    const driveFromBusy = estimateArrivalMs(car('tmp', south(1)), v, NOW) - NOW;
    const busy = car('Alpha', south(1), { status: 'on_scene', busyUntilMs: freeEta - driveFromBusy });
    expect(estimateArrivalMs(busy, v, NOW)).toBe(freeEta);
    expectMinutes(freeEta, 21);
    expect(suggestCars(v, [busy, free], NOW).map((s) => s.callSign)).toEqual(['Zulu', 'Alpha']);
  });

  it('a car with no clinician on shift (rota) is not offered; with both crew it is', () => {
    const at = Date.UTC(2026, 11, 5, 9, 0);
    const shift = (userId: string, role: Shift['role']): Shift => ({
      shiftId: `s-${userId}`,
      userId,
      userName: `${userId}@northshire`,
      role,
      location: { kind: 'car', id: 'v-C1' },
      startMs: at,
      endMs: at + 8 * 60 * MIN,
    });
    const driverOnly = [shift('d1', 'driver')];
    const both = [...driverOnly, shift('c1', 'clinician')];
    const c1 = (shifts: Shift[]) =>
      car('C1', north(1), { crewOnShift: crewOf('v-C1', shifts, NOW).available });
    expect(suggestCars(visit(120), [c1(driverOnly)], NOW)).toEqual([]);
    expect(suggestCars(visit(120), [c1(both)], NOW).map((s) => s.callSign)).toEqual(['C1']);
  });

  it('says in plain words whether the car is free or busy, how far, when, and against the deadline', () => {
    const [n, f] = suggestCars(visit(35), [car('F', north(20)), car('N', south(2), busyFor(30))], NOW);
    // 2 km × 1.4 = 2.8 km; free 10:30, +4.2 min → arrives 10:34 (10:34:12), 48 s before 10:35 → "1 min".
    expect(n!.reason).toBe(
      'busy until 10:30 GMT, then 2.8 km by road: arrives about 10:34 GMT (1 min before the deadline)',
    );
    expect(f!.reason).toBe('free now, 28.0 km by road: arrives about 10:42 GMT (7 min after the deadline)');
    expect(n!.distanceKm).toBeCloseTo(2.8, 9);
  });

  it('names a position older than ten minutes, without changing the order', () => {
    const stale = car('S', south(10), { positionAtMs: NOW - 25 * MIN });
    const [s] = suggestCars(visit(120), [stale], NOW);
    expect(s!.reason).toMatch(/; position 25 min old$/);
  });

  it('gives only the best few when asked (the board shows three), in the same order', () => {
    const c = CASES[3]!;
    const all = suggestCars(c.visit, c.cars, NOW);
    expect(suggestCars(c.visit, c.cars, NOW, { limit: 1 })).toEqual(all.slice(0, 1));
    expect(suggestCars(c.visit, c.cars, NOW, { limit: 5 })).toEqual(all);
  });

  it('takes a road factor and speed from the caller', () => {
    // 10 km × 1.0 = 10 km at 60 km/h = 10 min.
    const [s] = suggestCars(visit(120), [car('A', south(10))], NOW, { roadFactor: 1, averageSpeedKmh: 60 });
    expectMinutes(s!.etaMs, 10);
    expect(() => suggestCars(visit(120), [], NOW, { averageSpeedKmh: 0 })).toThrow(ValidationError);
  });

  it('refuses a position off the globe, naming the car and field', () => {
    try {
      suggestCars(visit(120), [car('A', { lat: 95, lon: 0 })], NOW);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).issues.map((i) => i.path)).toEqual(['cars.0.lat']);
    }
  });

  it('measures the straight line as geolib does (within 0.5 %), over Britain', () => {
    const pairs = [
      [
        { lat: 50.1, lon: -5.5 },
        { lat: 58.6, lon: -3.1 },
      ],
      [
        { lat: 52.2, lon: -1.5 },
        { lat: 52.25, lon: -1.45 },
      ],
      [
        { lat: 51.5, lon: -0.1 },
        { lat: 53.4, lon: -2.2 },
      ],
    ] as const;
    for (const [a, b] of pairs) {
      const ours = roadDistanceKm(a, b) / ROAD_FACTOR;
      const theirs =
        getDistance({ latitude: a.lat, longitude: a.lon }, { latitude: b.lat, longitude: b.lon }, 0.1) / 1000;
      expect(Math.abs(ours - theirs) / theirs).toBeLessThan(0.005);
    }
  });
});

describe('estimateBusyUntilMs', () => {
  const here = south(10);
  it('travelling to its visit: the drive there plus the time on scene', () => {
    // 10 km → 21 min, + 30 min on scene = 51 min.
    const until = estimateBusyUntilMs(
      { status: 'travelling', statusSinceMs: NOW - 5 * MIN, ...here },
      visit(0),
      NOW,
    );
    expectMinutes(until!, 51);
  });
  it('on scene: the time on scene from arrival, or now once it has overrun', () => {
    const since10 = estimateBusyUntilMs(
      { status: 'on_scene', statusSinceMs: NOW - 10 * MIN, ...here },
      visit(0),
      NOW,
    );
    expect(since10).toBe(NOW + 20 * MIN);
    const since45 = estimateBusyUntilMs(
      { status: 'on_scene', statusSinceMs: NOW - 45 * MIN, ...here },
      visit(0),
      NOW,
    );
    expect(since45).toBe(NOW);
  });
  it('free statuses: null', () => {
    for (const status of ['available', 'leaving', 'back_at_base', 'off_duty'] as const)
      expect(estimateBusyUntilMs({ status, statusSinceMs: NOW, ...here }, null, NOW)).toBeNull();
  });
});

describe('visitTiming and the visits order', () => {
  it('on time, at risk within 30 minutes of the deadline, breached after it', () => {
    const deadline = NOW + 60 * MIN;
    expect(visitTiming(deadline, deadline - 31 * MIN)).toBe('on_time');
    expect(visitTiming(deadline, deadline - 30 * MIN)).toBe('on_time');
    expect(visitTiming(deadline, deadline - 30 * MIN + 1)).toBe('at_risk');
    expect(visitTiming(deadline, deadline)).toBe('at_risk');
    expect(visitTiming(deadline, deadline + 1)).toBe('breached');
    expect(visitTiming(deadline, deadline - 50 * MIN, 60)).toBe('at_risk');
  });
  it('orders visits by deadline, then priority, then id', () => {
    const list = [
      visit(60, { visitId: 'c', priority: 1 }),
      visit(30, { visitId: 'b', priority: 3 }),
      visit(60, { visitId: 'a', priority: 2 }),
      visit(30, { visitId: 'a2', priority: 3 }),
    ];
    expect([...list].sort(compareVisits).map((v) => v.visitId)).toEqual(['a2', 'b', 'c', 'a']);
  });
});
