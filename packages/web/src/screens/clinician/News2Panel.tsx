import {
  news2NotApplicable,
  scoreNews2,
  type News2NotApplicable,
  type News2Observations,
  type News2Result,
  type PregnancyAnswer,
} from '@holdfast/core';
import { Alert, NativeSelect, Paper, SimpleGrid, Text, TextInput, Title } from '@mantine/core';
import type { News2NotApplicableView, News2Summary } from '../../lib/types.ts';

export interface ObservationInputs {
  respirationRate: string;
  spo2: string;
  spo2Scale: string;
  airOrOxygen: string;
  systolicBp: string;
  pulse: string;
  consciousness: string;
  temperature: string;
  /** Pregnant or up to 6 weeks after birth: '', 'yes', 'no', 'unknown'. NEWS2 is not used if yes. */
  pregnancy: string;
  /** The age given at the call, asked only when the patient is not identified. */
  statedAge: string;
}

export const EMPTY_OBSERVATIONS: ObservationInputs = {
  respirationRate: '',
  spo2: '',
  spo2Scale: '1',
  airOrOxygen: '',
  systolicBp: '',
  pulse: '',
  consciousness: '',
  temperature: '',
  pregnancy: '',
  statedAge: '',
};

interface ObservationField {
  label: string;
  /** A field chosen from a list: each value with its words. */
  choices?: { value: string; label: string }[];
}

/** Each observation field as the form labels it (and a draft brought back names it), with its choices. */
export const OBSERVATION_FIELDS: Record<keyof ObservationInputs, ObservationField> = {
  respirationRate: { label: 'Respiration rate (breaths per minute)' },
  spo2: { label: 'SpO2 (%)' },
  spo2Scale: {
    label: 'SpO2 scale',
    choices: [
      { value: '1', label: 'Scale 1 (default)' },
      { value: '2', label: 'Scale 2 (hypercapnic respiratory failure)' },
    ],
  },
  airOrOxygen: {
    label: 'Air or oxygen',
    choices: [
      { value: '', label: 'Not recorded' },
      { value: 'air', label: 'Air' },
      { value: 'oxygen', label: 'Supplemental oxygen' },
    ],
  },
  systolicBp: { label: 'Systolic blood pressure (mmHg)' },
  pulse: { label: 'Pulse (beats per minute)' },
  consciousness: {
    label: 'Consciousness (ACVPU)',
    choices: [
      { value: '', label: 'Not recorded' },
      { value: 'alert', label: 'Alert' },
      { value: 'new_confusion', label: 'New confusion' },
      { value: 'voice', label: 'Responds to voice' },
      { value: 'pain', label: 'Responds to pain' },
      { value: 'unresponsive', label: 'Unresponsive' },
    ],
  },
  temperature: { label: 'Temperature (°C)' },
  pregnancy: {
    label: 'Pregnant or given birth in the last 6 weeks',
    choices: [
      { value: '', label: 'Not asked' },
      { value: 'no', label: 'No' },
      { value: 'yes', label: 'Yes' },
      { value: 'unknown', label: 'Not known' },
    ],
  },
  statedAge: { label: "Patient's age (years, as given at the call)" },
};

/** An observation's value in the form's words (a choice by its label). */
export function observationWords(key: keyof ObservationInputs, value: string): string {
  return OBSERVATION_FIELDS[key].choices?.find((c) => c.value === value)?.label ?? value;
}

/** Fields of the form that are not NEWS2 parameters. */
const NOT_PARAMETERS = new Set(['spo2Scale', 'pregnancy', 'statedAge']);

const num = (s: string) => (s.trim() === '' ? null : Number(s.trim()));

/** The observations as the API takes them (blank fields left out). */
export function toObservations(o: ObservationInputs): News2Observations {
  return {
    respirationRate: num(o.respirationRate),
    spo2: num(o.spo2),
    spo2Scale: o.spo2Scale === '2' ? 2 : 1,
    airOrOxygen: o.airOrOxygen === '' ? null : (o.airOrOxygen as 'air' | 'oxygen'),
    systolicBp: num(o.systolicBp),
    pulse: num(o.pulse),
    consciousness: o.consciousness === '' ? null : (o.consciousness as News2Observations['consciousness']),
    temperature: num(o.temperature),
  } as News2Observations;
}

export function hasObservations(o: ObservationInputs): boolean {
  return Object.entries(o).some(([k, v]) => !NOT_PARAMETERS.has(k) && v.trim() !== '');
}

