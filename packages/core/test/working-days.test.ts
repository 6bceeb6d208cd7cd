import { describe, expect, it } from 'vitest';
import {
  BANK_HOLIDAY_YEARS,
  ENGLAND_AND_WALES_BANK_HOLIDAYS,
  isWorkingDay,
  pemDueAtMs,
} from '../src/messaging/working-days.ts';

const at = (iso: string) => Date.parse(iso);
const due = (endedAt: string) => new Date(pemDueAtMs(at(endedAt))).toISOString();

describe('Post Event Message due time: 08:00 Europe/London on the next working day', () => {
  it.each([
    // An ordinary weekday evening (winter, GMT): 08:00 UTC next morning.
    ['Tuesday evening in winter', '2026-12-01T20:00:00Z', '2026-12-02T08:00:00.000Z'],
    // Summer time (BST): 08:00 local is 07:00 UTC.
    ['Wednesday evening in summer', '2026-07-15T21:30:00Z', '2026-07-16T07:00:00.000Z'],
    // After midnight London time in summer (23:30 UTC is 00:30 BST Thursday): due Friday.
    ['just after midnight BST', '2026-07-15T23:30:00Z', '2026-07-17T07:00:00.000Z'],
    ['Friday evening: due Monday', '2026-12-04T19:00:00Z', '2026-12-07T08:00:00.000Z'],
    ['Saturday: due Monday', '2026-12-05T11:00:00Z', '2026-12-07T08:00:00.000Z'],
    // Easter 2026: Good Friday 3 April and Easter Monday 6 April are bank holidays (BST).
    ['Thursday before Good Friday', '2026-04-02T18:00:00Z', '2026-04-07T07:00:00.000Z'],
    ['Good Friday itself', '2026-04-03T10:00:00Z', '2026-04-07T07:00:00.000Z'],
    // Friday evening before the early May bank holiday Monday (4 May 2026): due Tuesday.
    ['Friday before a bank holiday Monday', '2026-05-01T19:00:00Z', '2026-05-05T07:00:00.000Z'],
    // Clocks go forward Sunday 29 March 2026: Friday in GMT, due Monday 08:00 BST = 07:00 UTC.
    ['Friday before the spring clock change', '2026-03-27T20:00:00Z', '2026-03-30T07:00:00.000Z'],
    // Clocks go back Sunday 25 October 2026: Friday in BST, due Monday 08:00 GMT = 08:00 UTC.
    ['Friday before the autumn clock change', '2026-10-23T19:00:00Z', '2026-10-26T08:00:00.000Z'],
    // On the night of the autumn change itself (01:30 happens twice).
    ['during the repeated hour of the autumn change', '2026-10-25T00:30:00Z', '2026-10-26T08:00:00.000Z'],
    // Christmas 2026: 25 Dec (Fri) and the Boxing Day substitute (Mon 28 Dec).
    ['Christmas Eve 2026', '2026-12-24T20:00:00Z', '2026-12-29T08:00:00.000Z'],
    // Christmas 2027: both days at the weekend, substitutes Mon 27 and Tue 28 Dec.
    ['Christmas Eve 2027', '2027-12-24T20:00:00Z', '2027-12-29T08:00:00.000Z'],
    // New Year 2028: 1 Jan is a Saturday, substitute Monday 3 January.
    ['New Year 2028', '2027-12-31T20:00:00Z', '2028-01-04T08:00:00.000Z'],
    // Easter 2027 falls on the spring clock change weekend (28 March): Good Friday in GMT, due Tuesday BST.
    ['Easter 2027 with the clock change', '2027-03-25T20:00:00Z', '2027-03-30T07:00:00.000Z'],
  ])('%s: ended %s → due %s', (_name, endedAt, expected) => {
    expect(due(endedAt)).toBe(expected);
  });

  it('every listed bank holiday is a weekday, each year has eight, and none is a working day', () => {
    for (const date of ENGLAND_AND_WALES_BANK_HOLIDAYS) {
      const weekday = new Date(`${date}T12:00:00Z`).getUTCDay();
      expect(weekday, date).not.toBe(0);
      expect(weekday, date).not.toBe(6);
      expect(isWorkingDay(date)).toBe(false);
    }
    for (const year of BANK_HOLIDAY_YEARS)
      expect([...ENGLAND_AND_WALES_BANK_HOLIDAYS].filter((d) => d.startsWith(`${year}-`))).toHaveLength(8);
    expect(isWorkingDay('2026-12-04')).toBe(true);
  });
});
