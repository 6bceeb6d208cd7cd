import type { DoseRule, Formulary, Medicine } from './formulary.ts';

/**
 * The checks run on every prescription, in core so the browser shows them live and the server
 * re-runs them before anything is sent (the client's results are never trusted). Each check gives
 * one result: pass, a warning (may be overridden with a recorded reason) or a hard stop (may not).
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
  /** Per administration. */
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

const WORDS_0_19 = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** A whole quantity in words, as written on a controlled-drug prescription ("one hundred and twenty"). */
export function quantityInWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 999_999) return String(n);
  if (n < 20) return WORDS_0_19[n]!;
  if (n < 100) return `${TENS[Math.floor(n / 10)]}${n % 10 ? `-${WORDS_0_19[n % 10]}` : ''}`;
  if (n < 1000)
    return `${WORDS_0_19[Math.floor(n / 100)]} hundred${n % 100 ? ` and ${quantityInWords(n % 100)}` : ''}`;
  const rest = n % 1000;
  return `${quantityInWords(Math.floor(n / 1000))} thousand${rest ? (rest < 100 ? ' and ' : ' ') + quantityInWords(rest) : ''}`;
}

/** Whether words written by the prescriber say the quantity (case, spaces and hyphens ignored). */
export function wordsMatchQuantity(words: string | null, n: number): boolean {
  if (!words) return false;
  const norm = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z]+/g, ' ')
      .trim();
  return norm(words) === norm(quantityInWords(n));
}

const pass = (check: PrescriptionCheckKind, message = 'No problem found'): CheckResult => ({
  check,
  outcome: 'pass',
  message,
});

function ruleFor(m: Medicine, p: PatientForPrescribing): DoseRule | null {
  const age = p.ageYears;
  return (
    m.doseRules.find(
      (r) =>
        (age === null
          ? r.minAgeYears >= 12 || r.maxAgeYears === null
          : age >= r.minAgeYears && (r.maxAgeYears === null || age < r.maxAgeYears)) &&
        (p.weightKg === null ||
          ((r.minWeightKg ?? 0) <= p.weightKg && (r.maxWeightKg == null || p.weightKg < r.maxWeightKg))),
    ) ?? null
  );
}

/** The maximum single dose a rule allows this patient, or null when it needs a weight not given. */
function maxSingle(r: DoseRule, weightKg: number | null): { min: number; max: number } | null {
  if ('minMg' in r.singleDose) return { min: r.singleDose.minMg, max: r.singleDose.maxMg };
  if (weightKg === null) return null;
  const tol = 1 + (r.singleDose.toleranceFraction ?? 0.1);
  return { min: 0, max: Math.min(r.singleDose.mgPerKg * weightKg * tol, r.singleDose.maxSingleMg) };
}

