import {
  CONFIDENTIALITY_CODES,
  currentRecord,
  formatPostcode,
  NHS_NUMBER_VERIFICATION,
  periodApplies,
  type Confidentiality,
  type NhsNumberVerificationCode,
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
/** Language and interpreter need (complex extension: `language`, `interpreterRequired`, …). */
export const NHS_COMMUNICATION_EXTENSION =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSCommunication';
/** On the NHS number identifier: whether the number was traced and verified (codes 01 to 08). */
export const NHS_NUMBER_VERIFICATION_EXTENSION =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus';
/** meta.security codes: U, R (restricted), V (very restricted). The older FHIR URL is accepted too. */
export const CONFIDENTIALITY_SYSTEMS = [
  'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
  'http://hl7.org/fhir/v3/Confidentiality',
];

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

const fhirDateTimeSchema = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);

/**
 * Maps one NDJSON line holding a FHIR R4 Patient resource to a patient record, or says why not.
 * `nowMs` (the import's clock) picks the main name, address and practice among those whose period
 * has not ended; the history is kept with the periods, and reading the record later picks again by
 * that day's clock.
 */
export function patientFromFhirLine(text: string, nowMs: number): FhirPatientResult {
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
  const name = nameOf(resource, line, nowMs);
  const names = nameHistoryOf(resource, line);
  const confidentiality = confidentialityOf(resource, line);
  const lastConfirmedAt = lastUpdatedOf(resource, line) ?? new Date(nowMs).toISOString();
  const deceasedAt = deceasedOf(resource, line);
  const interpreter = interpreterOf(resource, line);
  const emergencyContacts = contactsOf(resource, line, nowMs);
  const practices = practiceHistoryOf(resource, line);
  const dateOfBirth = birthDateOf(resource, line);
  const gender = genderOf(resource, line);
  const addresses = addressesOf(resource, line);
  const phones = phonesOf(resource, line, nowMs);
  const registeredPractice = practiceOf(resource, line, nowMs);
  const nominatedPharmacy = pharmacyOf(resource, line);
  if (line.errors.length > 0 || !nhs || !name || !dateOfBirth) {
    return { ok: false, errors: line.errors };
  }

  const withPeriods = addresses.some((a) => a.start !== undefined || a.end !== undefined);
  const currentAddresses = addresses.filter((a) => periodApplies(a, nowMs));
  const [mainAddress, ...otherAddresses] = currentAddresses;
  const [mainPhone, ...otherPhones] = phones;
  const record: PatientRecord = {
    nhsNumber: nhs.value,
    ...(nhs.verification ? { nhsNumberVerification: { code: nhs.verification } } : {}),
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
    ...(confidentiality ? { confidentiality } : {}),
    ...(deceasedAt ? { deceasedAt } : {}),
    ...(names ? { names } : {}),
    // History is kept only where periods say something: then reading picks the current ones.
    ...(withPeriods
      ? {
          addresses: addresses
            .filter((a) => a.text || a.postcode)
            .slice(0, 10)
            .map((a) => ({
              use: a.use,
              text: a.text ?? a.postcode!,
              ...(a.postcode ? { postcode: a.postcode } : {}),
              ...(a.start ? { start: a.start } : {}),
              ...(a.end ? { end: a.end } : {}),
            })),
        }
      : {}),
    ...(practices ? { practices } : {}),
    ...(interpreter ? { interpreter } : {}),
    ...(emergencyContacts.length > 0 ? { emergencyContacts: emergencyContacts.slice(0, 5) } : {}),
    lastConfirmedAt,
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
  return { ok: true, record: currentRecord(checked.data, nowMs), nhsNumberPath: nhs.path };
}

function periodOf(
  value: Json | undefined,
  path: string,
  line: Line,
): { start?: string; end?: string } | undefined {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) return line.fail(path, 'must be a FHIR Period (start and end dates)');
  const out: { start?: string; end?: string } = {};
  for (const key of ['start', 'end'] as const) {
    const v = value[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || !fhirDateTimeSchema.safeParse(v).success)
      return line.fail(`${path}.${key}`, 'must be a date (YYYY-MM-DD) or a date and time with a time zone');
    out[key] = v;
  }
  return out;
}

