import { parse } from 'csv-parse/sync';
import type { z } from 'zod';
import { DomainError } from '../errors.ts';
import { directoryServiceDefinitionSchema, type DirectoryServiceDefinition } from './schema.ts';
import { WEEKDAYS, type OpeningSession, type OpeningTimes, type ReferralRoute } from './types.ts';

/**
 * Directory files: the provider's services as CSV (one row per service) or JSON (`{services: [...]}`),
 * in the layout docs/DIRECTORY.md describes. A file is taken whole or not at all: every bad row is
 * reported as `{line, field, message}` (for JSON, `line` is the service's place in the list, 1 first)
 * and nothing is imported. Capacity is live state, set by staff, and is not part of a file.
 */

export interface DirectoryFileProblem {
  line: number;
  field: string;
  message: string;
}

export class DirectoryFileError extends DomainError {
  readonly code = 'directory_file_refused';
  constructor(readonly problems: DirectoryFileProblem[]) {
    super(
      `the directory file was refused (nothing imported): ${problems
        .slice(0, 5)
        .map((p) => `line ${p.line} ${p.field}: ${p.message}`)
        .join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`,
    );
  }
}

export const DIRECTORY_CSV_COLUMNS = [
  'serviceId',
  'name',
  'odsCode',
  'type',
  'address',
  'postcode',
  'latitude',
  'longitude',
  'phone',
  'alwaysOpen',
  ...WEEKDAYS,
  'bankHolidays',
  'exceptions',
  'dispositions',
  'symptomGroups',
  'minAgeYears',
  'maxAgeYears',
  'sexes',
  'referral',
  'bookingSlotsEndpointId',
  'notClinicallyValidated',
] as const;
type CsvColumn = (typeof DIRECTORY_CSV_COLUMNS)[number];

/** The most rows one file may hold. */
export const MAX_DIRECTORY_ROWS = 50_000;

class CellError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

// ---- cells → a service ----------------------------------------------------------------------

const SESSION = /^(\d\d:\d\d)-(\d\d:\d\d)$/;

/** '08:00-12:00,14:00-18:00'; '' or 'closed' is closed. */
function sessionsOf(cell: string, field: string): OpeningSession[] {
  const text = cell.trim();
  if (text === '' || text.toLowerCase() === 'closed') return [];
  return text.split(',').map((part) => {
    const m = SESSION.exec(part.trim());
    if (!m) throw new CellError(field, 'must be sessions as HH:MM-HH:MM separated by commas, or "closed"');
    return { opens: m[1]!, closes: m[2]! };
  });
}

function sessionsText(sessions: readonly OpeningSession[]): string {
  return sessions.length === 0 ? 'closed' : sessions.map((s) => `${s.opens}-${s.closes}`).join(',');
}

/** '2026-12-25=closed (Christmas Day); 2026-12-31=08:00-18:00'. */
function exceptionsOf(cell: string): OpeningTimes['exceptions'] {
  const text = cell.trim();
  if (text === '') return [];
  return text.split(';').map((part) => {
    const m = /^\s*(\d{4}-\d\d-\d\d)\s*=\s*([^(]*?)\s*(?:\(([^)]*)\))?\s*$/.exec(part);
    if (!m)
      throw new CellError(
        'exceptions',
        'must be DATE=SESSIONS (note) separated by semicolons, e.g. 2026-12-25=closed',
      );
    const note = m[3]?.trim();
    return { date: m[1]!, sessions: sessionsOf(m[2]!, 'exceptions'), ...(note ? { note } : {}) };
  });
}

function exceptionsText(exceptions: OpeningTimes['exceptions']): string {
  return exceptions
    .map((e) => `${e.date}=${sessionsText(e.sessions)}${e.note ? ` (${e.note})` : ''}`)
    .join('; ');
}

function numberOf(cell: string, field: string): number {
  const text = cell.trim();
  if (text === '' || !Number.isFinite(Number(text))) throw new CellError(field, 'must be a number');
  return Number(text);
}

function booleanOf(cell: string, field: string): boolean {
  const text = cell.trim().toLowerCase();
  if (text === 'true' || text === 'yes') return true;
  if (text === 'false' || text === 'no' || text === '') return false;
  throw new CellError(field, 'must be true or false');
}

