import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.ts';
import {
  ACVPU_LEVELS,
  isUrgentNews2Band,
  NEWS2_PARAMETERS,
  news2NotApplicable,
  scoreNews2,
  type News2Observations,
} from '../src/clinical/news2.ts';

/** Every parameter in its zero band. */
const NORMAL = {
  respirationRate: 16,
  spo2: 97,
  spo2Scale: 1,
  airOrOxygen: 'air',
  systolicBp: 120,
  pulse: 70,
  consciousness: 'alert',
  temperature: 37.0,
} as const satisfies News2Observations;

function validationIssues(f: () => unknown): { path: string; message: string }[] {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).issues;
  }
  throw new Error('expected a ValidationError');
}

describe('NEWS2 scoring: both sides of every boundary of chart 2', () => {
  // [value, score]: each boundary of the reference table appears as a pair either side of it.
  const respiration: [number, number][] = [
    [0, 3],
    [8, 3],
    [9, 1],
    [11, 1],
    [12, 0],
    [20, 0],
    [21, 2],
    [24, 2],
    [25, 3],
    [60, 3],
  ];
  it.each(respiration)('respiration rate %d scores %d', (value, score) => {
    const r = scoreNews2({ ...NORMAL, respirationRate: value });
    expect(r.scores.respirationRate).toBe(score);
    expect(r.total).toBe(score);
  });

  const spo2Scale1: [number, number][] = [
    [50, 3],
    [91, 3],
    [92, 2],
    [93, 2],
    [94, 1],
    [95, 1],
    [96, 0],
    [100, 0],
  ];
  it.each(spo2Scale1)('SpO2 scale 1 %d%% scores %d on air', (value, score) => {
    const r = scoreNews2({ ...NORMAL, spo2: value });
    expect(r.scores.spo2).toBe(score);
    expect(r.total).toBe(score);
  });
  it.each(spo2Scale1)(
    'SpO2 scale 1 %d%% scores %d on oxygen too (oxygen scores separately)',
    (value, score) => {
      const r = scoreNews2({ ...NORMAL, spo2: value, airOrOxygen: 'oxygen' });
      expect(r.scores.spo2).toBe(score);
      expect(r.scores.airOrOxygen).toBe(2);
      expect(r.total).toBe(score + 2);
    },
  );

  const spo2Scale2: [number, 'air' | 'oxygen', number][] = [
    [70, 'air', 3],
    [83, 'air', 3],
    [83, 'oxygen', 3],
    [84, 'air', 2],
    [85, 'oxygen', 2],
    [86, 'air', 1],
    [87, 'oxygen', 1],
    [88, 'air', 0],
    [88, 'oxygen', 0],
    [92, 'air', 0],
    [92, 'oxygen', 0],
    [93, 'air', 0],
    [93, 'oxygen', 1],
    [94, 'air', 0],
    [94, 'oxygen', 1],
    [95, 'air', 0],
    [95, 'oxygen', 2],
    [96, 'air', 0],
    [96, 'oxygen', 2],
    [97, 'air', 0],
    [97, 'oxygen', 3],
    [100, 'air', 0],
    [100, 'oxygen', 3],
  ];
  it.each(spo2Scale2)('SpO2 scale 2 %d%% on %s scores %d', (value, air, score) => {
    const r = scoreNews2({ ...NORMAL, spo2Scale: 2, spo2: value, airOrOxygen: air });
    expect(r.scores.spo2).toBe(score);
    expect(r.scores.airOrOxygen).toBe(air === 'oxygen' ? 2 : 0);
    expect(r.total).toBe(score + (air === 'oxygen' ? 2 : 0));
  });

  it('scale 1 is the default when no scale is given', () => {
    const { spo2Scale: _, ...withoutScale } = NORMAL;
    expect(scoreNews2({ ...withoutScale, spo2: 90 }).scores.spo2).toBe(3);
    expect(scoreNews2({ ...withoutScale, spo2: 90, spo2Scale: 2 }).scores.spo2).toBe(0);
  });

  it('air scores 0 and oxygen scores 2', () => {
    expect(scoreNews2({ ...NORMAL, airOrOxygen: 'air' }).scores.airOrOxygen).toBe(0);
    expect(scoreNews2({ ...NORMAL, airOrOxygen: 'oxygen' }).scores.airOrOxygen).toBe(2);
    expect(scoreNews2({ ...NORMAL, airOrOxygen: 'oxygen' }).total).toBe(2);
  });

  const systolic: [number, number][] = [
    [0, 3],
    [90, 3],
    [91, 2],
    [100, 2],
    [101, 1],
    [110, 1],
    [111, 0],
    [219, 0],
    [220, 3],
    [300, 3],
  ];
  it.each(systolic)('systolic BP %d scores %d', (value, score) => {
    const r = scoreNews2({ ...NORMAL, systolicBp: value });
    expect(r.scores.systolicBp).toBe(score);
    expect(r.total).toBe(score);
  });

  const pulse: [number, number][] = [
    [0, 3],
    [40, 3],
    [41, 1],
    [50, 1],
    [51, 0],
    [90, 0],
    [91, 1],
    [110, 1],
    [111, 2],
    [130, 2],
    [131, 3],
    [250, 3],
  ];
  it.each(pulse)('pulse %d scores %d', (value, score) => {
    const r = scoreNews2({ ...NORMAL, pulse: value });
    expect(r.scores.pulse).toBe(score);
    expect(r.total).toBe(score);
  });

  const temperature: [number, number][] = [
    [25.0, 3],
    [35.0, 3],
    [35.1, 1],
    [36.0, 1],
    [36.1, 0],
    [38.0, 0],
    [38.1, 1],
    [39.0, 1],
    [39.1, 2],
    [45.0, 2],
  ];
  it.each(temperature)('temperature %d °C scores %d', (value, score) => {
    const r = scoreNews2({ ...NORMAL, temperature: value });
    expect(r.scores.temperature).toBe(score);
    expect(r.total).toBe(score);
  });

  it('temperatures computed in floating point land in the right band', () => {
    // Sums and products of decimals are rarely exact; the bands are compared in tenths of a degree.
    expect(scoreNews2({ ...NORMAL, temperature: 0.1 * 351 }).scores.temperature).toBe(1);
    expect(scoreNews2({ ...NORMAL, temperature: 36.2 - 0.1 }).scores.temperature).toBe(0);
    expect(scoreNews2({ ...NORMAL, temperature: 38 + 0.1 }).scores.temperature).toBe(1);
    // 35.3 - 0.2 is 35.099999999999994: one tenth above 35.0, not on it
    expect(scoreNews2({ ...NORMAL, temperature: 35.3 - 0.2 }).scores.temperature).toBe(1);
    // 64.4 - 29.4 is 35.00000000000001 and 64.4 - 26.4 is 38.00000000000001: on the boundary, not above it
    expect(scoreNews2({ ...NORMAL, temperature: 64.4 - 29.4 }).scores.temperature).toBe(3);
    expect(scoreNews2({ ...NORMAL, temperature: 64.4 - 26.4 }).scores.temperature).toBe(0);
  });

  const consciousness: [(typeof ACVPU_LEVELS)[number], number][] = [
    ['alert', 0],
    ['new_confusion', 3],
    ['voice', 3],
    ['pain', 3],
    ['unresponsive', 3],
  ];
  it.each(consciousness)('consciousness %s scores %d', (level, score) => {
    const r = scoreNews2({ ...NORMAL, consciousness: level });
    expect(r.scores.consciousness).toBe(score);
    expect(r.total).toBe(score);
  });
  it('covers every ACVPU level', () => {
    expect(consciousness.map(([l]) => l).sort()).toEqual([...ACVPU_LEVELS].sort());
  });
});