const hasPeriod = (v: Json | undefined) => isObject(v) && isObject(v.period);

/** The strictest PDS security label in meta.security (U, R or V), if any. */
function confidentialityOf(resource: JsonObject, line: Line): Confidentiality | undefined {
  if (!isObject(resource.meta)) return undefined;
  let found: Confidentiality | undefined;
  const rank = (c: Confidentiality) => CONFIDENTIALITY_CODES.indexOf(c);
  line.array(resource.meta.security, 'meta.security').forEach((coding, i) => {
    if (!isObject(coding) || !CONFIDENTIALITY_SYSTEMS.includes(String(coding.system))) return;
    const code = CONFIDENTIALITY_CODES.find((c) => c === coding.code);
    // An unknown confidentiality code is refused rather than read as unrestricted.
    if (!code) return void line.fail(`meta.security[${i}].code`, 'must be U, R or V (v3-Confidentiality)');
    if (found === undefined || rank(code) > rank(found)) found = code;
  });
  return found;
}

function lastUpdatedOf(resource: JsonObject, line: Line): string | undefined {
  if (!isObject(resource.meta) || resource.meta.lastUpdated === undefined) return undefined;
  const v = resource.meta.lastUpdated;
  if (typeof v !== 'string' || !z.iso.datetime({ offset: true }).safeParse(v).success)
    return line.fail('meta.lastUpdated', 'must be a date and time with a time zone (FHIR instant)');
  return new Date(Date.parse(v)).toISOString();
}

function deceasedOf(resource: JsonObject, line: Line): string | undefined {
  const v = resource.deceasedDateTime;
  if (v !== undefined && v !== null) {
    if (typeof v !== 'string' || !fhirDateTimeSchema.safeParse(v).success)
      return line.fail('deceasedDateTime', 'must be a date (YYYY-MM-DD) or a date and time with a time zone');
    return v;
  }
  if (resource.deceasedBoolean === true)
    // Without a date the record cannot say when; refused so that it is fixed, not stored as alive.
    return line.fail('deceasedBoolean', 'must come with the date of death (deceasedDateTime) instead');
  return undefined;
}

/** Every name with its period, when any name carries a period (otherwise the history says nothing). */
function nameHistoryOf(resource: JsonObject, line: Line): PatientRecord['names'] {
  const names = line.array(resource.name, 'name');
  if (!names.some(hasPeriod)) return undefined;
  const out: NonNullable<PatientRecord['names']> = [];
  names.forEach((n, i) => {
    if (!isObject(n)) return;
    const family = typeof n.family === 'string' ? n.family.trim() : '';
    const given = Array.isArray(n.given)
      ? n.given
          .filter((g): g is string => typeof g === 'string')
          .join(' ')
          .trim()
      : '';
    if (!family || !given || [...family].length > 100 || [...given].length > 100) return;
    const p = periodOf(n.period, `name[${i}].period`, line);
    if (!p) return;
    const uses = ['official', 'usual', 'nickname', 'temp', 'old', 'maiden', 'other'] as const;
    const use = uses.find((u) => u === n.use);
    out.push({ ...(use ? { use } : {}), givenName: given, familyName: family, ...p });
  });
  return out.slice(0, 10);
}

function practiceHistoryOf(resource: JsonObject, line: Line): PatientRecord['practices'] {
  const refs = line.array(resource.generalPractitioner, 'generalPractitioner');
  if (!refs.some((r) => isObject(r) && hasPeriod(r.identifier))) return undefined;
  const out: NonNullable<PatientRecord['practices']> = [];
  refs.forEach((r, i) => {
    if (!isObject(r) || !isObject(r.identifier) || r.identifier.system !== ODS_ORGANISATION_SYSTEM) return;
    const code = typeof r.identifier.value === 'string' ? r.identifier.value.trim().toUpperCase() : '';
    if (!ODS_CODE.test(code)) return;
    const p = periodOf(r.identifier.period, `generalPractitioner[${i}].identifier.period`, line);
    if (!p) return;
    const name =
      typeof r.display === 'string' && r.display.trim() ? r.display.trim().slice(0, 200) : undefined;
    out.push({ odsCode: code, ...(name ? { name } : {}), ...p });
  });
  return out.slice(0, 10);
}

