import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  blockingProblems,
  checkPrescription,
  PRESCRIPTION_CHECKS,
  quantityInWords,
  wordsMatchQuantity,
  type CheckResult,
  type Override,
  type PatientForPrescribing,
  type PrescriptionCheckKind,
  type PrescriptionDraft,
} from '../src/prescribing/checks.ts';
import { sampleFormulary, sampleMedicine } from './formulary-fixtures.ts';

const formulary = sampleFormulary();
const code = (name: string, form: string) => sampleMedicine(formulary, name, form).code;

const ADULT: PatientForPrescribing = {
  ageYears: 40,
  weightKg: 70,
  pregnant: false,
  renalImpairment: false,
  allergies: [],
  currentMedication: [],
};
const patient = (p: Partial<PatientForPrescribing>): PatientForPrescribing => ({ ...ADULT, ...p });
const draft = (
  name: string,
  form: string,
  d: Omit<PrescriptionDraft, 'medicineCode' | 'directions' | 'quantityWords'> & {
    quantityWords?: string | null;
  },
): PrescriptionDraft => ({
  medicineCode: code(name, form),
  directions: 'as directed',
  quantityWords: null,
  ...d,
});

type Expected = Partial<Record<PrescriptionCheckKind, 'warning' | 'hard_stop'>>;
interface Row {
  name: string;
  draft: PrescriptionDraft;
  patient: PatientForPrescribing;
  /** The checks that do not pass; every other check must pass. */
  expected: Expected;
  /** Words the failing results' messages must hold, by check. */
  says?: Partial<Record<PrescriptionCheckKind, RegExp>>;
}

/**
 * Hand-worked cases against the sample formulary (not clinically validated). The arithmetic each row
 * relies on is in its comment; each row asserts all ten outcomes.
 */
