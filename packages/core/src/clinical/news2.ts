import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { zodIssuesToFieldIssues } from '../ledger/registry.ts';

/**
 * National Early Warning Score 2 (NEWS2), Royal College of Physicians, "National Early Warning Score
 * (NEWS) 2: Standardising the assessment of acute-illness severity in the NHS", December 2017.
 * Chart 2 (the scoring system), chart 3 (thresholds and triggers) and chart 4 (clinical response).
 *
 * NEWS2 is validated for adults (16 and over) who are not pregnant: `news2NotApplicable` says when it
 * must not be used (a paediatric or obstetric early warning score is needed instead). SpO2 scale 2 is
 * only for patients with hypercapnic respiratory failure, on a clinician's decision; scale 1 is the
 * default.
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

/** How many parameters NEWS2 has: a score is complete only when all seven are scored. */
export const NEWS2_PARAMETER_COUNT = NEWS2_PARAMETERS.length;

export interface News2Result {
  /**
   * Score of each parameter; null when it could not be scored because a value it needs is missing
   * (on scale 2, a saturation of 93% or more also needs to know whether the patient is on oxygen).
   */
  scores: Record<News2Parameter, number | null>;
  /**
   * Sum of the seven parameter scores, 0–20, only when every parameter was scored. A partial set has
   * no total: the sum of what was measured is not a NEWS2 score, and shown as one ("NEWS2 0") it
   * reads as low risk when nothing may have been measured but the temperature.
   */
  total: number | null;
  /** Every parameter was scored. */
  complete: boolean;
  /** How many of the seven parameters were scored. */
  present: number;
  /** Always 7: "present of 7". */
  of: typeof NEWS2_PARAMETER_COUNT;
  /** Parameters that could not be scored (their score is null), in chart order. */
  missing: News2Parameter[];
  /** Some single parameter scored 3 (a "red score"). */
  singleParameterThree: boolean;
  /**
   * Clinical risk (chart 3). For a partial set, the band the scored parameters already reach when
   * that is above low (the full score can only be higher), and null otherwise: unknown, never low.
   */
  band: News2Band | null;
  /** What the band calls for, in the words of urgent care (not the hospital ward's). */
  response: string;
  /** What to do on a remote (telephone or video) consultation. */
  remoteAdvice: string;
  /** What to do when the patient is seen face to face (treatment centre or home visit). */
  faceToFaceAdvice: string;
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
  remoteAdvice: string;
  faceToFaceAdvice: string;
}

/**
 * What a band calls for in remote and face-to-face urgent care. The thresholds are RCP chart 3; the
 * hospital wording of chart 4 ("registered nurse to inform the medical team", monitoring hourly) does
 * not fit a telephone call or a treatment centre, so the actions are worded for where the patient is.
 * Clinical judgement comes first: NEWS2 supports a decision and does not make it.
 */
