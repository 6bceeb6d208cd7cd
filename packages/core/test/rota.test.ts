import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.ts';
import { parseRotaCsv, rotaTimeToMs } from '../src/rota/csv.ts';
import {
  crewOf,
  nextOnDuty,
  onDuty,
  parseShiftInput,
  staffingGaps,
  type Shift,
  type StaffingMinimum,
} from '../src/rota/shifts.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);
// A winter day (GMT: UK time = UTC) and a summer day (BST: UK time = UTC + 1).
const DEC5 = utc(2026, 12, 5);
const JUL1 = utc(2026, 7, 1);

let serial = 0;
function shift(
  userId: string,
  role: Shift['role'],
  location: Shift['location'],
  startMs: number,
  endMs: number,
): Shift {
  serial += 1;
  return { shiftId: `s${serial}`, userId, userName: `${userId}@northshire`, role, location, startMs, endMs };
}
const SITE_A = { kind: 'site', id: 'site-a' } as const;
const SITE_B = { kind: 'site', id: 'site-b' } as const;
const CAS = { kind: 'cas', id: null } as const;
const car = (id: string) => ({ kind: 'car', id }) as const;

describe('on duty now and next', () => {
  const early = shift('amy', 'clinician', SITE_A, DEC5 + 8 * HOUR, DEC5 + 16 * HOUR);
  const late = shift('ben', 'clinician', SITE_A, DEC5 + 16 * HOUR, DEC5 + 24 * HOUR);
  const later = shift('cat', 'clinician', SITE_A, DEC5 + 18 * HOUR, DEC5 + 26 * HOUR);
  const adviser = shift('dan', 'health_adviser', CAS, DEC5 + 7 * HOUR, DEC5 + 19 * HOUR);
  const siteB = shift('eve', 'clinician', SITE_B, DEC5 + 20 * HOUR, DEC5 + 28 * HOUR);
  const all = [later, siteB, late, adviser, early];

  it('a shift covers its start but not its end, so a handover at 16:00 has exactly one on duty', () => {
    expect(onDuty(all, DEC5 + 8 * HOUR - 1, { role: 'clinician' })).toEqual([]);
    expect(onDuty(all, DEC5 + 8 * HOUR, { role: 'clinician' })).toEqual([early]);
    expect(onDuty(all, DEC5 + 16 * HOUR, { role: 'clinician' })).toEqual([late]);
    expect(onDuty(all, DEC5 + 16 * HOUR - 1, { role: 'clinician' })).toEqual([early]);
  });

  it('filters by role, location (kind alone or kind and id) and user', () => {
    const at = DEC5 + 12 * HOUR;
    expect(onDuty(all, at)).toEqual([adviser, early]);
    expect(onDuty(all, at, { location: { kind: 'cas' } })).toEqual([adviser]);
    expect(onDuty(all, at, { location: { kind: 'site', id: 'site-b' } })).toEqual([]);
    expect(onDuty(all, at, { role: ['health_adviser', 'clinician'], userId: 'amy' })).toEqual([early]);
  });

  it('next: the soonest shift to start for each place and role, not the ones already running', () => {
    // At 12:00: Amy is on; next at site A is Ben at 16:00 (Cat at 18:00 is after him); at site B Eve.
    expect(nextOnDuty(all, DEC5 + 12 * HOUR, { role: 'clinician' })).toEqual([late, siteB]);
    expect(nextOnDuty(all, DEC5 + 12 * HOUR, { location: { kind: 'site', id: 'site-a' } })).toEqual([late]);
    // At 17:00: Ben is on, Cat is next at site A.
    expect(nextOnDuty(all, DEC5 + 17 * HOUR, { location: { kind: 'site', id: 'site-a' } })).toEqual([later]);
  });
});