/** The stated age as a whole number of years, or null when blank or not a plain number. */
function statedAgeOf(o: ObservationInputs): number | null {
  return /^\d{1,3}$/.test(o.statedAge.trim()) ? Number(o.statedAge.trim()) : null;
}

/** What the consultation record sends besides the observations: pregnancy, the age given at the call. */
export function patientFacts(
  o: ObservationInputs,
  identified: boolean,
): { pregnancy?: PregnancyAnswer; statedAgeYears?: number } {
  const age = identified ? null : statedAgeOf(o);
  return {
    ...(o.pregnancy === '' ? {} : { pregnancy: o.pregnancy as PregnancyAnswer }),
    ...(age === null ? {} : { statedAgeYears: age }),
  };
}

/** Why NEWS2 must not be used for this patient, as the form stands (the server decides the same). */
export function notApplicableFor(
  o: ObservationInputs,
  patient: { identified: boolean; ageYears: number | null },
): News2NotApplicable | null {
  const ageYears = patient.identified ? patient.ageYears : statedAgeOf(o);
  return news2NotApplicable({
    ageYears,
    pregnancy: o.pregnancy === '' ? undefined : (o.pregnancy as PregnancyAnswer),
  });
}

/**
 * The NEWS2 badge of the queue and the case: "NEWS2 7" only for a complete score; a partial one says
 * how many of the 7 parameters it has and never shows a total.
 */
export function news2BadgeText(
  news2: News2Summary | null,
  notApplicable: News2NotApplicableView | null | undefined,
): string | null {
  if (notApplicable)
    return notApplicable.reason === 'under_16' ? 'NEWS2 not used: under 16' : 'NEWS2 not used: pregnant';
  if (!news2) return null;
  if (news2.total !== null) return `NEWS2 ${news2.total}`;
  const band = news2.band ? `, already ${BAND_SHORT[news2.band] ?? news2.band}` : ' recorded';
  return `NEWS2 partial: ${news2.present} of ${news2.of}${band}`;
}

/** Scores as typed, with the core's own NEWS2 code; impossible values come back as field messages. */
export function liveNews2(o: ObservationInputs): {
  result: News2Result | null;
  errors: Record<string, string>;
} {
  try {
    return { result: scoreNews2(toObservations(o)), errors: {} };
  } catch (error) {
    const issues = (error as { issues?: { path: string; message: string }[] }).issues ?? [];
    const errors: Record<string, string> = {};
    for (const i of issues) {
      const key = i.path.replace(/^\.?/, '').split('.')[0] ?? '';
      errors[key] = i.message.charAt(0).toUpperCase() + i.message.slice(1) + '.';
    }
    return { result: null, errors };
  }
}

const BAND_SHORT: Record<string, string> = {
  low: 'low',
  low_medium: 'a single 3',
  medium: 'medium',
  high: 'high',
};

const BAND_WORDS: Record<string, string> = {
  low: 'Low clinical risk',
  low_medium: 'Low-medium clinical risk (a single parameter scored 3)',
  medium: 'Medium clinical risk',
  high: 'High clinical risk',
};
// Dark shades, so the light alert's coloured title stays at 4.5:1 or more on its tinted background.
const BAND_COLOR: Record<string, string> = {
  low: '#1e6b30',
  low_medium: '#8a5a00',
  medium: '#a34700',
  high: '#a51d1d',
};

// Dark enough for the title on the light alert's tinted background (4.5:1 or more).
const UNKNOWN_COLOR = '#3d3d3d';

const LABELS: Record<string, string> = {
  respirationRate: 'Respiration rate',
  spo2: 'SpO2',
  airOrOxygen: 'Air or oxygen',
  systolicBp: 'Systolic blood pressure',
  pulse: 'Pulse',
  consciousness: 'Consciousness',
  temperature: 'Temperature',
};

