import { parse } from 'csv-parse/sync';
import { ROLES, type Role } from '../accounts/roles.ts';
import { londonWall, londonWallToMs, minutesOfDay } from '../directory/opening-times.ts';
import { ROTA_LOCATION_KINDS, shiftTimeProblems, type RotaLocationKind, type ShiftInput } from './shifts.ts';

/**
 * Rota files: one shift per row, in the layout docs/ROTA.md describes. A file is taken whole or not at
 * all: every problem is reported with its line (the header is line 1) and column, and the caller
 * stores nothing while there are any. Users are named as they sign in; the server turns names into
 * user ids (and reports unknown names against the `user` column of the same line).
 *
 * Read with csv-parse, which needs Node's Buffer: import from '@holdfast/core/rota/csv' on the server,
 * so the browser's bundle never loads it.
 */

export const ROTA_CSV_COLUMNS = ['user', 'role', 'location', 'locationId', 'start', 'end'] as const;
type Column = (typeof ROTA_CSV_COLUMNS)[number];

/** The most rows one file may hold (a large provider's month). */
export const MAX_ROTA_ROWS = 20_000;

export interface RotaCsvProblem {
  line: number;
  field: string;
  message: string;
}

/** A row as read: the shift without its user id, which the server looks up by `userName`. */
export type RotaCsvShift = Omit<ShiftInput, 'userId'> & { line: number };

export interface RotaCsvResult {
  shifts: RotaCsvShift[];
  problems: RotaCsvProblem[];
}

const LOCAL = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d:\d\d)$/;
const WITH_OFFSET = /^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?(?:Z|[+-]\d\d:\d\d)$/;

/**
 * A time in a rota file: UK wall-clock time ("2026-12-05 08:00"), or an instant with its offset
 * ("2026-10-25T01:30+01:00"). Wall times the clocks skip (spring) are refused, and so are those they
 * show twice (autumn) unless the offset says which.
 */
export function rotaTimeToMs(text: string): { ms: number } | { problem: string } {
  const t = text.trim();
  if (WITH_OFFSET.test(t)) {
    const ms = Date.parse(t);
    return Number.isFinite(ms) ? { ms } : { problem: 'is not a real date and time' };
  }
  const m = LOCAL.exec(t);
  if (!m) return { problem: 'must be a UK date and time like 2026-12-05 08:00' };
  const [, y, mo, d, hhmm] = m as unknown as [string, string, string, string, string];
  const date = `${y}-${mo}-${d}`;
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (check.toISOString().slice(0, 10) !== date) return { problem: 'is not a real date' };
  const minutes = minutesOfDay(hhmm);
  if (!(minutes >= 0 && minutes < 1440)) return { problem: 'is not a real time of day (00:00 to 23:59)' };
  const ms = londonWallToMs(date, minutes);
  const shown = londonWall(ms);
  if (shown.date !== date || shown.minutes !== minutes)
    return {
      problem: 'does not exist in the UK (the clocks go forward past it): give the time after the change',
    };
  const anHourLater = londonWall(ms + 3_600_000);
  if (anHourLater.date === date && anHourLater.minutes === minutes)
    return {
      problem:
        'happens twice in the UK (the clocks go back): add the offset, e.g. 2026-10-25T01:30+01:00 for the first',
    };
  return { ms };
}

function locationOf(
  kindCell: string,
  idCell: string,
): { location: { kind: RotaLocationKind; id: string | null } } | RotaCsvProblem {
  const kind = kindCell.trim().toLowerCase();
  const id = idCell.trim();
  if (!(ROTA_LOCATION_KINDS as readonly string[]).includes(kind))
    return { line: 0, field: 'location', message: `must be one of ${ROTA_LOCATION_KINDS.join(', ')}` };
  if (kind === 'cas') {
    if (id !== '') return { line: 0, field: 'locationId', message: 'must be empty for the CAS' };
    return { location: { kind: 'cas', id: null } };
  }
  if (id === '') return { line: 0, field: 'locationId', message: `must name the ${kind}` };
  if (id.length > 128) return { line: 0, field: 'locationId', message: 'must be at most 128 characters' };
  return { location: { kind: kind as RotaLocationKind, id } };
}