describe('staffing gaps against minimums', () => {
  it('finds the stretches with fewer people than the minimum, with how many were on', () => {
    // Minimum 2 clinicians at site A all day on 5 Dec. Amy 08–16, Ben 12–20: 2 on only 12–16.
    const shifts = [
      shift('amy', 'clinician', SITE_A, DEC5 + 8 * HOUR, DEC5 + 16 * HOUR),
      shift('ben', 'clinician', SITE_A, DEC5 + 12 * HOUR, DEC5 + 20 * HOUR),
      shift('cat', 'clinician', SITE_B, DEC5, DEC5 + 24 * HOUR), // another site: does not count
      shift('dan', 'health_adviser', SITE_A, DEC5, DEC5 + 24 * HOUR), // another role: does not count
    ];
    const minimum: StaffingMinimum = { role: 'clinician', location: SITE_A, minimum: 2 };
    const gaps = staffingGaps(shifts, [minimum], DEC5, DEC5 + 24 * HOUR);
    const base = { role: 'clinician', location: SITE_A, minimum: 2 };
    expect(gaps).toEqual([
      { ...base, fromMs: DEC5, toMs: DEC5 + 8 * HOUR, onDuty: 0 },
      { ...base, fromMs: DEC5 + 8 * HOUR, toMs: DEC5 + 12 * HOUR, onDuty: 1 },
      { ...base, fromMs: DEC5 + 16 * HOUR, toMs: DEC5 + 20 * HOUR, onDuty: 1 },
      { ...base, fromMs: DEC5 + 20 * HOUR, toMs: DEC5 + 24 * HOUR, onDuty: 0 },
    ]);
  });

  it('counts a person with two overlapping shifts once', () => {
    const shifts = [
      shift('amy', 'clinician', SITE_A, DEC5 + 8 * HOUR, DEC5 + 16 * HOUR),
      shift('amy', 'clinician', SITE_A, DEC5 + 10 * HOUR, DEC5 + 12 * HOUR),
    ];
    const gaps = staffingGaps(
      shifts,
      [{ role: 'clinician', location: SITE_A, minimum: 2 }],
      DEC5 + 8 * HOUR,
      DEC5 + 16 * HOUR,
    );
    expect(gaps.map((g) => [g.fromMs, g.toMs, g.onDuty])).toEqual([[DEC5 + 8 * HOUR, DEC5 + 16 * HOUR, 1]]);
  });

  it('applies a daily window in UK time: 08:00–20:00 BST is 07:00–19:00 UTC in July', () => {
    const minimum: StaffingMinimum = {
      role: 'driver',
      location: car('car-1'),
      minimum: 1,
      fromLocal: '08:00',
      toLocal: '20:00',
    };
    const shifts = [shift('dev', 'driver', car('car-1'), JUL1 + 7 * HOUR, JUL1 + 15 * HOUR)];
    const gaps = staffingGaps(shifts, [minimum], JUL1, JUL1 + 24 * HOUR);
    expect(gaps.map((g) => [g.fromMs, g.toMs, g.onDuty])).toEqual([[JUL1 + 15 * HOUR, JUL1 + 19 * HOUR, 0]]);
  });

  it('a night window (20:00–08:00) runs past midnight', () => {
    const minimum: StaffingMinimum = {
      role: 'clinician',
      location: CAS,
      minimum: 1,
      fromLocal: '20:00',
      toLocal: '08:00',
    };
    const shifts = [shift('amy', 'clinician', CAS, DEC5 + 20 * HOUR, DEC5 + 26 * HOUR)];
    const gaps = staffingGaps(shifts, [minimum], DEC5 + 12 * HOUR, DEC5 + 36 * HOUR);
    // Covered 20:00–02:00; the gap is 02:00–08:00 on the 6th.
    expect(gaps.map((g) => [g.fromMs, g.toMs])).toEqual([[DEC5 + 26 * HOUR, DEC5 + 32 * HOUR]]);
  });

  it('a minimum that is met leaves no gap; a minimum of 0 never does', () => {
    const shifts = [shift('amy', 'clinician', SITE_A, DEC5, DEC5 + 24 * HOUR)];
    expect(
      staffingGaps(shifts, [{ role: 'clinician', location: SITE_A, minimum: 1 }], DEC5, DEC5 + 24 * HOUR),
    ).toEqual([]);
    expect(
      staffingGaps([], [{ role: 'clinician', location: SITE_A, minimum: 0 }], DEC5, DEC5 + HOUR),
    ).toEqual([]);
  });

  it('a car with a driver but no clinician shows as a clinician gap on that car', () => {
    const shifts = [shift('dev', 'driver', car('car-1'), DEC5 + 8 * HOUR, DEC5 + 16 * HOUR)];
    const minimums: StaffingMinimum[] = [
      { role: 'driver', location: car('car-1'), minimum: 1 },
      { role: 'clinician', location: car('car-1'), minimum: 1 },
    ];
    const gaps = staffingGaps(shifts, minimums, DEC5 + 8 * HOUR, DEC5 + 16 * HOUR);
    expect(gaps).toEqual([
      {
        role: 'clinician',
        location: car('car-1'),
        fromMs: DEC5 + 8 * HOUR,
        toMs: DEC5 + 16 * HOUR,
        onDuty: 0,
        minimum: 1,
      },
    ]);
  });
});

