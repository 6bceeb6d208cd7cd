import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { zodIssuesToFieldIssues } from '../ledger/registry.ts';

/**
 * National Early Warning Score 2 (NEWS2), Royal College of Physicians, "National Early Warning Score
 * (NEWS) 2: Standardising the assessment of acute-illness severity in the NHS", December 2017.
 * Chart 2 (the scoring system), chart 3 (thresholds and triggers) and chart 4 (clinical response).
 *
 * NEWS2 is validated for adults (16 and over) who are not pregnant; whether it applies to a patient is
 * the clinician's call and not checked here. SpO2 scale 2 is only for patients with hypercapnic
 * respiratory failure, on a clinician's decision; scale 1 is the default.
 */

export const ACVPU_LEVELS = ['alert', 'new_confusion', 'voice', 'pain', 'unresponsive'] as const;
export type Acvpu = (typeof ACVPU_LEVELS)[number];

export const NEWS2_PARAMETERS = [
  'respirationRate',
  'spo2',
  'airOrOxygen',
  'systolicBp',
  'pulse',
  'consciousness',
  'temperature',
] as const;
export type News2Parameter = (typeof NEWS2_PARAMETERS)[number];

export type News2Band = 'low' | 'low_medium' | 'medium' | 'high';

const whole = (name: string, min: number, max: number, unit: string) =>
  z
    .number({ error: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .min(min, `${name} must be between ${min} and ${max} ${unit}`)
    .max(max, `${name} must be between ${min} and ${max} ${unit}`)
    .nullish();

/** True when `t` has at most one decimal place (36.1 yes, 36.15 no), allowing for binary floating point. */
function hasAtMostOneDecimal(t: number): boolean {
  return Math.abs(t * 10 - Math.round(t * 10)) < 1e-6;
}

/**
 * Observations as recorded. Any parameter may be absent (undefined or null): the score is then
 * partial. The ranges refuse values no living patient can have, not merely unusual ones.
 */
export const news2ObservationsSchema = z.strictObject({
  /** Breaths per minute. */
  respirationRate: whole('respiration rate', 0, 100, 'per minute'),
  /** Oxygen saturation, %. */
  spo2: whole('SpO2', 0, 100, '%'),
  /** Scale 2 only for hypercapnic respiratory failure, on a clinician's decision. Defaults to 1. */
  spo2Scale: z.union([z.literal(1), z.literal(2)], { error: 'SpO2 scale must be 1 or 2' }).optional(),
  airOrOxygen: z.enum(['air', 'oxygen'], { error: "must be 'air' or 'oxygen'" }).nullish(),
  /** Systolic blood pressure, mmHg. */
  systolicBp: whole('systolic blood pressure', 0, 300, 'mmHg'),
  /** Pulse, beats per minute. */
  pulse: whole('pulse', 0, 300, 'per minute'),
  consciousness: z.enum(ACVPU_LEVELS, { error: `must be one of ${ACVPU_LEVELS.join(', ')}` }).nullish(),
  /** Degrees Celsius, at most one decimal place. */
  temperature: z
    .number({ error: 'temperature must be a number' })
    .min(25, 'temperature must be between 25.0 and 45.0 °C')
    .max(45, 'temperature must be between 25.0 and 45.0 °C')
    .refine(hasAtMostOneDecimal, 'temperature must have at most one decimal place')
    .nullish(),
});
export type News2Observations = z.input<typeof news2ObservationsSchema>;

export interface News2Result {
  /**
   * Score of each parameter; null when it could not be scored because a value it needs is missing
   * (on scale 2, a saturation of 93% or more also needs to know whether the patient is on oxygen).
   */
  scores: Record<News2Parameter, number | null>;
  /** Sum of the scored parameters, 0–20. When incomplete, the lowest the full score could be. */
  total: number;
  /** Every parameter was scored. */
  complete: boolean;
  /** Parameters that could not be scored (their score is null), in chart order. */
  missing: News2Parameter[];
  /** Some single parameter scored 3 (a "red score"). */
  singleParameterThree: boolean;
  /** Clinical risk (chart 3). When incomplete, the lowest band the full score could reach. */
  band: News2Band;
  /** Trigger for the band (chart 3). */
  response: string;
  /** Minimum monitoring frequency (chart 4). */
  monitoringFrequency: string;
  /** Clinical response (chart 4). */
  clinicalResponse: string;
}

function scoreRespirationRate(rr: number): number {
  if (rr <= 8) return 3;
  if (rr <= 11) return 1;
  if (rr <= 20) return 0;
  if (rr <= 24) return 2;
  return 3;
}

function scoreSpo2Scale1(spo2: number): number {
  if (spo2 <= 91) return 3;
  if (spo2 <= 93) return 2;
  if (spo2 <= 95) return 1;
  return 0;
}

/** Scale 2: a saturation of 93% or more only scores when it is achieved on supplemental oxygen. */
function scoreSpo2Scale2(spo2: number, airOrOxygen: 'air' | 'oxygen' | null): number | null {
  if (spo2 <= 83) return 3;
  if (spo2 <= 85) return 2;
  if (spo2 <= 87) return 1;
  if (spo2 <= 92) return 0;
  if (airOrOxygen === null) return null;
  if (airOrOxygen === 'air') return 0;
  if (spo2 <= 94) return 1;
  if (spo2 <= 96) return 2;
  return 3;
}

function scoreSystolicBp(bp: number): number {
  if (bp <= 90) return 3;
  if (bp <= 100) return 2;
  if (bp <= 110) return 1;
  if (bp <= 219) return 0;
  return 3;
}

function scorePulse(pulse: number): number {
  if (pulse <= 40) return 3;
  if (pulse <= 50) return 1;
  if (pulse <= 90) return 0;
  if (pulse <= 110) return 1;
  if (pulse <= 130) return 2;
  return 3;
}

/** Compared in tenths of a degree so that 35.0/35.1 and the like never meet a rounding error. */
function scoreTemperature(celsius: number): number {
  const tenths = Math.round(celsius * 10);
  if (tenths <= 350) return 3;
  if (tenths <= 360) return 1;
  if (tenths <= 380) return 0;
  if (tenths <= 390) return 1;
  return 2;
}

function bandOf(total: number, singleParameterThree: boolean): News2Band {
  if (total >= 7) return 'high';
  if (total >= 5) return 'medium';
  if (singleParameterThree) return 'low_medium';
  return 'low';
}

interface Response {
  response: string;
  monitoringFrequency: string;
  clinicalResponse: string;
}

/** Wording of RCP NEWS2 charts 3 and 4. */
function responseOf(band: News2Band, total: number): Response {
  switch (band) {
    case 'high':
      return {
        response: 'Emergency response',
        monitoringFrequency: 'Continuous monitoring of vital signs',
        clinicalResponse:
          'Registered nurse to immediately inform the medical team caring for the patient – this should be at ' +
          'least at specialist registrar level. Emergency assessment by a team with critical care competencies, ' +
          'including practitioner(s) with advanced airway management skills. Consider transfer of care to a ' +
          'level 2 or 3 clinical care facility, i.e. higher-dependency unit or ICU. Clinical care in an ' +
          'environment with monitoring facilities.',
      };
    case 'medium':
      return {
        response: 'Key threshold for urgent response',
        monitoringFrequency: 'Minimum 1 hourly',
        clinicalResponse:
          'Registered nurse to immediately inform the medical team caring for the patient. Registered nurse ' +
          'to request urgent assessment by a clinician or team with core competencies in the care of acutely ' +
          'ill patients. Provide clinical care in an environment with monitoring facilities.',
      };
    case 'low_medium':
      return {
        response: 'Urgent ward-based response',
        monitoringFrequency: 'Minimum 1 hourly',
        clinicalResponse:
          'Registered nurse to inform the medical team caring for the patient, who will review and decide ' +
          'whether escalation of care is necessary.',
      };
    case 'low':
      return total === 0
        ? {
            response: 'Ward-based response',
            monitoringFrequency: 'Minimum 12 hourly',
            clinicalResponse: 'Continue routine NEWS monitoring.',
          }
        : {
            response: 'Ward-based response',
            monitoringFrequency: 'Minimum 4–6 hourly',
            clinicalResponse:
              'Inform registered nurse, who must assess the patient. Registered nurse decides whether increased ' +
              'frequency of clinical monitoring or escalation of care is required.',
          };
  }
}

/**
 * Scores a set of observations. Throws ValidationError (naming each offending field) for values that
 * are impossible or malformed; missing values give a partial result with `complete: false`.
 */
export function scoreNews2(observations: News2Observations): News2Result {
  const parsed = news2ObservationsSchema.safeParse(observations);
  if (!parsed.success) throw new ValidationError(zodIssuesToFieldIssues(parsed.error, ''));
  const o = parsed.data;
  const airOrOxygen = o.airOrOxygen ?? null;
  const spo2Scale = o.spo2Scale ?? 1;

  const scores: Record<News2Parameter, number | null> = {
    respirationRate: o.respirationRate == null ? null : scoreRespirationRate(o.respirationRate),
    spo2:
      o.spo2 == null
        ? null
        : spo2Scale === 1
          ? scoreSpo2Scale1(o.spo2)
          : scoreSpo2Scale2(o.spo2, airOrOxygen),
    airOrOxygen: airOrOxygen === null ? null : airOrOxygen === 'oxygen' ? 2 : 0,
    systolicBp: o.systolicBp == null ? null : scoreSystolicBp(o.systolicBp),
    pulse: o.pulse == null ? null : scorePulse(o.pulse),
    consciousness: o.consciousness == null ? null : o.consciousness === 'alert' ? 0 : 3,
    temperature: o.temperature == null ? null : scoreTemperature(o.temperature),
  };

  const missing = NEWS2_PARAMETERS.filter((p) => scores[p] === null);
  const scored = NEWS2_PARAMETERS.map((p) => scores[p]).filter((s): s is number => s !== null);
  const total = scored.reduce((a, b) => a + b, 0);
  const singleParameterThree = scored.includes(3);
  const band = bandOf(total, singleParameterThree);
  return {
    scores,
    total,
    complete: missing.length === 0,
    missing,
    singleParameterThree,
    band,
    ...responseOf(band, total),
  };
}
