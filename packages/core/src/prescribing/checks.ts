import {
  CONTROLLED_MAX_DAYS,
  STRICT_CONTROLLED_SCHEDULES,
  isWeightBasedDose,
  medicineByCode,
  type CautionLevel,
  type DoseRule,
  type Formulary,
  type Medicine,
} from './formulary.ts';
import { quantityInWords, wordsMatchQuantity } from './quantity-words.ts';

export { quantityInWords, wordsMatchQuantity } from './quantity-words.ts';

/**
 * The prescribing checks, run in the browser as the prescriber types and again on the server before
 * anything is sent (the client's results are never trusted). Every check kind gives one result, every
 * time: a check that could not be done says so (a hard stop or a warning), never a silent pass.
 * Messages are plain words for a clinician, naming the medicine and the rule — never the patient.
 */

export const PRESCRIPTION_CHECKS = [
  'allergy',
  'dose',
  'max_daily',
  'duplicate',
  'interaction',
  'controlled',
  'pregnancy',
  'age',
  'renal',
  'duration',
] as const;
export type PrescriptionCheckKind = (typeof PRESCRIPTION_CHECKS)[number];

export interface PrescriptionDraft {
  medicineCode: string;
  /** Per administration, in mg. */
  doseMg: number;
  frequencyPerDay: number;
  durationDays: number;
  /** In the medicine's unit. */
  quantity: number;
  /** Required for schedule 2 and 3. */
  quantityWords: string | null;
  directions: string;
}

export interface PatientForPrescribing {
  ageYears: number | null;
  weightKg: number | null;
  pregnant: boolean | null;
  renalImpairment: boolean | null;
  /** Free text, and the class when known. */
  allergies: { allergen: string; allergyClass: string | null }[];
  /** The code when it is a formulary medicine. */
  currentMedication: { code: string | null; name: string }[];
}

export type CheckOutcome = 'pass' | 'warning' | 'hard_stop';

export interface CheckResult {
  check: PrescriptionCheckKind;
  outcome: CheckOutcome;
  /** Plain words; no patient identifiers. */
  message: string;
}

export interface Override {
  check: PrescriptionCheckKind;
  reason: string;
}

/** Children under this age meet a medicine's `under12` caution. */
export const CHILD_CAUTION_AGE_YEARS = 12;
/** A weight-based dose may be this far from mg/kg × weight (rounding to a measurable dose). */
const DEFAULT_DOSE_TOLERANCE = 0.1;

const RANK: Record<CheckOutcome, number> = { pass: 0, warning: 1, hard_stop: 2 };
const worst = (a: CheckOutcome, b: CheckOutcome): CheckOutcome => (RANK[a] >= RANK[b] ? a : b);
const result = (check: PrescriptionCheckKind, outcome: CheckOutcome, message: string): CheckResult => ({
  check,
  outcome,
  message,
});
/** Rounded for display: 0.1 mg is as fine as anyone reads a dose. */
const mg = (n: number) => `${Math.round(n * 10) / 10} mg`;
const words = (s: string) =>
  s
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
/** True when `phrase` appears as whole words in `text` ("naproxen" in "Naproxen 500 mg tablets"). */
function mentions(text: string, phrase: string): boolean {
  const t = words(text);
  const p = words(phrase);
  if (p.length === 0) return false;
  for (let i = 0; i + p.length <= t.length; i++) if (p.every((w, j) => t[i + j] === w)) return true;
  return false;
}