function rowOf(record: Record<Column, string>, line: number): RotaCsvShift | RotaCsvProblem[] {
  const problems: RotaCsvProblem[] = [];
  const userName = record.user.trim();
  if (userName === '') problems.push({ line, field: 'user', message: 'must name the user as they sign in' });
  else if (userName.length > 200)
    problems.push({ line, field: 'user', message: 'must be at most 200 characters' });
  const role = record.role.trim().toLowerCase();
  if (!(ROLES as readonly string[]).includes(role))
    problems.push({ line, field: 'role', message: `must be one of ${ROLES.join(', ')}` });
  const place = locationOf(record.location, record.locationId);
  if ('field' in place) problems.push({ ...place, line });
  const start = rotaTimeToMs(record.start);
  if ('problem' in start) problems.push({ line, field: 'start', message: start.problem });
  const end = rotaTimeToMs(record.end);
  if ('problem' in end) problems.push({ line, field: 'end', message: end.problem });
  if ('ms' in start && 'ms' in end)
    for (const p of shiftTimeProblems(start.ms, end.ms))
      problems.push({ line, field: 'end', message: p.message });
  if (problems.length > 0 || 'field' in place || !('ms' in start) || !('ms' in end)) return problems;
  return { line, userName, role: role as Role, location: place.location, startMs: start.ms, endMs: end.ms };
}

/** One person cannot work two shifts at once: the later row of each overlapping pair is named. */
function overlapProblems(shifts: readonly RotaCsvShift[]): RotaCsvProblem[] {
  const byUser = new Map<string, RotaCsvShift[]>();
  for (const s of shifts) {
    const key = s.userName.toLowerCase();
    byUser.set(key, [...(byUser.get(key) ?? []), s]);
  }
  const problems: RotaCsvProblem[] = [];
  for (const list of byUser.values()) {
    const sorted = [...list].sort((a, b) => a.startMs - b.startMs || a.line - b.line);
    let latest: RotaCsvShift | undefined;
    for (const s of sorted) {
      if (latest && s.startMs < latest.endMs) {
        const [first, second] = latest.line < s.line ? [latest, s] : [s, latest];
        problems.push({
          line: second.line,
          field: 'start',
          message: `overlaps the same user's shift on line ${first.line}`,
        });
      }
      if (!latest || s.endMs > latest.endMs) latest = s;
    }
  }
  return problems;
}

/** Reads a rota CSV (header row first). Shifts are returned only when there are no problems. */
export function parseRotaCsv(text: string): RotaCsvResult {
  let records: { record: Record<string, string>; info: { lines: number } }[];
  let header: string[] = [];
  try {
    records = parse(text, {
      bom: true,
      columns: (names: string[]) => {
        header = names.map((n) => n.trim());
        return header;
      },
      info: true,
      skip_empty_lines: true,
      relax_column_count: false,
    }) as unknown as { record: Record<string, string>; info: { lines: number } }[];
  } catch (error) {
    const line = (error as { lines?: number }).lines ?? 1;
    return {
      shifts: [],
      problems: [
        { line, field: 'row', message: 'is not valid CSV (check quotes and the number of columns)' },
      ],
    };
  }
  const problems: RotaCsvProblem[] = [];
  if (header.length === 0)
    return { shifts: [], problems: [{ line: 1, field: 'row', message: 'the file is empty' }] };
  for (const column of ROTA_CSV_COLUMNS)
    if (!header.includes(column))
      problems.push({ line: 1, field: column, message: 'this column is missing' });
  for (const column of header)
    if (!(ROTA_CSV_COLUMNS as readonly string[]).includes(column))
      problems.push({ line: 1, field: column, message: 'is not a column of rota files' });
  if (problems.length > 0) return { shifts: [], problems };
  if (records.length === 0)
    return { shifts: [], problems: [{ line: 2, field: 'row', message: 'the file has no shifts' }] };
  if (records.length > MAX_ROTA_ROWS)
    return {
      shifts: [],
      problems: [{ line: 1, field: 'row', message: `a file may hold at most ${MAX_ROTA_ROWS} shifts` }],
    };
  const shifts: RotaCsvShift[] = [];
  for (const { record, info } of records) {
    const row = rowOf(record as Record<Column, string>, info.lines);
    if (Array.isArray(row)) problems.push(...row);
    else shifts.push(row);
  }
  problems.push(...overlapProblems(shifts));
  problems.sort((a, b) => a.line - b.line);
  return problems.length > 0 ? { shifts: [], problems } : { shifts, problems: [] };
}
