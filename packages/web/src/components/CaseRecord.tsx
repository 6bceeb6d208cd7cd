import { List, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { useReferral } from '../lib/directory.ts';
import { londonDateTime } from '../lib/time.ts';
import { bookingWords, referralWords } from './ReferralStatus.tsx';
import type { CaseRecord as CaseRecordData, ConsultationRecord } from '../lib/types.ts';

const OBSERVATION_LABELS: Record<string, string> = {
  respirationRate: 'Respiration rate (breaths per minute)',
  spo2: 'SpO2 (%)',
  spo2Scale: 'SpO2 scale',
  airOrOxygen: 'Air or oxygen',
  systolicBp: 'Systolic blood pressure (mmHg)',
  pulse: 'Pulse (beats per minute)',
  consciousness: 'Consciousness (ACVPU)',
  temperature: 'Temperature (°C)',
};

const NOTE_FIELDS: [keyof ConsultationRecord, string][] = [
  ['history', 'History'],
  ['examination', 'Examination'],
  ['assessment', 'Assessment'],
  ['plan', 'Plan'],
  ['safetyNetting', 'Safety-netting advice'],
];

/**
 * The whole record of a case as it was recorded, for reading back at any time (also after it is
 * closed): the triage path, each consultation with its notes and observations, and what happened in
 * order with who did it. Shown on the case screens and the printable summary.
 */
export function CaseRecord({ record, caseId }: { record: CaseRecordData; caseId?: string }) {
  return (
    <Stack data-testid="case-record" gap="sm">
      {caseId && <ReferralRecord caseId={caseId} />}
      <Paper withBorder p="md" component="section" aria-labelledby="record-consultations">
        <Title order={2} size="h4" id="record-consultations" mb="xs">
          Consultations
        </Title>
        {record.consultations.length === 0 && <Text>No consultation has been recorded on this case.</Text>}
        {record.consultations.map((c, i) => (
          <Consultation key={`${c.recordedAt}-${i}`} c={c} />
        ))}
      </Paper>
      <Paper withBorder p="md" component="section" aria-labelledby="record-triage">
        <Title order={2} size="h4" id="record-triage" mb="xs">
          Triage questions and answers
        </Title>
        {record.triagePath.length === 0 ? (
          <Text>No triage was recorded on this case.</Text>
        ) : (
          <List type="ordered" data-testid="record-triage-path">
            {record.triagePath.map((step, i) => (
              <List.Item key={i}>
                {step.question} — <strong>{step.answer}</strong>
              </List.Item>
            ))}
          </List>
        )}
      </Paper>
      <Paper withBorder p="md" component="section" aria-labelledby="record-timeline">
        <Title order={2} size="h4" id="record-timeline" mb="xs">
          What happened
        </Title>
        <Table data-testid="record-timeline" striped>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">When (UK time)</Table.Th>
              <Table.Th scope="col">What</Table.Th>
              <Table.Th scope="col">By</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {record.timeline.map((e, i) => (
              <Table.Tr key={i} data-type={e.type}>
                <Table.Td>{londonDateTime(e.at)}</Table.Td>
                <Table.Td>{e.what}</Table.Td>
                <Table.Td>
                  {e.enteredAt
                    ? `${e.by ?? 'System'}, entered from paper ${londonDateTime(e.enteredAt)}`
                    : (e.by ?? 'System')}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Paper>
    </Stack>
  );
}

function Consultation({ c }: { c: ConsultationRecord }) {
  return (
    <article className="record-consultation" data-testid="record-consultation">
      <Text fw={700}>
        {londonDateTime(c.recordedAt)} · {c.clinicianName ?? 'a clinician'}
        {c.news2 ? ` · NEWS2 ${c.news2.total}${c.news2.complete ? '' : ' (incomplete)'}` : ''}
      </Text>
      {c.withheld ? (
        <Text>The notes of this consultation are shown to clinical staff only.</Text>
      ) : (
        <dl className="record-fields">
          {NOTE_FIELDS.filter(([key]) => c[key]).map(([key, label]) => (
            <div key={key}>
              <dt>{label}</dt>
              <dd>{String(c[key])}</dd>
            </div>
          ))}
          {c.observations && (
            <div>
              <dt>Observations</dt>
              <dd>
                {Object.entries(c.observations)
                  .filter(([, v]) => v !== null && v !== undefined)
                  .map(([k, v]) => `${OBSERVATION_LABELS[k] ?? k}: ${String(v)}`)
                  .join(' · ')}
              </dd>
            </div>
          )}
        </dl>
      )}
    </article>
  );
}

/** The case's referral (issue 15) as the record keeps it: the service, what was offered, the answer. */
function ReferralRecord({ caseId }: { caseId: string }) {
  const referral = useReferral(caseId);
  const r = referral.data;
  if (referral.isError)
    return <Text>Where this case's referral stands could not be read: {referral.error.message}.</Text>;
  if (!r || r.state === 'none') return null;
  const booking = bookingWords(r);
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="record-referral">
      <Title order={2} size="h4" id="record-referral" mb="xs">
        Referral
      </Title>
      <dl className="record-fields" data-testid="record-referral" data-state={r.state}>
        <div>
          <dt>Where it stands</dt>
          <dd>{referralWords(r)}</dd>
        </div>
        {r.chosenAtMs !== undefined && (
          <div>
            <dt>Chosen</dt>
            <dd>
              {londonDateTime(r.chosenAtMs)}, from {r.offered?.length ?? 0} services offered
            </dd>
          </div>
        )}
        {booking && (
          <div>
            <dt>Booking</dt>
            <dd>{booking}</dd>
          </div>
        )}
      </dl>
    </Paper>
  );
}
