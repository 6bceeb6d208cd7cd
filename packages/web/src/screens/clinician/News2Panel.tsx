import { scoreNews2, type News2Observations, type News2Result } from '@holdfast/core';
import { Alert, Group, NativeSelect, Paper, SimpleGrid, Text, TextInput, Title } from '@mantine/core';

export interface ObservationInputs {
  respirationRate: string;
  spo2: string;
  spo2Scale: string;
  airOrOxygen: string;
  systolicBp: string;
  pulse: string;
  consciousness: string;
  temperature: string;
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
};

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
  return Object.entries(o).some(([k, v]) => k !== 'spo2Scale' && v.trim() !== '');
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
}: {
  value: ObservationInputs;
  onChange: (v: ObservationInputs) => void;
  serverErrors: Record<string, string | undefined>;
}) {
  const { result, errors } = liveNews2(value);
  const err = (k: keyof ObservationInputs) => errors[k] ?? serverErrors[`observations.${k}`];
  const field = (k: keyof ObservationInputs, label: string, unit: string) => (
    <TextInput
      label={`${label} (${unit})`}
      inputMode="decimal"
      value={value[k]}
      onChange={(e) => onChange({ ...value, [k]: e.currentTarget.value })}
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
        {field('respirationRate', 'Respiration rate', 'breaths per minute')}
        {field('spo2', 'SpO2', '%')}
        <NativeSelect
          label="SpO2 scale"
          data={[
            { value: '1', label: 'Scale 1 (default)' },
            { value: '2', label: 'Scale 2 (hypercapnic respiratory failure)' },
          ]}
          value={value.spo2Scale}
          onChange={(e) => onChange({ ...value, spo2Scale: e.currentTarget.value })}
        />
        <NativeSelect
          label="Air or oxygen"
          data={[
            { value: '', label: 'Not recorded' },
            { value: 'air', label: 'Air' },
            { value: 'oxygen', label: 'Supplemental oxygen' },
          ]}
          value={value.airOrOxygen}
          onChange={(e) => onChange({ ...value, airOrOxygen: e.currentTarget.value })}
          error={err('airOrOxygen')}
        />
        {field('systolicBp', 'Systolic blood pressure', 'mmHg')}
        {field('pulse', 'Pulse', 'beats per minute')}
        <NativeSelect
          label="Consciousness (ACVPU)"
          data={[
            { value: '', label: 'Not recorded' },
            { value: 'alert', label: 'Alert' },
            { value: 'new_confusion', label: 'New confusion' },
            { value: 'voice', label: 'Responds to voice' },
            { value: 'pain', label: 'Responds to pain' },
            { value: 'unresponsive', label: 'Unresponsive' },
          ]}
          value={value.consciousness}
          onChange={(e) => onChange({ ...value, consciousness: e.currentTarget.value })}
          error={err('consciousness')}
        />
        {field('temperature', 'Temperature', '°C')}
      </SimpleGrid>
      <News2Score result={hasObservations(value) ? result : null} blocked={Object.keys(errors).length > 0} />
    </Paper>
  );
}

export function News2Score({ result, blocked = false }: { result: News2Result | null; blocked?: boolean }) {
  return (
    <section aria-label="NEWS2 score" data-testid="news2">
      <div role="status" aria-live="polite">
        {blocked ? (
          <Text mt="md">NEWS2: correct the values marked above to see the score.</Text>
        ) : result === null ? (
          <Text mt="md">NEWS2: enter observations to see the score.</Text>
        ) : (
          <Alert
            mt="md"
            color={BAND_COLOR[result.band]}
            variant="light"
            title={`NEWS2 ${result.complete ? '' : 'so far '}${result.total}: ${BAND_WORDS[result.band]}`}
          >
            <Group gap="xs">
              <Text>
                <strong>Response:</strong> {result.response}. <strong>Monitoring:</strong>{' '}
                {result.monitoringFrequency}.
              </Text>
            </Group>
            {!result.complete && (
              <Text mt={4}>
                Not yet scored: {result.missing.map((m) => LABELS[m] ?? m).join(', ')}. The total is the
                lowest the full score could be.
              </Text>
            )}
          </Alert>
        )}
      </div>
    </section>
  );
}