describe('a car and its crew', () => {
  const at = DEC5 + 10 * HOUR;
  const driver = shift('dev', 'driver', car('car-1'), DEC5 + 8 * HOUR, DEC5 + 16 * HOUR);
  const clinician = shift('amy', 'clinician', car('car-1'), DEC5 + 8 * HOUR, DEC5 + 16 * HOUR);

  it('is available with a driver and a clinician on shift on it', () => {
    expect(crewOf('car-1', [driver, clinician], at)).toEqual({ driver, clinician, available: true });
  });

  it('is not available without a clinician on shift, even with a driver', () => {
    expect(crewOf('car-1', [driver], at)).toEqual({ driver, clinician: null, available: false });
    // The clinician's shift has ended; one on another car or at a site does not crew this one.
    const ended = shift('amy', 'clinician', car('car-1'), DEC5 + 4 * HOUR, DEC5 + 10 * HOUR);
    const elsewhere = shift('ben', 'clinician', car('car-2'), DEC5, DEC5 + 24 * HOUR);
    const atSite = shift('cat', 'prescriber', SITE_A, DEC5, DEC5 + 24 * HOUR);
    expect(crewOf('car-1', [driver, ended, elsewhere, atSite], at).available).toBe(false);
  });

  it('is not available without a driver; a prescriber crews a car as its clinician', () => {
    expect(crewOf('car-1', [clinician], at).available).toBe(false);
    const prescriber = shift('pat', 'prescriber', car('car-1'), DEC5 + 8 * HOUR, DEC5 + 16 * HOUR);
    expect(crewOf('car-1', [driver, prescriber], at).clinician).toEqual(prescriber);
  });
});

describe('a shift as entered', () => {
  it('is refused with the field named: end before start, too long, the CAS with an id, a site without one', () => {
    const good = {
      userId: 'u1',
      userName: 'amy@northshire',
      role: 'clinician',
      location: SITE_A,
      startMs: DEC5,
      endMs: DEC5 + 8 * HOUR,
    };
    expect(parseShiftInput(good)).toEqual(good);
    const paths = (value: unknown) => {
      try {
        parseShiftInput(value);
      } catch (e) {
        expect(e).toBeInstanceOf(ValidationError);
        return (e as ValidationError).issues.map((i) => i.path);
      }
      throw new Error('accepted');
    };
    expect(paths({ ...good, endMs: DEC5 })).toEqual(['endMs']);
    expect(paths({ ...good, endMs: DEC5 + 25 * HOUR })).toEqual(['endMs']);
    expect(paths({ ...good, location: { kind: 'cas', id: 'x' } })).toEqual(['location.id']);
    expect(paths({ ...good, location: { kind: 'site', id: null } })).toEqual(['location.id']);
    expect(paths({ ...good, role: 'surgeon' })).toEqual(['role']);
  });
});

