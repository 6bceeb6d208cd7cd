import { formatNhsNumber } from '@holdfast/core';
import { Alert, List, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { PageTitle } from '../../components/PageTitle.tsx';
import { PatientDetailsEditor, PatientHistory, type EditOutcome } from '../../components/PatientEditing.tsx';
import { useSession } from '../../lib/session.tsx';
import { SpecialNotesBanner } from '../../components/SpecialNotes.tsx';
import { api } from '../../lib/api.ts';
import { STATUS_LABELS } from '../../lib/queries.ts';
import { Link } from '../../lib/router.tsx';
import { londonDateTime } from '../../lib/time.ts';
import type { Encounter, PatientView } from '../../lib/types.ts';
import { formatDate } from '../adviser/PatientPanel.tsx';

/**
 * A patient's screen (`/patients/:patientId`): special notes first, then the record as the role may
 * see it (clinical notes for clinical staff), and the previous encounters with this provider at any
 * of its sites, newest first, each opening its case summary.
 */
export function PatientRecord({ patientId }: { patientId: string }) {
  const [acknowledged, setAcknowledged] = useState(false);
  const [editOutcome, setEditOutcome] = useState<EditOutcome>({ saved: null, problem: null });
  const { can } = useSession();
  const patient = useQuery({
    queryKey: ['patient', patientId],
    queryFn: () =>
      api<PatientView & { record: { clinicalNotes?: string } }>('GET', `/api/v1/patients/${patientId}`),
  });
  const encounters = useQuery({
    queryKey: ['encounters', patientId],
    queryFn: async () =>
      (await api<{ encounters: Encounter[] }>('GET', `/api/v1/patients/${patientId}/encounters`)).encounters,
  });
  if (patient.isPending) return <Text>Loading the patient…</Text>;
  if (patient.isError)
    return (
      <>
        <PageTitle>Patient not available</PageTitle>
        <Alert color="red">This record could not be opened: {patient.error.message}.</Alert>
      </>
    );
  const r = patient.data.record;
  return (
    <Stack maw={1100}>
      <PageTitle text="Patient">
        Patient: {r.givenName} {r.familyName.toUpperCase()}
      </PageTitle>
      <SpecialNotesBanner
        notes={r.specialNotes}
        acknowledged={acknowledged}
        onAcknowledge={() => setAcknowledged(true)}
      />
      {r.specialNotes.length === 0 && <Text>No special patient notes.</Text>}
      <Paper withBorder p="md" component="section" aria-label="Patient details" data-testid="patient-details">
        <Text>
          Born {formatDate(r.dateOfBirth)} · NHS number{' '}
          {r.nhsNumber ? formatNhsNumber(r.nhsNumber) : 'not known'}
          {r.postcode ? ` · ${r.postcode}` : ''}
        </Text>
        {r.address && <Text>Address: {r.address}</Text>}
        {r.phone && <Text>Phone: {r.phone}</Text>}
        {r.accessInstructions && <Text>Access to the home: {r.accessInstructions}</Text>}
        {r.interpreter && (
          <Text>
            Interpreter:{' '}
            {r.interpreter.required
              ? `needed${r.interpreter.language ? ` (${r.interpreter.language})` : ''}`
              : 'not needed'}
          </Text>
        )}
        {r.registeredPractice && (
          <Text>GP practice: {r.registeredPractice.name ?? r.registeredPractice.odsCode}</Text>
        )}
        {r.nominatedPharmacy && (
          <Text>Pharmacy: {r.nominatedPharmacy.name ?? r.nominatedPharmacy.odsCode}</Text>
        )}
        <Text component="div" data-testid="patient-allergies">
          <strong>Allergies:</strong>{' '}
          {r.allergies && r.allergies.length > 0 ? (
            <List>
              {r.allergies.map((a, i) => (
                <List.Item key={i}>
                  {a.substance}
                  {a.reaction ? ` (reaction: ${a.reaction})` : ''}
                </List.Item>
              ))}
            </List>
          ) : (
            'none recorded. Ask the caller; the GP record may hold more.'
          )}
        </Text>
        {r.clinicalNotes && (
          <Text style={{ whiteSpace: 'pre-wrap' }}>
            <strong>Clinical notes:</strong> {r.clinicalNotes}
          </Text>
        )}
      </Paper>
      {can('patients.edit') && (
        <PatientDetailsEditor
          key={patient.data.version}
          patient={patient.data}
          outcome={editOutcome}
          onOutcome={setEditOutcome}
        />
      )}
      <PatientHistory patientId={patientId} />
      <Paper withBorder p="md" component="section" aria-labelledby="encounters-heading">
        <Title order={2} size="h4" id="encounters-heading" mb="xs">
          Previous encounters with this provider
        </Title>
        {encounters.isError && (
          <Alert color="red">The encounters could not be read: {encounters.error.message}.</Alert>
        )}
        {encounters.data && encounters.data.length === 0 && <Text>No earlier cases.</Text>}
        {encounters.data && encounters.data.length > 0 && (
          <Table data-testid="encounters" striped>
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Call received</Table.Th>
                <Table.Th scope="col">Problem</Table.Th>
                <Table.Th scope="col">Site</Table.Th>
                <Table.Th scope="col">Disposition and outcome</Table.Th>
                <Table.Th scope="col">State</Table.Th>
                <Table.Th scope="col">Case</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {encounters.data.map((e) => (
                <Table.Tr key={e.caseId} data-case-id={e.caseId}>
                  <Table.Td>{londonDateTime(e.receivedAt)}</Table.Td>
                  <Table.Td>{e.presentingComplaint}</Table.Td>
                  <Table.Td>{e.siteName ?? 'Unknown site'}</Table.Td>
                  <Table.Td>
                    {e.disposition?.label ?? 'none'}
                    {e.news2 ? ` · NEWS2 ${e.news2.total}` : ''}
                    {e.escalated ? ' · escalated' : ''}
                  </Table.Td>
                  <Table.Td>{STATUS_LABELS[e.status] ?? e.status}</Table.Td>
                  <Table.Td>
                    <Link to={`/cases/${e.caseId}/summary`} aria-label={`Case ${e.reference} summary`}>
                      {e.reference}
                    </Link>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Paper>
    </Stack>
  );
}
