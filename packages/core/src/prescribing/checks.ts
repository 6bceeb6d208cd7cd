import type { DoseRule, Formulary, Medicine } from './formulary.ts';
import { wordsMatchQuantity } from './quantity-words.ts';

/**
 * The checks run on a prescription before it may go (C9), in core so the browser shows them as the
 * prescriber types and the server re-runs them on send. (h18-web's minimal stand-in of
 * CONTRACT-18's names; h18-core's fuller version replaces it.)
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
  doseMg: number;
  frequencyPerDay: number;
  durationDays: number;
  quantity: number;
  quantityWords: string | null;
  directions: string;
}

export interface PatientForPrescribing {
  ageYears: number | null;
  weightKg: number | null;
  pregnant: boolean | null;
  renalImpairment: boolean | null;
  allergies: { allergen: string; allergyClass: string | null }[];
  currentMedication: { code: string | null; name: string }[];
}

export interface CheckResult {
  check: PrescriptionCheckKind;
  outcome: 'pass' | 'warning' | 'hard_stop';
  message: string;
}

export interface Override {
  check: PrescriptionCheckKind;
  reason: string;
}

const CONTROLLED_MAX_DAYS = 30;

type Outcome = Omit<CheckResult, 'check'>;
const pass = (message: string): Outcome => ({ outcome: 'pass', message });

function doseBand(m: Medicine, p: PatientForPrescribing): DoseRule | null {
  if (p.ageYears === null) return null;
  const age = p.ageYears;
  return (
    m.doseRules.find(
      (r) =>
        age >= r.minAgeYears &&
        (r.maxAgeYears === null || age < r.maxAgeYears) &&
        (p.weightKg === null ||
          ((r.minWeightKg == null || p.weightKg >= r.minWeightKg) &&
            (r.maxWeightKg == null || p.weightKg < r.maxWeightKg))),
    ) ?? null
  );
}

function allergy(m: Medicine, p: PatientForPrescribing): Outcome {
  const words = [m.name.toLowerCase(), ...m.allergyClasses.map((c) => c.toLowerCase())];
  const hit = p.allergies.find(
    (a) =>
      (a.allergyClass !== null &&
        m.allergyClasses.some((c) => c.toLowerCase() === a.allergyClass!.toLowerCase())) ||
      words.some((w) => a.allergen.toLowerCase().includes(w) || w.includes(a.allergen.toLowerCase().trim())),
  );
  if (hit)
    return {
      outcome: 'hard_stop',
      message: `Recorded allergy to ${hit.allergyClass ?? hit.allergen}: ${m.name} is in that class. Do not prescribe.`,
    };
  return pass(p.allergies.length ? 'No recorded allergy matches this medicine.' : 'No allergies recorded.');
}

function dose(m: Medicine, d: PrescriptionDraft, p: PatientForPrescribing): Outcome {
  const band = doseBand(m, p);
  if (!band)
    return {
      outcome: 'warning',
      message: 'No dose band fits the patient’s age and weight: check the dose yourself.',
    };
  const s = band.singleDose;
  if ('minMg' in s) {
    if (d.doseMg > s.maxMg)
      return {
        outcome: 'hard_stop',
        message: `A single dose of ${d.doseMg} mg is above the most, ${s.maxMg} mg.`,
      };
    if (d.doseMg < s.minMg)
      return {
        outcome: 'warning',
        message: `A single dose of ${d.doseMg} mg is below the usual ${s.minMg} mg.`,
      };
    return pass(`Dose within ${s.minMg}–${s.maxMg} mg.`);
  }
  if (p.weightKg === null)
    return {
      outcome: 'warning',
      message: 'This dose is by weight and no weight is recorded: enter the weight.',
    };
  const expected = Math.min(s.mgPerKg * p.weightKg, s.maxSingleMg);
  const tolerance = s.toleranceFraction ?? 0.1;
  if (d.doseMg > expected * (1 + tolerance))
    return {
      outcome: 'hard_stop',
      message: `A single dose of ${d.doseMg} mg is above ${Math.round(expected)} mg for ${p.weightKg} kg.`,
    };
  if (d.doseMg < expected * (1 - tolerance))
    return {
      outcome: 'warning',
      message: `A single dose of ${d.doseMg} mg is below ${Math.round(expected)} mg for ${p.weightKg} kg.`,
    };
  return pass(`Dose fits ${s.mgPerKg} mg/kg for ${p.weightKg} kg.`);
}

function maxDaily(m: Medicine, d: PrescriptionDraft, p: PatientForPrescribing): Outcome {
  const band = doseBand(m, p);
  if (!band)
    return { outcome: 'warning', message: 'No dose band fits the patient: check the daily dose yourself.' };
  const daily = d.doseMg * d.frequencyPerDay;
  if (daily > band.maxDailyMg)
    return {
      outcome: 'hard_stop',
      message: `${daily} mg a day is above the daily maximum of ${band.maxDailyMg} mg.`,
    };
  if (d.frequencyPerDay > band.maxFrequencyPerDay)
    return {
      outcome: 'warning',
      message: `${d.frequencyPerDay} times a day is more often than the usual ${band.maxFrequencyPerDay}.`,
    };
  return pass(`${daily} mg a day, within the maximum of ${band.maxDailyMg} mg.`);
}

function duplicate(m: Medicine, p: PatientForPrescribing, f: Formulary): Outcome {
  const same = p.currentMedication.find((c) => {
    const known = c.code ? f.medicines.find((x) => x.code === c.code) : undefined;
    return known ? known.therapeuticClass === m.therapeuticClass : false;
  });
  return same
    ? {
        outcome: 'warning',
        message: `Already taking ${same.name}, also ${m.therapeuticClass}: duplicate therapy.`,
      }
    : pass('No duplicate therapy with current medication.');
}

function interaction(m: Medicine, p: PatientForPrescribing, f: Formulary): Outcome {
  const found: { severity: 'warning' | 'hard_stop'; text: string }[] = [];
  for (const c of p.currentMedication) {
    const other = c.code ? f.medicines.find((x) => x.code === c.code) : undefined;
    if (!other) continue;
    const names = (x: Medicine) => [x.code, ...x.interactionClasses];
    for (const i of m.interactions)
      if (names(other).includes(i.with))
        found.push({ severity: i.severity, text: `${other.name}: ${i.text}` });
    for (const i of other.interactions)
      if (names(m).includes(i.with)) found.push({ severity: i.severity, text: `${other.name}: ${i.text}` });
  }
  if (found.length === 0) return pass('No interaction with current medication in the formulary.');
  const worst = found.some((x) => x.severity === 'hard_stop') ? 'hard_stop' : 'warning';
  return { outcome: worst, message: `Interaction with ${found.map((x) => x.text).join('; ')}` };
}

function controlled(m: Medicine, d: PrescriptionDraft): Outcome {
  if (m.controlledSchedule !== 2 && m.controlledSchedule !== 3)
    return pass(
      m.controlledSchedule ? `Schedule ${m.controlledSchedule} controlled drug.` : 'Not a controlled drug.',
    );
  if (!d.quantityWords || d.quantityWords.trim() === '')
    return {
      outcome: 'hard_stop',
      message: `Schedule ${m.controlledSchedule}: write the quantity in words as well as figures.`,
    };
  if (!wordsMatchQuantity(d.quantityWords, d.quantity))
    return { outcome: 'hard_stop', message: 'The quantity in words does not say the same as the figures.' };
  if (d.durationDays > CONTROLLED_MAX_DAYS)
    return {
      outcome: 'hard_stop',
      message: `Schedule ${m.controlledSchedule}: no more than ${CONTROLLED_MAX_DAYS} days.`,
    };
  return pass(`Schedule ${m.controlledSchedule}: quantity in words and figures agree.`);
}

function caution(
  level: 'warning' | 'hard_stop' | undefined,
  applies: boolean | null,
  what: string,
  m: Medicine,
): Outcome {
  if (!level) return pass(`No ${what} caution.`);
  if (applies === true)
    return {
      outcome: level,
      message: `${m.name}: ${what} caution.${m.cautions.text ? ` ${m.cautions.text}` : ''}`,
    };
  if (applies === null)
    return pass(`${what[0]!.toUpperCase()}${what.slice(1)} caution applies if relevant; not recorded.`);
  return pass(`No ${what} caution for this patient.`);
}

export function checkPrescription(
  draft: PrescriptionDraft,
  patient: PatientForPrescribing,
  formulary: Formulary,
): CheckResult[] {
  const m = formulary.medicines.find((x) => x.code === draft.medicineCode);
  if (!m)
    return PRESCRIPTION_CHECKS.map((check) => ({
      check,
      outcome: 'hard_stop',
      message: 'The medicine is not in the formulary.',
    }));
  const under12 = patient.ageYears === null ? null : patient.ageYears < 12;
  const results: Record<PrescriptionCheckKind, Outcome> = {
    allergy: allergy(m, patient),
    dose: dose(m, draft, patient),
    max_daily: maxDaily(m, draft, patient),
    duplicate: duplicate(m, patient, formulary),
    interaction: interaction(m, patient, formulary),
    controlled: controlled(m, draft),
    pregnancy: caution(m.cautions.pregnancy, patient.pregnant, 'pregnancy', m),
    age:
      patient.ageYears === null
        ? { outcome: 'warning', message: 'The patient’s age is not known.' }
        : caution(m.cautions.under12, under12, 'under 12', m),
    renal: caution(m.cautions.renal, patient.renalImpairment, 'renal', m),
    duration:
      m.maxDurationDays != null && draft.durationDays > m.maxDurationDays
        ? {
            outcome: 'warning',
            message: `${draft.durationDays} days is longer than the usual ${m.maxDurationDays}.`,
          }
        : pass(`${draft.durationDays} days.`),
  };
  return PRESCRIPTION_CHECKS.map((check) => ({ check, ...results[check] }));
}

/** Why it may not go: every hard stop, and every warning without an override reason. Empty when it may. */
export function blockingProblems(results: readonly CheckResult[], overrides: readonly Override[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    if (r.outcome === 'hard_stop') out.push(`${r.check}: ${r.message} (a hard stop cannot be overridden)`);
    else if (r.outcome === 'warning' && !overrides.some((o) => o.check === r.check && o.reason.trim() !== ''))
      out.push(`${r.check}: ${r.message} (give a reason to override)`);
  }
  return out;
}
