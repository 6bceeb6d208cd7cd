import { z } from 'zod';
import { ValidationError, type FieldIssue } from '../errors.ts';
import { zodIssuesToFieldIssues } from '../ledger/registry.ts';

/**
 * A formulary is data: the medicines a service may prescribe, with what the prescribing checks need
 * (dose bands by age and weight, daily maxima, controlled-drug schedule, allergy and interaction
 * classes, cautions). A provider's own or a licensed formulary plugs in as another directory
 * (`docs/FORMULARY.md`). The schema checks shape; `checkFormulary` checks sense (duplicate codes,
 * bands that overlap or leave gaps, interactions naming nothing…) and reports every problem at once.
 */

/** Controlled-drug schedule (Misuse of Drugs Regulations 2001); null on a medicine = not controlled. */
export type ControlledSchedule = 2 | 3 | 4 | 5;
export const CONTROLLED_SCHEDULES = [2, 3, 4, 5] as const;
/** Schedules 2 and 3: quantity in words and figures, no more than 30 days. */
export const STRICT_CONTROLLED_SCHEDULES: readonly ControlledSchedule[] = [2, 3];
export const CONTROLLED_MAX_DAYS = 30;

export type FixedSingleDose = { minMg: number; maxMg: number };
export type WeightSingleDose = { mgPerKg: number; maxSingleMg: number; toleranceFraction?: number };

/** One dose band; the first band whose age (and weight, when it has bounds) holds the patient applies. */
export interface DoseRule {
  /** Whole years, `[minAgeYears, maxAgeYears)`; null max = no upper age. */
  minAgeYears: number;
  maxAgeYears: number | null;
  /** Kilograms, `[minWeightKg, maxWeightKg)`; absent or null = any weight. */
  minWeightKg?: number | null;
  maxWeightKg?: number | null;
  /** Per administration: fixed (mg), or by weight (mgPerKg, capped by maxSingleMg). */
  singleDose: FixedSingleDose | WeightSingleDose;
  /** Per 24 hours. */
  maxDailyMg: number;
  maxFrequencyPerDay: number;
}

export type CautionLevel = 'warning' | 'hard_stop';

export interface Interaction {
  /** A medicine code, an interaction class or a therapeutic class. */
  with: string;
  severity: CautionLevel;
  /** Plain words for the prescriber. */
  text: string;
}

export interface Medicine {
  /** dm+d-style numeric id (6–18 digits), unique in the formulary. */
  code: string;
  /** The medicine's generic name ("Amoxicillin"); current medication written by name is matched on it. */
  name: string;
  form: string;
  strength: string;
  /**
   * Milligrams in one `unit` (one tablet, one mL, one puff). Null when the quantity is not counted in
   * doses (a cream, an auto-injector, a spray bottle): the quantity is then not compared with the course.
   */
  strengthMg: number | null;
  route: string;
  /** What a dose and the quantity are given in: "tablet", "capsule", "mL", "dose", "tube"… */
  unit: string;
  doseRules: DoseRule[];
  /**
   * Why the dose is not checked in mg (a cream applied thinly, eye drops): required when doseRules is
   * empty, and shown as the dose check's result.
   */
  doseNotChecked?: string;
  packSizes: number[];
  controlledSchedule: ControlledSchedule | null;
  /** Allergy classes a recorded allergy is matched on: "penicillin", "nsaid", "sulfonamide". */
  allergyClasses: string[];
  /** For duplicate therapy: two medicines of one class at once ("nsaid", "paracetamol"). */
  therapeuticClass: string;
  /** What other medicines' `Interaction.with` may name to mean this one. */
  interactionClasses: string[];
  interactions: Interaction[];
  cautions: { pregnancy?: CautionLevel; renal?: CautionLevel; under12?: CautionLevel; text?: string };
  /** Longest course allowed; schedule 2 and 3 medicines must say 30 or fewer. */
  maxDurationDays?: number | null;
}

export interface Formulary {
  id: string;
  version: string;
  title: string;
  notClinicallyValidated: boolean;
  medicines: Medicine[];
  /**
   * Medicines outside the formulary a patient may already take, by interaction class, as names
   * written in medication lists ({"statin": ["simvastatin", "atorvastatin"]}): so current medication
   * recorded by name only still meets the interactions that name its class.
   */
  interactionClassMembers?: Record<string, string[]>;
  /** Free words about the content: where it comes from, and for a sample that it is not validated. */
  note?: string;
}