/** Runs every check. One result per kind in `PRESCRIPTION_CHECKS` order, always all of them. */
export function checkPrescription(
  draft: PrescriptionDraft,
  patient: PatientForPrescribing,
  formulary: Formulary,
): CheckResult[] {
  const medicine = medicineByCode(formulary, draft.medicineCode);
  if (!medicine)
    return PRESCRIPTION_CHECKS.map((check) =>
      result(check, 'hard_stop', 'the medicine is not in the formulary: nothing can be checked'),
    );
  const band = doseBand(medicine, patient);
  const current = resolveCurrentMedication(patient.currentMedication, formulary);
  return [
    checkAllergy(medicine, patient),
    checkDose(medicine, band, draft, patient),
    checkMaxDaily(medicine, band, draft),
    checkDuplicate(medicine, current),
    checkInteractions(medicine, current),
    checkControlled(medicine, draft),
    checkCaution('pregnancy', medicine, patient.pregnant, 'pregnant', 'whether the patient is pregnant'),
    checkCaution(
      'age',
      medicine,
      patient.ageYears === null ? null : patient.ageYears < CHILD_CAUTION_AGE_YEARS,
      `under ${CHILD_CAUTION_AGE_YEARS}`,
      "the patient's age",
    ),
    checkCaution('renal', medicine, patient.renalImpairment, 'with renal impairment', 'kidney function'),
    checkDuration(medicine, draft),
  ];
}

function checkAllergy(m: Medicine, patient: PatientForPrescribing): CheckResult {
  const classes = new Set(m.allergyClasses);
  for (const a of patient.allergies) {
    if (a.allergyClass !== null && classes.has(a.allergyClass))
      return result(
        'allergy',
        'hard_stop',
        `recorded ${a.allergyClass} allergy: ${m.name} is a ${a.allergyClass}`,
      );
    if (mentions(a.allergen, m.name)) return result('allergy', 'hard_stop', `recorded allergy to ${m.name}`);
    const named = m.allergyClasses.find((c) => mentions(a.allergen, c));
    if (named) return result('allergy', 'hard_stop', `recorded ${named} allergy: ${m.name} is a ${named}`);
  }
  return patient.allergies.length === 0
    ? result('allergy', 'pass', 'no allergies recorded: confirm with the patient that they have none')
    : result('allergy', 'pass', `no recorded allergy matches ${m.name}`);
}

type Band = { rule: DoseRule } | { missing: string } | { notChecked: string };

function doseBand(m: Medicine, patient: PatientForPrescribing): Band {
  if (m.doseRules.length === 0) return { notChecked: m.doseNotChecked ?? 'no dose range in the formulary' };
  if (patient.ageYears === null)
    return { missing: `the patient's age is not recorded: the ${m.name} dose cannot be checked` };
  const age = patient.ageYears;
  const forAge = m.doseRules.filter(
    (r) => age >= r.minAgeYears && (r.maxAgeYears === null || age < r.maxAgeYears),
  );
  if (forAge.length === 0)
    return { missing: `the formulary has no ${m.name} dose for a patient aged ${age}` };
  const needsWeight = forAge.some(
    (r) => r.minWeightKg != null || r.maxWeightKg != null || isWeightBasedDose(r.singleDose),
  );
  if (patient.weightKg === null) {
    if (needsWeight) return { missing: `${m.name} is dosed by weight at this age: record the weight` };
    return { rule: forAge[0]! };
  }
  const w = patient.weightKg;
  const rule = forAge.find((r) => w >= (r.minWeightKg ?? 0) && (r.maxWeightKg == null || w < r.maxWeightKg));
  return rule ? { rule } : { missing: `the formulary has no ${m.name} dose for this age and weight` };
}