describe('NEWS2 risk bands (chart 3)', () => {
  it('0 is low: clinical judgement with safety-netting, in urgent-care words (no ward monitoring)', () => {
    const r = scoreNews2(NORMAL);
    expect(r).toMatchObject({
      total: 0,
      band: 'low',
      complete: true,
      missing: [],
      singleParameterThree: false,
    });
    expect(r.response).toBe('Low score: clinical judgement');
    expect(r.remoteAdvice).toMatch(/safety-netting/);
    expect(r.faceToFaceAdvice).toMatch(/safety-netting/);
    // The hospital ward's wording is gone: nobody on a 111 call has a registered nurse or a ward.
    for (const text of [r.response, r.remoteAdvice, r.faceToFaceAdvice]) {
      expect(text).not.toMatch(/ward|registered nurse|hourly|medical team/i);
    }
    expect(r).not.toHaveProperty('monitoringFrequency');
    expect(r).not.toHaveProperty('clinicalResponse');
  });

  it('1–4 without a 3 is low', () => {
    // RR 21 (2) + pulse 91 (1) + temp 38.1 (1) = 4
    const r = scoreNews2({ ...NORMAL, respirationRate: 21, pulse: 91, temperature: 38.1 });
    expect(r).toMatchObject({ total: 4, band: 'low', response: 'Low score: clinical judgement' });
    expect(scoreNews2({ ...NORMAL, pulse: 91 })).toMatchObject({ total: 1, band: 'low' });
  });

  it('a single parameter scoring 3 with a total of 3 or 4 is low-medium', () => {
    expect(scoreNews2({ ...NORMAL, consciousness: 'new_confusion' })).toMatchObject({
      total: 3,
      band: 'low_medium',
      singleParameterThree: true,
      response: 'Urgent clinical review (a single parameter scored 3)',
    });
    // new confusion (3) + pulse 91 (1) = 4: still low-medium
    expect(scoreNews2({ ...NORMAL, consciousness: 'voice', pulse: 91 })).toMatchObject({
      total: 4,
      band: 'low_medium',
    });
    // a 4 made of 2 + 2 has no single 3: low
    expect(scoreNews2({ ...NORMAL, respirationRate: 22, pulse: 120 })).toMatchObject({
      total: 4,
      band: 'low',
    });
  });

  it('5–6 is medium, whether or not a single parameter scored 3', () => {
    // RR 21 (2) + pulse 120 (2) + temp 38.5 (1) = 5
    expect(scoreNews2({ ...NORMAL, respirationRate: 21, pulse: 120, temperature: 38.5 })).toMatchObject({
      total: 5,
      band: 'medium',
      singleParameterThree: false,
      response: 'Urgent response',
    });
    // BP 90 (3) + oxygen (2) = 5, with a red score: medium, not low-medium
    expect(scoreNews2({ ...NORMAL, systolicBp: 90, airOrOxygen: 'oxygen' })).toMatchObject({
      total: 5,
      band: 'medium',
      singleParameterThree: true,
    });
    // 3 + 2 + 1 = 6
    expect(scoreNews2({ ...NORMAL, systolicBp: 90, airOrOxygen: 'oxygen', pulse: 91 })).toMatchObject({
      total: 6,
      band: 'medium',
    });
  });

  it('7 or more is high (emergency response)', () => {
    // 3 + 2 + 2 = 7
    const r = scoreNews2({ ...NORMAL, systolicBp: 90, airOrOxygen: 'oxygen', respirationRate: 21 });
    expect(r).toMatchObject({ total: 7, band: 'high', response: 'Emergency response' });
    expect(r.remoteAdvice).toMatch(/ambulance \(999\)/);
    expect(r.faceToFaceAdvice).toMatch(/999 ambulance/);
    for (const text of [r.response, r.remoteAdvice, r.faceToFaceAdvice]) {
      expect(text).not.toMatch(/ward|registered nurse|critical care|level 2 or 3/i);
    }
  });

  it('scores the worst possible patient 20', () => {
    const r = scoreNews2({
      respirationRate: 30,
      spo2: 99,
      spo2Scale: 2,
      airOrOxygen: 'oxygen',
      systolicBp: 80,
      pulse: 150,
      consciousness: 'unresponsive',
      temperature: 34.0,
    });
    expect(r.total).toBe(20);
    expect(r.band).toBe('high');
  });
});

