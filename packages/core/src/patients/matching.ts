/**
 * Patient matching for the local patient index: name and postcode folding, a bounded
 * Damerau-Levenshtein distance, and the ranking of candidates found by date of birth.
 *
 * Pure: no I/O, no clock. The server reads the candidates whose date of birth could be the one asked
 * for and ranks them here. The date of birth must be the same, or the same with day and month
 * swapped (ranked after every exact one), or in the year asked for when only a year is known;
 * names and postcodes tolerate typing errors, accents,
 * apostrophes, spacing, case, Unicode normalisation form (NFC or NFD), compatibility forms
 * (full-width letters, ligatures) and invisible characters (zero-width, bidirectional controls).
 */

import { swapDayAndMonth } from './date-of-birth.ts';

/** Letters that Unicode decomposition leaves alone but a typist writes as plain Latin. */
const SPECIAL_LETTERS: Record<string, string> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  đ: 'd',
  ð: 'd',
  þ: 'th',
  ł: 'l',
  ı: 'i',
  ħ: 'h',
  ŧ: 't',
  ŋ: 'n',
  ĸ: 'k',
};
const SPECIAL_LETTER = /[ßæœøđðþłıħŧŋĸ]/g;
/** Apostrophes and look-alikes: removed, so O’Brien, O'Brien and OBrien fold alike. */
const APOSTROPHES = /['\u2018\u2019\u201b\u02bc\u02bb\u02b9\u2032`\u00b4]/g;
/** Format characters: zero-width space and joiners, bidirectional marks and overrides, BOM, soft hyphen. */
const FORMAT = /\p{Cf}/gu;
const MARKS = /\p{M}/gu;
const CONTROL = /\p{Cc}/gu;

/**
 * A name folded for comparison: compatibility-decomposed (NFKD), accents and other combining marks
 * removed, invisible format characters removed, lower case, apostrophes removed, any other
 * punctuation or spacing collapsed to single spaces. `Siobhán O’Brien` → `siobhan obrien`.
 */
export function foldText(input: string): string {
  let s = input.normalize('NFKD').replace(MARKS, '').replace(FORMAT, '').replace(CONTROL, ' ');
  // Lower-casing can produce new combining marks (İ → i + combining dot above): decompose again.
  s = s.toLowerCase().normalize('NFKD').replace(MARKS, '');
  s = s.replace(SPECIAL_LETTER, (c) => SPECIAL_LETTERS[c] ?? c);
  s = s.replace(APOSTROPHES, '');
  return s.replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

/** The folded name without spaces: `O Brien`, `O'Brien` and `OBRIEN` share the key `obrien`. */
export function nameKey(input: string): string {
  return foldText(input).replace(/ /g, '');
}

/** The folded words of a name (double-barrelled names and middle names are several words). */
export function nameTokens(input: string): string[] {
  const folded = foldText(input);
  return folded === '' ? [] : folded.split(' ');
}

/**
 * Restricted Damerau-Levenshtein distance (optimal string alignment: insertions, deletions,
 * substitutions and transpositions of adjacent characters) over code points. With `max`, returns
 * `max + 1` as soon as the distance is known to exceed `max`.
 */
export function damerauLevenshtein(a: string, b: string, max = Infinity): number {
  const x = [...a];
  const y = [...b];
  if (Math.abs(x.length - y.length) > max) return max + 1;
  if (x.length === 0) return y.length;
  if (y.length === 0) return x.length;
  let before = new Array<number>(y.length + 1).fill(0);
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  let current = new Array<number>(y.length + 1).fill(0);
  for (let i = 1; i <= x.length; i++) {
    current[0] = i;
    let rowMin = current[0];
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1])
        d = Math.min(d, before[j - 2]! + 1);
      current[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin > max) return max + 1;
    [before, previous, current] = [previous, current, before];
  }
  const distance = previous[y.length]!;
  return distance > max ? max + 1 : distance;
}

/**
 * Typing errors tolerated in a name key of this length (the shorter of the two compared): none in
 * one or two letters, one up to seven letters, two from eight.
 */
export function typoTolerance(length: number): number {
  if (length <= 2) return 0;
  if (length <= 7) return 1;
  return 2;
}

