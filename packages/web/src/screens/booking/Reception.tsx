import {
  Alert,
  Button,
  Group,
  NativeSelect,
  Paper,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { TimingBadge } from '../../components/Timing.tsx';
import { api, ApiError } from '../../lib/api.ts';
import {
  APPOINTMENT_KIND_WORDS,
  APPOINTMENT_STATE_WORDS,
  receptionAction,
  slotTime,
  ukDate,
  useCentres,
  useReception,
  waitingState,
  type ReceptionRow,
} from '../../lib/booking.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useNow } from '../../lib/live.ts';
import { navigate } from '../../lib/router.tsx';
import { useSession } from '../../lib/session.tsx';
import { londonTime } from '../../lib/time.ts';

/**
 * Reception at a treatment centre (C6): the day's appointments of one centre with arrival, waiting
 * time coloured as the CAS queue colours its deadlines (with words and a sign, never colour alone),
 * seen-by and did-not-attend; walk-ins open a case at the desk. The list carries no clinical notes
 * (the server leaves them out). A clinician opens an arrived patient's case into the consultation.
 */
export function Reception() {
  const centres = useCentres();
  const { can } = useSession();
  const [centreId, setCentreId] = useState('');
  const [date, setDate] = useState(() => ukDate(Date.now()));
  const [walkIn, setWalkIn] = useState(false);
  useEffect(() => {
    if (!centreId && centres.data?.[0]) setCentreId(centres.data[0].centreId);
  }, [centres.data, centreId]);
  const list = useReception(centreId || null, date);
  const centre = centres.data?.find((c) => c.centreId === centreId);
  const rows = [...(list.data?.appointments ?? [])].sort((a, b) => a.startMs - b.startMs);
  return (
    <Stack maw={1300}>
      <PageTitle>Reception</PageTitle>
      <Paper
        withBorder
        p="sm"
        component="form"
        aria-label="Centre and day"
        onSubmit={(e: FormEvent) => e.preventDefault()}
      >
        <Group align="flex-end" wrap="wrap">
          <NativeSelect
            label="Treatment centre"
            data={
              centres.data?.length
                ? centres.data.map((c) => ({ value: c.centreId, label: c.name }))
                : [
                    {
                      value: '',
                      label: centres.isPending ? 'Reading the centres…' : 'No treatment centre set up',
                    },
                  ]
            }
            value={centreId}
            onChange={(e) => setCentreId(e.currentTarget.value)}
          />
          <TextInput label="Day" type="date" value={date} onChange={(e) => setDate(e.currentTarget.value)} />
          {centre && (
            <Button variant="light" onClick={() => setWalkIn(true)} disabled={walkIn}>
              Walk-in patient…
            </Button>
          )}
        </Group>
      </Paper>
      {centres.isError && <Alert color="red">The centres could not be read: {centres.error.message}</Alert>}
      {walkIn && centre && <WalkInForm centreId={centre.centreId} onDone={() => setWalkIn(false)} />}
      {list.isError && <Alert color="red">The day’s list could not be read: {list.error.message}</Alert>}
      {centre && list.data && (
        <section aria-labelledby="reception-list-heading">
          <Title order={2} size="h4" id="reception-list-heading" mb="xs">
            {centre.name}: {rows.length} {rows.length === 1 ? 'appointment' : 'appointments'} on {date}
          </Title>
          {rows.length === 0 ? (
            <Text data-testid="reception-empty">No appointments on this day.</Text>
          ) : (
            <ReceptionTable rows={rows} canOpen={can('queue.work')} />
          )}
        </section>
      )}
    </Stack>
  );
}

function ReceptionTable({ rows, canOpen }: { rows: ReceptionRow[]; canOpen: boolean }) {
  const now = useNow(15_000);
  return (
    <Table data-testid="reception-list" withRowBorders striped={false}>
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Time</Table.Th>
          <Table.Th scope="col">Patient</Table.Th>
          <Table.Th scope="col">State</Table.Th>
          <Table.Th scope="col">Arrived</Table.Th>
          <Table.Th scope="col">Waiting</Table.Th>
          <Table.Th scope="col">Seen by</Table.Th>
          <Table.Th scope="col">Actions</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rows.map((r) => (
          <ReceptionListRow key={r.bookingId} row={r} nowMs={now} canOpen={canOpen} />
        ))}
      </Table.Tbody>
    </Table>
  );
}

