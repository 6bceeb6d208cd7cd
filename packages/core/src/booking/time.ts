import { ValidationError } from '../errors.ts';

/**
 * Diary time (C6): a treatment centre's sessions are planned in local wall-clock time and become
 * instants through Intl (the runtime's time-zone database), never by adding an hour for summer time
 * by hand. Any IANA zone is accepted; diaries use Europe/London.
 *
 * Wall-clock times that do not exist or happen twice are read as the directory's opening times read
 * them (directory/opening-times.ts): a time in the spring-forward gap (01:30 on 29 March 2026 in
 * London) is the instant the clocks jump to (02:00 BST = 01:00 UTC); a time that happens twice
 * (01:30 on 25 October 2026) is the first of the two (01:30 BST). This module differs from that one
 * only in taking the zone as a parameter.
 */

export const DIARY_TIME_ZONE = 'Europe/London';

export const LOCAL_DATE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
/** 'HH:mm' from 00:00 to 23:59, or '24:00' (the next midnight, for an end). */
export const LOCAL_TIME = /^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$/;

const MINUTE_MS = 60_000;
const HALF_DAY_MS = 12 * 60 * MINUTE_MS;

/** Formatters are slow to build and fast to use: one per zone, built on first use. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-GB', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      });
    } catch {
      throw new ValidationError([{ path: 'timeZone', message: 'must be a time zone such as Europe/London' }]);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

interface Wall {
  y: number;
  m: number;
  d: number;
  h: number;
  min: number;
  s: number;
}

function wallAt(ms: number, timeZone: string): Wall {
  const p: Record<string, string> = {};
  for (const part of formatterFor(timeZone).formatToParts(ms)) p[part.type] = part.value;
  return {
    y: Number(p.year),
    m: Number(p.month),
    d: Number(p.day),
    // Some engines print midnight as 24 even with h23.
    h: Number(p.hour) % 24,
    min: Number(p.minute),
    s: Number(p.second),
  };
}

/** The zone's offset from UTC at an instant, in ms (London: 0 in winter, 3,600,000 in summer). */
export function utcOffsetMs(ms: number, timeZone: string = DIARY_TIME_ZONE): number {
  const whole = Math.floor(ms / 1000) * 1000;
  const w = wallAt(whole, timeZone);
  return Date.UTC(w.y, w.m - 1, w.d, w.h, w.min, w.s) - whole;
}

function checkDate(date: string, path: string): [number, number, number] {
  if (!LOCAL_DATE.test(date)) throw new ValidationError([{ path, message: 'must be a date as YYYY-MM-DD' }]);
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const back = new Date(Date.UTC(y, m - 1, d));
  if (back.getUTCMonth() !== m - 1 || back.getUTCDate() !== d) {
    throw new ValidationError([{ path, message: 'is not a day of the calendar' }]);
  }
  return [y, m, d];
}

function checkTime(time: string, path: string): number {
  if (!LOCAL_TIME.test(time)) {
    throw new ValidationError([{ path, message: 'must be a time as HH:mm (00:00 to 23:59, or 24:00)' }]);
  }
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

/**
 * The instant the clocks of `timeZone` show `time` on `date` ('24:00' is the next midnight). A time
 * in a spring-forward gap is the instant of the jump; a repeated time is its first occurrence.
 */
export function localToUtcMs(date: string, time: string, timeZone: string = DIARY_TIME_ZONE): number {
  const [y, m, d] = checkDate(date, 'date');
  const minutes = checkTime(time, 'time');
  const asUtc = Date.UTC(y, m - 1, d, 0, minutes);
  // Zones change their offset at most once in a day here: the offsets half a day either side are the
  // candidates, and an instant is an answer when the zone shows that offset at it.
  const before = utcOffsetMs(asUtc - HALF_DAY_MS, timeZone);
  const after = utcOffsetMs(asUtc + HALF_DAY_MS, timeZone);
  const first = asUtc - before;
  const second = asUtc - after;
  const firstValid = utcOffsetMs(first, timeZone) === before;
  const secondValid = utcOffsetMs(second, timeZone) === after;
  if (firstValid && secondValid) return Math.min(first, second);
  if (firstValid) return first;
  if (secondValid) return second;
  // Neither: the time falls in the gap the clocks jump over; the answer is the jump itself, the
  // first whole minute between the two candidates at which the new offset holds.
  let low = Math.min(first, second);
  let high = Math.max(first, second);
  while (high - low > MINUTE_MS) {
    const mid = low + Math.floor((high - low) / 2 / MINUTE_MS) * MINUTE_MS;
    if (utcOffsetMs(mid, timeZone) === after) high = mid;
    else low = mid;
  }
  return high;
}

export interface LocalDateTime {
  /** YYYY-MM-DD */
  date: string;
  /** HH:mm */
  time: string;
  /** The zone's offset from UTC at that instant, in minutes (London: 0 or 60). */
  utcOffsetMinutes: number;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** The wall-clock date and time of `timeZone` at an instant (the reverse of localToUtcMs). */
export function utcMsToLocal(ms: number, timeZone: string = DIARY_TIME_ZONE): LocalDateTime {
  if (!Number.isFinite(ms))
    throw new ValidationError([{ path: 'ms', message: 'must be epoch milliseconds' }]);
  const whole = Math.floor(ms / 1000) * 1000;
  const w = wallAt(whole, timeZone);
  return {
    date: `${pad(w.y, 4)}-${pad(w.m)}-${pad(w.d)}`,
    time: `${pad(w.h)}:${pad(w.min)}`,
    utcOffsetMinutes: Math.round((Date.UTC(w.y, w.m - 1, w.d, w.h, w.min, w.s) - whole) / MINUTE_MS),
  };
}

/** 'YYYY-MM-DD HH:mm' in `timeZone`: a slot's `startLocal`. */
export function formatLocal(ms: number, timeZone: string = DIARY_TIME_ZONE): string {
  const l = utcMsToLocal(ms, timeZone);
  return `${l.date} ${l.time}`;
}

/** The calendar date `days` after `date` (YYYY-MM-DD; negative goes back). */
export function addLocalDays(date: string, days: number): string {
  const [y, m, d] = checkDate(date, 'date');
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** Minutes from 00:00 of an 'HH:mm' time ('24:00' is 1440). */
export function minutesOfTime(time: string, path = 'time'): number {
  return checkTime(time, path);
}
