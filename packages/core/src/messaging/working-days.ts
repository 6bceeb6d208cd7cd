/**
 * Working days in England and Wales, and the Post Event Message's due time: 08:00 (Europe/London) on
 * the next working day after the case ended (C11). Weekends and bank holidays are not working days.
 *
 * Local times are turned into instants through Intl (the runtime's time-zone database), never by
 * adding an hour for summer time by hand, so a clock change is handled wherever it falls.
 */

/**
 * Bank holidays in England and Wales, 2025–2028, as ISO dates (substitute days included where the
 * day falls at a weekend). Source: GOV.UK "UK bank holidays" (https://www.gov.uk/bank-holidays,
 * the england-and-wales division), checked by hand against the rules (Easter Sunday 2025-04-20,
 * 2026-04-05, 2027-03-28, 2028-04-16; first and last Monday of May, last Monday of August). Extend
 * the list each year: for a year not listed only weekends are skipped, which makes a PEM due early
 * (on the holiday), never late.
 */
// prettier-ignore
export const ENGLAND_AND_WALES_BANK_HOLIDAYS: ReadonlySet<string> = new Set([
  // 2025
  '2025-01-01', '2025-04-18', '2025-04-21', '2025-05-05', '2025-05-26', '2025-08-25', '2025-12-25', '2025-12-26',
  // 2026 (Boxing Day is a Saturday: substitute Monday 28 December)
  '2026-01-01', '2026-04-03', '2026-04-06', '2026-05-04', '2026-05-25', '2026-08-31', '2026-12-25', '2026-12-28',
  // 2027 (Christmas Day and Boxing Day at the weekend: substitutes 27 and 28 December)
  '2027-01-01', '2027-03-26', '2027-03-29', '2027-05-03', '2027-05-31', '2027-08-30', '2027-12-27', '2027-12-28',
  // 2028 (New Year's Day is a Saturday: substitute Monday 3 January)
  '2028-01-03', '2028-04-14', '2028-04-17', '2028-05-01', '2028-05-29', '2028-08-28', '2028-12-25', '2028-12-26',
]);

/** The years the bank holiday list covers. */
export const BANK_HOLIDAY_YEARS: readonly number[] = [2025, 2026, 2027, 2028];

export const LONDON = 'Europe/London';

const londonParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: LONDON,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** The wall-clock date and time in London at an instant. */
function londonWallClock(ms: number): { y: number; m: number; d: number; h: number; min: number; s: number } {
  const parts = Object.fromEntries(londonParts.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return {
    y: Number(parts.year),
    m: Number(parts.month),
    d: Number(parts.day),
    h: Number(parts.hour),
    min: Number(parts.minute),
    s: Number(parts.second),
  };
}

/** The London calendar date (YYYY-MM-DD) of an instant. */
export function londonDate(ms: number): string {
  const { y, m, d } = londonWallClock(ms);
  return `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/**
 * The instant at which London's clocks show `hour`:00 on `isoDate`. The offset is read from Intl at
 * that hour; British clocks change at 01:00 UTC, so for hours from 02:00 on the offset read at the
 * UTC guess is the offset of the local time itself.
 */
export function londonTimeToUtcMs(isoDate: string, hour: number): number {
  const [y, m, d] = isoDate.split('-').map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d, hour);
  const shown = londonWallClock(guess);
  const offsetMs = Date.UTC(shown.y, shown.m - 1, shown.d, shown.h, shown.min, shown.s) - guess;
  return guess - offsetMs;
}

/** Whether a calendar date (YYYY-MM-DD) is a working day in England and Wales. */
export function isWorkingDay(isoDate: string): boolean {
  const [y, m, d] = isoDate.split('-').map(Number) as [number, number, number];
  const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
  return weekday !== 0 && weekday !== 6 && !ENGLAND_AND_WALES_BANK_HOLIDAYS.has(isoDate);
}

function nextCalendarDate(isoDate: string): string {
  const [y, m, d] = isoDate.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/** The first working day after the London date of `endedAtMs`. */
export function nextWorkingDay(endedAtMs: number): string {
  let date = nextCalendarDate(londonDate(endedAtMs));
  while (!isWorkingDay(date)) date = nextCalendarDate(date);
  return date;
}

/** When a Post Event Message for a case that ended at `endedAtMs` is due: 08:00 London, next working day. */
export function pemDueAtMs(endedAtMs: number): number {
  return londonTimeToUtcMs(nextWorkingDay(endedAtMs), 8);
}