export function ObservationsFields({
  value,
  onChange,
  serverErrors,
  patient,
  draftWords = {},
}: {
  value: ObservationInputs;
  /** One field's new value: the caller applies it to the form as it is then (a functional update). */
  onChange: (key: keyof ObservationInputs, v: string) => void;
  serverErrors: Record<string, string | undefined>;
  /** Fields where unsaved notes brought back had other words than those typed: the notes' words. */
  draftWords?: Partial<Record<keyof ObservationInputs, string>>;
  /** Whether the patient is identified, and their age at the call from the date of birth. */
  patient: { identified: boolean; ageYears: number | null };
}) {
  const { result, errors } = liveNews2(value);
  const notApplicable = notApplicableFor(value, patient);
  const err = (k: keyof ObservationInputs) => errors[k] ?? serverErrors[`observations.${k}`];
  const said = (k: keyof ObservationInputs) =>
    draftWords[k] === undefined ? undefined : `Unsaved notes said: ${draftWords[k]}`;
  const field = (k: keyof ObservationInputs) => (
    <TextInput
      label={OBSERVATION_FIELDS[k].label}
      description={said(k)}
      inputMode="decimal"
      value={value[k]}
      onChange={(e) => onChange(k, e.currentTarget.value)}
      error={err(k)}
      autoComplete="off"
    />
  );
  return (
    <Paper withBorder p="md" component="fieldset" aria-labelledby="obs-heading">
      <Title order={3} size="h4" id="obs-heading" mb="xs">
        Observations
      </Title>
      <SimpleGrid cols={{ base: 1, sm: 2, md: 4 }}>
        {field('respirationRate')}
        {field('spo2')}
        <NativeSelect
          label={OBSERVATION_FIELDS.spo2Scale.label}
          description={said('spo2Scale')}
          data={OBSERVATION_FIELDS.spo2Scale.choices}
          value={value.spo2Scale}
          onChange={(e) => onChange('spo2Scale', e.currentTarget.value)}
        />
        <NativeSelect
          label={OBSERVATION_FIELDS.airOrOxygen.label}
          description={said('airOrOxygen')}
          data={OBSERVATION_FIELDS.airOrOxygen.choices}
          value={value.airOrOxygen}
          onChange={(e) => onChange('airOrOxygen', e.currentTarget.value)}
          error={err('airOrOxygen')}
        />
        {field('systolicBp')}
        {field('pulse')}
        <NativeSelect
          label={OBSERVATION_FIELDS.consciousness.label}
          description={said('consciousness')}
          data={OBSERVATION_FIELDS.consciousness.choices}
          value={value.consciousness}
          onChange={(e) => onChange('consciousness', e.currentTarget.value)}
          error={err('consciousness')}
        />
        {field('temperature')}
        <NativeSelect
          label={OBSERVATION_FIELDS.pregnancy.label}
          description={said('pregnancy')}
          data={OBSERVATION_FIELDS.pregnancy.choices}
          value={value.pregnancy}
          onChange={(e) => onChange('pregnancy', e.currentTarget.value)}
          error={serverErrors['pregnancy']}
        />
        {!patient.identified && (
          <TextInput
            label={OBSERVATION_FIELDS.statedAge.label}
            description={said('statedAge')}
            inputMode="numeric"
            value={value.statedAge}
            onChange={(e) => onChange('statedAge', e.currentTarget.value)}
            error={serverErrors['statedAgeYears']}
            autoComplete="off"
          />
        )}
      </SimpleGrid>
      <News2Score
        result={hasObservations(value) ? result : null}
        blocked={Object.keys(errors).length > 0}
        notApplicable={notApplicable}
      />
    </Paper>
  );
}

export function News2Score({
  result,
  blocked = false,
  notApplicable = null,
}: {
  result: News2Result | null;
  blocked?: boolean;
  notApplicable?: News2NotApplicable | null;
}) {
  return (
    <section aria-label="NEWS2 score" data-testid="news2">
      <div role="status" aria-live="polite">
        {notApplicable ? (
          <Alert mt="md" color="#5c2d91" variant="light" title="NEWS2 not used for this patient">
            <Text>{notApplicable.message}</Text>
          </Alert>
        ) : blocked ? (
          <Text mt="md">NEWS2: correct the values marked above to see the score.</Text>
        ) : result === null ? (
          <Text mt="md">NEWS2: enter observations to see the score.</Text>
        ) : (
          <Alert
            mt="md"
            color={result.band ? BAND_COLOR[result.band] : UNKNOWN_COLOR}
            variant="light"
            title={
              result.total !== null && result.band
                ? `NEWS2 ${result.total}: ${BAND_WORDS[result.band]}`
                : `NEWS2 partial: ${result.present} of ${result.of} parameters, no total${
                    result.band ? ` (already ${BAND_SHORT[result.band]})` : ' (risk not known)'
                  }`
            }
          >
            <Text>
              <strong>Response:</strong> {result.response}.
            </Text>
            <Text mt={4}>
              <strong>On the phone or video:</strong> {result.remoteAdvice}
            </Text>
            <Text mt={4}>
              <strong>Face to face:</strong> {result.faceToFaceAdvice}
            </Text>
            {!result.complete && (
              <Text mt={4}>
                Not yet scored: {result.missing.map((m) => LABELS[m] ?? m).join(', ')}. A partial score is not
                a total: do not read it as low.
              </Text>
            )}
          </Alert>
        )}
      </div>
    </section>
  );
}