/** The line shown wherever the sample formulary is shown. */
export const NOT_CLINICALLY_VALIDATED_FORMULARY =
  'Formulary: sample content for demonstration — not clinically validated';
const NOT_VALIDATED_PATTERN = /not clinically validated/i;

/** A formulary that fails its schema: every issue names the field. */
export class FormularyError extends ValidationError {
  constructor(issues: FieldIssue[]) {
    super(issues, `formulary refused: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
}

const text = (max: number) => z.string().trim().min(1).max(max);
const classId = z
  .string()
  .max(64)
  .regex(/^[a-z][a-z0-9_-]*$/, 'use lower-case letters, digits, hyphens and underscores');
const milligrams = z.number().finite().positive().max(1_000_000);
export const MEDICINE_CODE = /^\d{6,18}$/;
const cautionLevel = z.enum(['warning', 'hard_stop']);

const singleDoseSchema = z.union([
  z.strictObject({ minMg: milligrams, maxMg: milligrams }),
  z.strictObject({
    mgPerKg: milligrams,
    maxSingleMg: milligrams,
    toleranceFraction: z.number().finite().min(0).max(0.5).optional(),
  }),
]);

const doseRuleSchema = z.strictObject({
  minAgeYears: z.number().int().min(0).max(130),
  maxAgeYears: z.number().int().min(1).max(150).nullable(),
  minWeightKg: z.number().finite().min(0).max(500).nullable().optional(),
  maxWeightKg: z.number().finite().positive().max(500).nullable().optional(),
  singleDose: singleDoseSchema,
  maxDailyMg: milligrams,
  maxFrequencyPerDay: z.number().int().min(1).max(24),
});

export const medicineSchema = z.strictObject({
  code: z.string().regex(MEDICINE_CODE, 'must be a dm+d-style code of 6 to 18 digits'),
  name: text(120),
  form: text(120),
  strength: text(120),
  strengthMg: milligrams.nullable(),
  route: text(60),
  unit: text(40),
  doseRules: z.array(doseRuleSchema).max(30),
  doseNotChecked: text(300).optional(),
  packSizes: z.array(z.number().finite().positive().max(100_000)).min(1).max(20),
  controlledSchedule: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(5)]).nullable(),
  allergyClasses: z.array(classId).max(20),
  therapeuticClass: classId,
  interactionClasses: z.array(classId).max(20),
  interactions: z
    .array(
      z.strictObject({
        with: z.string().min(1).max(64),
        severity: cautionLevel,
        text: text(400),
      }),
    )
    .max(50),
  cautions: z.strictObject({
    pregnancy: cautionLevel.optional(),
    renal: cautionLevel.optional(),
    under12: cautionLevel.optional(),
    text: text(600).optional(),
  }),
  maxDurationDays: z.number().int().min(1).max(366).nullable().optional(),
});

export const formularySchema: z.ZodType<Formulary> = z.strictObject({
  id: z
    .string()
    .max(64)
    .regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'use lower-case words joined by hyphens'),
  version: z
    .string()
    .regex(
      /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$/,
      'use a semantic version such as 1.0.0',
    ),
  title: text(200),
  notClinicallyValidated: z.boolean(),
  medicines: z.array(medicineSchema).min(1).max(5000),
  interactionClassMembers: z.record(classId, z.array(text(120)).max(100)).optional(),
  note: text(2000).optional(),
});

/**
 * A formulary on disk (`docs/FORMULARY.md`): `manifest.json` holds everything but the medicines;
 * each `medicines*.json` holds `{ "medicines": [...] }` (and an optional note).
 */
export const formularyManifestSchema = z.strictObject({
  id: z.string(),
  version: z.string(),
  title: z.string(),
  notClinicallyValidated: z.boolean(),
  interactionClassMembers: z.unknown().optional(),
  note: z.string().optional(),
});
export const formularyMedicinesFileSchema = z.strictObject({
  note: text(2000).optional(),
  medicines: z.array(z.unknown()).max(5000),
});

/** Checks the shape; throws a FormularyError whose paths name the field (`medicines.3.doseRules.0.maxDailyMg`). */
export function parseFormulary(json: unknown): Formulary {
  const result = formularySchema.safeParse(json);
  if (!result.success) throw new FormularyError(zodIssuesToFieldIssues(result.error, ''));
  return result.data;
}

export function isWeightBasedDose(dose: DoseRule['singleDose']): dose is WeightSingleDose {
  return 'mgPerKg' in dose;
}

/** The largest single dose a band allows, whatever the weight. */
export function maxSingleDoseMg(rule: DoseRule): number {
  return isWeightBasedDose(rule.singleDose) ? rule.singleDose.maxSingleMg : rule.singleDose.maxMg;
}

export function medicineByCode(formulary: Formulary, code: string): Medicine | undefined {
  return formulary.medicines.find((m) => m.code === code);
}

export const FORMULARY_PROBLEM_KINDS = [
  'duplicate_code',
  'not_labelled',
  'no_dose_rules',
  'bad_band',
  'band_overlap',
  'band_gap',
  'max_daily_below_single',
  'unknown_interaction',
  'controlled_duration',
] as const;
export type FormularyProblemKind = (typeof FORMULARY_PROBLEM_KINDS)[number];

export interface FormularyProblem {
  /** The medicine's code; null for the formulary as a whole. */
  code: string | null;
  /** Field path inside the formulary (`medicines.3.doseRules.1.maxAgeYears`). */
  field: string;
  message: string;
  kind: FormularyProblemKind;
}

const upper = (v: number | null | undefined) => v ?? Infinity;
const lower = (v: number | null | undefined) => v ?? 0;
const overlaps = (aMin: number, aMax: number, bMin: number, bMax: number) => aMin < bMax && bMin < aMax;
const range = (min: number, max: number, unit: string) => `${min}–${max === Infinity ? 'any' : max} ${unit}`;

/**
 * The formulary checker: what would let a check pass wrongly or leave a prescriber without an
 * answer. Every problem at once, each naming the medicine code and the field.
 */
export function checkFormulary(f: Formulary): { problems: FormularyProblem[] } {
  const problems: FormularyProblem[] = [];
  const report = (kind: FormularyProblemKind, code: string | null, field: string, message: string) =>
    problems.push({ kind, code, field, message });

  if (f.notClinicallyValidated && !NOT_VALIDATED_PATTERN.test(f.title))
    report(
      'not_labelled',
      null,
      'title',
      'the formulary is marked notClinicallyValidated: its title must say "not clinically validated"',
    );

  const known = new Set<string>(Object.keys(f.interactionClassMembers ?? {}));
  for (const m of f.medicines) {
    known.add(m.code);
    known.add(m.therapeuticClass);
    for (const c of m.interactionClasses) known.add(c);
  }

  const seen = new Map<string, number>();
  f.medicines.forEach((m, i) => {
    const at = `medicines.${i}`;
    const first = seen.get(m.code);
    if (first !== undefined)
      report(
        'duplicate_code',
        m.code,
        `${at}.code`,
        `code ${m.code} is also medicine ${first + 1} (${f.medicines[first]!.name})`,
      );
    else seen.set(m.code, i);

    checkDoseRules(m, at, report);

    m.interactions.forEach((x, j) => {
      if (!known.has(x.with))
        report(
          'unknown_interaction',
          m.code,
          `${at}.interactions.${j}.with`,
          `${m.name}: interaction with ${x.with} names no medicine code or class in the formulary`,
        );
    });

    if (
      m.controlledSchedule !== null &&
      STRICT_CONTROLLED_SCHEDULES.includes(m.controlledSchedule) &&
      (m.maxDurationDays == null || m.maxDurationDays > CONTROLLED_MAX_DAYS)
    )
      report(
        'controlled_duration',
        m.code,
        `${at}.maxDurationDays`,
        `${m.name} is schedule ${m.controlledSchedule}: maxDurationDays must be ${CONTROLLED_MAX_DAYS} or fewer`,
      );
  });
  return { problems };
}

function checkDoseRules(
  m: Medicine,
  at: string,
  report: (kind: FormularyProblemKind, code: string | null, field: string, message: string) => void,
): void {
  if (m.doseRules.length === 0) {
    if (m.doseNotChecked === undefined)
      report(
        'no_dose_rules',
        m.code,
        `${at}.doseRules`,
        `${m.name} has no dose bands: add one, or say in doseNotChecked why its dose is not counted in mg`,
      );
    return;
  }
  m.doseRules.forEach((r, j) => {
    const rat = `${at}.doseRules.${j}`;
    if (r.maxAgeYears !== null && r.maxAgeYears <= r.minAgeYears)
      report(
        'bad_band',
        m.code,
        `${rat}.maxAgeYears`,
        `${m.name} band ${j + 1}: maxAgeYears must be more than minAgeYears`,
      );
    if (upper(r.maxWeightKg) <= lower(r.minWeightKg))
      report(
        'bad_band',
        m.code,
        `${rat}.maxWeightKg`,
        `${m.name} band ${j + 1}: maxWeightKg must be more than minWeightKg`,
      );
    if (!isWeightBasedDose(r.singleDose) && r.singleDose.maxMg < r.singleDose.minMg)
      report(
        'bad_band',
        m.code,
        `${rat}.singleDose.maxMg`,
        `${m.name} band ${j + 1}: maxMg is less than minMg`,
      );
    if (r.maxDailyMg < maxSingleDoseMg(r))
      report(
        'max_daily_below_single',
        m.code,
        `${rat}.maxDailyMg`,
        `${m.name} band ${j + 1}: maximum daily dose ${r.maxDailyMg} mg is below the largest single dose ${maxSingleDoseMg(r)} mg`,
      );
  });

  // Two bands that hold the same patient: the first would silently win.
  m.doseRules.forEach((a, i) => {
    m.doseRules.forEach((b, j) => {
      if (j <= i) return;
      if (
        overlaps(a.minAgeYears, upper(a.maxAgeYears), b.minAgeYears, upper(b.maxAgeYears)) &&
        overlaps(lower(a.minWeightKg), upper(a.maxWeightKg), lower(b.minWeightKg), upper(b.maxWeightKg))
      )
        report(
          'band_overlap',
          m.code,
          `${at}.doseRules.${j}`,
          `${m.name}: band ${j + 1} (${range(b.minAgeYears, upper(b.maxAgeYears), 'years')}, ${range(lower(b.minWeightKg), upper(b.maxWeightKg), 'kg')}) overlaps band ${i + 1}`,
        );
    });
  });

  // Gaps: between the youngest and the oldest age a band covers, every age is covered; within one age
  // range split by weight, every weight between the lightest and the heaviest is covered.
  const ages = [...new Set(m.doseRules.map((r) => `${r.minAgeYears}:${upper(r.maxAgeYears)}`))]
    .map((k) => k.split(':').map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0]);
  for (const [from, to] of uncovered(ages))
    report('band_gap', m.code, `${at}.doseRules`, `${m.name}: no band covers ages ${from} to ${to} years`);
  for (const [minAge, maxAge] of ages) {
    const weights = m.doseRules
      .filter((r) => r.minAgeYears === minAge && upper(r.maxAgeYears) === maxAge)
      .map((r): [number, number] => [lower(r.minWeightKg), upper(r.maxWeightKg)]);
    for (const [from, to] of uncovered(weights))
      report(
        'band_gap',
        m.code,
        `${at}.doseRules`,
        `${m.name}: for ages ${range(minAge, maxAge, 'years')}, no band covers ${from} to ${to} kg`,
      );
  }
}

/** The holes between the lowest start and the highest end of `[min, max)` intervals. */
function uncovered(intervals: [number, number][]): [number, number][] {
  const sorted = [...intervals].sort((x, y) => x[0] - y[0]);
  const holes: [number, number][] = [];
  let coveredTo = sorted[0]?.[1] ?? 0;
  for (const [min, max] of sorted.slice(1)) {
    if (min > coveredTo) holes.push([coveredTo, min]);
    coveredTo = Math.max(coveredTo, max);
  }
  return holes;
}

/**
 * How a medicine is named to people (screens, the PEM): name, strength and form ("Amoxicillin 500 mg
 * capsule"), since one medicine comes in several strengths and forms (a capsule and a suspension).
 */
export function medicineLabel(m: { name: string; strength: string; form: string }): string {
  return `${m.name} ${m.strength} ${m.form}`;
}