const ROWS: Row[] = [
  {
    // Amoxicillin is in the penicillin allergy class: a hard stop whatever the dose.
    name: 'penicillin allergy (class recorded) with amoxicillin',
    draft: draft('Amoxicillin', 'capsule', {
      doseMg: 500,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 15,
    }),
    patient: patient({
      allergies: [{ allergen: 'an antibiotic, as a child (rash)', allergyClass: 'penicillin' }],
    }),
    expected: { allergy: 'hard_stop' },
    says: { allergy: /penicillin allergy: Amoxicillin is a penicillin/ },
  },
  {
    name: 'penicillin allergy written as free text only, with amoxicillin',
    draft: draft('Amoxicillin', 'capsule', {
      doseMg: 500,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 15,
    }),
    patient: patient({ allergies: [{ allergen: 'Penicillin (swelling)', allergyClass: null }] }),
    expected: { allergy: 'hard_stop' },
  },
  {
    name: 'allergy to amoxicillin written by name, with amoxicillin suspension',
    draft: draft('Amoxicillin', 'oral suspension', {
      doseMg: 500,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 200,
    }),
    patient: patient({ allergies: [{ allergen: 'amoxicillin', allergyClass: null }] }),
    expected: { allergy: 'hard_stop' },
  },
  {
    // Clarithromycin is a macrolide: the penicillin allergy does not touch it.
    name: 'penicillin allergy with clarithromycin: passes',
    draft: draft('Clarithromycin', 'tablet', {
      doseMg: 500,
      frequencyPerDay: 2,
      durationDays: 7,
      quantity: 14,
    }),
    patient: patient({ allergies: [{ allergen: 'penicillin', allergyClass: 'penicillin' }] }),
    expected: {},
  },
  {
    // Child 4 years, 16 kg: 30 mg/kg = 480 mg (± 10%: 432–528). 480 mg × 3 = 1,440 mg a day (max 3,000).
    // 480 mg = 9.6 mL of 50 mg/mL; × 3 × 5 days = 144 mL; in 100 mL bottles 200 mL.
    name: "child's dose by weight within range",
    draft: draft('Amoxicillin', 'oral suspension', {
      doseMg: 480,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 200,
    }),
    patient: patient({ ageYears: 4, weightKg: 16 }),
    expected: {},
    says: { dose: /within the Amoxicillin dose by weight \(30 mg\/kg for 16 kg, at most 1000 mg: 480 mg\)/ },
  },
  {
    // 750 mg is over 528 mg (480 + 10%) though under the 1,000 mg cap; 2,250 mg a day is within 3,000.
    // 15 mL × 3 × 5 = 225 mL → 300 mL in bottles.
    name: "child's dose over the per-kg dose",
    draft: draft('Amoxicillin', 'oral suspension', {
      doseMg: 750,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 300,
    }),
    patient: patient({ ageYears: 4, weightKg: 16 }),
    expected: { dose: 'hard_stop' },
    says: { dose: /750 mg is over the Amoxicillin dose by weight/ },
  },
  {
    // 400 mg is under 432 mg: an under-dose is a warning (a reason may be given).
    name: "child's dose under the per-kg dose",
    draft: draft('Amoxicillin', 'oral suspension', {
      doseMg: 400,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 200,
    }),
    patient: patient({ ageYears: 4, weightKg: 16 }),
    expected: { dose: 'warning' },
  },
  {
    // Under 12 the suspension is dosed by weight: no weight, no check — both dose checks stop.
    name: "child's dose with no weight recorded",
    draft: draft('Amoxicillin', 'oral suspension', {
      doseMg: 250,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 100,
    }),
    patient: patient({ ageYears: 4, weightKg: null }),
    expected: { dose: 'hard_stop', max_daily: 'hard_stop' },
    says: { dose: /record the weight/ },
  },
  {
    // 1 g is a permitted single dose, but 1,000 mg × 6 = 6,000 mg a day: over the 4,000 mg maximum.
    // 2 tablets × 6 × 3 days = 36 tablets (whole packs of 16: 48).
    name: 'paracetamol 1 g six times a day: daily maximum exceeded by frequency',
    draft: draft('Paracetamol', 'tablet', {
      doseMg: 1000,
      frequencyPerDay: 6,
      durationDays: 3,
      quantity: 36,
    }),
    patient: ADULT,
    expected: { max_daily: 'hard_stop' },
    says: { max_daily: /6000 mg: over the Paracetamol maximum of 4000 mg in 24 hours/ },
  },
  {
    // 500 mg × 6 = 3,000 mg (within 4,000) but more often than 4 a day: a warning.
    name: 'paracetamol 500 mg six times a day: too often, within the daily maximum',
    draft: draft('Paracetamol', 'tablet', { doseMg: 500, frequencyPerDay: 6, durationDays: 3, quantity: 18 }),
    patient: ADULT,
    expected: { max_daily: 'warning' },
  },
  {
    // Morphine 20 mg/mL is schedule 2: the quantity must also be in words. 5 mg = 0.25 mL; × 6 × 5 days
    // = 7.5 mL → 30 mL (one bottle).
    name: 'schedule 2 quantity without words',
    draft: draft('Morphine sulfate', 'concentrated oral solution', {
      doseMg: 5,
      frequencyPerDay: 6,
      durationDays: 5,
      quantity: 30,
    }),
    patient: ADULT,
    expected: { controlled: 'hard_stop' },
    says: { controlled: /must also be written in words \("thirty"\)/ },
  },
  {
    name: 'schedule 2 quantity with words that disagree',
    draft: draft('Morphine sulfate', 'concentrated oral solution', {
      doseMg: 5,
      frequencyPerDay: 6,
      durationDays: 5,
      quantity: 30,
      quantityWords: 'twenty millilitres',
    }),
    patient: ADULT,
    expected: { controlled: 'hard_stop' },
    says: { controlled: /does not say 30/ },
  },
  {
    name: 'schedule 2 quantity in words and figures that agree',
    draft: draft('Morphine sulfate', 'concentrated oral solution', {
      doseMg: 5,
      frequencyPerDay: 6,
      durationDays: 5,
      quantity: 30,
      quantityWords: 'Thirty (30) millilitres',
    }),
    patient: ADULT,
    expected: {},
  },
  {
    // 31 days: over 30 for schedule 2 (hard stop) and over morphine's 14-day course (a warning).
    // 0.25 mL × 6 × 31 = 46.5 → 47 mL; 2 × 30 mL = 60 mL lasts 40 days.
    name: 'schedule 2 for 31 days',
    draft: draft('Morphine sulfate', 'concentrated oral solution', {
      doseMg: 5,
      frequencyPerDay: 6,
      durationDays: 31,
      quantity: 60,
      quantityWords: 'sixty',
    }),
    patient: ADULT,
    expected: { controlled: 'hard_stop', duration: 'warning' },
    says: { controlled: /no more than 30 days may be prescribed \(31 asked\); the quantity lasts 40 days/ },
  },
  {
    // 7 days asked, but 120 mL at 0.25 mL four times a day (1 mL a day) lasts 120 days.
    name: 'schedule 2 quantity lasting over 30 days',
    draft: draft('Morphine sulfate', 'concentrated oral solution', {
      doseMg: 5,
      frequencyPerDay: 4,
      durationDays: 7,
      quantity: 120,
      quantityWords: 'one hundred and twenty',
    }),
    patient: ADULT,
    expected: { controlled: 'hard_stop', duration: 'warning' },
    says: { controlled: /the quantity lasts 120 days/ },
  },
  {
    // Buccal midazolam is schedule 3; 31 days is over 30. 4 syringes for 31 days at 2 a day is short.
    name: 'schedule 3 for 31 days',
    draft: draft('Midazolam', 'oromucosal solution (buccal), pre-filled syringe', {
      doseMg: 10,
      frequencyPerDay: 2,
      durationDays: 31,
      quantity: 4,
      quantityWords: 'four',
    }),
    patient: ADULT,
    expected: { controlled: 'hard_stop', duration: 'warning' },
  },
  {
    // Codeine (an opioid) for a patient taking diazepam (a benzodiazepine): both in the formulary.
    // 1 tablet × 4 × 3 days = 12. Codeine is schedule 5: no words needed.
    name: 'interaction between two formulary medicines: codeine with current diazepam',
    draft: draft('Codeine phosphate', 'tablet', {
      doseMg: 30,
      frequencyPerDay: 4,
      durationDays: 3,
      quantity: 12,
    }),
    patient: patient({
      currentMedication: [{ code: code('Diazepam', 'tablet'), name: 'Diazepam 5 mg tablets' }],
    }),
    expected: { interaction: 'warning' },
    says: { interaction: /Codeine phosphate with Diazepam: opioids with benzodiazepines/ },
  },
  {
    // Declared on the current medicine's side: midazolam names cyp3a4-inhibitor, which fluconazole is.
    name: 'interaction declared by the current medicine: fluconazole with current buccal midazolam',
    draft: draft('Fluconazole', 'capsule', { doseMg: 150, frequencyPerDay: 1, durationDays: 1, quantity: 1 }),
    patient: patient({
      currentMedication: [
        { code: code('Midazolam', 'oromucosal solution (buccal), pre-filled syringe'), name: 'Buccolam' },
      ],
    }),
    expected: { interaction: 'warning' },
    says: { interaction: /Fluconazole with Midazolam: clarithromycin and azole antifungals raise midazolam/ },
  },
  {
    // Simvastatin is not in the formulary: found by name in the manifest's statin class.
    name: 'clarithromycin with current simvastatin (by name): hard stop',
    draft: draft('Clarithromycin', 'tablet', {
      doseMg: 500,
      frequencyPerDay: 2,
      durationDays: 7,
      quantity: 14,
    }),
    patient: patient({ currentMedication: [{ code: null, name: 'Simvastatin 40mg at night' }] }),
    expected: { interaction: 'hard_stop' },
    says: { interaction: /Clarithromycin with statin: raises simvastatin/ },
  },
  {
    name: 'miconazole oral gel with current warfarin: hard stop',
    draft: draft('Miconazole', 'oral gel', { doseMg: 0, frequencyPerDay: 4, durationDays: 7, quantity: 1 }),
    patient: patient({ currentMedication: [{ code: null, name: 'Warfarin' }] }),
    expected: { interaction: 'hard_stop' },
  },
  {
    // 2 tablets × 3 × 5 days = 30 (whole packs of 24: 48). Naproxen recorded by name only.
    name: 'duplicate therapy: ibuprofen while taking naproxen',
    draft: draft('Ibuprofen', 'tablet', { doseMg: 400, frequencyPerDay: 3, durationDays: 5, quantity: 30 }),
    patient: patient({ currentMedication: [{ code: null, name: 'Naproxen 500 mg tablets' }] }),
    expected: { duplicate: 'warning' },
    says: { duplicate: /Ibuprofen and Naproxen are both nsaid/ },
  },
  {
    // Trimethoprim's pregnancy caution is a warning; 1 × 2 × 3 days = 6 tablets.
    name: 'pregnancy caution (warning): trimethoprim',
    draft: draft('Trimethoprim', 'tablet', { doseMg: 200, frequencyPerDay: 2, durationDays: 3, quantity: 6 }),
    patient: patient({ pregnant: true }),
    expected: { pregnancy: 'warning' },
  },
  {
    name: 'pregnancy caution (hard stop): doxycycline',
    draft: draft('Doxycycline', 'capsule', { doseMg: 100, frequencyPerDay: 1, durationDays: 7, quantity: 8 }),
    patient: patient({ pregnant: true }),
    expected: { pregnancy: 'hard_stop' },
  },
  {
    // Not known whether pregnant: a hard-stop caution must be asked about (warning)…
    name: 'pregnancy not recorded, doxycycline: a warning to ask',
    draft: draft('Doxycycline', 'capsule', { doseMg: 100, frequencyPerDay: 1, durationDays: 7, quantity: 8 }),
    patient: patient({ pregnant: null }),
    expected: { pregnancy: 'warning' },
  },
  {
    // …a warning-level caution is only mentioned.
    name: 'pregnancy not recorded, trimethoprim: passes with a mention',
    draft: draft('Trimethoprim', 'tablet', { doseMg: 200, frequencyPerDay: 2, durationDays: 3, quantity: 6 }),
    patient: patient({ pregnant: null }),
    expected: {},
  },
  {
    // Codeine has no dose for an 8-year-old, and its under-12 caution is a hard stop.
    name: 'under 12: codeine',
    draft: draft('Codeine phosphate', 'tablet', {
      doseMg: 30,
      frequencyPerDay: 4,
      durationDays: 3,
      quantity: 12,
    }),
    patient: patient({ ageYears: 8, weightKg: 25 }),
    expected: { dose: 'hard_stop', max_daily: 'hard_stop', age: 'hard_stop' },
    says: { age: /Codeine phosphate caution for patients under 12/ },
  },
  {
    // 10 years, 30 kg: 0.1 mg/kg = 3 mg; 9 mg a day. Under-12 caution is a warning.
    name: 'under 12: metoclopramide',
    draft: draft('Metoclopramide', 'tablet', {
      doseMg: 3,
      frequencyPerDay: 3,
      durationDays: 3,
      quantity: 28,
    }),
    patient: patient({ ageYears: 10, weightKg: 30 }),
    expected: { age: 'warning' },
  },
  {
    name: 'renal impairment: nitrofurantoin',
    draft: draft('Nitrofurantoin', 'modified-release capsule', {
      doseMg: 100,
      frequencyPerDay: 2,
      durationDays: 3,
      quantity: 6,
    }),
    patient: patient({ renalImpairment: true }),
    expected: { renal: 'hard_stop' },
  },
  {
    // 1 capsule × 3 × 5 = 15; 63 capsules is far more than the course (whole packs: 15).
    name: 'quantity far beyond the course',
    draft: draft('Amoxicillin', 'capsule', {
      doseMg: 500,
      frequencyPerDay: 3,
      durationDays: 5,
      quantity: 63,
    }),
    patient: ADULT,
    expected: { duration: 'warning' },
    says: { duration: /63 capsule is more than 5 days need \(15, or 15 in whole packs\)/ },
  },
];