function checkDose(
  m: Medicine,
  band: Band,
  draft: PrescriptionDraft,
  patient: PatientForPrescribing,
): CheckResult {
  if ('notChecked' in band) return result('dose', 'pass', `dose not counted in mg: ${band.notChecked}`);
  if ('missing' in band) return result('dose', 'hard_stop', band.missing);
  if (!(draft.doseMg > 0)) return result('dose', 'hard_stop', 'the dose must be more than 0 mg');
  const { singleDose } = band.rule;
  if (isWeightBasedDose(singleDose)) {
    const weight = patient.weightKg!;
    const tolerance = singleDose.toleranceFraction ?? DEFAULT_DOSE_TOLERANCE;
    const byWeight = Math.min(singleDose.mgPerKg * weight, singleDose.maxSingleMg);
    const basis = `${singleDose.mgPerKg} mg/kg for ${weight} kg, at most ${mg(singleDose.maxSingleMg)}: ${mg(byWeight)}`;
    if (draft.doseMg > singleDose.maxSingleMg)
      return result(
        'dose',
        'hard_stop',
        `${mg(draft.doseMg)} is over the ${m.name} single-dose cap (${basis})`,
      );
    if (draft.doseMg > byWeight * (1 + tolerance))
      return result(
        'dose',
        'hard_stop',
        `${mg(draft.doseMg)} is over the ${m.name} dose by weight (${basis})`,
      );
    if (draft.doseMg < byWeight * (1 - tolerance))
      return result(
        'dose',
        'warning',
        `${mg(draft.doseMg)} is under the ${m.name} dose by weight (${basis})`,
      );
    return result('dose', 'pass', `${mg(draft.doseMg)} is within the ${m.name} dose by weight (${basis})`);
  }
  const band_ = `${mg(singleDose.minMg)} to ${mg(singleDose.maxMg)}`;
  if (draft.doseMg > singleDose.maxMg)
    return result(
      'dose',
      'hard_stop',
      `${mg(draft.doseMg)} is over the ${m.name} single dose for this age (${band_})`,
    );
  if (draft.doseMg < singleDose.minMg)
    return result(
      'dose',
      'warning',
      `${mg(draft.doseMg)} is under the ${m.name} single dose for this age (${band_})`,
    );
  return result(
    'dose',
    'pass',
    `${mg(draft.doseMg)} is within the ${m.name} single dose for this age (${band_})`,
  );
}

function checkMaxDaily(m: Medicine, band: Band, draft: PrescriptionDraft): CheckResult {
  if ('notChecked' in band)
    return result('max_daily', 'pass', `daily dose not counted in mg: ${band.notChecked}`);
  if ('missing' in band) return result('max_daily', 'hard_stop', band.missing);
  if (!Number.isInteger(draft.frequencyPerDay) || draft.frequencyPerDay < 1)
    return result('max_daily', 'hard_stop', 'the number of doses a day must be a whole number, 1 or more');
  const daily = draft.doseMg * draft.frequencyPerDay;
  const { maxDailyMg, maxFrequencyPerDay } = band.rule;
  if (daily > maxDailyMg)
    return result(
      'max_daily',
      'hard_stop',
      `${mg(draft.doseMg)} ${draft.frequencyPerDay} times a day is ${mg(daily)}: over the ${m.name} maximum of ${mg(maxDailyMg)} in 24 hours`,
    );
  if (draft.frequencyPerDay > maxFrequencyPerDay)
    return result(
      'max_daily',
      'warning',
      `${draft.frequencyPerDay} doses a day is more often than the ${m.name} ${maxFrequencyPerDay} a day`,
    );
  return result(
    'max_daily',
    'pass',
    `${mg(daily)} a day is within the ${m.name} maximum of ${mg(maxDailyMg)}`,
  );
}

/** Current medication as formulary medicines (by code, or by name), and as classes named for it. */
interface CurrentMedicine {
  name: string;
  medicine: Medicine | null;
  classes: Set<string>;
}

function resolveCurrentMedication(
  current: PatientForPrescribing['currentMedication'],
  f: Formulary,
): CurrentMedicine[] {
  return current.map((c) => {
    const medicine =
      (c.code !== null ? medicineByCode(f, c.code) : undefined) ??
      f.medicines.find((m) => mentions(c.name, m.name)) ??
      null;
    const classes = new Set<string>();
    if (medicine) {
      classes.add(medicine.code);
      classes.add(medicine.therapeuticClass);
      for (const k of medicine.interactionClasses) classes.add(k);
    }
    for (const [k, names] of Object.entries(f.interactionClassMembers ?? {}))
      if (names.some((n) => mentions(c.name, n))) classes.add(k);
    return { name: medicine?.name ?? c.name, medicine, classes };
  });
}

