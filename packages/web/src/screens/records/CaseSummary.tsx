import { caseReference } from '@holdfast/core';
import { Alert, Button, Group, Paper, Stack, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { CaseMessages } from '../../components/CaseMessages.tsx';
import { CaseRecord } from '../../components/CaseRecord.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api } from '../../lib/api.ts';
import { siteName, STATUS_LABELS, useCase, useSites } from '../../lib/queries.ts';
import { Link } from '../../lib/router.tsx';
import { useSession } from '../../lib/session.tsx';
import { londonDateTime } from '../../lib/time.ts';
import type { PatientView } from '../../lib/types.ts';
import { formatDate } from '../adviser/PatientPanel.tsx';

/**
 * A case summary to read or print (`/cases/:caseId/summary`): the call, the patient, the disposition,
 * the whole record and the messages sent. The print stylesheet leaves out menus and buttons.
 */
export function CaseSummary({ caseId }: { caseId: string }) {
  const detail = useCase(caseId);
  const sites = useSites();
  const session = useSession();
  const c = detail.data;
  const patient = useQuery({
    queryKey: ['patient', c?.patientId],
    queryFn: () => api<PatientView>('GET', `/api/v1/patients/${c!.patientId}`),
    enabled: !!c?.patientId,
  });
  if (detail.isPending) return <Text>Loading the case…</Text>;
  if (detail.isError || !c)
    return (
      <>
        <PageTitle>Case not available</PageTitle>
        <Alert color="red">This case could not be opened: {detail.error?.message ?? 'unknown error'}.</Alert>
      </>
    );
  const p = patient.data?.record;
  return (
    <Stack maw={1000}>
      <PageTitle text="Case summary">Case summary: {c.presentingComplaint}</PageTitle>
      <Group className="no-print">
        <Button onClick={() => window.print()}>Print this summary</Button>
        {c.patientId && session.can('patients.read') && (
          <Link to={`/patients/${c.patientId}`}>Patient record and previous encounters</Link>
        )}
      </Group>
      <Paper withBorder p="md" component="section" aria-label="Call and patient" data-testid="summary-call">
        <Text fw={700}>
          Case ref {caseReference(c.caseId)} · {STATUS_LABELS[c.status] ?? c.status}
        </Text>
        <Text>
          Received {londonDateTime(c.receivedAt)} at {siteName(sites.data, c.siteId)} · patient was at{' '}
          {c.location}
        </Text>
        <Text>
          Caller: {c.caller.name} ({c.caller.relationship}), call-back number {c.caller.callbackNumber}
        </Text>
        <Text>
          Patient:{' '}
          {p
            ? `${p.givenName} ${p.familyName.toUpperCase()}, born ${formatDate(p.dateOfBirth)}${
                p.nhsNumber ? `, NHS number ${p.nhsNumber}` : ''
              }`
            : c.patientId
              ? 'identified (record not shown to your role)'
              : 'not identified'}
        </Text>
        <Text>
          Disposition: {c.disposition?.label ?? 'none'}
          {c.disposition?.dxCode ? ` (${c.disposition.dxCode})` : ''}
          {c.disposition?.notice ? ` — ${c.disposition.notice}` : ''}
        </Text>
        {c.escalated && <Text fw={700}>Escalated: call-backs failed, a welfare check was needed.</Text>}
      </Paper>
      {c.record && <CaseRecord record={c.record} caseId={caseId} />}
      <CaseMessages caseId={caseId} caseStatus={c.status} />
    </Stack>
  );
}