describe('prescription checks: hand-worked cases (sample formulary, not clinically validated)', () => {
  it.each(ROWS.map((r) => [r.name, r] as const))('%s', (_name, row) => {
    const results = checkPrescription(row.draft, row.patient, formulary);
    expect(results.map((r) => r.check)).toEqual([...PRESCRIPTION_CHECKS]);
    const outcomes = Object.fromEntries(results.map((r) => [r.check, r.outcome]));
    const expected = Object.fromEntries(PRESCRIPTION_CHECKS.map((c) => [c, row.expected[c] ?? 'pass']));
    expect(outcomes).toEqual(expected);
    for (const [check, pattern] of Object.entries(row.says ?? {}))
      expect(results.find((r) => r.check === check)!.message).toMatch(pattern);
  });

  it('a medicine not in the formulary: every check is a hard stop', () => {
    const results = checkPrescription(
      {
        medicineCode: '123456',
        doseMg: 1,
        frequencyPerDay: 1,
        durationDays: 1,
        quantity: 1,
        quantityWords: null,
        directions: '',
      },
      ADULT,
      formulary,
    );
    expect(results.map((r) => r.outcome)).toEqual(PRESCRIPTION_CHECKS.map(() => 'hard_stop'));
  });

  it('messages never repeat what the patient record says in free text', () => {
    const secret = 'Mrs Example at 1 High Street';
    const results = checkPrescription(
      draft('Amoxicillin', 'capsule', { doseMg: 500, frequencyPerDay: 3, durationDays: 5, quantity: 15 }),
      patient({
        allergies: [{ allergen: `penicillin (told by ${secret})`, allergyClass: null }],
        currentMedication: [
          { code: null, name: `naproxen from ${secret}` },
          { code: null, name: secret },
        ],
      }),
      formulary,
    );
    for (const r of results) expect(r.message).not.toContain('Example');
  });
});