describe('NEWS2 with missing observations', () => {
  it('one observation is a partial score: 1 of 7 parameters, no total, risk unknown (never low)', () => {
    const r = scoreNews2({ temperature: 37.0 });
    expect(r).toMatchObject({ complete: false, present: 1, of: 7, total: null, band: null });
    expect(r.scores.temperature).toBe(0);
    expect(r.missing).toEqual([
      'respirationRate',
      'spo2',
      'airOrOxygen',
      'systolicBp',
      'pulse',
      'consciousness',
    ]);
    expect(r.response).toBe('Score incomplete: 1 of 7 parameters recorded, so the risk is not known');
    expect(r.remoteAdvice).toMatch(/Do not treat the patient as low risk/);
    expect(isUrgentNews2Band(r.band)).toBe(false);
  });

  it('six of seven parameters, all normal, are still no total', () => {
    const r = scoreNews2({ ...NORMAL, temperature: null });
    expect(r).toMatchObject({
      complete: false,
      present: 6,
      total: null,
      band: null,
      missing: ['temperature'],
    });
  });

  it('a partial set that already reaches a red score or 5 keeps that band (missing parameters only add)', () => {
    const red = scoreNews2({ respirationRate: 25, pulse: 70, temperature: null });
    expect(red.complete).toBe(false);
    expect(red.missing).toEqual(['spo2', 'airOrOxygen', 'systolicBp', 'consciousness', 'temperature']);
    expect(red.scores).toMatchObject({ respirationRate: 3, pulse: 0, spo2: null, temperature: null });
    expect(red).toMatchObject({ total: null, present: 2, band: 'low_medium' });
    expect(isUrgentNews2Band(red.band)).toBe(true);
    // RR 25 (3) + pulse 135 (3) = 6 from two parameters: medium at least
    expect(scoreNews2({ respirationRate: 25, pulse: 135 })).toMatchObject({ total: null, band: 'medium' });
    expect(scoreNews2({ respirationRate: 25, pulse: 135, systolicBp: 90 })).toMatchObject({
      total: null,
      band: 'high',
      present: 3,
    });
  });

  it('an empty set of observations is complete: false with every parameter missing', () => {
    const r = scoreNews2({});
    expect(r).toMatchObject({ total: null, present: 0, complete: false, band: null });
    expect(r.missing).toEqual([...NEWS2_PARAMETERS]);
  });

  it('on scale 2, a saturation of 93% or more cannot be scored without knowing air or oxygen', () => {
    const r = scoreNews2({ ...NORMAL, spo2Scale: 2, spo2: 95, airOrOxygen: undefined });
    expect(r.scores.spo2).toBeNull();
    expect(r.missing).toEqual(['spo2', 'airOrOxygen']);
    // below 93 it can
    const low = scoreNews2({ ...NORMAL, spo2Scale: 2, spo2: 85, airOrOxygen: undefined });
    expect(low.scores.spo2).toBe(2);
    expect(low.missing).toEqual(['airOrOxygen']);
  });
});

