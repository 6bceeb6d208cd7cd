import { ENGLAND_AND_WALES_BANK_HOLIDAYS, LONDON } from '../messaging/working-days.ts';
import { WEEKDAYS, type OpeningSession, type OpeningTimes, type Weekday } from './types.ts';

/**
 * Opening times evaluated in Europe/London. A session is a pair of London wall-clock times on a
 * London calendar date; it becomes an interval of instants through Intl (the runtime's time-zone
 * database), never by adding an hour for summer time by hand, so a session on a clock-change day is
 * as long as the clocks on the wall say: 20:00–08:00 across the spring-forward night is 11 hours.
 *
 * A wall-clock time that does not exist (01:30 on the spring-forward day) is read as the instant the
 * clocks jump to (02:30 BST); a time that happens twice (01:30 on the fall-back day) as the first.
 */

/** 'HH:MM' from 00:00 to 23:59, or '24:00' (the end of the day, for a closing time). */
export const WALL_CLOCK_TIME = /^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$/;

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** How far ahead the opening words look for the next session. */
const LOOK_AHEAD_DAYS = 15;

const minutesOf = new Map<string, number>();

export function minutesOfDay(hhmm: string): number {
  let minutes = minutesOf.get(hhmm);
  if (minutes === undefined) {
    minutes = Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
    // Only well-formed times are remembered, so the map stays at most 1,441 entries.
    if (WALL_CLOCK_TIME.test(hhmm)) minutesOf.set(hhmm, minutes);
  }
  return minutes;
}

const londonParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: LONDON,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  weekday: 'short',
  hourCycle: 'h23',
});

interface LondonWall {
  date: string;
  minutes: number;
  weekday: Weekday;
}

/** The London date, minute of the day and weekday of an instant (to the minute). */
export function londonWall(ms: number): LondonWall {
  const p: Record<string, string> = {};
  for (const part of londonParts.formatToParts(new Date(ms))) p[part.type] = part.value;
  return {
    date: `${p.year}-${p.month}-${p.day}`,
    minutes: Number(p.hour) * 60 + Number(p.minute),
    weekday: (p.weekday ?? 'Mon').toLowerCase().slice(0, 3) as Weekday,
  };
}

/** London's offset from UTC at an instant, in ms (0 in winter, an hour in summer). */
function londonOffsetMs(ms: number): number {
  const floored = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
  const wall = londonWall(floored);
  const [y, m, d] = wall.date.split('-').map(Number) as [number, number, number];
  return Date.UTC(y, m - 1, d, 0, wall.minutes) - floored;
}

