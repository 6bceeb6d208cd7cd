import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatDateOfBirthForEntry,
  parseDateOfBirth,
  swapDayAndMonth,
} from '../src/patients/date-of-birth.ts';

const today = '2026-12-04';

describe('dates of birth typed day first, whatever the browser language', () => {
  it.each([
    ['03/05/1980', '1980-05-03'],
    ['3/5/1980', '1980-05-03'],
    ['03-05-1980', '1980-05-03'],
    ['03.05.1980', '1980-05-03'],
    ['03 05 1980', '1980-05-03'],
    [' 03 / 05 / 1980 ', '1980-05-03'],
    ['\uff10\uff13/\uff10\uff15/\uff11\uff19\uff18\uff10', '1980-05-03'], // full-width digits
    ['1980-05-03', '1980-05-03'], // ISO, as older clients send it
    ['29/02/2000', '2000-02-29'],
    ['04/12/2026', '2026-12-04'], // born today
  ])('%j is %s (day first, never month first)', (typed, iso) => {
    expect(parseDateOfBirth(typed, { today })).toEqual({ ok: true, kind: 'date', iso });
  });

  it.each([
    ['31/02/1980', 'is not a real date: February 1980 has 29 days, not 31'],
    ['29/02/1981', 'is not a real date: February 1981 has 28 days, not 29'],
    ['31/04/1990', 'is not a real date: April 1990 has 30 days, not 31'],
    ['12/31/1980', 'has no month 31: write the day first, then the month (31/12/1980, not 12/31/1980)'],
    ['13/13/1980', 'has no month 13: the month is 1 to 12 (e.g. 03/05/1980 for 3 May 1980)'],
    ['00/05/1980', 'has no day 0: the day is 1 to 31 (e.g. 03/05/1980 for 3 May 1980)'],
    ['03/05/80', 'needs the year in full (four digits): 80 could mean 1980 or 2080'],
    ['03/05/20', 'needs the year in full (four digits): 20 could mean 1920 or 2020'],
    ['03/05/980', 'needs a four-digit year (e.g. 03/05/1980 for 3 May 1980)'],
    ['05/12/2026', 'is in the future (5 December 2026)'],
    ['01/01/1850', 'is before 1900: check the year'],
    ['3 May 1980', 'must be written as day/month/year (e.g. 03/05/1980 for 3 May 1980)'],
    ['1980', 'needs the day and month too (e.g. 03/05/1980 for 3 May 1980)'],
    ['', 'is required (e.g. 03/05/1980 for 3 May 1980)'],
    ['1980-02-30', 'is not a real date: February 1980 has 29 days, not 30'],
  ])('%j is refused in plain words: %s', (typed, message) => {
    expect(parseDateOfBirth(typed, { today })).toEqual({ ok: false, message });
  });

  it('a year on its own only where a search allows it', () => {
    expect(parseDateOfBirth('1980', { today, allowYearOnly: true })).toEqual({
      ok: true,
      kind: 'year',
      year: '1980',
    });
    expect(parseDateOfBirth('2027', { today, allowYearOnly: true })).toEqual({
      ok: false,
      message: 'is in the future (2027)',
    });
  });

  it('every real date survives being written for entry and read back', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1900-01-01'), max: new Date('2026-12-04'), noInvalidDate: true }),
        (d) => {
          const iso = d.toISOString().slice(0, 10);
          expect(parseDateOfBirth(formatDateOfBirthForEntry(iso), { today })).toEqual({
            ok: true,
            kind: 'date',
            iso,
          });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('swaps day and month only into another real date', () => {
    expect(swapDayAndMonth('1980-05-03')).toBe('1980-03-05');
    expect(swapDayAndMonth('1980-05-13')).toBeNull();
    expect(swapDayAndMonth('1980-05-05')).toBeNull();
    expect(swapDayAndMonth('1980-02-12')).toBe('1980-12-02');
  });
});