function checkDuplicate(m: Medicine, current: CurrentMedicine[]): CheckResult {
  const same = current.find((c) => c.medicine?.code === m.code);
  if (same) return result('duplicate', 'warning', `already taking ${m.name}`);
  const sameClass = current.find((c) => c.medicine?.therapeuticClass === m.therapeuticClass);
  if (sameClass)
    return result(
      'duplicate',
      'warning',
      `${m.name} and ${sameClass.medicine!.name} are both ${m.therapeuticClass}: duplicate therapy`,
    );
  return result('duplicate', 'pass', `no current medication of the same kind as ${m.name}`);
}

function checkInteractions(m: Medicine, current: CurrentMedicine[]): CheckResult {
  const own = new Set([m.code, m.therapeuticClass, ...m.interactionClasses]);
  let outcome: CheckOutcome = 'pass';
  const found: string[] = [];
  for (const c of current) {
    // Either side may declare it: the new medicine naming the current one, or the other way round.
    const declared = [
      ...m.interactions.filter((x) => c.classes.has(x.with)),
      ...(c.medicine?.interactions.filter((x) => own.has(x.with)) ?? []),
    ];
    for (const x of declared) {
      outcome = worst(outcome, x.severity);
      const line = `${m.name} with ${c.medicine ? c.medicine.name : x.with}: ${x.text}`;
      if (!found.includes(line)) found.push(line);
    }
  }
  if (found.length === 0)
    return result(
      'interaction',
      'pass',
      current.length === 0
        ? 'no current medication recorded: confirm with the patient'
        : `no known interaction of ${m.name} with the current medication`,
    );
  return result('interaction', outcome, found.join('; '));
}

function checkControlled(m: Medicine, draft: PrescriptionDraft): CheckResult {
  const schedule = m.controlledSchedule;
  if (schedule === null) return result('controlled', 'pass', `${m.name} is not a controlled drug`);
  if (!STRICT_CONTROLLED_SCHEDULES.includes(schedule)) {
    if (draft.durationDays > CONTROLLED_MAX_DAYS)
      return result(
        'controlled',
        'warning',
        `${m.name} is schedule ${schedule}: more than ${CONTROLLED_MAX_DAYS} days needs a reason`,
      );
    return result('controlled', 'pass', `${m.name} is schedule ${schedule}`);
  }
  const problems: string[] = [];
  if (draft.quantityWords === null || draft.quantityWords.trim() === '')
    problems.push(`the quantity must also be written in words (${quantityInWordsOrFigures(draft.quantity)})`);
  else if (!wordsMatchQuantity(draft.quantityWords, draft.quantity))
    problems.push(
      `the quantity in words does not say ${draft.quantity} (${quantityInWordsOrFigures(draft.quantity)})`,
    );
  if (draft.durationDays > CONTROLLED_MAX_DAYS)
    problems.push(`no more than ${CONTROLLED_MAX_DAYS} days may be prescribed (${draft.durationDays} asked)`);
  const supply = daysSupplied(m, draft);
  if (supply !== null && supply > CONTROLLED_MAX_DAYS + 1e-9)
    problems.push(`the quantity lasts ${Math.floor(supply)} days: more than ${CONTROLLED_MAX_DAYS}`);
  if (problems.length > 0)
    return result('controlled', 'hard_stop', `${m.name} is schedule ${schedule}: ${problems.join('; ')}`);
  return result(
    'controlled',
    'pass',
    `${m.name} is schedule ${schedule}: quantity in words and figures agree, ${draft.durationDays} days`,
  );
}

function quantityInWordsOrFigures(n: number): string {
  try {
    return `"${quantityInWords(n)}"`;
  } catch {
    return 'in words';
  }
}

