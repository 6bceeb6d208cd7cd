import {
  formatPostcode,
  GENDERS,
  isUkPostcode,
  normaliseNhsNumber,
  normalisePostcode,
  ODS_CODE,
  patientRecordSchema,
  type FieldIssue,
  type PatientRecord,
} from '@holdfast/core';
import { z } from 'zod';
import { jsonDepthExceeds, repeatedMemberPath } from '../http/app.ts';

/**
 * FHIR R4 Patient resources (UK Core / PDS conventions) mapped to patient records, one NDJSON line
 * at a time. Only the elements the local index needs are read; other elements are ignored (FHIR
 * resources are open). Every problem is reported with the element's path in the resource
 * (`identifier[0].value`) and a message that never repeats the value: the report goes back to
 * whoever uploaded the file, and may be logged or mailed on.
 */

export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
export const ODS_ORGANISATION_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const NOMINATED_PHARMACY_EXTENSION =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy';

/** One resource per line; a longer line is not a Patient resource this import can take. */
export const MAX_LINE_CHARS = 65_536;
export const MAX_LINES = 10_000;
const MAX_JSON_DEPTH = 32;

export type FhirPatientResult =
  { ok: true; record: PatientRecord; nhsNumberPath: string } | { ok: false; errors: FieldIssue[] };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Collects problems of one line; `text` and friends return undefined after recording one. */
class Line {
  readonly errors: FieldIssue[] = [];

  fail(path: string, message: string): undefined {
    this.errors.push({ path, message });
    return undefined;
  }

  /** Text at `path`: a string, storable, trimmed, within `max` characters (undefined when absent). */
  text(value: Json | undefined, path: string, max: number, what = 'text'): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') return this.fail(path, `must be ${what} (a JSON string)`);
    if (value.includes('\u0000') || LONE_SURROGATE.test(value))
      return this.fail(path, 'contains a character that cannot be stored (NUL or an unpaired surrogate)');
    const trimmed = value.trim();
    if ([...trimmed].length > max) return this.fail(path, `must be at most ${max} characters`);
    return trimmed === '' ? undefined : trimmed;
  }

  array(value: Json | undefined, path: string): Json[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.fail(path, 'must be a JSON array');
      return [];
    }
    return value;
  }
}

function parseLine(text: string, line: Line): JsonObject | undefined {
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH))
    return line.fail('$', `is nested more than ${MAX_JSON_DEPTH} levels deep`);
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => {
      if (key === '__proto__' || key === 'constructor') throw new ForbiddenKey();
      return v;
    });
  } catch (error) {
    return line.fail(
      '$',
      error instanceof ForbiddenKey
        ? 'contains a forbidden key (__proto__ or constructor)'
        : 'is not valid JSON (one FHIR resource per line)',
    );
  }
  const repeated = repeatedMemberPath(text);
  if (repeated) return line.fail(fhirPath(repeated), 'appears more than once in the same object');
  if (!isObject(value)) return line.fail('$', 'must be a JSON object: one FHIR resource per line');
  return value;
}

class ForbiddenKey extends Error {}