function responseOf(band: News2Band | null, partial: { present: number } | null): Response {
  if (band === null) {
    return {
      response: `Score incomplete: ${partial?.present ?? 0} of ${NEWS2_PARAMETER_COUNT} parameters recorded, so the risk is not known`,
      remoteAdvice:
        'Do not treat the patient as low risk because some parameters could not be measured. Decide on the ' +
        'history and what you can assess; if the missing observations matter, arrange a face-to-face ' +
        'assessment so they can be taken.',
      faceToFaceAdvice: 'Record the missing parameters to complete the score before deciding on the outcome.',
    };
  }
  switch (band) {
    case 'high':
      return {
        response: 'Emergency response',
        remoteAdvice:
          'Emergency: arrange an ambulance (999) for hospital assessment now, unless the patient has an ' +
          'agreed care plan that says otherwise. Stay on the line or call back until help arrives.',
        faceToFaceAdvice:
          'Emergency: transfer to hospital by 999 ambulance now, unless an agreed care plan says otherwise. ' +
          'Stay with the patient and repeat the observations while you wait.',
      };
    case 'medium':
      return {
        response: 'Urgent response',
        remoteAdvice:
          'Urgent: the patient needs assessment face to face without delay (same-day hospital or ' +
          'emergency department referral, or an urgent home visit). If they cannot be seen promptly, ' +
          'arrange an ambulance.',
        faceToFaceAdvice:
          'Urgent: assess now and consider same-day referral to hospital (acute medical or surgical ' +
          'team, or the emergency department). Repeat the observations before the patient leaves.',
      };
    case 'low_medium':
      return {
        response: 'Urgent clinical review (a single parameter scored 3)',
        remoteAdvice:
          'A single parameter scored 3: find its cause now. Arrange a face-to-face assessment unless ' +
          'the value is explained and expected for this patient.',
        faceToFaceAdvice:
          'A single parameter scored 3: review its cause now and decide whether the patient needs ' +
          'referral to hospital. Repeat the observations.',
      };
    case 'low':
      return {
        response: 'Low score: clinical judgement',
        remoteAdvice:
          'Manage on clinical judgement: a low score does not rule out serious illness. Give clear ' +
          'safety-netting advice: when to call back, and when to call 999.',
        faceToFaceAdvice:
          'Manage on clinical judgement and give safety-netting advice; repeat the observations if ' +
          'the patient worsens or before they leave if anything was borderline.',
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
  const sum = scored.reduce((a, b) => a + b, 0);
  const singleParameterThree = scored.includes(3);
  const complete = missing.length === 0;
  const reached = bandOf(sum, singleParameterThree);
  // A partial set already at medium, high or with a red score stays so whatever the missing
  // parameters are (scores only add); below that, the risk is unknown, not low.
  const band = complete ? reached : reached === 'low' ? null : reached;
  return {
    scores,
    total: complete ? sum : null,
    complete,
    present: scored.length,
    of: NEWS2_PARAMETER_COUNT,
    missing,
    singleParameterThree,
    band,
    ...responseOf(band, complete ? null : { present: scored.length }),
  };
}

// ---- who NEWS2 is for ---------------------------------------------------------------------------------

/** NEWS2 is not used below this age (RCP 2017: for adults aged 16 and over). */
export const NEWS2_MIN_AGE_YEARS = 16;

/** Whether the patient is pregnant or up to 6 weeks after giving birth, as the clinician recorded it. */
export const PREGNANCY_ANSWERS = ['yes', 'no', 'unknown'] as const;
export type PregnancyAnswer = (typeof PREGNANCY_ANSWERS)[number];

export type News2NotApplicableReason = 'under_16' | 'pregnant';

export interface News2NotApplicable {
  reason: News2NotApplicableReason;
  /** Shown instead of a score. */
  message: string;
}

const NOT_APPLICABLE_MESSAGES: Record<News2NotApplicableReason, string> = {
  under_16:
    'NEWS2 is not used for patients under 16: a paediatric early warning score (PEWS) is needed, ' +
    'with the observations judged against the normal ranges for the child’s age.',
  pregnant:
    'NEWS2 is not used in pregnancy or up to 6 weeks after birth: an obstetric early warning score ' +
    '(such as MEOWS) is needed.',
};

export function news2NotApplicableMessage(reason: News2NotApplicableReason): string {
  return NOT_APPLICABLE_MESSAGES[reason];
}

/**
 * Why NEWS2 must not be computed for this patient, or null when it may. `ageYears` is the patient's
 * age (from the date of birth when identified, else as given at the call); null when not known.
 */
export function news2NotApplicable(patient: {
  ageYears: number | null;
  pregnancy?: PregnancyAnswer | undefined;
}): News2NotApplicable | null {
  if (patient.ageYears !== null && patient.ageYears < NEWS2_MIN_AGE_YEARS)
    return { reason: 'under_16', message: NOT_APPLICABLE_MESSAGES.under_16 };
  if (patient.pregnancy === 'yes') return { reason: 'pregnant', message: NOT_APPLICABLE_MESSAGES.pregnant };
  return null;
}

// ---- a raised score and the outcome ---------------------------------------------------------------------

/**
 * Bands at which NEWS2 asks for an urgent response: 5 or more, or a single parameter scoring 3
 * (RCP chart 3). A partial set reaching one of these counts too (its band only rises).
 */
export const NEWS2_URGENT_BANDS: readonly News2Band[] = ['low_medium', 'medium', 'high'];

export function isUrgentNews2Band(band: string | null | undefined): boolean {
  return band != null && (NEWS2_URGENT_BANDS as readonly string[]).includes(band);
}
