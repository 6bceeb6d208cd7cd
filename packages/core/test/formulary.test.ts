import { describe, expect, it } from 'vitest';
import {
  checkFormulary,
  FormularyError,
  parseFormulary,
  type DoseRule,
  type Formulary,
  type Medicine,
} from '../src/prescribing/formulary.ts';
import { sampleFormulary } from './formulary-fixtures.ts';

const band = (over: Partial<DoseRule> = {}): DoseRule => ({
  minAgeYears: 12,
  maxAgeYears: null,
  singleDose: { minMg: 100, maxMg: 200 },
  maxDailyMg: 800,
  maxFrequencyPerDay: 4,
  ...over,
});
const medicine = (code: string, over: Partial<Medicine> = {}): Medicine => ({
  code,
  name: `Medicine ${code}`,
  form: 'tablet',
  strength: '100 mg',
  strengthMg: 100,
  route: 'oral',
  unit: 'tablet',
  doseRules: [band()],
  packSizes: [28],
  controlledSchedule: null,
  allergyClasses: [],
  therapeuticClass: 'test-class',
  interactionClasses: [],
  interactions: [],
  cautions: {},
  ...over,
});
const formulary = (medicines: Medicine[], over: Partial<Formulary> = {}): Formulary => ({
  id: 'test',
  version: '1.0.0',
  title: 'Test formulary — not clinically validated',
  notClinicallyValidated: true,
  medicines,
  ...over,
});
const problemsOf = (f: Formulary) =>
  checkFormulary(f).problems.map((p) => ({ kind: p.kind, code: p.code, field: p.field }));

describe('the sample formulary', () => {
  it('loads, is marked not clinically validated, and the checker finds no problems', () => {
    const f = sampleFormulary();
    expect(f.notClinicallyValidated).toBe(true);
    expect(f.title).toMatch(/not clinically validated/);
    expect(f.note).toMatch(/not clinically validated/);
    expect(f.medicines.length).toBeGreaterThanOrEqual(40);
    expect(checkFormulary(f).problems).toEqual([]);
  });

  it('holds the medicines the checks are about: schedule 2 and 3, codeine stopped under 12, NSAIDs, penicillins', () => {
    const f = sampleFormulary();
    const schedules = f.medicines.map((m) => m.controlledSchedule);
    expect(schedules).toContain(2);
    expect(schedules).toContain(3);
    expect(f.medicines.find((m) => m.name === 'Codeine phosphate')!.cautions.under12).toBe('hard_stop');
    expect(f.medicines.filter((m) => m.therapeuticClass === 'nsaid').length).toBeGreaterThanOrEqual(2);
    expect(f.medicines.filter((m) => m.allergyClasses.includes('penicillin')).length).toBeGreaterThanOrEqual(
      4,
    );
  });
});