/**
 * A postcode in its compact comparable form: compatibility-normalised (full-width characters become
 * ASCII), invisible characters and all spacing removed, upper case. `ls1 4ap`, `LS14AP` and
 * `ＬＳ１ ４ＡＰ` all give `LS14AP`. Says nothing about validity (see `isUkPostcode`).
 */
export function normalisePostcode(input: string): string {
  return input.normalize('NFKC').replace(FORMAT, '').replace(/\s+/gu, '').toUpperCase();
}

/** The shape of a UK postcode (compact form): outward code, then digit and two letters. */
const UK_POSTCODE = /^(?:GIR0AA|[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2})$/;

export function isUkPostcode(compact: string): boolean {
  return UK_POSTCODE.test(compact);
}

/** `LS14AP` → `LS1 4AP` (the inward code is always the last three characters). */
export function formatPostcode(compact: string): string {
  return compact.length > 3 ? `${compact.slice(0, -3)} ${compact.slice(-3)}` : compact;
}

/** The outward code (postcode district) of a compact postcode: `LS14AP` → `LS1`. */
export function outwardCode(compact: string): string {
  return compact.length > 3 ? compact.slice(0, -3) : compact;
}

export type NameMatch = 'exact' | 'typo' | 'part' | 'prefix' | 'initial';
export type PostcodeMatch = 'exact' | 'typo' | 'district' | 'different' | 'not_given' | 'not_recorded';

export type DateOfBirthMatch = 'exact' | 'day_month_swapped' | 'year';

export interface PatientMatchQuery {
  /** Optional only with a full date of birth and a postcode that matches (see `matchPatient`). */
  familyName?: string;
  givenName?: string;
  /** ISO date (`1980-05-03`), or a year on its own (`1980`). */
  dateOfBirth: string;
  postcode?: string;
}

export interface PatientMatchCandidate {
  familyName: string;
  givenName: string;
  dateOfBirth: string;
  /** Every postcode known for the patient (main address first), in any form. */
  postcodes: readonly string[];
}

export interface PatientMatch {
  /** 0–100: higher is a closer match. */
  score: number;
  dateOfBirth: DateOfBirthMatch;
  familyName: NameMatch | 'not_given';
  givenName: NameMatch | 'not_given';
  postcode: PostcodeMatch;
}

interface NameScore {
  kind: NameMatch;
  edits: number;
}

/** Family names: the whole name, or one word of a double-barrelled or multi-word name. */
export function matchFamilyName(query: string, candidate: string): NameScore | null {
  const q = nameKey(query);
  const c = nameKey(candidate);
  if (q === '' || c === '') return null;
  if (q === c) return { kind: 'exact', edits: 0 };
  const tolerance = typoTolerance(Math.min([...q].length, [...c].length));
  const edits = damerauLevenshtein(q, c, tolerance);
  if (edits <= tolerance) return { kind: 'typo', edits };
  const qt = nameTokens(query).filter((t) => [...t].length >= 3);
  const ct = nameTokens(candidate).filter((t) => [...t].length >= 3);
  if ((qt.length > 1 || ct.length > 1) && qt.some((t) => ct.includes(t))) return { kind: 'part', edits: 0 };
  return null;
}

/**
 * Given names: the record may hold middle names (`Mary Ann`). The first name typed is compared with
 * the whole given name and with each of its words; an initial or the start of the first name
 * matches weakly. Anything else (a twin's name) is no match.
 */
export function matchGivenName(query: string, candidate: string): NameScore | null {
  const q = nameKey(query);
  const c = nameKey(candidate);
  const qWords = nameTokens(query);
  const cWords = nameTokens(candidate);
  if (q === '' || c === '') return null;
  if (q === c || qWords[0] === cWords[0]) return { kind: 'exact', edits: 0 };
  const first = qWords[0]!;
  if (cWords.slice(1).includes(first) && [...first].length >= 2) return { kind: 'part', edits: 0 };
  let best: NameScore | null = null;
  for (const [typed, recorded] of [
    [q, c],
    [first, cWords[0]!],
  ] as const) {
    const tolerance = typoTolerance(Math.min([...typed].length, [...recorded].length));
    const edits = damerauLevenshtein(typed, recorded, tolerance);
    if (edits <= tolerance && (!best || edits < best.edits)) best = { kind: 'typo', edits };
  }
  if (best) return best;
  const firstWord = cWords[0]!;
  if ([...first].length === 1 && firstWord.startsWith(first)) return { kind: 'initial', edits: 0 };
  if ([...first].length >= 2 && firstWord.startsWith(first)) return { kind: 'prefix', edits: 0 };
  return null;
}

