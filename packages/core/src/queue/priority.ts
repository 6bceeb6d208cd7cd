import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { zodIssuesToFieldIssues } from '../ledger/registry.ts';

/**
 * Queue timing and order (C4). A case's deadline is the time its call was received plus its
 * disposition's timeframe; every instant is UTC epoch milliseconds passed in by the caller (the core
 * reads no clock). Deadlines are shown to staff in UK time (Europe/London), whatever zone the server
 * runs in.
 */

export const MS_PER_MINUTE = 60_000;

/**
 * A case is at risk when less than this share of its window is left: "a case that will breach shows
 * before it does" (product brief).
 */
export const AT_RISK_FRACTION = { numerator: 1, denominator: 5 } as const;

export type TimingStatus = 'on_time' | 'at_risk' | 'breached';

const makeInstant = (name: string) =>
  z
    .number({ error: `${name} must be epoch milliseconds` })
    .int(`${name} must be whole epoch milliseconds`)
    .min(0, `${name} must not be before 1970`)
    .max(8.64e15, `${name} is out of range`);

/** One schema per field name, built once: the queue checks several instants per case per listing. */
const instantSchemas = new Map<string, ReturnType<typeof makeInstant>>();
const instant = (name: string) => {
  let schema = instantSchemas.get(name);
  if (!schema) instantSchemas.set(name, (schema = makeInstant(name)));
  return schema;
};

const timeframeMinutes = z
  .number({ error: 'timeframe must be a number of minutes' })
  .int('timeframe must be whole minutes')
  .min(1, 'timeframe must be at least 1 minute')
  .max(60 * 24 * 366, 'timeframe must be at most a year');

export const queueEntrySchema = z.strictObject({
  caseId: z.string().min(1).max(128),
  /** When the call was received, UTC epoch ms. */
  callReceivedAtMs: instant('callReceivedAtMs'),
  /** The disposition's timeframe. */
  timeframeMinutes,
  /** Clinical priority: lower is more urgent. Breaks ties between equal deadlines. */
  priority: z.number({ error: 'priority must be a number' }).int('priority must be a whole number'),
});
export type QueueEntry = z.infer<typeof queueEntrySchema>;

function parse<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(zodIssuesToFieldIssues(r.error, prefix));
  return r.data;
}

/** The instant by which the case must have been dealt with: received + timeframe. */
export function deadlineMs(callReceivedAtMs: number, timeframeMinutesValue: number): number {
  parse(instant('callReceivedAtMs'), callReceivedAtMs, 'callReceivedAtMs');
  parse(timeframeMinutes, timeframeMinutesValue, 'timeframeMinutes');
  // Real elapsed time: a window that spans a clock change is still this many minutes long.
  return callReceivedAtMs + timeframeMinutesValue * MS_PER_MINUTE;
}

export interface QueueTiming {
  deadlineMs: number;
  /** Milliseconds until the deadline; negative once breached. */
  remainingMs: number;
  status: TimingStatus;
}

/**
 * Status at `nowMs`. The deadline instant itself is still within the timeframe ("within 20 minutes"
 * includes minute 20), so a case breaches only after it. At risk: remaining < window / 5, compared
 * in whole numbers so there is no rounding at the boundary.
 */
export function queueTiming(
  entry: Pick<QueueEntry, 'callReceivedAtMs' | 'timeframeMinutes'>,
  nowMs: number,
): QueueTiming {
  parse(instant('nowMs'), nowMs, 'nowMs');
  const deadline = deadlineMs(entry.callReceivedAtMs, entry.timeframeMinutes);
  const windowMs = deadline - entry.callReceivedAtMs;
  const remainingMs = deadline - nowMs;
  let status: TimingStatus;
  if (remainingMs < 0) status = 'breached';
  else if (remainingMs * AT_RISK_FRACTION.denominator < windowMs * AT_RISK_FRACTION.numerator)
    status = 'at_risk';
  else status = 'on_time';
  return { deadlineMs: deadline, remainingMs, status };
}

export function timingStatus(
  entry: Pick<QueueEntry, 'callReceivedAtMs' | 'timeframeMinutes'>,
  nowMs: number,
): TimingStatus {
  return queueTiming(entry, nowMs).status;
}

/**
 * Queue order: earliest deadline first, then the more urgent clinical priority (lower number), then
 * case id (by UTF-16 code units, not locale) so that every node lists the same queue identically.
 * Expects valid entries (orderQueue checks them once, rather than on every comparison).
 */
export function compareQueueEntries(a: QueueEntry, b: QueueEntry): number {
  const byDeadline =
    a.callReceivedAtMs +
    a.timeframeMinutes * MS_PER_MINUTE -
    (b.callReceivedAtMs + b.timeframeMinutes * MS_PER_MINUTE);
  if (byDeadline !== 0) return byDeadline;
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.caseId < b.caseId ? -1 : a.caseId > b.caseId ? 1 : 0;
}

/** A sorted copy of the queue; the input is left as it was. Entries are validated first. */
export function orderQueue<E extends QueueEntry>(entries: readonly E[]): E[] {
  entries.forEach((e, i) => parse(queueEntrySchema, e, `entries.${i}`));
  return [...entries].sort(compareQueueEntries);
}

// ---- display in UK time -----------------------------------------------------------------------------

const LONDON = 'Europe/London';

/** Built once: constructing an Intl formatter is far slower than using one. */
const londonParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: LONDON,
  weekday: 'short',
  day: '2-digit',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
  timeZoneName: 'short',
});

export interface LondonWallTime {
  weekday: string;
  day: string;
  month: string;
  year: string;
  /** 00–23 */
  hour: string;
  minute: string;
  /** 'GMT' in winter, 'BST' in summer. */
  zone: string;
}

export function londonWallTime(ms: number): LondonWallTime {
  parse(instant('ms'), ms, 'ms');
  const parts: Partial<Record<Intl.DateTimeFormatPartTypes, string>> = {};
  for (const p of londonParts.formatToParts(ms)) parts[p.type] = p.value;
  const get = (t: Intl.DateTimeFormatPartTypes): string => {
    const v = parts[t];
    if (v === undefined) throw new Error(`Intl gave no ${t} for Europe/London`);
    return v;
  };
  // Some ICU versions name the winter zone 'GMT' and others 'UTC' or 'GMT+0'; staff see GMT.
  const zone = get('timeZoneName');
  return {
    weekday: get('weekday'),
    day: get('day'),
    month: get('month'),
    year: get('year'),
    hour: get('hour'),
    minute: get('minute'),
    zone: zone === 'GMT+1' ? 'BST' : zone === 'UTC' || zone === 'GMT+0' ? 'GMT' : zone,
  };
}

/** "14:05 BST": the wall time in the UK, with its zone so that the repeated autumn hour is unambiguous. */
export function formatLondonTime(ms: number): string {
  const w = londonWallTime(ms);
  return `${w.hour}:${w.minute} ${w.zone}`;
}

/** "Sun 30 Mar 2025 03:30 BST". */
export function formatLondonDateTime(ms: number): string {
  const w = londonWallTime(ms);
  return `${w.weekday} ${w.day} ${w.month} ${w.year} ${w.hour}:${w.minute} ${w.zone}`;
}
