/**
 * Every time shown to staff is UK wall-clock time (Europe/London), whatever the browser's zone, and
 * says which UK time it is: GMT or BST. In the autumn the hour from 01:00 to 02:00 happens twice (first
 * in BST, then in GMT), so "received 01:45 · deadline 01:45" could be two instants an hour apart; with
 * the zone it reads "received 01:45 BST · deadline 01:45 GMT". Shown on every time, not only in that
 * hour: a label that appears only sometimes is easily missed when it matters.
 */
const ZONE = 'Europe/London';

const timeFormat = new Intl.DateTimeFormat('en-GB', {
  timeZone: ZONE,
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});
const dateTimeFormat = new Intl.DateTimeFormat('en-GB', {
  timeZone: ZONE,
  day: '2-digit',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});
/** "GMT" or "GMT+1": the offset form is the same in every browser, unlike the names. */
const offsetFormat = new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, timeZoneName: 'shortOffset' });

/** Which UK time an instant is in: GMT in winter, BST (GMT+1) in summer. */
export function londonZone(at: string | number | Date): 'GMT' | 'BST' {
  const offset = offsetFormat.formatToParts(new Date(at)).find((p) => p.type === 'timeZoneName')?.value;
  return offset === 'GMT+1' ? 'BST' : 'GMT';
}

/** "01:45 BST" */
export function londonTime(at: string | number | Date): string {
  return `${timeFormat.format(new Date(at))} ${londonZone(at)}`;
}

/** "25 Oct 2026, 01:45:00 GMT" */
export function londonDateTime(at: string | number | Date): string {
  return `${dateTimeFormat.format(new Date(at))} ${londonZone(at)}`;
}

/** "12 min 05 s", "1 h 03 min", or with "overdue" wording done by the caller for negatives. */
export function duration(seconds: number): string {
  const s = Math.abs(Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
  if (m > 0) return `${m} min ${String(rest).padStart(2, '0')} s`;
  return `${rest} s`;
}

/** "2:05" for a countdown of whole seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const dayFormat = new Intl.DateTimeFormat('en-GB', {
  timeZone: ZONE,
  weekday: 'short',
  day: 'numeric',
  month: 'short',
});
const dayKey = new Intl.DateTimeFormat('en-GB', {
  timeZone: ZONE,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/** The UK day of an instant ("05/12/2026"): `londonWhen` words times on another day with their date. */
export function londonDay(at: string | number | Date): string {
  return dayKey.format(new Date(at));
}

/** "21:15 GMT" today, "Mon 30 Nov 21:15 GMT" on another day (UK dates). */
export function londonWhen(at: string | number | Date, nowMs: number = Date.now()): string {
  const d = new Date(at);
  const sameDay = dayKey.format(d) === dayKey.format(new Date(nowMs));
  return sameDay ? londonTime(d) : `${dayFormat.format(d)} ${londonTime(d)}`;
}

/** A UK wall-clock "2026-11-29T08:00" from a datetime-local field as an instant (ISO, with offset). */
export function londonInputToIso(value: string): string {
  // The browser reads a datetime-local value in its own zone; staff enter UK time. Work out the
  // London offset at that moment and apply it.
  const asUtc = Date.parse(`${value}:00Z`);
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', timeZoneName: 'shortOffset' })
    .formatToParts(new Date(asUtc))
    .find((p) => p.type === 'timeZoneName')?.value;
  const m = /GMT([+-]\d+)?/.exec(parts ?? 'GMT');
  const hours = m?.[1] ? Number(m[1]) : 0;
  return new Date(asUtc - hours * 3600_000).toISOString();
}