function checkCaution(
  check: 'pregnancy' | 'age' | 'renal',
  m: Medicine,
  applies: boolean | null,
  who: string,
  unknown: string,
): CheckResult {
  const key = check === 'age' ? 'under12' : check;
  const level: CautionLevel | undefined = m.cautions[key];
  const why = m.cautions.text ? `: ${m.cautions.text}` : '';
  if (level === undefined) return result(check, 'pass', `no ${m.name} caution for patients ${who}`);
  if (applies === true) return result(check, level, `${m.name} caution for patients ${who}${why}`);
  if (applies === null)
    // Unknown: a hard-stop caution must be asked about; a warning is only mentioned.
    return level === 'hard_stop'
      ? result(
          check,
          'warning',
          `${unknown} is not recorded, and ${m.name} must not be given to patients ${who}`,
        )
      : result(check, 'pass', `${unknown} is not recorded; ${m.name} has a caution for patients ${who}`);
  return result(check, 'pass', `${m.name} caution for patients ${who} does not apply`);
}

/** mg per unit as given, or null when the quantity cannot be turned into days. */
function unitsPerDose(m: Medicine, draft: PrescriptionDraft): number | null {
  if (m.strengthMg === null || m.doseRules.length === 0 || !(draft.doseMg > 0)) return null;
  return draft.doseMg / m.strengthMg;
}

function daysSupplied(m: Medicine, draft: PrescriptionDraft): number | null {
  const perDose = unitsPerDose(m, draft);
  if (perDose === null || !(draft.frequencyPerDay >= 1)) return null;
  return draft.quantity / (perDose * draft.frequencyPerDay);
}

function checkDuration(m: Medicine, draft: PrescriptionDraft): CheckResult {
  if (!Number.isInteger(draft.durationDays) || draft.durationDays < 1)
    return result('duration', 'hard_stop', 'the duration must be a whole number of days, 1 or more');
  if (!(draft.quantity > 0)) return result('duration', 'hard_stop', 'the quantity must be more than 0');
  let outcome: CheckOutcome = 'pass';
  const notes: string[] = [];
  if (m.maxDurationDays != null && draft.durationDays > m.maxDurationDays) {
    outcome = 'warning';
    notes.push(
      `${draft.durationDays} days is longer than the ${m.name} course of at most ${m.maxDurationDays} days`,
    );
  }
  const perDose = unitsPerDose(m, draft);
  if (perDose !== null && draft.frequencyPerDay >= 1) {
    const needed = Math.ceil(perDose * draft.frequencyPerDay * draft.durationDays - 1e-9);
    // Whole packs: the least of any pack size, taken as often as the course needs.
    const allowance = Math.min(...m.packSizes.map((p) => Math.ceil(needed / p - 1e-9) * p));
    if (draft.quantity < needed - 1e-9) {
      outcome = 'warning';
      notes.push(
        `${draft.quantity} ${m.unit} is less than the ${needed} needed for ${draft.durationDays} days`,
      );
    } else if (draft.quantity > allowance + 1e-9) {
      outcome = 'warning';
      notes.push(
        `${draft.quantity} ${m.unit} is more than ${draft.durationDays} days need (${needed}, or ${allowance} in whole packs)`,
      );
    }
  }
  if (notes.length > 0) return result('duration', outcome, notes.join('; '));
  return result('duration', 'pass', `${draft.durationDays} days; the quantity fits the course`);
}

/**
 * Why a prescription may not go: every hard stop (never overridable), every warning without an
 * override reason, and any check missing from the results. Empty when it may go.
 */
export function blockingProblems(results: CheckResult[], overrides: Override[]): string[] {
  const problems: string[] = [];
  for (const check of PRESCRIPTION_CHECKS)
    if (!results.some((r) => r.check === check)) problems.push(`${check}: the check was not run`);
  for (const r of results) {
    if (r.outcome === 'hard_stop')
      problems.push(`${r.check}: ${r.message} (a hard stop cannot be overridden)`);
    else if (
      r.outcome === 'warning' &&
      !overrides.some((o) => o.check === r.check && o.reason.trim().length > 0)
    )
      problems.push(`${r.check}: ${r.message} (give a reason to go ahead)`);
  }
  return problems;
}
