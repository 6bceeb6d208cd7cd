import { describe, expect, it } from 'vitest';
import { isOpenAt, londonWallToMs, openingStatus } from '../src/directory/opening-times.ts';
import type { OpeningTimes } from '../src/directory/types.ts';
import { everyDay } from './directory-fixtures.ts';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const times = (weekly: OpeningTimes['weekly'], rest: Partial<OpeningTimes> = {}): OpeningTimes => ({
  alwaysOpen: false,
  weekly,
  bankHolidays: null,
  exceptions: [],
  ...rest,
});

const DAY = times(everyDay([{ opens: '08:00', closes: '22:00' }]));
const WEEKDAYS_ONLY = times({ ...everyDay([{ opens: '08:00', closes: '18:30' }]), sat: [], sun: [] });
const NIGHTS = times(everyDay([{ opens: '18:30', closes: '08:00' }]));
const TO_MIDNIGHT = times(everyDay([{ opens: '08:00', closes: '24:00' }]));
const ROUND_THE_CLOCK = times(everyDay([{ opens: '00:00', closes: '24:00' }]));
const SPLIT = times(
  everyDay([
    { opens: '08:00', closes: '12:00' },
    { opens: '14:00', closes: '18:00' },
  ]),
);

describe('Opening status words (Europe/London)', () => {
  it.each([
    ['open now, closing tonight', DAY, '2026-12-09T14:00:00Z', 'open until 22:00'],
    ['before opening, the same day', DAY, '2026-12-09T06:00:00Z', 'opens 08:00'],
    ['after closing: tomorrow by weekday', DAY, '2026-12-09T23:00:00Z', 'opens Thu 08:00'],
    ['Friday evening, weekdays only: Monday', WEEKDAYS_ONLY, '2026-12-11T19:00:00Z', 'opens Mon 08:00'],
    ['a night session past midnight', NIGHTS, '2026-12-10T02:00:00Z', 'open until 08:00'],
    [
      'a night session before midnight names the morning',
      NIGHTS,
      '2026-12-09T23:00:00Z',
      'open until Thu 08:00',
    ],
    ['a night session, evening', NIGHTS, '2026-12-09T19:00:00Z', 'open until Thu 08:00'],
    ['closing at midnight', TO_MIDNIGHT, '2026-12-09T20:00:00Z', 'open until midnight'],
    ['sessions meeting at midnight every day', ROUND_THE_CLOCK, '2026-12-09T20:00:00Z', 'open 24 hours'],
    ['always open', { ...DAY, alwaysOpen: true }, '2026-12-09T03:00:00Z', 'open 24 hours'],
    ['between two sessions', SPLIT, '2026-12-09T13:00:00Z', 'opens 14:00'],
    // Summer: 21:30 UTC is 22:30 BST, after closing.
    ['summer time: closing is at 22:00 BST', DAY, '2026-07-15T20:30:00Z', 'open until 22:00'],
    ['summer time: after 22:00 BST', DAY, '2026-07-15T21:30:00Z', 'opens Thu 08:00'],
    ['never open', times(everyDay([])), '2026-12-09T14:00:00Z', 'closed'],
  ])('%s', (_name, t, when, words) => {
    expect(openingStatus(t, at(when)).words).toBe(words);
  });

  it('a bank holiday keeps its own hours (Boxing Day substitute, Monday 28 December 2026)', () => {
    const t = times(everyDay([{ opens: '08:00', closes: '22:00' }]), {
      bankHolidays: [{ opens: '10:00', closes: '16:00' }],
    });
    expect(openingStatus(t, at('2026-12-28T09:00:00Z')).words).toBe('opens 10:00');
    expect(openingStatus(t, at('2026-12-28T12:00:00Z')).words).toBe('open until 16:00');
    expect(openingStatus(t, at('2026-12-29T12:00:00Z')).words).toBe('open until 22:00');
  });

  it('a dated exception closes the day and the words skip to the next opening', () => {
    const t = times(everyDay([{ opens: '08:00', closes: '22:00' }]), {
      exceptions: [{ date: '2026-12-09', sessions: [], note: 'Staff training' }],
    });
    expect(openingStatus(t, at('2026-12-09T14:00:00Z')).words).toBe('opens Thu 08:00');
    expect(isOpenAt(t, at('2026-12-09T14:00:00Z'))).toBe(false);
  });

  it('a night session across the clock changes is as long as the clocks on the wall say', () => {
    // Saturday 28 March 2026 18:30 GMT to Sunday 08:00 BST: 12½ hours.
    const spring = NIGHTS.weekly.sat[0]!;
    expect(spring).toEqual({ opens: '18:30', closes: '08:00' });
    expect(isOpenAt(NIGHTS, at('2026-03-29T06:59:00Z'))).toBe(true);
    expect(isOpenAt(NIGHTS, at('2026-03-29T07:00:00Z'))).toBe(false);
    // Saturday 24 October 2026 18:30 BST to Sunday 08:00 GMT: 14½ hours.
    expect(isOpenAt(NIGHTS, at('2026-10-25T07:59:00Z'))).toBe(true);
    expect(isOpenAt(NIGHTS, at('2026-10-25T08:00:00Z'))).toBe(false);
  });

  it('turns London wall-clock times into instants through the time-zone database', () => {
    expect(iso(londonWallToMs('2026-12-09', 8 * 60))).toBe('2026-12-09T08:00:00.000Z');
    expect(iso(londonWallToMs('2026-07-15', 8 * 60))).toBe('2026-07-15T07:00:00.000Z');
    // 01:30 does not exist on the spring-forward day: the clocks jump at 01:00 GMT.
    expect(iso(londonWallToMs('2026-03-29', 90))).toBe('2026-03-29T01:00:00.000Z');
    // 01:30 happens twice on the fall-back day: the first (BST) is taken.
    expect(iso(londonWallToMs('2026-10-25', 90))).toBe('2026-10-25T00:30:00.000Z');
    // 24:00 is the next midnight.
    expect(iso(londonWallToMs('2026-12-09', 1440))).toBe('2026-12-10T00:00:00.000Z');
  });
});