/** Text of a CodeableConcept: its text, else the first coding's display, else its code. */
function conceptText(value: Json | undefined): string | undefined {
  if (!isObject(value)) return undefined;
  if (typeof value.text === 'string' && value.text.trim()) return value.text.trim();
  const codings = Array.isArray(value.coding) ? value.coding.filter(isObject) : [];
  for (const c of codings) if (typeof c.display === 'string' && c.display.trim()) return c.display.trim();
  for (const c of codings) if (typeof c.code === 'string' && c.code.trim()) return c.code.trim();
  return undefined;
}

/** Interpreter need from the UK Core NHSCommunication extension (the first one that asks for one). */
function interpreterOf(resource: JsonObject, line: Line): PatientRecord['interpreter'] {
  let found: PatientRecord['interpreter'];
  line.array(resource.extension, 'extension').forEach((e, i) => {
    if (!isObject(e) || e.url !== NHS_COMMUNICATION_EXTENSION) return;
    const parts = line.array(e.extension, `extension[${i}].extension`).filter(isObject);
    const required = parts.find((p) => p.url === 'interpreterRequired')?.valueBoolean;
    if (required !== undefined && typeof required !== 'boolean')
      return void line.fail(`extension[${i}].extension`, 'interpreterRequired must be true or false');
    const language = conceptText(parts.find((p) => p.url === 'language')?.valueCodeableConcept);
    const entry = {
      required: required === true,
      ...(language ? { language: language.slice(0, 100) } : {}),
    };
    if (!found || (entry.required && !found.required)) found = entry;
  });
  return found;
}

/** The patient's contacts (`contact`): who, how related, and a telephone number. */
function contactsOf(
  resource: JsonObject,
  line: Line,
  nowMs: number,
): NonNullable<PatientRecord['emergencyContacts']> {
  const out: NonNullable<PatientRecord['emergencyContacts']> = [];
  line.array(resource.contact, 'contact').forEach((c, i) => {
    const at = `contact[${i}]`;
    if (!isObject(c)) return void line.fail(at, 'must be a FHIR Patient.contact');
    // A contact whose period has ended is not offered as someone to call.
    if (isObject(c.period) && !periodApplies(periodOf(c.period, `${at}.period`, line) ?? {}, nowMs)) return;
    const relationship = line
      .array(c.relationship, `${at}.relationship`)
      .map(conceptText)
      .filter((t): t is string => !!t)
      .join(', ');
    let name: string | undefined;
    if (isObject(c.name)) {
      const given = Array.isArray(c.name.given) ? c.name.given.filter((g) => typeof g === 'string') : [];
      const text =
        typeof c.name.text === 'string' && c.name.text.trim()
          ? c.name.text.trim()
          : [...given, typeof c.name.family === 'string' ? c.name.family : ''].join(' ').trim();
      name = line.text(text, `${at}.name`, 200, 'a name');
    }
    let phone: string | undefined;
    line.array(c.telecom, `${at}.telecom`).forEach((t, j) => {
      if (phone || !isObject(t) || (t.system !== 'phone' && t.system !== 'sms')) return;
      const v = line.text(t.value, `${at}.telecom[${j}].value`, 30, 'a telephone number');
      if (v !== undefined && !PHONE.test(v))
        return void line.fail(
          `${at}.telecom[${j}].value`,
          'must be a telephone number: digits 0-9, spaces, + ( ) - and .',
        );
      phone = v;
    });
    if (!name && !phone) return;
    out.push({
      ...(relationship ? { relationship: relationship.slice(0, 100) } : {}),
      ...(name ? { name } : {}),
      ...(phone ? { phone } : {}),
    });
  });
  return out;
}