export function matchPostcode(query: string | undefined, candidates: readonly string[]): PostcodeMatch {
  if (query === undefined || normalisePostcode(query) === '') return 'not_given';
  const q = normalisePostcode(query);
  const known = candidates.map(normalisePostcode).filter((p) => p !== '');
  if (known.length === 0) return 'not_recorded';
  if (known.includes(q)) return 'exact';
  if (known.some((p) => damerauLevenshtein(q, p, 1) <= 1)) return 'typo';
  if (known.some((p) => outwardCode(p) === outwardCode(q))) return 'district';
  return 'different';
}

/**
 * How a candidate's date of birth relates to the one asked for. A year on its own matches every
 * date in that year; a full date matches itself, or itself with day and month swapped (`03/05` read
 * as `05/03`: the commonest date error, from month-first PCs and from reading back). Null: no match.
 */
export function matchDateOfBirth(query: string, candidate: string): DateOfBirthMatch | null {
  if (/^\d{4}$/.test(query)) return candidate.startsWith(`${query}-`) ? 'year' : null;
  if (query === candidate) return 'exact';
  if (swapDayAndMonth(query) === candidate) return 'day_month_swapped';
  return null;
}

/** Exact dates of birth (and a searched year) rank before swapped ones, whatever the names score. */
export const DATE_OF_BIRTH_RANK: Record<DateOfBirthMatch, number> = {
  exact: 0,
  year: 0,
  day_month_swapped: 1,
};

const FAMILY_POINTS: Record<NameMatch | 'not_given', number> = {
  exact: 50,
  typo: 50,
  part: 38,
  prefix: 0,
  initial: 0,
  not_given: 0,
};
const GIVEN_POINTS: Record<NameMatch | 'not_given', number> = {
  exact: 30,
  part: 26,
  typo: 30,
  prefix: 20,
  initial: 15,
  not_given: 15,
};
const POSTCODE_POINTS: Record<PostcodeMatch, number> = {
  exact: 20,
  typo: 14,
  district: 8,
  not_given: 10,
  not_recorded: 6,
  different: 0,
};

/** Points taken off a candidate found only with day and month swapped. */
const SWAPPED_DATE_PENALTY = 20;

/**
 * Whether a candidate matches a search by name, date of birth and postcode, and how closely. The
 * date of birth must match (`matchDateOfBirth`) and the family name must match (with the typo
 * tolerance); a given name, when typed, must match too. A postcode only ranks: people move, and the
 * index may hold an old address. Without a family name (the caller cannot spell it, or it changed)
 * the full date of birth and the postcode (exactly or with one typing error) must both match.
 */
export function matchPatient(
  query: PatientMatchQuery,
  candidate: PatientMatchCandidate,
): PatientMatch | null {
  const dateOfBirth = matchDateOfBirth(query.dateOfBirth, candidate.dateOfBirth);
  if (!dateOfBirth) return null;
  const familyGiven = query.familyName !== undefined && nameKey(query.familyName) !== '';
  let family: NameScore | null = null;
  if (familyGiven) {
    family = matchFamilyName(query.familyName!, candidate.familyName);
    if (!family) return null;
  } else if (dateOfBirth === 'year') {
    return null;
  }
  let given: NameScore | null = null;
  if (query.givenName !== undefined && nameKey(query.givenName) !== '') {
    given = matchGivenName(query.givenName, candidate.givenName);
    if (!given) return null;
  }
  const postcode = matchPostcode(query.postcode, candidate.postcodes);
  if (!family && postcode !== 'exact' && postcode !== 'typo') return null;
  const score =
    (family ? FAMILY_POINTS[family.kind] - 8 * family.edits : FAMILY_POINTS.not_given) +
    (given ? GIVEN_POINTS[given.kind] - 7 * given.edits : GIVEN_POINTS.not_given) +
    POSTCODE_POINTS[postcode] -
    (dateOfBirth === 'day_month_swapped' ? SWAPPED_DATE_PENALTY : 0);
  return {
    score: Math.max(0, Math.min(100, score)),
    dateOfBirth,
    familyName: family ? family.kind : 'not_given',
    givenName: given ? given.kind : 'not_given',
    postcode,
  };
}