function listOf(cell: string): string[] {
  return cell
    .split(/[\s,]+/)
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** 'message:ENDPOINT', 'phone:NUMBER' or 'walk_in'. */
function referralOf(cell: string): ReferralRoute {
  const text = cell.trim();
  if (text === 'walk_in') return { kind: 'walk_in' };
  if (text.startsWith('message:'))
    return { kind: 'message', endpointId: text.slice('message:'.length).trim() };
  if (text.startsWith('phone:')) return { kind: 'phone', phone: text.slice('phone:'.length).trim() };
  throw new CellError('referral', 'must be message:ENDPOINT, phone:NUMBER or walk_in');
}

function referralText(route: ReferralRoute): string {
  return route.kind === 'walk_in'
    ? 'walk_in'
    : route.kind === 'message'
      ? `message:${route.endpointId}`
      : `phone:${route.phone}`;
}

function serviceFromRow(row: Record<CsvColumn, string>): unknown {
  const maxAge = row.maxAgeYears.trim();
  const bankHolidays = row.bankHolidays.trim();
  const booking = row.bookingSlotsEndpointId.trim();
  return {
    serviceId: row.serviceId.trim(),
    name: row.name.trim(),
    odsCode: row.odsCode.trim(),
    type: row.type.trim(),
    address: row.address
      .split('|')
      .map((l) => l.trim())
      .filter((l) => l !== ''),
    postcode: row.postcode.trim(),
    latitude: numberOf(row.latitude, 'latitude'),
    longitude: numberOf(row.longitude, 'longitude'),
    phone: row.phone.trim() === '' ? null : row.phone.trim(),
    openingTimes: {
      alwaysOpen: booleanOf(row.alwaysOpen, 'alwaysOpen'),
      weekly: Object.fromEntries(WEEKDAYS.map((d) => [d, sessionsOf(row[d], d)])),
      // Empty: as the weekday; 'closed': closed on bank holidays.
      bankHolidays: bankHolidays === '' ? null : sessionsOf(bankHolidays, 'bankHolidays'),
      exceptions: exceptionsOf(row.exceptions),
    },
    dispositions: listOf(row.dispositions),
    symptomGroups: listOf(row.symptomGroups),
    ageRange: {
      minYears: row.minAgeYears.trim() === '' ? 0 : numberOf(row.minAgeYears, 'minAgeYears'),
      maxYears: maxAge === '' ? null : numberOf(maxAge, 'maxAgeYears'),
    },
    sexes: listOf(row.sexes),
    referral: referralOf(row.referral),
    booking: booking === '' ? null : { slotsEndpointId: booking },
    notClinicallyValidated: booleanOf(row.notClinicallyValidated, 'notClinicallyValidated'),
  };
}

/** A schema path as the file's field: CSV columns for CSV files, dotted paths for JSON. */
function csvFieldOf(path: readonly PropertyKey[]): string {
  const [first, second, third] = path.map(String);
  if (first === 'openingTimes') {
    if (second === 'weekly') return third ?? 'openingTimes';
    if (second === 'alwaysOpen' || second === 'bankHolidays' || second === 'exceptions') return second;
    return 'openingTimes';
  }
  if (first === 'ageRange') return second === 'maxYears' ? 'maxAgeYears' : 'minAgeYears';
  if (first === 'booking') return 'bookingSlotsEndpointId';
  return first ?? 'row';
}

/** The field's path inside the service, dotted, list places as numbers: 'openingTimes.weekly.mon.0.closes'. */
function jsonFieldOf(path: readonly PropertyKey[]): string {
  return path.map(String).join('.') || 'service';
}

function checkAll(
  candidates: { line: number; value: unknown; problems: DirectoryFileProblem[] }[],
  fieldOf: (path: readonly PropertyKey[]) => string,
): DirectoryServiceDefinition[] {
  const problems: DirectoryFileProblem[] = [];
  const services: DirectoryServiceDefinition[] = [];
  const seen = new Map<string, number>();
  for (const c of candidates) {
    if (c.problems.length > 0) {
      problems.push(...c.problems);
      continue;
    }
    const parsed = directoryServiceDefinitionSchema.safeParse(c.value);
    if (!parsed.success) {
      problems.push(...issuesToProblems(parsed.error, c.line, fieldOf));
      continue;
    }
    const first = seen.get(parsed.data.serviceId);
    if (first !== undefined)
      problems.push({ line: c.line, field: 'serviceId', message: `the same service id is on line ${first}` });
    else seen.set(parsed.data.serviceId, c.line);
    services.push(parsed.data);
  }
  if (problems.length > 0) throw new DirectoryFileError(problems);
  return services;
}

function issuesToProblems(
  error: z.ZodError,
  line: number,
  fieldOf: (path: readonly PropertyKey[]) => string,
): DirectoryFileProblem[] {
  return error.issues.map((i) => ({ line, field: fieldOf(i.path), message: i.message }));
}

/** Reads a CSV directory file (header row first), refusing it whole if any row is bad. */
export function parseDirectoryCsv(text: string): DirectoryServiceDefinition[] {
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
    throw new DirectoryFileError([
      { line, field: 'row', message: 'is not valid CSV (check quotes and the number of columns)' },
    ]);
  }
  const headerProblems: DirectoryFileProblem[] = [];
  for (const column of DIRECTORY_CSV_COLUMNS)
    if (!header.includes(column))
      headerProblems.push({ line: 1, field: column, message: 'this column is missing' });
  for (const column of header)
    if (!(DIRECTORY_CSV_COLUMNS as readonly string[]).includes(column))
      headerProblems.push({ line: 1, field: column, message: 'is not a column of directory files' });
  if (headerProblems.length > 0) throw new DirectoryFileError(headerProblems);
  if (records.length > MAX_DIRECTORY_ROWS)
    throw new DirectoryFileError([
      { line: 1, field: 'row', message: `a file may hold at most ${MAX_DIRECTORY_ROWS} services` },
    ]);
  const candidates = records.map(({ record, info }) => {
    try {
      return { line: info.lines, value: serviceFromRow(record as Record<CsvColumn, string>), problems: [] };
    } catch (error) {
      if (!(error instanceof CellError)) throw error;
      return {
        line: info.lines,
        value: null,
        problems: [{ line: info.lines, field: error.field, message: error.message }],
      };
    }
  });
  return checkAll(candidates, csvFieldOf);
}

