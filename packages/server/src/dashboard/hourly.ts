/**
 * Hours of a UK day for the shift manager's trend charts. A UK day has 23 hours on the spring
 * clock change and 25 on the autumn one (01:00 comes twice), so hours are real instants, labelled
 * by their wall-clock time in Europe/London, and a day is compared with another by wall-clock slot:
 * "01:00" the first time it occurs, "01:00" the second time (autumn only).
 */

const HOUR_MS = 3600_000;

const parts = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  hourCycle: 'h23',
  timeZoneName: 'short',
});

function londonParts(ms: number): { date: string; hour: string; zone: string } {
  const p = Object.fromEntries(parts.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, hour: p.hour ?? '00', zone: p.timeZoneName ?? 'GMT' };
}

/** The UK calendar date (YYYY-MM-DD) at an instant. */
export function londonDate(ms: number): string {
  return londonParts(ms).date;
}

/** The instant a UK calendar date begins (its local midnight; clocks never change at midnight). */
export function londonMidnight(date: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const utcMidnight = Date.UTC(y, m - 1, d);
  // London is UTC or one hour ahead: its midnight is either 00:00Z or 23:00Z the day before.
  for (const candidate of [utcMidnight - HOUR_MS, utcMidnight]) {
    const p = londonParts(candidate);
    if (p.date === date && p.hour === '00') return candidate;
  }
  throw new Error(`no London midnight found for ${date}`);
}

/** The date `days` calendar days from `date` (UTC arithmetic on a date only: no zone involved). */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

export interface DayHour {
  /** Wall-clock slot: "01:00#0" the first time 01:00 occurs that day, "01:00#1" the second. */
  slot: string;
  /** "01:00", or "01:00 GMT" when the hour is the autumn's second 01:00 (or its first, "01:00 BST"). */
  label: string;
  startMs: number;
  endMs: number;
}

/** The real hours of a UK calendar day, in order: 23, 24 or 25 of them. */
export function hoursOfLondonDay(date: string): DayHour[] {
  const start = londonMidnight(date);
  const end = londonMidnight(addDays(date, 1));
  const hours: DayHour[] = [];
  const seen = new Map<string, number>();
  for (let t = start; t < end; t += HOUR_MS) {
    const p = londonParts(t);
    const wall = `${p.hour}:00`;
    const occurrence = seen.get(wall) ?? 0;
    seen.set(wall, occurrence + 1);
    hours.push({ slot: `${wall}#${occurrence}`, label: wall, startMs: t, endMs: t + HOUR_MS });
  }
  // A repeated wall hour names its zone, both times, so the chart says which is which.
  for (const h of hours)
    if ((seen.get(h.label) ?? 0) > 1) h.label = `${h.label} ${londonParts(h.startMs).zone}`;
  return hours;
}

/** How many of `instants` fall in each hour. */
export function countPerHour(hours: readonly DayHour[], instants: readonly number[]): number[] {
  const counts = hours.map(() => 0);
  for (const t of instants) {
    const i = hours.findIndex((h) => t >= h.startMs && t < h.endMs);
    if (i >= 0) counts[i]!++;
  }
  return counts;
}

export interface HourlyPoint {
  slot: string;
  label: string;
  /** Null for an hour today does not have (the spring's missing 01:00) or that has not begun. */
  calls: number | null;
  breaches: number | null;
  /** Null for an hour the day a week earlier did not have. */
  callsLastWeek: number | null;
  breachesLastWeek: number | null;
}

/**
 * Today's hours against the same weekday a week earlier, slot by slot: the union of both days' wall
 * hours in clock order, so neither day's counts are dropped on a clock-change day.
 */
export function compareDays(
  today: { hours: DayHour[]; calls: number[]; breaches: number[] },
  lastWeek: { hours: DayHour[]; calls: number[]; breaches: number[] },
  nowMs: number,
): HourlyPoint[] {
  const slots = new Map<string, HourlyPoint>();
  today.hours.forEach((h, i) => {
    const begun = h.startMs <= nowMs;
    slots.set(h.slot, {
      slot: h.slot,
      label: h.label,
      calls: begun ? today.calls[i]! : null,
      breaches: begun ? today.breaches[i]! : null,
      callsLastWeek: null,
      breachesLastWeek: null,
    });
  });
  lastWeek.hours.forEach((h, i) => {
    const point = slots.get(h.slot) ?? {
      slot: h.slot,
      label: h.label,
      calls: null,
      breaches: null,
      callsLastWeek: null,
      breachesLastWeek: null,
    };
    point.callsLastWeek = lastWeek.calls[i]!;
    point.breachesLastWeek = lastWeek.breaches[i]!;
    slots.set(h.slot, point);
  });
  // "HH:00#n" sorts in clock order as text.
  return [...slots.values()].sort((a, b) => a.slot.localeCompare(b.slot));
}
