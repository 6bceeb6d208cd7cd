import { ROLES, ROTA_LOCATION_KINDS, ROTA_LOCATION_LABELS, type Role } from '@holdfast/core';
import { ImportProblems } from '../../components/ImportProblems.tsx';
import { addDays } from '@holdfast/core/directory/opening-times';
import {
  Alert,
  Button,
  Group,
  NativeSelect,
  Paper,
  Stack,
  Table,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useRef, useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { ApiError } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useSites } from '../../lib/queries.ts';
import {
  cancelShift,
  importProblems,
  importRota,
  locationWords,
  planShift,
  roleWords,
  shiftTimes,
  ukDay,
  useCars,
  useGaps,
  useRotaNow,
  useShifts,
  useStaff,
  type ImportProblem,
  type RotaLocationKind,
  type ShiftView,
} from '../../lib/rota.ts';
import { useSession } from '../../lib/session.tsx';
import { londonWhen } from '../../lib/time.ts';

/**
 * The rota (C12; `/rota`, rota.read; changes with rota.manage): who is on duty now and who comes on
 * next, the gaps against the minimum staffing (for whoever manages the rota, at the top and in
 * colour and words), the shifts of a UK day, and for managers a form to enter a shift and an import
 * of a rota file that is refused whole with its problems listed by line.
 */
export function Rota() {
  const session = useSession();
  const manage = session.can('rota.manage');
  const sites = useSites();
  const cars = useCars();
  const names = { sites: sites.data ?? [], cars: cars.data ?? [] };
  const queryClient = useQueryClient();
  const changed = () => queryClient.invalidateQueries({ queryKey: ['rota'] });
  const [day, setDay] = useState(() => ukDay(Date.now()));

  return (
    <Stack gap="md">
      <PageTitle>Rota</PageTitle>
      {manage && <Gaps names={names} />}
      <OnDuty names={names} />
      <DayShifts day={day} setDay={setDay} names={names} manage={manage} onChanged={changed} />
      {manage && <EnterShift day={day} names={names} onChanged={changed} />}
      {manage && <ImportRota onChanged={changed} />}
      <Text size="sm" c="dimmed">
        Times are UK time. Only clinicians on duty are offered CAS work at a site whose rota covers now, and a
        car is offered for dispatch only while both its driver and its clinician are on shift.
      </Text>
    </Stack>
  );
}

type Names = Parameters<typeof locationWords>[1];