function nhsNumberOf(
  resource: JsonObject,
  line: Line,
): { value: string; path: string; verification?: NhsNumberVerificationCode } | undefined {
  const identifiers = line.array(resource.identifier, 'identifier');
  const found: { value: string; path: string; verification?: NhsNumberVerificationCode }[] = [];
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
    if (!r.ok) return void line.fail(path, r.message);
    const verification = verificationOf(id, `identifier[${i}]`, line);
    found.push({ value: r.value, path, ...(verification ? { verification } : {}) });
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

function verificationOf(id: JsonObject, at: string, line: Line): NhsNumberVerificationCode | undefined {
  const extensions = line.array(id.extension, `${at}.extension`);
  const i = extensions.findIndex((e) => isObject(e) && e.url === NHS_NUMBER_VERIFICATION_EXTENSION);
  if (i < 0) return undefined;
  const concept = (extensions[i] as JsonObject).valueCodeableConcept;
  const codings = isObject(concept) ? line.array(concept.coding, `${at}.extension[${i}]`) : [];
  const code = codings.filter(isObject).map((c) => c.code)[0];
  const known = Object.keys(NHS_NUMBER_VERIFICATION).find((k) => k === code) as
    NhsNumberVerificationCode | undefined;
  if (!known)
    return line.fail(
      `${at}.extension[${i}].valueCodeableConcept`,
      'must hold an NHS number verification status code, 01 to 08',
    );
  return known;
}

/**
 * The official name, else the usual one, else the first that is not old, a maiden name or anonymous;
 * among the names whose period has not ended at `nowMs`.
 */
function nameOf(
  resource: JsonObject,
  line: Line,
  nowMs: number,
): { given: string; family: string } | undefined {
  const names = line.array(resource.name, 'name');
  const all = names.map((n, i) => ({ n, i })).filter((x): x is { n: JsonObject; i: number } => isObject(x.n));
  const current = all.filter(
    (x) =>
      !isObject(x.n.period) ||
      periodApplies(periodOf(x.n.period, `name[${x.i}].period`, new Line()) ?? {}, nowMs),
  );
  // When every name has ended the latest one is still the name to find the record by.
  const indexed = current.length > 0 ? current : all;
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
  start?: string;
  end?: string;
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
    const p = periodOf(a.period, `${at}.period`, line) ?? {};
    out.push({ use, ...(text ? { text } : {}), ...(postcode ? { postcode } : {}), ...p });
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
  nowMs: number,
): { use: 'home' | 'mobile' | 'work' | 'other'; number: string }[] {
  const out: { use: 'home' | 'mobile' | 'work' | 'other'; number: string; rank: number; i: number }[] = [];
  line.array(resource.telecom, 'telecom').forEach((t, i) => {
    const at = `telecom[${i}]`;
    if (!isObject(t)) return void line.fail(at, 'must be a FHIR ContactPoint');
    if ((t.system !== 'phone' && t.system !== 'sms') || t.use === 'old') return;
    // A number whose period has ended is not one to call back on.
    if (isObject(t.period) && !periodApplies(periodOf(t.period, `${at}.period`, line) ?? {}, nowMs)) return;
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
function practiceOf(
  resource: JsonObject,
  line: Line,
  nowMs: number,
): { odsCode: string; name?: string } | undefined {
  const refs = line.array(resource.generalPractitioner, 'generalPractitioner');
  if (refs.length === 0) return undefined;
  const byOds = (r: Json) =>
    isObject(r) && isObject(r.identifier) && r.identifier.system === ODS_ORGANISATION_SYSTEM;
  if (!refs.some(byOds))
    return line.fail(
      'generalPractitioner',
      `must identify the GP practice by its ODS code (identifier system ${ODS_ORGANISATION_SYSTEM})`,
    );
  // The registration that has not ended (PDS puts the period on the identifier).
  const i = refs.findIndex(
    (r) =>
      byOds(r) &&
      periodApplies(
        periodOf(((r as JsonObject).identifier as JsonObject).period, 'generalPractitioner', new Line()) ??
          {},
        nowMs,
      ),
  );
  if (i < 0) return undefined;
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