describe('rota CSV files', () => {
  const HEADER = 'user,role,location,locationId,start,end';

  it('reads shifts in UK time, the CAS without an id, quoted cells and a byte-order mark', () => {
    const text = [
      '\uFEFF' + HEADER,
      'amy@northshire,clinician,site,site-a,2026-12-05 08:00,2026-12-05 16:00',
      '"dev@northshire",driver,car,car-1,2026-07-01T08:00,2026-07-01 20:00',
      'dan@northshire,health_adviser,cas,,2026-12-05 20:00,2026-12-06 08:00',
      '',
    ].join('\n');
    const { shifts, problems } = parseRotaCsv(text);
    expect(problems).toEqual([]);
    expect(shifts).toEqual([
      {
        line: 2,
        userName: 'amy@northshire',
        role: 'clinician',
        location: SITE_A,
        startMs: DEC5 + 8 * HOUR,
        endMs: DEC5 + 16 * HOUR,
      },
      {
        line: 3,
        userName: 'dev@northshire',
        role: 'driver',
        location: car('car-1'),
        // 08:00 BST is 07:00 UTC.
        startMs: JUL1 + 7 * HOUR,
        endMs: JUL1 + 19 * HOUR,
      },
      {
        line: 4,
        userName: 'dan@northshire',
        role: 'health_adviser',
        location: CAS,
        startMs: DEC5 + 20 * HOUR,
        endMs: DEC5 + 32 * HOUR,
      },
    ]);
  });

  it('names the line and field of every problem, and returns no shifts', () => {
    const text = [
      HEADER,
      'amy@northshire,clinician,site,site-a,2026-12-05 08:00,2026-12-05 16:00',
      'ben@northshire,surgeon,site,site-a,2026-12-05 08:00,2026-12-05 16:00',
      'cat@northshire,clinician,car,,2026-12-05 08:00,2026-12-05 16:00',
      'dan@northshire,clinician,ward,x,2026-12-05 08:00,2026-12-05 16:00',
      'eve@northshire,clinician,site,site-a,2026-12-05 16:00,2026-12-05 08:00',
      ',clinician,site,site-a,5/12/2026 08:00,2026-12-05 16:00',
      'fay@northshire,clinician,cas,x,2026-02-30 08:00,2026-12-06 09:00',
      'amy@northshire,clinician,site,site-b,2026-12-05 15:00,2026-12-05 20:00',
    ].join('\n');
    const { shifts, problems } = parseRotaCsv(text);
    expect(shifts).toEqual([]);
    expect(problems.map((p) => `${p.line} ${p.field}`)).toEqual([
      '3 role',
      '4 locationId',
      '5 location',
      '6 end',
      '7 user',
      '7 start',
      '8 locationId',
      '8 start',
      '9 start',
    ]);
    expect(problems.find((p) => p.line === 6)!.message).toBe('end must be after start');
    expect(problems.find((p) => p.line === 9)!.message).toBe("overlaps the same user's shift on line 2");
    expect(problems.find((p) => p.line === 7 && p.field === 'start')!.message).toMatch(/2026-12-05 08:00/);
  });

  it('refuses a shift longer than 24 hours', () => {
    const { problems } = parseRotaCsv(
      [HEADER, 'amy@northshire,clinician,site,site-a,2026-12-05 08:00,2026-12-06 09:00'].join('\n'),
    );
    expect(problems).toEqual([{ line: 2, field: 'end', message: 'a shift may be at most 24 hours long' }]);
  });

  it('refuses a UK time the clocks skip, and one they show twice unless the offset is given', () => {
    // 2026: clocks go forward 29 March 01:00 GMT, back 25 October 02:00 BST.
    expect(rotaTimeToMs('2026-03-29 01:30')).toEqual({ problem: expect.stringMatching(/does not exist/) });
    expect(rotaTimeToMs('2026-10-25 01:30')).toEqual({ problem: expect.stringMatching(/happens twice/) });
    expect(rotaTimeToMs('2026-10-25T01:30+01:00')).toEqual({ ms: utc(2026, 10, 25, 0, 30) });
    expect(rotaTimeToMs('2026-10-25T01:30Z')).toEqual({ ms: utc(2026, 10, 25, 1, 30) });
    expect(rotaTimeToMs('2026-03-29 02:00')).toEqual({ ms: utc(2026, 3, 29, 1, 0) });
    const { problems } = parseRotaCsv(
      [HEADER, 'amy@northshire,clinician,site,site-a,2026-10-25 01:30,2026-10-25 08:00'].join('\n'),
    );
    expect(problems.map((p) => `${p.line} ${p.field}`)).toEqual(['2 start']);
  });

  it('names missing and unknown columns on line 1', () => {
    const { problems } = parseRotaCsv(
      'user,role,place,locationId,start,end\nx,clinician,site,a,2026-12-05 08:00,2026-12-05 09:00',
    );
    expect(problems).toEqual([
      { line: 1, field: 'location', message: 'this column is missing' },
      { line: 1, field: 'place', message: 'is not a column of rota files' },
    ]);
  });

  it('names the line of broken CSV, and refuses an empty file', () => {
    const broken = parseRotaCsv(
      [
        HEADER,
        'amy@northshire,clinician,site,site-a,2026-12-05 08:00,2026-12-05 16:00',
        'ben,"clinician,site',
      ].join('\n'),
    );
    expect(broken.problems).toHaveLength(1);
    expect(broken.problems[0]).toMatchObject({ line: 3, field: 'row' });
    expect(parseRotaCsv('').problems).toEqual([{ line: 1, field: 'row', message: 'the file is empty' }]);
    expect(parseRotaCsv(HEADER + '\n').problems).toEqual([
      { line: 2, field: 'row', message: 'the file has no shifts' },
    ]);
  });
});