describe('NEWS2 refuses impossible values with a ValidationError naming the field', () => {
  const cases: [Partial<Record<keyof News2Observations, unknown>>, string][] = [
    [{ respirationRate: -1 }, 'respirationRate'],
    [{ respirationRate: 16.5 }, 'respirationRate'],
    [{ respirationRate: 101 }, 'respirationRate'],
    [{ spo2: 101 }, 'spo2'],
    [{ spo2: -3 }, 'spo2'],
    [{ spo2: 97.5 }, 'spo2'],
    [{ spo2Scale: 3 }, 'spo2Scale'],
    [{ airOrOxygen: 'nitrogen' }, 'airOrOxygen'],
    [{ systolicBp: -10 }, 'systolicBp'],
    [{ systolicBp: 400 }, 'systolicBp'],
    [{ pulse: -1 }, 'pulse'],
    [{ pulse: 301 }, 'pulse'],
    [{ pulse: Number.NaN }, 'pulse'],
    [{ pulse: Number.POSITIVE_INFINITY }, 'pulse'],
    [{ consciousness: 'drowsy' }, 'consciousness'],
    [{ temperature: 24.9 }, 'temperature'],
    [{ temperature: 45.1 }, 'temperature'],
    [{ temperature: 98.6 }, 'temperature'],
    [{ temperature: 36.55 }, 'temperature'],
    [{ temperature: '37' }, 'temperature'],
  ];
  it.each(cases)('%o is refused at %s', (patch, field) => {
    const issues = validationIssues(() => scoreNews2({ ...NORMAL, ...patch } as News2Observations));
    expect(issues.map((i) => i.path)).toEqual([field]);
    expect(issues[0]!.message).toBeTruthy();
  });

  it('names every bad field at once and refuses unknown fields', () => {
    const issues = validationIssues(() => scoreNews2({ ...NORMAL, spo2: 120, temperature: 50 }));
    expect(issues.map((i) => i.path).sort()).toEqual(['spo2', 'temperature']);
    const extra = validationIssues(() => scoreNews2({ ...NORMAL, heartRate: 70 } as News2Observations));
    expect(extra).toHaveLength(1);
    expect(extra[0]!.message).toMatch(/heartRate/);
  });

  it('the edges of the plausible ranges are accepted', () => {
    expect(() => scoreNews2({ ...NORMAL, temperature: 25.0, spo2: 0, respirationRate: 0 })).not.toThrow();
    expect(() => scoreNews2({ ...NORMAL, temperature: 45.0, spo2: 100 })).not.toThrow();
  });
});