/** Every check for one draft, always one result per check kind, in PRESCRIPTION_CHECKS order. */
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
      message: 'The medicine is not in the formulary',
    }));
  const out = new Map<PrescriptionCheckKind, CheckResult>();
  const set = (r: CheckResult) => out.set(r.check, r);

  // Allergy: a recorded allergy of one of the medicine's classes, or naming the medicine.
  const name = m.name.toLowerCase();
  const allergic = patient.allergies.find(
    (a) =>
      (a.allergyClass !== null && m.allergyClasses.includes(a.allergyClass.toLowerCase())) ||
      m.allergyClasses.some((c) => a.allergen.toLowerCase().includes(c)) ||
      name.includes(a.allergen.toLowerCase().trim() || '\u0000'),
  );
  set(
    allergic
      ? {
          check: 'allergy',
          outcome: 'hard_stop',
          message: `Recorded allergy: ${allergic.allergen} — do not prescribe ${m.name}`,
        }
      : pass('allergy'),
  );

  // Dose by age and weight, and the daily maximum.
  const rule = ruleFor(m, patient);
  if (!rule) {
    set({
      check: 'dose',
      outcome: 'hard_stop',
      message: `No dose of ${m.name} is given for this age or weight`,
    });
    set({ check: 'max_daily', outcome: 'hard_stop', message: 'No daily maximum for this age or weight' });
  } else {
    const single = maxSingle(rule, patient.weightKg);
    if (!single)
      set({ check: 'dose', outcome: 'hard_stop', message: 'The dose is by weight: record the weight' });
    else if (draft.doseMg > single.max)
      set({
        check: 'dose',
        outcome: 'hard_stop',
        message: `${draft.doseMg} mg is above the most for one dose (${Math.round(single.max * 10) / 10} mg)`,
      });
    else if (draft.doseMg < single.min)
      set({
        check: 'dose',
        outcome: 'warning',
        message: `${draft.doseMg} mg is below the usual dose (${single.min} mg)`,
      });
    else set(pass('dose', 'Within the dose for age and weight'));
    const daily = draft.doseMg * draft.frequencyPerDay;
    if (daily > rule.maxDailyMg || draft.frequencyPerDay > rule.maxFrequencyPerDay)
      set({
        check: 'max_daily',
        outcome: 'hard_stop',
        message: `${daily} mg a day (${draft.frequencyPerDay} times) is above the daily maximum of ${rule.maxDailyMg} mg (${rule.maxFrequencyPerDay} times)`,
      });
    else set(pass('max_daily', 'Within the daily maximum'));
  }

  // Duplicate therapy and interactions with current medication.
  const current = patient.currentMedication.map((c) => ({
    ...c,
    medicine: c.code ? (formulary.medicines.find((x) => x.code === c.code) ?? null) : null,
  }));
  const dup = current.find((c) => c.medicine?.therapeuticClass === m.therapeuticClass || c.code === m.code);
  set(
    dup
      ? {
          check: 'duplicate',
          outcome: 'warning',
          message: `Already taking ${dup.name} (same kind of medicine)`,
        }
      : pass('duplicate'),
  );
  let worst: CheckResult | null = null;
  for (const c of current) {
    if (!c.medicine) continue;
    const names = new Set([c.medicine.code, ...c.medicine.interactionClasses]);
    const mine = new Set([m.code, ...m.interactionClasses]);
    const found = [
      ...m.interactions.filter((x) => names.has(x.with)),
      ...c.medicine.interactions.filter((x) => mine.has(x.with)),
    ];
    for (const x of found)
      if (!worst || (x.severity === 'hard_stop' && worst.outcome !== 'hard_stop'))
        worst = { check: 'interaction', outcome: x.severity, message: `With ${c.name}: ${x.text}` };
  }
  set(worst ?? pass('interaction'));

  // Controlled drugs: schedule 2 and 3 need the quantity in words and figures, and at most 30 days.
  if (m.controlledSchedule === 2 || m.controlledSchedule === 3) {
    if (!wordsMatchQuantity(draft.quantityWords, draft.quantity))
      set({
        check: 'controlled',
        outcome: 'hard_stop',
        message: `Schedule ${m.controlledSchedule}: write the quantity in words and figures (${quantityInWords(draft.quantity)})`,
      });
    else if (draft.durationDays > 30)
      set({
        check: 'controlled',
        outcome: 'hard_stop',
        message: `Schedule ${m.controlledSchedule}: no more than 30 days`,
      });
    else set(pass('controlled', `Schedule ${m.controlledSchedule}: quantity in words and figures`));
  } else
    set(
      pass('controlled', m.controlledSchedule ? `Schedule ${m.controlledSchedule}` : 'Not a controlled drug'),
    );

  const caution = (
    check: 'pregnancy' | 'renal' | 'age',
    applies: boolean,
    level: 'warning' | 'hard_stop' | undefined,
    what: string,
  ) =>
    set(
      applies && level
        ? {
            check,
            outcome: level,
            message: `${m.name}: caution ${what}${m.cautions.text ? ` — ${m.cautions.text}` : ''}`,
          }
        : pass(check),
    );
  caution('pregnancy', patient.pregnant === true, m.cautions.pregnancy, 'in pregnancy');
  caution('renal', patient.renalImpairment === true, m.cautions.renal, 'in renal impairment');
  caution('age', patient.ageYears !== null && patient.ageYears < 12, m.cautions.under12, 'under 12');
  const maxDays = m.maxDurationDays ?? null;
  set(
    maxDays !== null && draft.durationDays > maxDays
      ? { check: 'duration', outcome: 'warning', message: `Longer than the usual ${maxDays} days` }
      : pass('duration'),
  );
  return PRESCRIPTION_CHECKS.map((k) => out.get(k)!);
}

/** Why a prescription may not go (a hard stop, or a warning without an override reason); empty when it may. */
export function blockingProblems(results: CheckResult[], overrides: Override[]): string[] {
  const problems: string[] = [];
  for (const r of results) {
    if (r.outcome === 'hard_stop')
      problems.push(`${r.check}: ${r.message} (a hard stop cannot be overridden)`);
    else if (
      r.outcome === 'warning' &&
      !overrides.some((o) => o.check === r.check && o.reason.trim().length > 0)
    )
      problems.push(`${r.check}: ${r.message} (give a reason to override this warning)`);
  }
  return problems;
}
