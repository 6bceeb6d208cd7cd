import { caseReference } from '@holdfast/core';
import { Alert, Button, Group, Paper, Radio, Stack, Table, Text, Textarea, Title } from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { anyTooLong, lengthFeedback } from '../../lib/limits.ts';
import { siteName, STATUS_LABELS, useSites } from '../../lib/queries.ts';
import { Link, navigate } from '../../lib/router.tsx';
import { londonDateTime, londonTime } from '../../lib/time.ts';

interface MyOpenCall {
  caseId: string;
  caseRef: string;
  siteId: string;
  status: string;
  receivedAt: string;
  lastActivityAt: string;
  callerName: string;
  presentingComplaint: string;
}

export function useMyOpenCalls() {
  return useQuery({
    queryKey: ['calls', 'mine'],
    queryFn: () => api<{ calls: MyOpenCall[] }>('GET', '/api/v1/calls/mine'),
    refetchOnMount: 'always',
  });
}

/**
 * The adviser's unfinished calls (opened by them, not yet confirmed or ended), oldest first, each
 * with Resume: a call left by Back, a closed tab or a failed load is one click away, never lost.
 */
export function MyOpenCalls({ headingLevel = 2 }: { headingLevel?: 1 | 2 }) {
  const calls = useMyOpenCalls();
  const list = calls.data?.calls ?? [];
  return (
    <Paper withBorder p="sm" component="section" aria-labelledby="my-open-calls-heading">
      <Title order={headingLevel} size="h4" id="my-open-calls-heading">
        My open calls
      </Title>
      {calls.isPending ? (
        <Text>Reading your open calls…</Text>
      ) : calls.isError ? (
        <Alert color="red">Your open calls could not be read: {calls.error.message}</Alert>
      ) : list.length === 0 ? (
        <Text data-testid="no-open-calls">You have no unfinished calls.</Text>
      ) : (
        <Table withTableBorder striped data-testid="my-open-calls">
          <Table.Caption>
            {list.length === 1 ? '1 call not finished' : `${list.length} calls not finished`}, oldest first
          </Table.Caption>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Received</Table.Th>
              <Table.Th scope="col">Caller and problem</Table.Th>
              <Table.Th scope="col">Where it stands</Table.Th>
              <Table.Th scope="col">
                <span className="visually-hidden">Action</span>
              </Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {list.map((c) => (
              <Table.Tr key={c.caseId}>
                <Table.Td>{londonTime(c.receivedAt)}</Table.Td>
                <Table.Td>
                  {c.callerName}: {c.presentingComplaint}
                </Table.Td>
                <Table.Td>{STATUS_LABELS[c.status] ?? c.status}</Table.Td>
                <Table.Td>
                  <Button
                    size="compact-sm"
                    onClick={() => navigate(`/cases/${c.caseId}`)}
                    aria-label={`Resume call ${c.caseRef} from ${c.callerName}`}
                  >
                    Resume
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Paper>
  );
}

/** The adviser's own screen for their open calls (reachable from the menu). */
export function MyOpenCallsScreen() {
  return (
    <Stack maw={960}>
      <PageTitle>My open calls</PageTitle>
      <Text>
        Calls you took that are not finished. Resume one to carry on, or end it with a reason from the call
        screen.
      </Text>
      <MyOpenCalls />
    </Stack>
  );
}

const END_REASONS: [string, string][] = [
  ['caller_hung_up', 'The caller hung up'],
  ['wrong_number', 'Wrong number'],
  ['transferred', 'Transferred to another service'],
  ['other', 'Other (say why)'],
];
const DETAILS_MAX = 300;

/**
 * Ending a call that will reach no confirmed disposition: the reason is recorded, nothing is acted
 * on, and the call leaves "calls with advisers".
 */
export function EndCall({ caseId }: { caseId: string }) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [details, setDetails] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const detailsLength = lengthFeedback(details, DETAILS_MAX);

  if (!open)
    return (
      <Button variant="default" color="red" onClick={() => setOpen(true)}>
        End call…
      </Button>
    );

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!reason) return problems.setField('reason', 'Choose why the call is ending.');
    if (reason === 'other' && !details.trim()) return problems.setField('details', 'Say why the call ended.');
    if (anyTooLong([details, DETAILS_MAX])) return;
    setBusy(true);
    try {
      await api('POST', `/api/v1/cases/${caseId}/end-call`, {
        reason,
        ...(details.trim() ? { details: details.trim() } : {}),
      });
      await queryClient.invalidateQueries({ queryKey: ['case', caseId] });
      await queryClient.invalidateQueries({ queryKey: ['calls', 'mine'] });
    } catch (error) {
      problems.fromError(error, ['reason', 'details']);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-label="End the call">
      <Stack gap="xs" maw={560}>
        <FormAlert message={problems.form} />
        <Radio.Group
          label="Why is the call ending?"
          description="Nothing will be arranged for this call, and no message is sent to the patient's GP."
          value={reason}
          onChange={(v) => {
            setReason(v);
            // Another reason: what was said about the last one no longer applies.
            problems.clear();
          }}
          error={problems.field('reason')}
        >
          <Stack gap={4} mt={4}>
            {END_REASONS.map(([value, label]) => (
              <Radio key={value} value={value} label={label} />
            ))}
          </Stack>
        </Radio.Group>
        <Textarea
          label={reason === 'other' ? 'Why the call ended' : 'Anything to add (optional)'}
          description={detailsLength.description}
          value={details}
          onChange={(e) => setDetails(e.currentTarget.value)}
          error={problems.field('details') ?? detailsLength.error}
          autosize
          minRows={1}
        />
        <Group>
          <Button type="submit" color="red.8" loading={busy}>
            End the call
          </Button>
          <Button variant="default" onClick={() => setOpen(false)}>
            Keep the call open
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

const NOTE_MAX = 1000;

/** Free-text notes on the case: part of its record, each shown with who wrote it and when. */
export function CaseNotes({
  caseId,
  notes,
}: {
  caseId: string;
  notes: { at: string; by: string | null; what: string }[];
}) {
  const queryClient = useQueryClient();
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const length = lengthFeedback(text, NOTE_MAX);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!text.trim()) return problems.setField('text', 'Write the note first.');
    if (anyTooLong([text, NOTE_MAX])) return;
    setBusy(true);
    try {
      await api('POST', `/api/v1/cases/${caseId}/notes`, { text: text.trim() });
      setText('');
      await queryClient.invalidateQueries({ queryKey: ['case', caseId] });
    } catch (error) {
      problems.fromError(error, ['text']);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="notes-heading">
      <Title order={2} size="h4" id="notes-heading" mb="xs">
        Notes
      </Title>
      {notes.length > 0 && (
        <Stack gap={4} mb="xs" data-testid="case-notes">
          {notes.map((n, i) => (
            <Text key={i} size="sm">
              {londonDateTime(n.at)}
              {n.by ? `, ${n.by}` : ''}: {n.what.replace(/^Note: /, '')}
            </Text>
          ))}
        </Stack>
      )}
      <form onSubmit={(e) => void submit(e)} noValidate aria-label="Add a note">
        <Stack gap="xs" maw={640}>
          <FormAlert message={problems.form} />
          <Textarea
            label="Note on this call"
            description={length.description}
            value={text}
            onChange={(e) => setText(e.currentTarget.value)}
            error={problems.field('text') ?? length.error}
            autosize
            minRows={2}
          />
          <Group>
            <Button type="submit" variant="light" loading={busy}>
              Add note
            </Button>
          </Group>
        </Stack>
      </form>
    </section>
  );
}

const REASON_MAX = 300;

/**
 * Correcting a disposition already confirmed, while the case waits in the CAS queue: the case goes
 * back to triage with the reason recorded (a re-triage on the record, never a silent change).
 */
export function CorrectDisposition({ caseId }: { caseId: string }) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const length = lengthFeedback(reason, REASON_MAX);
  if (!open)
    return (
      <Button variant="default" onClick={() => setOpen(true)}>
        Correct this disposition…
      </Button>
    );
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!reason.trim()) return problems.setField('reason', 'Say what was wrong.');
    if (anyTooLong([reason, REASON_MAX])) return;
    setBusy(true);
    try {
      await api('POST', `/api/v1/cases/${caseId}/disposition/correct`, { reason: reason.trim() });
      await queryClient.invalidateQueries({ queryKey: ['case', caseId] });
      await queryClient.invalidateQueries({ queryKey: ['triage', caseId] });
    } catch (error) {
      problems.fromError(error, ['reason']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-label="Correct the disposition">
      <Stack gap="xs" maw={560}>
        <FormAlert message={problems.form} />
        <Text size="sm">
          The case leaves the CAS queue and goes back to triage; the correction and your reason are recorded.
        </Text>
        <Textarea
          label="What was wrong"
          description={length.description}
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          error={problems.field('reason') ?? length.error}
          autosize
          minRows={1}
        />
        <Group>
          <Button type="submit" loading={busy}>
            Re-triage this call
          </Button>
          <Button variant="default" onClick={() => setOpen(false)}>
            Keep the disposition
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

interface CallOpenTooLong {
  caseId: string;
  caseRef: string;
  siteId: string;
  status: string;
  receivedAt: string;
  lastActivityAt: string;
  minutesSinceActivity: number;
  adviserName: string | null;
}

/** The shift manager's list behind the dashboard figure "Calls open too long". */
export function CallsOpenTooLongScreen() {
  const sites = useSites();
  const list = useQuery({
    queryKey: ['calls', 'open-too-long'],
    queryFn: () =>
      api<{ thresholdMinutes: number; calls: CallOpenTooLong[] }>('GET', '/api/v1/calls/open-too-long'),
    refetchInterval: 30_000,
  });
  return (
    <Stack maw={1100}>
      <PageTitle>Calls open too long</PageTitle>
      {list.isPending ? (
        <Text>Reading the calls…</Text>
      ) : list.isError ? (
        <Alert color="red">The calls could not be read: {list.error.message}</Alert>
      ) : (
        <>
          <Text>
            Calls still with advisers and without activity for {list.data.thresholdMinutes} minutes or more.
            Ask the adviser to resume or end each one.
          </Text>
          {list.data.calls.length === 0 ? (
            <Text data-testid="no-calls-open-too-long">None at the moment.</Text>
          ) : (
            <Table withTableBorder striped data-testid="calls-open-too-long">
              <Table.Caption>{list.data.calls.length} calls, longest without activity first</Table.Caption>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th scope="col">Case ref</Table.Th>
                  <Table.Th scope="col">Adviser</Table.Th>
                  <Table.Th scope="col">Site</Table.Th>
                  <Table.Th scope="col">Where it stands</Table.Th>
                  <Table.Th scope="col">Received</Table.Th>
                  <Table.Th scope="col">No activity for</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.data.calls.map((c) => (
                  <Table.Tr key={c.caseId}>
                    <Table.Td>
                      <Link to={`/cases/${c.caseId}/summary`}>{caseReference(c.caseId)}</Link>
                    </Table.Td>
                    <Table.Td>{c.adviserName ?? 'another system'}</Table.Td>
                    <Table.Td>{siteName(sites.data, c.siteId)}</Table.Td>
                    <Table.Td>{STATUS_LABELS[c.status] ?? c.status}</Table.Td>
                    <Table.Td>{londonDateTime(c.receivedAt)}</Table.Td>
                    <Table.Td>{c.minutesSinceActivity} minutes</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </>
      )}
    </Stack>
  );
}