describe('NEWS2 properties', () => {
  const observations = fc.record(
    {
      respirationRate: fc.option(fc.integer({ min: 0, max: 100 })),
      spo2: fc.option(fc.integer({ min: 0, max: 100 })),
      spo2Scale: fc.constantFrom(1 as const, 2 as const),
      airOrOxygen: fc.option(fc.constantFrom('air' as const, 'oxygen' as const)),
      systolicBp: fc.option(fc.integer({ min: 0, max: 300 })),
      pulse: fc.option(fc.integer({ min: 0, max: 300 })),
      consciousness: fc.option(fc.constantFrom(...ACVPU_LEVELS)),
      temperature: fc.option(fc.integer({ min: 250, max: 450 }).map((t) => t / 10)),
    },
    { requiredKeys: [] },
  );

  it('the total is the sum of the parameter scores and lies in 0..20; the band follows the total', () => {
    fc.assert(
      fc.property(observations, (o) => {
        const r = scoreNews2(o);
        const sum = NEWS2_PARAMETERS.reduce((acc, p) => acc + (r.scores[p] ?? 0), 0);
        expect(r.total).toBe(r.complete ? sum : null);
        expect(sum).toBeGreaterThanOrEqual(0);
        expect(sum).toBeLessThanOrEqual(20);
        expect(r.present).toBe(7 - r.missing.length);
        for (const p of NEWS2_PARAMETERS) {
          const s = r.scores[p];
          expect(s === null || (Number.isInteger(s) && s >= 0 && s <= 3)).toBe(true);
        }
        expect(r.complete).toBe(r.missing.length === 0);
        expect(r.missing).toEqual(NEWS2_PARAMETERS.filter((p) => r.scores[p] === null));
        const red = NEWS2_PARAMETERS.some((p) => r.scores[p] === 3);
        const reached = sum >= 7 ? 'high' : sum >= 5 ? 'medium' : red ? 'low_medium' : 'low';
        // Partial: unknown (null) unless what was scored already reaches above low.
        expect(r.band).toBe(r.complete || reached !== 'low' ? reached : null);
      }),
      { numRuns: 2000 },
    );
  });

  it('adding a missing observation never lowers the band a partial set has reached', () => {
    const rank = { low: 0, low_medium: 1, medium: 2, high: 3 } as const;
    fc.assert(
      fc.property(observations, fc.constantFrom(...NEWS2_PARAMETERS), (o, drop) => {
        const full = scoreNews2(o);
        const partial = scoreNews2({ ...o, [drop]: undefined });
        if (partial.band !== null && full.band !== null)
          expect(rank[partial.band]).toBeLessThanOrEqual(rank[full.band]);
        if (partial.band !== null) expect(full.band).not.toBeNull();
      }),
      { numRuns: 1000 },
    );
  });
});

describe('who NEWS2 is for', () => {
  it('is not used under 16: a paediatric score is needed', () => {
    expect(news2NotApplicable({ ageYears: 15 })).toEqual({
      reason: 'under_16',
      message: expect.stringMatching(/not used for patients under 16: a paediatric early warning score/),
    });
    expect(news2NotApplicable({ ageYears: 0 })?.reason).toBe('under_16');
    expect(news2NotApplicable({ ageYears: 16 })).toBeNull();
  });

  it('is not used in pregnancy or up to 6 weeks after birth: an obstetric score is needed', () => {
    expect(news2NotApplicable({ ageYears: 30, pregnancy: 'yes' })).toEqual({
      reason: 'pregnant',
      message: expect.stringMatching(/not used in pregnancy or up to 6 weeks after birth: an obstetric/),
    });
    expect(news2NotApplicable({ ageYears: 30, pregnancy: 'no' })).toBeNull();
    expect(news2NotApplicable({ ageYears: 30, pregnancy: 'unknown' })).toBeNull();
    // Age unknown (unidentified patient, none given): the clinician's judgement.
    expect(news2NotApplicable({ ageYears: null })).toBeNull();
  });

  it('urgent bands are a red score, 5–6 and 7 or more; low and unknown are not', () => {
    expect(['low_medium', 'medium', 'high'].map(isUrgentNews2Band)).toEqual([true, true, true]);
    expect([null, undefined, 'low'].map(isUrgentNews2Band)).toEqual([false, false, false]);
  });
});