function Gaps({ names }: { names: Names }) {
  const gaps = useGaps(true);
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="gaps-heading" data-testid="rota-gaps">
      <Title order={2} size="h4" id="gaps-heading" mb="xs">
        Gaps against minimum staffing (next 24 hours)
      </Title>
      {gaps.isPending && <Text>Loading…</Text>}
      {gaps.isError && <Text role="alert">The gaps could not be read: {gaps.error.message}</Text>}
      {gaps.data && gaps.data.length === 0 && (
        <Text data-testid="no-gaps">✓ No gaps: every minimum is met for the next 24 hours.</Text>
      )}
      {gaps.data && gaps.data.length > 0 && (
        <Alert color="#8a4b00" variant="light" role="alert" title={`! ${gaps.data.length} gaps in the rota`}>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Where</Table.Th>
                <Table.Th scope="col">Role</Table.Th>
                <Table.Th scope="col">From</Table.Th>
                <Table.Th scope="col">To</Table.Th>
                <Table.Th scope="col">On duty / minimum</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {gaps.data.map((g, i) => (
                <Table.Tr
                  key={i}
                  data-testid="rota-gap"
                  data-role={g.role}
                  data-location={`${g.location.kind}:${g.location.id ?? ''}`}
                >
                  <Table.Td>{locationWords(g.location, names)}</Table.Td>
                  <Table.Td>{roleWords(g.role)}</Table.Td>
                  <Table.Td>{londonWhen(g.fromMs)}</Table.Td>
                  <Table.Td>{londonWhen(g.toMs)}</Table.Td>
                  <Table.Td>
                    {g.onDuty} of {g.minimum}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Alert>
      )}
    </Paper>
  );
}

function OnDuty({ names }: { names: Names }) {
  const now = useRotaNow();
  const table = (shifts: ShiftView[], testId: string, when: 'until' | 'from') => (
    <Table data-testid={testId}>
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Who</Table.Th>
          <Table.Th scope="col">Role</Table.Th>
          <Table.Th scope="col">Where</Table.Th>
          <Table.Th scope="col">{when === 'until' ? 'Until' : 'From'}</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {shifts.map((s) => (
          <Table.Tr key={s.shiftId} data-shift-id={s.shiftId}>
            <Table.Th scope="row">{s.displayName ?? s.userName}</Table.Th>
            <Table.Td>{roleWords(s.role)}</Table.Td>
            <Table.Td>{locationWords(s.location, names)}</Table.Td>
            <Table.Td>{londonWhen(when === 'until' ? s.endMs : s.startMs)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="on-duty-heading">
      <Title order={2} size="h4" id="on-duty-heading" mb="xs">
        On duty now
      </Title>
      {now.isPending && <Text>Loading…</Text>}
      {now.isError && <Text role="alert">Who is on duty could not be read: {now.error.message}</Text>}
      {now.data &&
        (now.data.onDuty.length ? (
          table(now.data.onDuty, 'on-duty-now', 'until')
        ) : (
          <Text>Nobody is on the rota now.</Text>
        ))}
      <Title order={2} size="h4" mt="md" mb="xs">
        Next on duty
      </Title>
      {now.data &&
        (now.data.next.length ? (
          table(now.data.next, 'on-duty-next', 'from')
        ) : (
          <Text>Nobody else is on the rota yet.</Text>
        ))}
    </Paper>
  );
}

function DayShifts({
  day,
  setDay,
  names,
  manage,
  onChanged,
}: {
  day: string;
  setDay: (d: string) => void;
  names: Names;
  manage: boolean;
  onChanged: () => Promise<unknown>;
}) {
  const shifts = useShifts(day);
  const [cancelling, setCancelling] = useState<string | null>(null);
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="day-heading">
      <Group justify="space-between" align="flex-end" mb="xs">
        <Title order={2} size="h4" id="day-heading">
          Shifts on {londonWhen(Date.parse(`${day}T12:00:00Z`), 0).replace(/ \d\d:\d\d.*$/, '')}
        </Title>
        <Group gap="xs" align="flex-end">
          <Button variant="default" size="compact-sm" onClick={() => setDay(addDays(day, -1))}>
            Previous day
          </Button>
          <TextInput
            size="xs"
            type="date"
            label="Day"
            value={day}
            onChange={(e) => e.currentTarget.value && setDay(e.currentTarget.value)}
          />
          <Button variant="default" size="compact-sm" onClick={() => setDay(addDays(day, 1))}>
            Next day
          </Button>
        </Group>
      </Group>
      {shifts.isPending && <Text>Loading…</Text>}
      {shifts.isError && <Text role="alert">The shifts could not be read: {shifts.error.message}</Text>}
      {shifts.data && shifts.data.length === 0 && <Text>No shifts on this day.</Text>}
      {shifts.data && shifts.data.length > 0 && (
        <Table data-testid="rota-shifts">
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Who</Table.Th>
              <Table.Th scope="col">Role</Table.Th>
              <Table.Th scope="col">Where</Table.Th>
              <Table.Th scope="col">From</Table.Th>
              <Table.Th scope="col">To</Table.Th>
              {manage && <Table.Th scope="col">Change</Table.Th>}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {shifts.data.map((s) => {
              const who = s.displayName ?? s.userName;
              return (
                <Table.Tr key={s.shiftId} data-shift-id={s.shiftId} data-role={s.role}>
                  <Table.Th scope="row">{who}</Table.Th>
                  <Table.Td>{roleWords(s.role)}</Table.Td>
                  <Table.Td>{locationWords(s.location, names)}</Table.Td>
                  <Table.Td>{londonWhen(s.startMs, Date.parse(`${day}T12:00:00Z`))}</Table.Td>
                  <Table.Td>{londonWhen(s.endMs, Date.parse(`${day}T12:00:00Z`))}</Table.Td>
                  {manage && (
                    <Table.Td>
                      {cancelling === s.shiftId ? (
                        <CancelShift
                          shift={s}
                          onDone={async () => {
                            setCancelling(null);
                            await onChanged();
                          }}
                          onBack={() => setCancelling(null)}
                        />
                      ) : (
                        <Button
                          size="compact-xs"
                          variant="default"
                          onClick={() => setCancelling(s.shiftId)}
                          aria-label={`Cancel shift: ${who}, ${londonWhen(s.startMs)}`}
                        >
                          Cancel shift…
                        </Button>
                      )}
                    </Table.Td>
                  )}
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
    </Paper>
  );
}

function CancelShift({
  shift,
  onDone,
  onBack,
}: {
  shift: ShiftView;
  onDone: () => Promise<void>;
  onBack: () => void;
}) {
  const problems = useFormProblems();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    problems.clear();
    setBusy(true);
    try {
      await cancelShift(shift.shiftId, reason);
      await onDone();
    } catch (error) {
      problems.fromError(error, ['reason']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-label="Cancel the shift">
      <FormAlert message={problems.form} />
      <TextInput
        size="xs"
        label="Why is the shift cancelled?"
        value={reason}
        onChange={(e) => setReason(e.currentTarget.value)}
        error={problems.field('reason')}
      />
      <Group gap="xs" mt={4}>
        <Button type="submit" size="compact-xs" color="red" loading={busy}>
          Cancel the shift
        </Button>
        <Button size="compact-xs" variant="default" onClick={onBack}>
          Keep it
        </Button>
      </Group>
    </form>
  );
}

function EnterShift({
  day,
  names,
  onChanged,
}: {
  day: string;
  names: Names;
  onChanged: () => Promise<unknown>;
}) {
  const staff = useStaff(true);
  const problems = useFormProblems();
  const [userId, setUserId] = useState('');
  const [role, setRole] = useState<Role | ''>('');
  const [kind, setKind] = useState<RotaLocationKind>('site');
  const [locationId, setLocationId] = useState('');
  const [shiftDay, setShiftDay] = useState(day);
  const [start, setStart] = useState('08:00');
  const [end, setEnd] = useState('20:00');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const person = staff.data?.find((s) => s.userId === userId);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    problems.clear();
    setDone(null);
    const times = shiftTimes(shiftDay, start, end);
    const missing: [string, string][] = [];
    if (!userId) missing.push(['userId', 'Choose who works the shift.']);
    if (!role) missing.push(['role', 'Choose the role worked.']);
    if (kind !== 'cas' && !locationId.trim()) missing.push(['location', 'Choose where the shift is worked.']);
    if (!times) missing.push(['startMs', 'Give the day and the start and end times.']);
    for (const [field, message] of missing) problems.setField(field, message);
    const bad = missing.length > 0;
    if (bad || !times || !role) return;
    setBusy(true);
    try {
      await planShift({
        userId,
        role,
        location: { kind, id: kind === 'cas' ? null : locationId.trim() },
        ...times,
      });
      setDone(
        `Shift added: ${person?.displayName ?? 'the person'}, ${roleWords(role)}, ${locationWords(
          { kind, id: kind === 'cas' ? null : locationId.trim() },
          names,
        )}, ${londonWhen(times.startMs)} to ${londonWhen(times.endMs, times.startMs)}.`,
      );
      await onChanged();
    } catch (error) {
      problems.fromError(error, ['userId', 'userName', 'role', 'location', 'startMs', 'endMs']);
    } finally {
      setBusy(false);
    }
  };

  const places =
    kind === 'site'
      ? (names.sites ?? []).map((s) => ({ value: s.siteId, label: s.name }))
      : kind === 'car'
        ? (names.cars ?? []).map((c) => ({ value: c.vehicleId, label: c.callSign }))
        : null;

  return (
    <Paper
      withBorder
      p="md"
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      noValidate
      aria-labelledby="enter-shift-heading"
    >
      <Title order={2} size="h4" id="enter-shift-heading" mb="xs">
        Enter a shift
      </Title>
      <FormAlert message={problems.form} />
      <Group align="flex-start" wrap="wrap">
        <NativeSelect
          label="Who"
          data={[
            { value: '', label: staff.isPending ? 'Loading staff…' : 'Choose a person' },
            ...(staff.data ?? []).map((s) => ({
              value: s.userId,
              label: `${s.displayName} (${s.userName})`,
            })),
          ]}
          value={userId}
          onChange={(e) => {
            const id = e.currentTarget.value;
            setUserId(id);
            const first = staff.data?.find((s) => s.userId === id)?.roles[0];
            if (first) setRole(first);
          }}
          error={problems.field('userId') ?? problems.field('userName')}
        />
        <NativeSelect
          label="Role"
          data={[
            { value: '', label: 'Choose a role' },
            ...ROLES.map((r) => ({ value: r, label: roleWords(r) })),
          ]}
          value={role}
          onChange={(e) => setRole(e.currentTarget.value as Role | '')}
          error={problems.field('role')}
        />
        <NativeSelect
          label="Where"
          data={ROTA_LOCATION_KINDS.map((k) => ({ value: k, label: ROTA_LOCATION_LABELS[k] }))}
          value={kind}
          onChange={(e) => {
            setKind(e.currentTarget.value as RotaLocationKind);
            setLocationId('');
          }}
        />
        {kind !== 'cas' &&
          (places ? (
            <NativeSelect
              label={kind === 'site' ? 'Site' : 'Car'}
              data={[{ value: '', label: `Choose a ${kind}` }, ...places]}
              value={locationId}
              onChange={(e) => setLocationId(e.currentTarget.value)}
              error={problems.field('location')}
            />
          ) : (
            <TextInput
              label="Treatment centre ID"
              value={locationId}
              onChange={(e) => setLocationId(e.currentTarget.value)}
              error={problems.field('location')}
            />
          ))}
      </Group>
      <Group align="flex-start" wrap="wrap" mt="xs">
        <TextInput
          type="date"
          label="Day the shift starts"
          value={shiftDay}
          onChange={(e) => setShiftDay(e.currentTarget.value)}
        />
        <TextInput
          type="time"
          label="Start (UK time)"
          value={start}
          onChange={(e) => setStart(e.currentTarget.value)}
          error={problems.field('startMs')}
        />
        <TextInput
          type="time"
          label="End (UK time)"
          description="At or before the start: the next day"
          value={end}
          onChange={(e) => setEnd(e.currentTarget.value)}
          error={problems.field('endMs')}
        />
      </Group>
      <Group mt="sm">
        <Button type="submit" loading={busy}>
          Add shift
        </Button>
        {done && (
          <Text role="status" data-testid="shift-added">
            {done}
          </Text>
        )}
      </Group>
    </Paper>
  );
}

function ImportRota({ onChanged }: { onChanged: () => Promise<unknown> }) {
  const problems = useFormProblems();
  const [text, setText] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<{ title: string; rows: ImportProblem[] } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const refusedRef = useRef<HTMLDivElement>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    problems.clear();
    setRefused(null);
    setDone(null);
    const csv = file ? await file.text() : text;
    if (!csv.trim()) return problems.setField('csv', 'Choose a rota file or paste the rota.');
    setBusy(true);
    try {
      const r = await importRota(csv);
      setDone(`Imported ${r.imported} ${r.imported === 1 ? 'shift' : 'shifts'}.`);
      await onChanged();
    } catch (error) {
      const rows = error instanceof ApiError ? importProblems(error.body) : [];
      if (error instanceof ApiError && rows.length > 0) {
        setRefused({ title: error.title, rows });
        setTimeout(() => refusedRef.current?.focus(), 0);
      } else problems.fromError(error, ['csv']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="import-rota-heading">
      <Title order={2} size="h4" id="import-rota-heading" mb="xs">
        Import a rota file
      </Title>
      <Text size="sm" mb="xs">
        CSV with a header line and the columns user, role, location, locationId, start, end (see
        docs/ROTA.md). If any line is wrong, nothing is imported.
      </Text>
      <FormAlert message={problems.form} />
      <form onSubmit={(e) => void submit(e)} noValidate aria-label="Import a rota file">
        <label htmlFor="rota-file" className="file-label">
          Rota file (CSV)
        </label>
        <br />
        <input
          id="rota-file"
          type="file"
          accept=".csv,text/csv"
          onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
        />
        <Textarea
          mt="xs"
          label="Or paste the rota (CSV)"
          value={text}
          onChange={(e) => setText(e.currentTarget.value)}
          error={problems.field('csv')}
          autosize
          minRows={3}
          maxRows={12}
        />
        <Group mt="xs">
          <Button type="submit" loading={busy} variant="light">
            Import rota
          </Button>
          {done && (
            <Text role="status" data-testid="rota-imported">
              {done}
            </Text>
          )}
        </Group>
      </form>
      {refused && <ImportProblems refused={refused} alertRef={refusedRef} />}
    </Paper>
  );
}