export function addDays(isoDate: string, days: number): string {
  const [y, m, d] = isoDate.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export function weekdayOf(isoDate: string): Weekday {
  const [y, m, d] = isoDate.split('-').map(Number) as [number, number, number];
  // getUTCDay: 0 is Sunday.
  return WEEKDAYS[(new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7]!;
}

// Conversions repeat (most services open at the same few times), so they are remembered; the map is
// emptied when large, which changes no answer.
const wallToMsCache = new Map<string, number>();

/** The instant London's clocks show `minutes` past midnight on `isoDate` (1440 = the next midnight). */
export function londonWallToMs(isoDate: string, minutes: number): number {
  const key = `${isoDate} ${minutes}`;
  const known = wallToMsCache.get(key);
  if (known !== undefined) return known;
  const [y, m, d] = isoDate.split('-').map(Number) as [number, number, number];
  const asUtc = Date.UTC(y, m - 1, d, 0, minutes);
  // London's offset changes at most once a day: the offsets half a day either side are the two
  // candidates; an instant is the answer when London shows that offset at it.
  const before = londonOffsetMs(asUtc - DAY_MS / 2);
  const after = londonOffsetMs(asUtc + DAY_MS / 2);
  const valid = [asUtc - before, asUtc - after].filter(
    (t, i) => londonOffsetMs(t) === (i === 0 ? before : after),
  );
  // None valid: the time falls in the spring-forward gap, which the clocks jump over; a session
  // opening or closing then does so at the jump.
  const instant = valid.length > 0 ? Math.min(...valid) : jumpBetween(asUtc - after, asUtc - before, after);
  if (wallToMsCache.size > 100_000) wallToMsCache.clear();
  wallToMsCache.set(key, instant);
  return instant;
}

/** The first whole minute in [lowMs, highMs] at which London's offset is `offsetAfter`. */
function jumpBetween(lowMs: number, highMs: number, offsetAfter: number): number {
  let low = lowMs;
  let high = highMs;
  while (high - low > MINUTE_MS) {
    const mid = low + Math.floor((high - low) / 2 / MINUTE_MS) * MINUTE_MS;
    if (londonOffsetMs(mid) === offsetAfter) high = mid;
    else low = mid;
  }
  return high;
}

export interface Interval {
  startMs: number;
  endMs: number;
}

/** The sessions that start on a London date: its exception, else a bank holiday's, else the weekday's. */
export function sessionsOn(
  times: OpeningTimes,
  isoDate: string,
  bankHolidays: ReadonlySet<string> = ENGLAND_AND_WALES_BANK_HOLIDAYS,
  weekday: Weekday = weekdayOf(isoDate),
): readonly OpeningSession[] {
  for (const exception of times.exceptions) if (exception.date === isoDate) return exception.sessions;
  if (times.bankHolidays !== null && bankHolidays.has(isoDate)) return times.bankHolidays;
  return times.weekly[weekday];
}

/** A session on a date as instants; closes at or before opens runs past midnight (equal: 24 hours). */
export function sessionInterval(isoDate: string, session: OpeningSession): Interval {
  const opens = minutesOfDay(session.opens);
  let closes = minutesOfDay(session.closes);
  if (closes <= opens) closes += 1440;
  return {
    startMs: londonWallToMs(isoDate, opens),
    endMs:
      closes > 1440 ? londonWallToMs(addDays(isoDate, 1), closes - 1440) : londonWallToMs(isoDate, closes),
  };
}

/** The London dates whose sessions may touch [fromMs, toMs]: the day before (overnight sessions) on. */
export function datesCovering(fromMs: number, toMs: number): { date: string; weekday: Weekday }[] {
  const first = addDays(londonWall(fromMs).date, -1);
  const last = londonWall(toMs).date;
  const out: { date: string; weekday: Weekday }[] = [];
  for (let date = first; date <= last; date = addDays(date, 1)) out.push({ date, weekday: weekdayOf(date) });
  return out;
}

/**
 * The London days of one window, worked out once for a search over many services: each date's
 * weekday, whether it is a bank holiday, and its midnight as an instant (through Intl). On a day
 * whose next two midnights are exactly 24 hours apart the clocks do not change, so a wall-clock time
 * that day (or past midnight into the next) is its midnight plus the minutes; on a clock-change day
 * every time goes through `londonWallToMs`.
 */
export class LondonDays {
  readonly days: {
    date: string;
    weekday: Weekday;
    bankHoliday: boolean;
    midnightMs: number;
    steady: boolean;
  }[];

  constructor(
    fromMs: number,
    toMs: number,
    bankHolidays: ReadonlySet<string> = ENGLAND_AND_WALES_BANK_HOLIDAYS,
  ) {
    const dates = datesCovering(fromMs, toMs);
    const midnights = [...dates.map((d) => londonWallToMs(d.date, 0))];
    const after = addDays(dates[dates.length - 1]!.date, 1);
    midnights.push(londonWallToMs(after, 0), londonWallToMs(addDays(after, 1), 0));
    this.days = dates.map((d, i) => ({
      ...d,
      bankHoliday: bankHolidays.has(d.date),
      midnightMs: midnights[i]!,
      steady:
        midnights[i + 1]! - midnights[i]! === DAY_MS && midnights[i + 2]! - midnights[i + 1]! === DAY_MS,
    }));
  }

  /** The instant of `minutes` past midnight (up to 2880: into the next day) on day `i`. */
  at(i: number, minutes: number): number {
    const day = this.days[i]!;
    if (day.steady) return day.midnightMs + minutes * MINUTE_MS;
    return minutes >= 1440
      ? londonWallToMs(addDays(day.date, 1), minutes - 1440)
      : londonWallToMs(day.date, minutes);
  }

  /** The sessions that start on day `i`: its exception, else a bank holiday's, else the weekday's. */
  sessionsOf(times: OpeningTimes, i: number): readonly OpeningSession[] {
    const day = this.days[i]!;
    for (const exception of times.exceptions) if (exception.date === day.date) return exception.sessions;
    return times.bankHolidays !== null && day.bankHoliday ? times.bankHolidays : times.weekly[day.weekday];
  }

  /**
   * Whether the service is open at some instant of [fromMs, toMs] (both ends included), without
   * building its periods: a search asks it of every service.
   */
  openWithin(times: OpeningTimes, fromMs: number, toMs: number): boolean {
    if (times.alwaysOpen) return true;
    for (let i = 0; i < this.days.length; i++) {
      for (const session of this.sessionsOf(times, i)) {
        const opens = minutesOfDay(session.opens);
        let closes = minutesOfDay(session.closes);
        if (closes <= opens) closes += 1440;
        if (this.at(i, opens) <= toMs && this.at(i, closes) > fromMs) return true;
      }
    }
    return false;
  }
}

/** The days `openingStatus` looks at from an instant: about two weeks ahead. */
export function lookAheadDays(atMs: number, bankHolidays?: ReadonlySet<string>): LondonDays {
  return new LondonDays(atMs, atMs + LOOK_AHEAD_DAYS * DAY_MS, bankHolidays);
}

const ALWAYS: Interval = { startMs: -8.64e15, endMs: 8.64e15 };

/**
 * The service's open periods that touch [fromMs, toMs], in order, with sessions that meet or overlap
 * joined (08:00–24:00 then 00:00–02:00 is one period). `days` may be given when many services are
 * evaluated over the same window (it must cover it).
 */
export function openPeriods(
  times: OpeningTimes,
  fromMs: number,
  toMs: number,
  bankHolidays: ReadonlySet<string> = ENGLAND_AND_WALES_BANK_HOLIDAYS,
  days: LondonDays = new LondonDays(fromMs, toMs, bankHolidays),
): Interval[] {
  if (times.alwaysOpen) return [ALWAYS];
  const all: Interval[] = [];
  days.days.forEach((day, i) => {
    for (const session of days.sessionsOf(times, i)) {
      const opens = minutesOfDay(session.opens);
      let closes = minutesOfDay(session.closes);
      if (closes <= opens) closes += 1440;
      const interval = { startMs: days.at(i, opens), endMs: days.at(i, closes) };
      if (interval.endMs > interval.startMs) all.push(interval);
    }
  });
  all.sort((a, b) => a.startMs - b.startMs);
  const merged: Interval[] = [];
  for (const interval of all) {
    const last = merged[merged.length - 1];
    if (last && interval.startMs <= last.endMs) last.endMs = Math.max(last.endMs, interval.endMs);
    else merged.push({ ...interval });
  }
  return merged.filter((p) => p.endMs > fromMs && p.startMs <= toMs);
}

/** Whether the service is open at some instant of [fromMs, toMs] (both ends included). */
export function isOpenWithin(
  times: OpeningTimes,
  fromMs: number,
  toMs: number,
  bankHolidays: ReadonlySet<string> = ENGLAND_AND_WALES_BANK_HOLIDAYS,
): boolean {
  return new LondonDays(fromMs, toMs, bankHolidays).openWithin(times, fromMs, toMs);
}

export function isOpenAt(times: OpeningTimes, atMs: number, bankHolidays?: ReadonlySet<string>): boolean {
  return openPeriods(times, atMs, atMs, bankHolidays).some((p) => p.startMs <= atMs && atMs < p.endMs);
}

export interface OpeningStatus {
  openNow: boolean;
  /** When it next opens (null while open, or when no session starts within about two weeks). */
  opensAtMs: number | null;
  /** When the current open period ends (null while closed, or open beyond the look-ahead). */
  closesAtMs: number | null;
  /** 'open until 22:00', 'opens 08:00', 'opens Mon 08:00', 'open 24 hours', 'closed'. */
  words: string;
}

function clockWords(ms: number): string {
  const minutes = londonWall(ms).minutes;
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

const DAY_NAME: Record<Weekday, string> = {
  mon: 'Mon',
  tue: 'Tue',
  wed: 'Wed',
  thu: 'Thu',
  fri: 'Fri',
  sat: 'Sat',
  sun: 'Sun',
};

/**
 * The time of day, with the weekday when it is not today's London date (and the date beyond a week).
 * A closing time at the midnight that ends today is "midnight", not tomorrow's 00:00.
 */
function whenWords(ms: number, atMs: number, closing = false): string {
  const at = londonWall(ms);
  if (closing && at.minutes === 0 && londonWall(ms - MINUTE_MS).date === londonWall(atMs).date)
    return 'midnight';
  if (at.date === londonWall(atMs).date) return clockWords(ms);
  const day =
    ms - atMs < 6 * DAY_MS
      ? DAY_NAME[at.weekday]
      : `${DAY_NAME[at.weekday]} ${at.date.slice(8)}/${at.date.slice(5, 7)}`;
  return `${day} ${clockWords(ms)}`;
}

/** Whether a service is open at an instant, and the words an adviser reads out. */
export function openingStatus(
  times: OpeningTimes,
  atMs: number,
  bankHolidays: ReadonlySet<string> = ENGLAND_AND_WALES_BANK_HOLIDAYS,
  /** The days of the look-ahead from `atMs` (`lookAheadDays`), when many services share them. */
  days?: LondonDays,
): OpeningStatus {
  if (times.alwaysOpen) return { openNow: true, opensAtMs: null, closesAtMs: null, words: 'open 24 hours' };
  const horizon = atMs + LOOK_AHEAD_DAYS * DAY_MS;
  const periods = openPeriods(times, atMs, horizon, bankHolidays, days ?? lookAheadDays(atMs, bankHolidays));
  const current = periods.find((p) => p.startMs <= atMs && atMs < p.endMs);
  if (current) {
    // Open to the end of what was looked at: open around the clock as far as anyone needs to know.
    if (current.endMs >= horizon)
      return { openNow: true, opensAtMs: null, closesAtMs: null, words: 'open 24 hours' };
    return {
      openNow: true,
      opensAtMs: null,
      closesAtMs: current.endMs,
      words: `open until ${whenWords(current.endMs, atMs, true)}`,
    };
  }
  const next = periods.find((p) => p.startMs > atMs);
  if (!next) return { openNow: false, opensAtMs: null, closesAtMs: null, words: 'closed' };
  return {
    openNow: false,
    opensAtMs: next.startMs,
    closesAtMs: null,
    words: `opens ${whenWords(next.startMs, atMs)}`,
  };
}

/** Problems with a set of opening times, as paths and plain words (for the directory file checks). */
export function openingTimesProblems(times: OpeningTimes): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const checkSessions = (sessions: readonly OpeningSession[], path: string) =>
    sessions.forEach((s, i) => {
      if (!WALL_CLOCK_TIME.test(s.opens) || s.opens === '24:00')
        problems.push({
          path: `${path}[${i}].opens`,
          message: 'must be a time of day as HH:MM (00:00 to 23:59)',
        });
      if (!WALL_CLOCK_TIME.test(s.closes))
        problems.push({
          path: `${path}[${i}].closes`,
          message: 'must be a time of day as HH:MM (00:00 to 24:00)',
        });
    });
  for (const day of WEEKDAYS) checkSessions(times.weekly[day], `weekly.${day}`);
  if (times.bankHolidays) checkSessions(times.bankHolidays, 'bankHolidays');
  times.exceptions.forEach((e, i) => checkSessions(e.sessions, `exceptions[${i}].sessions`));
  return problems;
}