/** `['name', '0', 'given']` → `name[0].given`. */
function fhirPath(parts: readonly string[]): string {
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

const dateSchema = z.iso.date();

/** Maps one NDJSON line holding a FHIR R4 Patient resource to a patient record, or says why not. */
export function patientFromFhirLine(text: string): FhirPatientResult {
  const line = new Line();
  const resource = parseLine(text, line);
  if (!resource) return { ok: false, errors: line.errors };
  if (resource.resourceType !== 'Patient') {
    return {
      ok: false,
      errors: [
        {
          path: 'resourceType',
          message: 'must be "Patient": this import takes FHIR R4 Patient resources only',
        },
      ],
    };
  }

  const nhs = nhsNumberOf(resource, line);
  const name = nameOf(resource, line);
  const dateOfBirth = birthDateOf(resource, line);
  const gender = genderOf(resource, line);
  const addresses = addressesOf(resource, line);
  const phones = phonesOf(resource, line);
  const registeredPractice = practiceOf(resource, line);
  const nominatedPharmacy = pharmacyOf(resource, line);
  if (line.errors.length > 0 || !nhs || !name || !dateOfBirth) {
    return { ok: false, errors: line.errors };
  }

  const [mainAddress, ...otherAddresses] = addresses;
  const [mainPhone, ...otherPhones] = phones;
  const record: PatientRecord = {
    nhsNumber: nhs.value,
    givenName: name.given,
    familyName: name.family,
    dateOfBirth,
    // FHIR R4 Patient carries administrative gender only; PDS records it where a sex is expected.
    // It is taken as the sex too (shown with the record, confirmed with the caller), and kept as
    // the gender.
    sex: gender ?? 'unknown',
    ...(gender ? { gender } : {}),
    ...(mainPhone ? { phone: mainPhone.number } : {}),
    ...(otherPhones.length > 0 ? { otherPhones: otherPhones.slice(0, 5) } : {}),
    ...(mainAddress?.text ? { address: mainAddress.text } : {}),
    ...(mainAddress?.postcode ? { postcode: mainAddress.postcode } : {}),
    ...(otherAddresses.length > 0
      ? {
          otherAddresses: otherAddresses
            .filter((a) => a.text || a.postcode)
            .slice(0, 5)
            .map((a) => ({
              use: a.use === 'home' ? ('other' as const) : a.use,
              text: a.text ?? a.postcode!,
              ...(a.postcode ? { postcode: a.postcode } : {}),
            })),
        }
      : {}),
    ...(registeredPractice ? { registeredPractice } : {}),
    ...(nominatedPharmacy ? { nominatedPharmacy } : {}),
    specialNotes: [],
  };
  // A backstop: the mapping above should only produce valid records.
  const checked = patientRecordSchema.safeParse(record);
  if (!checked.success) {
    return {
      ok: false,
      errors: checked.error.issues.map((i) => ({
        path: `(record).${i.path.join('.')}`,
        message: i.message,
      })),
    };
  }
  return { ok: true, record: checked.data, nhsNumberPath: nhs.path };
}

function nhsNumberOf(resource: JsonObject, line: Line): { value: string; path: string } | undefined {
  const identifiers = line.array(resource.identifier, 'identifier');
  const found: { value: string; path: string }[] = [];
  identifiers.forEach((id, i) => {
    if (!isObject(id) || id.system !== NHS_NUMBER_SYSTEM) return;
    const path = `identifier[${i}].value`;
    const before = line.errors.length;
    const raw = line.text(id.value, path, 40, 'the NHS number');
    if (raw === undefined) {
      if (line.errors.length === before) line.fail(path, 'must hold the NHS number');
      return;
    }
    const r = normaliseNhsNumber(raw);
    if (!r.ok) line.fail(path, r.message);
    else found.push({ value: r.value, path });
  });
  if (found.length === 0) {
    if (!line.errors.some((e) => e.path.startsWith('identifier')))
      line.fail('identifier', `must include the NHS number (an identifier with system ${NHS_NUMBER_SYSTEM})`);
    return undefined;
  }
  if (new Set(found.map((f) => f.value)).size > 1) {
    line.fail('identifier', 'holds two different NHS numbers');
    return undefined;
  }
  return found[0];
}

/** The official name, else the usual one, else the first that is not old, a maiden name or anonymous. */
function nameOf(resource: JsonObject, line: Line): { given: string; family: string } | undefined {
  const names = line.array(resource.name, 'name');
  const indexed = names
    .map((n, i) => ({ n, i }))
    .filter((x): x is { n: JsonObject; i: number } => isObject(x.n));
  const pick =
    indexed.find((x) => x.n.use === 'official') ??
    indexed.find((x) => x.n.use === 'usual') ??
    indexed.find((x) => !['old', 'maiden', 'anonymous'].includes(String(x.n.use))) ??
    indexed[0];
  if (!pick) return line.fail('name', 'must hold the patient’s name (family and given names)');
  const at = `name[${pick.i}]`;
  const family = line.text(pick.n.family, `${at}.family`, 100, 'the family name');
  if (family === undefined && !line.errors.some((e) => e.path === `${at}.family`))
    line.fail(`${at}.family`, 'must hold the family name');
  const givens = line.array(pick.n.given, `${at}.given`);
  const given: string[] = [];
  givens.forEach((g, j) => {
    const t = line.text(g, `${at}.given[${j}]`, 100, 'a given name');
    if (t !== undefined) given.push(t);
  });
  const joined = given.join(' ');
  if (given.length === 0 && !line.errors.some((e) => e.path.startsWith(`${at}.given`)))
    line.fail(`${at}.given`, 'must hold at least one given name');
  else if ([...joined].length > 100) line.fail(`${at}.given`, 'must be at most 100 characters in all');
  if (family === undefined || given.length === 0 || [...joined].length > 100) return undefined;
  return { family, given: joined };
}

function birthDateOf(resource: JsonObject, line: Line): string | undefined {
  const value = resource.birthDate;
  if (value === undefined || value === null) return line.fail('birthDate', 'must hold the date of birth');
  if (typeof value !== 'string' || !dateSchema.safeParse(value).success)
    return line.fail(
      'birthDate',
      'must be a full date of birth (YYYY-MM-DD) that exists: a year or a month alone cannot be matched',
    );
  return value;
}

function genderOf(resource: JsonObject, line: Line): (typeof GENDERS)[number] | undefined {
  const value = resource.gender;
  if (value === undefined || value === null) return undefined;
  const match = GENDERS.find((g) => g === value);
  if (!match)
    return line.fail('gender', 'must be male, female, other or unknown (FHIR AdministrativeGender)');
  return match;
}

interface MappedAddress {
  use: 'home' | 'temporary' | 'work' | 'other';
  text?: string;
  postcode?: string;
}

/** Current addresses (not `old` or `billing`), home first. */
function addressesOf(resource: JsonObject, line: Line): MappedAddress[] {
  const out: MappedAddress[] = [];
  line.array(resource.address, 'address').forEach((a, i) => {
    const at = `address[${i}]`;
    if (!isObject(a)) return void line.fail(at, 'must be a FHIR Address');
    if (a.use === 'old' || a.use === 'billing') return;
    const parts: string[] = [];
    line.array(a.line, `${at}.line`).forEach((l, j) => {
      const t = line.text(l, `${at}.line[${j}]`, 150, 'an address line');
      if (t !== undefined) parts.push(t);
    });
    for (const key of ['city', 'district'] as const) {
      const t = line.text(a[key], `${at}.${key}`, 100);
      if (t !== undefined) parts.push(t);
    }
    const text = parts.join(', ');
    if ([...text].length > 300) line.fail(at, 'must be at most 300 characters in all');
    let postcode: string | undefined;
    const rawPostcode = line.text(a.postalCode, `${at}.postalCode`, 16, 'a postcode');
    if (rawPostcode !== undefined) {
      const compact = normalisePostcode(rawPostcode);
      if (!isUkPostcode(compact)) line.fail(`${at}.postalCode`, 'must be a UK postcode, e.g. LS1 4AP');
      else postcode = formatPostcode(compact);
    }
    const use =
      a.use === 'temp'
        ? 'temporary'
        : a.use === 'work'
          ? 'work'
          : a.use === 'home' || !a.use
            ? 'home'
            : 'other';
    out.push({ use, ...(text ? { text } : {}), ...(postcode ? { postcode } : {}) });
  });
  // The main address is the first home address (stable order otherwise).
  const home = out.findIndex((a) => a.use === 'home');
  if (home > 0) out.unshift(...out.splice(home, 1));
  return out;
}

const PHONE = /^\+?[0-9][0-9 ()\-.]{2,28}$/;

/** Telephone numbers (system phone or sms, not `old`), by rank, then in order. */
function phonesOf(
  resource: JsonObject,
  line: Line,
): { use: 'home' | 'mobile' | 'work' | 'other'; number: string }[] {
  const out: { use: 'home' | 'mobile' | 'work' | 'other'; number: string; rank: number; i: number }[] = [];
  line.array(resource.telecom, 'telecom').forEach((t, i) => {
    const at = `telecom[${i}]`;
    if (!isObject(t)) return void line.fail(at, 'must be a FHIR ContactPoint');
    if ((t.system !== 'phone' && t.system !== 'sms') || t.use === 'old') return;
    const value = line.text(t.value, `${at}.value`, 30, 'a telephone number');
    if (value === undefined) return;
    if (!PHONE.test(value))
      return void line.fail(`${at}.value`, 'must be a telephone number: digits 0-9, spaces, + ( ) - and .');
    const use =
      t.use === 'mobile' || t.system === 'sms'
        ? 'mobile'
        : t.use === 'home'
          ? 'home'
          : t.use === 'work'
            ? 'work'
            : 'other';
    const rank = typeof t.rank === 'number' && Number.isInteger(t.rank) && t.rank > 0 ? t.rank : Infinity;
    out.push({ use, number: value, rank, i });
  });
  return out.sort((a, b) => a.rank - b.rank || a.i - b.i).map(({ use, number }) => ({ use, number }));
}

function odsCode(value: Json | undefined, path: string, line: Line): string | undefined {
  const before = line.errors.length;
  const raw = line.text(value, path, 20, 'an ODS code');
  if (raw === undefined) {
    if (line.errors.length === before) line.fail(path, 'must hold the ODS organisation code');
    return undefined;
  }
  const code = raw.normalize('NFKC').toUpperCase();
  if (!ODS_CODE.test(code))
    return line.fail(path, 'must be an ODS organisation code: 3 to 6 letters and digits, e.g. A81001');
  return code;
}

/** The registered GP practice: a generalPractitioner reference identifying an organisation by ODS code. */
function practiceOf(resource: JsonObject, line: Line): { odsCode: string; name?: string } | undefined {
  const refs = line.array(resource.generalPractitioner, 'generalPractitioner');
  if (refs.length === 0) return undefined;
  const i = refs.findIndex(
    (r) => isObject(r) && isObject(r.identifier) && r.identifier.system === ODS_ORGANISATION_SYSTEM,
  );
  if (i < 0)
    return line.fail(
      'generalPractitioner',
      `must identify the GP practice by its ODS code (identifier system ${ODS_ORGANISATION_SYSTEM})`,
    );
  const ref = refs[i] as JsonObject;
  const code = odsCode(
    (ref.identifier as JsonObject).value,
    `generalPractitioner[${i}].identifier.value`,
    line,
  );
  const name = line.text(ref.display, `generalPractitioner[${i}].display`, 200);
  return code ? { odsCode: code, ...(name ? { name } : {}) } : undefined;
}

/** The nominated pharmacy (UK Core extension), identified by ODS code. */
function pharmacyOf(resource: JsonObject, line: Line): { odsCode: string; name?: string } | undefined {
  const extensions = line.array(resource.extension, 'extension');
  const i = extensions.findIndex((e) => isObject(e) && e.url === NOMINATED_PHARMACY_EXTENSION);
  if (i < 0) return undefined;
  const at = `extension[${i}].valueReference`;
  const ref = (extensions[i] as JsonObject).valueReference;
  if (!isObject(ref) || !isObject(ref.identifier) || ref.identifier.system !== ODS_ORGANISATION_SYSTEM)
    return line.fail(
      at,
      `must identify the pharmacy by its ODS code (identifier system ${ODS_ORGANISATION_SYSTEM})`,
    );
  const code = odsCode(ref.identifier.value, `${at}.identifier.value`, line);
  const name = line.text(ref.display, `${at}.display`, 200);
  return code ? { odsCode: code, ...(name ? { name } : {}) } : undefined;
}

/**
 * The lines of an NDJSON text, numbered from 1 (CRLF line ends accepted). Blank lines are skipped,
 * but still counted, so line numbers match what an editor shows.
 */
export function ndjsonLines(ndjson: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  ndjson.split('\n').forEach((raw, i) => {
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() !== '') out.push({ line: i + 1, text });
  });
  return out;
}

/** Structural limits on the whole upload, checked before any line is read (a refusal of the request). */
export function ndjsonLimitProblem(ndjson: string): string | null {
  const lines = ndjson.split('\n');
  if (lines.length > MAX_LINES)
    return `holds more than ${MAX_LINES.toLocaleString('en-GB')} lines: split the file into smaller uploads`;
  const long = lines.findIndex((l) => l.length > MAX_LINE_CHARS);
  if (long >= 0)
    return `line ${long + 1} is longer than ${MAX_LINE_CHARS.toLocaleString('en-GB')} characters: one FHIR Patient resource per line`;
  if (lines.every((l) => l.trim() === '')) return 'holds no resources';
  return null;
}