describe('parseFormulary', () => {
  it('names the field that is wrong', () => {
    const bad = formulary([medicine('1234567')]) as unknown as { medicines: Record<string, unknown>[] };
    bad.medicines[0]!.code = 'ABC';
    bad.medicines[0]!.controlledSchedule = 1;
    try {
      parseFormulary(bad);
      expect.unreachable('a bad formulary was accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(FormularyError);
      expect((error as FormularyError).issues.map((i) => i.path)).toEqual([
        'medicines.0.code',
        'medicines.0.controlledSchedule',
      ]);
      expect((error as FormularyError).issues[0]!.message).toBe(
        'must be a dm+d-style code of 6 to 18 digits',
      );
    }
  });
});

describe('checkFormulary: each problem, with its code and field', () => {
  it('clean: a minimal formulary has no problems', () => {
    expect(problemsOf(formulary([medicine('1000001')]))).toEqual([]);
  });

  it('duplicate codes', () => {
    expect(problemsOf(formulary([medicine('1000001'), medicine('1000001')]))).toEqual([
      { kind: 'duplicate_code', code: '1000001', field: 'medicines.1.code' },
    ]);
  });

  it('a formulary marked not validated whose title does not say so', () => {
    expect(problemsOf(formulary([medicine('1000001')], { title: 'Our formulary' }))).toEqual([
      { kind: 'not_labelled', code: null, field: 'title' },
    ]);
  });

  it('no dose bands and no reason why', () => {
    expect(problemsOf(formulary([medicine('1000001', { doseRules: [] })]))).toEqual([
      { kind: 'no_dose_rules', code: '1000001', field: 'medicines.0.doseRules' },
    ]);
    expect(
      problemsOf(formulary([medicine('1000001', { doseRules: [], doseNotChecked: 'a cream' })])),
    ).toEqual([]);
  });

  it('bands that overlap', () => {
    const doseRules = [
      band({ minAgeYears: 0, maxAgeYears: 12 }),
      band({ minAgeYears: 10, maxAgeYears: null }),
    ];
    expect(problemsOf(formulary([medicine('1000001', { doseRules })]))).toEqual([
      { kind: 'band_overlap', code: '1000001', field: 'medicines.0.doseRules.1' },
    ]);
  });

  it('bands that split one age by weight and overlap', () => {
    const doseRules = [
      band({ minAgeYears: 0, maxAgeYears: 12, maxWeightKg: 30 }),
      band({ minAgeYears: 0, maxAgeYears: 12, minWeightKg: 25 }),
    ];
    expect(problemsOf(formulary([medicine('1000001', { doseRules })]))).toEqual([
      { kind: 'band_overlap', code: '1000001', field: 'medicines.0.doseRules.1' },
    ]);
  });

  it('bands that leave a gap in age, or in weight', () => {
    const ages = [band({ minAgeYears: 1, maxAgeYears: 6 }), band({ minAgeYears: 12, maxAgeYears: null })];
    expect(checkFormulary(formulary([medicine('1000001', { doseRules: ages })])).problems).toEqual([
      {
        kind: 'band_gap',
        code: '1000001',
        field: 'medicines.0.doseRules',
        message: 'Medicine 1000001: no band covers ages 6 to 12 years',
      },
    ]);
    const weights = [
      band({ minAgeYears: 0, maxAgeYears: 12, maxWeightKg: 20 }),
      band({ minAgeYears: 0, maxAgeYears: 12, minWeightKg: 25 }),
      band({ minAgeYears: 12 }),
    ];
    expect(problemsOf(formulary([medicine('1000001', { doseRules: weights })]))).toEqual([
      { kind: 'band_gap', code: '1000001', field: 'medicines.0.doseRules' },
    ]);
  });

  it('a band whose bounds are upside down', () => {
    const doseRules = [band({ minAgeYears: 12, maxAgeYears: 12, singleDose: { minMg: 300, maxMg: 200 } })];
    expect(problemsOf(formulary([medicine('1000001', { doseRules })]))).toEqual([
      { kind: 'bad_band', code: '1000001', field: 'medicines.0.doseRules.0.maxAgeYears' },
      { kind: 'bad_band', code: '1000001', field: 'medicines.0.doseRules.0.singleDose.maxMg' },
    ]);
  });

  it('a maximum daily dose below the largest single dose (fixed or by weight)', () => {
    const doseRules = [
      band({
        minAgeYears: 0,
        maxAgeYears: 12,
        singleDose: { mgPerKg: 10, maxSingleMg: 500 },
        maxDailyMg: 400,
      }),
      band({ minAgeYears: 12, maxDailyMg: 150 }),
    ];
    expect(problemsOf(formulary([medicine('1000001', { doseRules })]))).toEqual([
      { kind: 'max_daily_below_single', code: '1000001', field: 'medicines.0.doseRules.0.maxDailyMg' },
      { kind: 'max_daily_below_single', code: '1000001', field: 'medicines.0.doseRules.1.maxDailyMg' },
    ]);
  });

  it('an interaction naming no code or class; codes, classes and the manifest members are known', () => {
    const interactions = [
      { with: '1000002', severity: 'warning' as const, text: 'a' },
      { with: 'statin', severity: 'warning' as const, text: 'b' },
      { with: 'other-class', severity: 'warning' as const, text: 'c' },
      { with: 'nowhere', severity: 'hard_stop' as const, text: 'd' },
    ];
    const f = formulary(
      [medicine('1000001', { interactions }), medicine('1000002', { interactionClasses: ['other-class'] })],
      { interactionClassMembers: { statin: ['simvastatin'] } },
    );
    expect(problemsOf(f)).toEqual([
      { kind: 'unknown_interaction', code: '1000001', field: 'medicines.0.interactions.3.with' },
    ]);
  });

  it('schedule 2 or 3 without a course of 30 days or fewer', () => {
    const f = formulary([
      medicine('1000001', { controlledSchedule: 2 }),
      medicine('1000002', { controlledSchedule: 3, maxDurationDays: 31 }),
      medicine('1000003', { controlledSchedule: 3, maxDurationDays: 30 }),
      medicine('1000004', { controlledSchedule: 4 }),
    ]);
    expect(problemsOf(f)).toEqual([
      { kind: 'controlled_duration', code: '1000001', field: 'medicines.0.maxDurationDays' },
      { kind: 'controlled_duration', code: '1000002', field: 'medicines.1.maxDurationDays' },
    ]);
  });
});