/** Reads a JSON directory file `{services: [...]}` (or a bare list), refusing it whole if any is bad. */
export function parseDirectoryJson(text: string): DirectoryServiceDefinition[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new DirectoryFileError([{ line: 1, field: 'file', message: 'is not valid JSON' }]);
  }
  const list = Array.isArray(doc) ? doc : (doc as { services?: unknown } | null)?.services;
  if (!Array.isArray(list))
    throw new DirectoryFileError([{ line: 1, field: 'services', message: 'must be a list of services' }]);
  if (list.length > MAX_DIRECTORY_ROWS)
    throw new DirectoryFileError([
      { line: 1, field: 'services', message: `a file may hold at most ${MAX_DIRECTORY_ROWS} services` },
    ]);
  // A service exported with its capacity imports without it: capacity is live state.
  const candidates = list.map((value: unknown, i: number) => {
    const { capacity: _capacity, ...rest } = (value ?? {}) as Record<string, unknown>;
    return { line: i + 1, value: typeof value === 'object' && value !== null ? rest : value, problems: [] };
  });
  return checkAll(candidates, jsonFieldOf);
}

export type DirectoryFileFormat = 'csv' | 'json';

export function parseDirectoryFile(text: string, format: DirectoryFileFormat): DirectoryServiceDefinition[] {
  return format === 'csv' ? parseDirectoryCsv(text) : parseDirectoryJson(text);
}

function csvCell(value: string): string {
  return /[",\r\n]/.test(value) || value !== value.trim() ? `"${value.replace(/"/g, '""')}"` : value;
}

/** The services as a CSV directory file (the same layout the import reads). */
export function directoryToCsv(services: readonly DirectoryServiceDefinition[]): string {
  const rows = services.map((s) => {
    const cells: Record<CsvColumn, string> = {
      serviceId: s.serviceId,
      name: s.name,
      odsCode: s.odsCode,
      type: s.type,
      address: s.address.join(' | '),
      postcode: s.postcode,
      latitude: String(s.latitude),
      longitude: String(s.longitude),
      phone: s.phone ?? '',
      alwaysOpen: String(s.openingTimes.alwaysOpen),
      mon: sessionsText(s.openingTimes.weekly.mon),
      tue: sessionsText(s.openingTimes.weekly.tue),
      wed: sessionsText(s.openingTimes.weekly.wed),
      thu: sessionsText(s.openingTimes.weekly.thu),
      fri: sessionsText(s.openingTimes.weekly.fri),
      sat: sessionsText(s.openingTimes.weekly.sat),
      sun: sessionsText(s.openingTimes.weekly.sun),
      bankHolidays: s.openingTimes.bankHolidays === null ? '' : sessionsText(s.openingTimes.bankHolidays),
      exceptions: exceptionsText(s.openingTimes.exceptions),
      dispositions: s.dispositions.join(' '),
      symptomGroups: s.symptomGroups.join(' '),
      minAgeYears: String(s.ageRange.minYears),
      maxAgeYears: s.ageRange.maxYears === null ? '' : String(s.ageRange.maxYears),
      sexes: s.sexes.join(' '),
      referral: referralText(s.referral),
      bookingSlotsEndpointId: s.booking?.slotsEndpointId ?? '',
      notClinicallyValidated: String(s.notClinicallyValidated),
    };
    return DIRECTORY_CSV_COLUMNS.map((c) => csvCell(cells[c])).join(',');
  });
  return `${[DIRECTORY_CSV_COLUMNS.join(','), ...rows].join('\n')}\n`;
}

/** The services as a JSON directory file. */
export function directoryToJson(services: readonly DirectoryServiceDefinition[]): string {
  return `${JSON.stringify({ services }, null, 2)}\n`;
}