describe('quantity in words', () => {
  it.each([
    [0, 'zero'],
    [7, 'seven'],
    [14, 'fourteen'],
    [28, 'twenty-eight'],
    [30, 'thirty'],
    [100, 'one hundred'],
    [105, 'one hundred and five'],
    [120, 'one hundred and twenty'],
    [1000, 'one thousand'],
    [1005, 'one thousand and five'],
    [2500, 'two thousand five hundred'],
    [2.5, 'two point five'],
  ])('%d → %s', (n, words) => {
    expect(quantityInWords(n)).toBe(words);
    expect(wordsMatchQuantity(words, n)).toBe(true);
  });

  it('words match their figures whatever the case, hyphens, units or figures in brackets', () => {
    expect(wordsMatchQuantity('Twenty eight (28) tablets', 28)).toBe(true);
    expect(wordsMatchQuantity('one hundred twenty mL', 120)).toBe(true);
    expect(wordsMatchQuantity('twenty-eight (82) tablets', 28)).toBe(false);
    expect(wordsMatchQuantity('twenty', 28)).toBe(false);
    expect(wordsMatchQuantity('28', 28)).toBe(false);
    expect(wordsMatchQuantity('', 0)).toBe(false);
    expect(wordsMatchQuantity(null, 28)).toBe(false);
  });

  it('property: the words for any quantity match it and no other', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999 }), fc.integer({ min: 0, max: 999_999 }), (n, m) => {
        expect(wordsMatchQuantity(quantityInWords(n), n)).toBe(true);
        expect(wordsMatchQuantity(quantityInWords(n), m)).toBe(n === m);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('blockingProblems', () => {
  const all = (outcome: CheckResult['outcome']): CheckResult[] =>
    PRESCRIPTION_CHECKS.map((check) => ({ check, outcome, message: 'm' }));

  it('nothing blocks when every check passes', () => {
    expect(blockingProblems(all('pass'), [])).toEqual([]);
  });

  it('a hard stop blocks even with an override reason', () => {
    const results = all('pass').map((r) =>
      r.check === 'allergy' ? { ...r, outcome: 'hard_stop' as const } : r,
    );
    expect(blockingProblems(results, [{ check: 'allergy', reason: 'patient insists' }])).toEqual([
      'allergy: m (a hard stop cannot be overridden)',
    ]);
  });

  it('a warning blocks until it has a reason (blank is no reason); a reason for another check does not count', () => {
    const results = all('pass').map((r) =>
      r.check === 'duplicate' ? { ...r, outcome: 'warning' as const } : r,
    );
    expect(blockingProblems(results, [])).toHaveLength(1);
    expect(blockingProblems(results, [{ check: 'duplicate', reason: '   ' }])).toHaveLength(1);
    expect(
      blockingProblems(results, [{ check: 'interaction', reason: 'naproxen stopped today' }]),
    ).toHaveLength(1);
    expect(blockingProblems(results, [{ check: 'duplicate', reason: 'naproxen stopped today' }])).toEqual([]);
  });

  it('results missing a check block', () => {
    expect(blockingProblems(all('pass').slice(1), [])).toEqual(['allergy: the check was not run']);
  });
});

/** Random drafts and patients over the sample formulary, near its real doses so every outcome occurs. */
const medicineArb = fc.constantFrom(...formulary.medicines);
const draftArb = medicineArb.chain((m) =>
  fc.record({
    medicineCode: fc.oneof(
      { weight: 20, arbitrary: fc.constant(m.code) },
      { weight: 1, arbitrary: fc.constant('999999') },
    ),
    doseMg: fc.oneof(
      fc.constantFrom(
        ...(m.doseRules.length
          ? m.doseRules.flatMap((r) =>
              'minMg' in r.singleDose ? [r.singleDose.minMg, r.singleDose.maxMg] : [r.singleDose.maxSingleMg],
            )
          : [0]),
      ),
      fc.double({ min: 0, max: 2000, noNaN: true }),
    ),
    frequencyPerDay: fc.integer({ min: 0, max: 8 }),
    durationDays: fc.integer({ min: 0, max: 40 }),
    quantity: fc.integer({ min: 0, max: 200 }),
    quantityWords: fc.option(fc.oneof(fc.integer({ min: 0, max: 200 }).map(quantityInWords), fc.string()), {
      nil: null,
    }),
    directions: fc.constant('as directed'),
  }),
);
const currentArb = fc.oneof(
  medicineArb.map((m) => ({ code: m.code, name: m.name })),
  medicineArb.map((m) => ({ code: null, name: `${m.name} tablets` })),
  fc
    .constantFrom('Simvastatin', 'Warfarin', 'Methotrexate', 'Sildenafil', 'Sertraline')
    .map((name) => ({ code: null, name })),
);
const patientArb: fc.Arbitrary<PatientForPrescribing> = fc.record({
  ageYears: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
  weightKg: fc.option(fc.integer({ min: 3, max: 150 }), { nil: null }),
  pregnant: fc.option(fc.boolean(), { nil: null }),
  renalImpairment: fc.option(fc.boolean(), { nil: null }),
  allergies: fc.array(
    fc.record({
      allergen: fc.constantFrom('penicillin', 'ibuprofen', 'codeine', 'plasters', 'peanuts'),
      allergyClass: fc.option(fc.constantFrom('penicillin', 'nsaid', 'opioid', 'macrolide'), { nil: null }),
    }),
    { maxLength: 2 },
  ),
  currentMedication: fc.array(currentArb, { maxLength: 3 }),
});
const overridesArb: fc.Arbitrary<Override[]> = fc.array(
  fc.record({
    check: fc.constantFrom(...PRESCRIPTION_CHECKS),
    reason: fc.oneof(fc.constant(''), fc.constant('  '), fc.string({ minLength: 1 })),
  }),
  { maxLength: 10 },
);

describe('property: no prescription goes with an unresolved hard stop', () => {
  it('blockingProblems is empty exactly when there is no hard stop and every warning has a reason', () => {
    const seen = { hardStop: 0, unreasonedWarning: 0, clear: 0, overriddenHardStop: 0 };
    fc.assert(
      fc.property(draftArb, patientArb, overridesArb, (d, p, overrides) => {
        const results = checkPrescription(d, p, formulary);
        expect(results.map((r) => r.check)).toEqual([...PRESCRIPTION_CHECKS]);
        const blocking = blockingProblems(results, overrides);
        const hardStops = results.filter((r) => r.outcome === 'hard_stop');
        const reasoned = (c: PrescriptionCheckKind) =>
          overrides.some((o) => o.check === c && o.reason.trim() !== '');
        const unreasoned = results.filter((r) => r.outcome === 'warning' && !reasoned(r.check));
        if (hardStops.length > 0) {
          seen.hardStop++;
          if (hardStops.some((r) => reasoned(r.check))) seen.overriddenHardStop++;
          expect(blocking.length).toBeGreaterThanOrEqual(hardStops.length);
        }
        if (unreasoned.length > 0) {
          seen.unreasonedWarning++;
          expect(blocking.length).toBeGreaterThan(0);
        }
        if (hardStops.length === 0 && unreasoned.length === 0) {
          seen.clear++;
          expect(blocking).toEqual([]);
        }
        for (const r of results) expect(r.message.length).toBeGreaterThan(0);
      }),
      { numRuns: 3000 },
    );
    // The property met every case it is about, not only the easy one.
    expect(seen.hardStop).toBeGreaterThan(100);
    expect(seen.overriddenHardStop).toBeGreaterThan(10);
    expect(seen.unreasonedWarning).toBeGreaterThan(100);
    expect(seen.clear).toBeGreaterThan(10);
  });
});
