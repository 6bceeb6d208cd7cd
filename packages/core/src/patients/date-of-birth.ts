/**
 * Dates of birth as a UK call handler types them: day first (`03/05/1980`), whatever language the
 * browser or the PC is set to. A browser's own date field follows the PC's locale, so on a PC set to
 * US English `03/05/1980` was read as 5 March; this parser never guesses month-first.
 *
 * Pure: "today" is passed in (for the future-date check), never read from a clock.
 */

export type ParsedDateOfBirth =
  | { ok: true; kind: 'date'; iso: string }
  | { ok: true; kind: 'year'; year: string }
  | { ok: false; message: string };

export interface DateOfBirthOptions {
  /** Today's date (ISO `YYYY-MM-DD`): a date of birth after it is refused. */
  today?: string;
  /** Whether a year on its own (`1980`) is accepted, for a search when the caller knows no more. */
  allowYearOnly?: boolean;
}

const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** Dates before this year are almost certainly typing errors (the oldest living people were born after it). */
const EARLIEST_YEAR = 1900;

const EXAMPLE = 'e.g. 03/05/1980 for 3 May 1980';

export function daysInMonth(year: number, month: number): number {
  // Day 0 of the next month is the last day of this one (UTC, so no time zone can shift it).
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `3 May 1980` from its parts. */
function inWords(year: number, month: number, day: number): string {
  return `${day} ${MONTH_NAMES[month - 1]} ${year}`;
}

function checkDate(year: number, month: number, day: number, options: DateOfBirthOptions): ParsedDateOfBirth {
  if (month < 1 || month > 12) {
    // 12/31/1980 is the month-first habit of a US-English PC: say so rather than "invalid".
    if (month > 12 && day >= 1 && day <= 12)
      return {
        ok: false,
        message: `has no month ${month}: write the day first, then the month (${pad(month)}/${pad(day)}/${year}, not ${pad(day)}/${pad(month)}/${year})`,
      };
    return { ok: false, message: `has no month ${month}: the month is 1 to 12 (${EXAMPLE})` };
  }
  if (day < 1) return { ok: false, message: `has no day ${day}: the day is 1 to 31 (${EXAMPLE})` };
  const last = daysInMonth(year, month);
  if (day > last)
    return {
      ok: false,
      message: `is not a real date: ${MONTH_NAMES[month - 1]} ${year} has ${last} days, not ${day}`,
    };
  if (year < EARLIEST_YEAR) return { ok: false, message: `is before ${EARLIEST_YEAR}: check the year` };
  const iso = `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
  if (options.today !== undefined && iso > options.today)
    return { ok: false, message: `is in the future (${inWords(year, month, day)})` };
  return { ok: true, kind: 'date', iso };
}

/**
 * Reads a date of birth typed as day, month and year (`3/5/1980`, `03-05-1980`, `03.05.1980`,
 * `03 05 1980`), or in ISO form (`1980-05-03`, what older clients send), or, with `allowYearOnly`, a
 * year on its own. Two-digit years are refused: `03/05/20` could be 1920 or 2020, and a call
 * handler who guesses wrong finds the wrong patient. Messages are plain words that leave out the
 * field's name ("is not a real date: …").
 */
export function parseDateOfBirth(input: string, options: DateOfBirthOptions = {}): ParsedDateOfBirth {
  const text = input.normalize('NFKC').trim();
  if (text === '') return { ok: false, message: `is required (${EXAMPLE})` };

  const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (iso) return checkDate(Number(iso[1]), Number(iso[2]), Number(iso[3]), options);

  if (/^\d{4}$/.test(text)) {
    if (!options.allowYearOnly) return { ok: false, message: `needs the day and month too (${EXAMPLE})` };
    const year = Number(text);
    if (year < EARLIEST_YEAR) return { ok: false, message: `is before ${EARLIEST_YEAR}: check the year` };
    if (options.today !== undefined && text > options.today.slice(0, 4))
      return { ok: false, message: `is in the future (${text})` };
    return { ok: true, kind: 'year', year: text };
  }

  const parts = /^(\d{1,2})\s*[/.\-\s]\s*(\d{1,2})\s*[/.\-\s]\s*(\d+)$/.exec(text);
  if (!parts)
    return {
      ok: false,
      message: `must be written as day/month/year (${EXAMPLE})${options.allowYearOnly ? ', or a year on its own' : ''}`,
    };
  const [, day, month, year] = parts as unknown as [string, string, string, string];
  if (year.length === 2)
    return {
      ok: false,
      message: `needs the year in full (four digits): ${year} could mean 19${year} or 20${year}`,
    };
  if (year.length !== 4) return { ok: false, message: `needs a four-digit year (${EXAMPLE})` };
  return checkDate(Number(year), Number(month), Number(day), options);
}

/** `1980-05-03` as `03/05/1980`, the way it is typed back into a form. */
export function formatDateOfBirthForEntry(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  return m ? `${m[3]}/${m[2]}/${m[1]}` : iso;
}

/**
 * The same date with day and month swapped (`1980-05-03` → `1980-03-05`), when that is another real
 * date: what a date typed month-first (or read back month-first) turns into. Null when the day is
 * over 12 or day and month are equal.
 */
export function swapDayAndMonth(iso: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (!m) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null; // not a date
  if (day === month || day > 12) return null;
  if (month > daysInMonth(year, day)) return null;
  return `${m[1]}-${m[3]}-${m[2]}`;
}