function ReceptionListRow({
  row: r,
  nowMs,
  canOpen,
}: {
  row: ReceptionRow;
  nowMs: number;
  canOpen: boolean;
}) {
  const queryClient = useQueryClient();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const waiting = waitingState(r, nowMs);
  const who = `${r.patientName}, ${r.walkIn ? 'walk-in' : slotTime(r.startLocal)}`;
  const act = async (action: 'arrived' | 'did-not-attend' | 'seen') => {
    setProblem(null);
    setBusy(true);
    try {
      await receptionAction(r.bookingId, action);
    } catch (error) {
      setProblem(error instanceof ApiError ? error.plain() : 'Not recorded: try again.');
    } finally {
      await queryClient.invalidateQueries({ queryKey: ['reception'] });
      setBusy(false);
    }
  };
  return (
    <Table.Tr data-booking-id={r.bookingId} data-state={r.state} data-waiting={waiting?.timing ?? 'none'}>
      <Table.Td>
        {r.walkIn ? 'Walk-in' : slotTime(r.startLocal)}
        <Text size="xs">{APPOINTMENT_KIND_WORDS[r.kind] ?? r.kind}</Text>
      </Table.Td>
      <Table.Th scope="row">{r.patientName}</Table.Th>
      <Table.Td>{APPOINTMENT_STATE_WORDS[r.state]}</Table.Td>
      <Table.Td>{r.arrivedAtMs !== null ? londonTime(r.arrivedAtMs) : '—'}</Table.Td>
      <Table.Td data-testid="waiting">
        {waiting ? (
          <>
            <TimingBadge timing={waiting.timing} remainingSeconds={waiting.remainingSeconds} compact />
            <Text size="xs">waiting {waiting.waitedMinutes} min</Text>
          </>
        ) : (
          '—'
        )}
      </Table.Td>
      <Table.Td>{r.seenByName ?? '—'}</Table.Td>
      <Table.Td>
        <Group gap={4} wrap="wrap">
          {r.state === 'booked' && (
            <>
              <Button
                size="compact-sm"
                loading={busy}
                aria-label={`Arrived: ${who}`}
                onClick={() => void act('arrived')}
              >
                Arrived
              </Button>
              <Button
                size="compact-sm"
                variant="default"
                loading={busy}
                aria-label={`Did not attend: ${who}`}
                onClick={() => void act('did-not-attend')}
              >
                Did not attend
              </Button>
            </>
          )}
          {(r.state === 'arrived' || r.state === 'seen') && canOpen && (
            <Button
              size="compact-sm"
              aria-label={`Open the case: ${who}`}
              onClick={() => navigate(`/queue/${r.caseId}`)}
            >
              Open the case
            </Button>
          )}
          {r.state === 'arrived' && (
            <Button
              size="compact-sm"
              variant="default"
              loading={busy}
              aria-label={`Seen: ${who}`}
              onClick={() => void act('seen')}
            >
              Seen
            </Button>
          )}
        </Group>
        {problem && (
          <Text size="sm" c="#a51d1d" role="alert">
            {problem}
          </Text>
        )}
      </Table.Td>
    </Table.Tr>
  );
}

/** A patient at the desk without an appointment: a case opened here, arrived and in the clinicians' queue. */
function WalkInForm({ centreId, onDone }: { centreId: string; onDone: () => void }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const [phone, setPhone] = useState('');
  const [complaint, setComplaint] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setBusy(true);
    try {
      await api('POST', `/api/v1/centres/${centreId}/walk-ins`, {
        patientName: name.trim(),
        callbackNumber: phone.trim(),
        presentingComplaint: complaint.trim(),
      });
      await queryClient.invalidateQueries({ queryKey: ['reception'] });
      onDone();
    } catch (error) {
      problems.fromError(error, ['patientName', 'callbackNumber', 'presentingComplaint']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Paper
      withBorder
      p="md"
      component="form"
      aria-labelledby="walk-in-heading"
      noValidate
      onSubmit={(e: FormEvent) => void submit(e)}
    >
      <Title order={2} size="h4" id="walk-in-heading" mb="xs">
        Walk-in patient
      </Title>
      <FormAlert message={problems.form} />
      <Group align="flex-start" grow wrap="wrap">
        <TextInput
          label="Patient's name"
          value={name}
          onChange={(e) => setName(e.currentTarget.value)}
          error={problems.field('patientName')}
        />
        <TextInput
          label="Phone number"
          value={phone}
          onChange={(e) => setPhone(e.currentTarget.value)}
          error={problems.field('callbackNumber')}
        />
        <TextInput
          label="Why have they come?"
          value={complaint}
          onChange={(e) => setComplaint(e.currentTarget.value)}
          error={problems.field('presentingComplaint')}
        />
      </Group>
      <Group mt="sm">
        <Button type="submit" loading={busy}>
          Open a case and mark arrived
        </Button>
        <Button variant="default" onClick={onDone}>
          Close without saving
        </Button>
      </Group>
    </Paper>
  );
}
