import {
  Alert,
  Button,
  Checkbox,
  Group,
  NativeSelect,
  Paper,
  Stack,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api } from '../../lib/api.ts';
import {
  APPOINTMENT_KIND_WORDS,
  slotTime,
  ukDate,
  useCentres,
  useDiary,
  type CentreView,
} from '../../lib/booking.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useSites } from '../../lib/queries.ts';

/**
 * Diaries of the treatment centres (C6, `diaries.manage`): centres and their rooms, slot templates,
 * clinician sessions for the days ahead (the server generates their slots in UK time), the day's
 * slots with who holds each, blocking and releasing slots with a reason, and how many slots each
 * centre hands to another node (the 111 call centre, the CAS) in advance.
 */
export function Centres() {
  const centres = useCentres();
  const [centreId, setCentreId] = useState('');
  useEffect(() => {
    if (!centreId && centres.data?.[0]) setCentreId(centres.data[0].centreId);
  }, [centres.data, centreId]);
  const centre = centres.data?.find((c) => c.centreId === centreId) ?? null;
  return (
    <Stack maw={1300}>
      <PageTitle>Treatment centres and diaries</PageTitle>
      {centres.isError && <Alert color="red">The centres could not be read: {centres.error.message}</Alert>}
      <CentreList centres={centres.data ?? []} />
      <NewCentre onAdded={setCentreId} />
      {centres.data && centres.data.length > 0 && (
        <NativeSelect
          label="Centre to plan"
          maw={420}
          data={centres.data.map((c) => ({ value: c.centreId, label: c.name }))}
          value={centreId}
          onChange={(e) => setCentreId(e.currentTarget.value)}
        />
      )}
      {centre && (
        <>
          <Group align="flex-start" grow wrap="wrap">
            <NewTemplate centre={centre} />
            <NewSession centre={centre} />
            <AllocationPolicy centre={centre} />
          </Group>
          <Diary centre={centre} />
        </>
      )}
    </Stack>
  );
}

function CentreList({ centres }: { centres: CentreView[] }) {
  if (centres.length === 0) return <Text data-testid="no-centres">No treatment centre is set up yet.</Text>;
  return (
    <Table data-testid="centres" withRowBorders>
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Centre</Table.Th>
          <Table.Th scope="col">Address</Table.Th>
          <Table.Th scope="col">Phone</Table.Th>
          <Table.Th scope="col">Rooms</Table.Th>
          <Table.Th scope="col">Slot templates</Table.Th>
          <Table.Th scope="col">Its slots start with</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {centres.map((c) => (
          <Table.Tr key={c.centreId} data-centre-id={c.centreId}>
            <Table.Th scope="row">{c.name}</Table.Th>
            <Table.Td>
              {c.address}, {c.postcode}
            </Table.Td>
            <Table.Td>{c.phone}</Table.Td>
            <Table.Td>{c.rooms.map((r) => r.name).join(', ') || '—'}</Table.Td>
            <Table.Td>
              {(c.templates ?? [])
                .map((t) => `${t.name} (${t.slotMinutes} min, ${t.patientsPerSlot} a slot)`)
                .join('; ') || '—'}
            </Table.Td>
            <Table.Td>{c.homeNodeName ?? c.homeNodeId}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** One form frame: heading, problems at the top, fields, a submit button and what was done. */
function FormFrame({
  id,
  title,
  submitLabel,
  busy,
  done,
  problem,
  onSubmit,
  children,
}: {
  id: string;
  title: string;
  submitLabel: string;
  busy: boolean;
  done: string | null;
  problem: string | null;
  onSubmit: () => Promise<void>;
  children: ReactNode;
}) {
  return (
    <Paper
      withBorder
      p="md"
      component="form"
      aria-labelledby={id}
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        void onSubmit();
      }}
    >
      <Title order={2} size="h5" id={id} mb="xs">
        {title}
      </Title>
      <FormAlert message={problem} />
      <Stack gap="xs">
        {children}
        <Group>
          <Button type="submit" loading={busy}>
            {submitLabel}
          </Button>
          {done && <Text role="status">{done}</Text>}
        </Group>
      </Stack>
    </Paper>
  );
}

/** Sends a form's body; field errors go next to the fields, `done` says what the server did. */
function useSubmit(fields: string[]) {
  const queryClient = useQueryClient();
  const problems = useFormProblems();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const run = async (send: () => Promise<unknown>, said: string, after?: () => void) => {
    problems.clear();
    setDone(null);
    setBusy(true);
    try {
      await send();
      setDone(said);
      after?.();
      await queryClient.invalidateQueries({ queryKey: ['centres'] });
      await queryClient.invalidateQueries({ queryKey: ['diary'] });
    } catch (error) {
      problems.fromError(error, fields);
    } finally {
      setBusy(false);
    }
  };
  return { problems, busy, done, run };
}

const num = (s: string) => (s.trim() === '' ? undefined : Number(s));

/** An identifier from a name ("Room 2" → "room-2"), as the diary's ids are written. */
function slug(name: string): string {
  const id = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return id || 'unnamed';
}

function NewCentre({ onAdded }: { onAdded: (centreId: string) => void }) {
  const sites = useSites();
  const [v, setV] = useState({
    name: '',
    siteId: '',
    address: '',
    postcode: '',
    lat: '',
    lon: '',
    phone: '',
    rooms: '',
  });
  const f = useSubmit(['name', 'centreId', 'siteId', 'address', 'postcode', 'lat', 'lon', 'phone', 'rooms']);
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => {
    const value = e.currentTarget.value;
    setV((old) => ({ ...old, [k]: value }));
  };
  return (
    <FormFrame
      id="new-centre-heading"
      title="Add a treatment centre"
      submitLabel="Add centre"
      busy={f.busy}
      done={f.done}
      problem={f.problems.form}
      onSubmit={() =>
        f.run(
          async () => {
            const r = await api<{ centre: { centreId: string } }>('POST', '/api/v1/centres', {
              centreId: slug(v.name),
              name: v.name.trim(),
              siteId: v.siteId || (sites.data?.[0]?.siteId ?? ''),
              address: v.address.trim(),
              postcode: v.postcode.trim(),
              lat: num(v.lat),
              lon: num(v.lon),
              phone: v.phone.trim(),
              rooms: v.rooms
                .split('\n')
                .map((r) => r.trim())
                .filter(Boolean)
                .map((name) => ({ roomId: slug(name), name })),
            });
            onAdded(r.centre.centreId);
          },
          `Added ${v.name.trim()}.`,
          () =>
            setV({
              name: '',
              siteId: v.siteId,
              address: '',
              postcode: '',
              lat: '',
              lon: '',
              phone: '',
              rooms: '',
            }),
        )
      }
    >
      <Group grow align="flex-start" wrap="wrap">
        <TextInput
          label="Centre name"
          value={v.name}
          onChange={set('name')}
          error={f.problems.field('name') ?? f.problems.field('centreId')}
        />
        <NativeSelect
          label="Site of the centre"
          data={(sites.data ?? []).map((s) => ({ value: s.siteId, label: s.name }))}
          value={v.siteId || sites.data?.[0]?.siteId || ''}
          onChange={set('siteId')}
          error={f.problems.field('siteId')}
        />
        <TextInput
          label="Address"
          value={v.address}
          onChange={set('address')}
          error={f.problems.field('address')}
        />
        <TextInput
          label="Postcode"
          value={v.postcode}
          onChange={set('postcode')}
          error={f.problems.field('postcode')}
        />
      </Group>
      <Group grow align="flex-start" wrap="wrap">
        <TextInput
          label="Latitude"
          inputMode="decimal"
          value={v.lat}
          onChange={set('lat')}
          error={f.problems.field('lat')}
        />
        <TextInput
          label="Longitude"
          inputMode="decimal"
          value={v.lon}
          onChange={set('lon')}
          error={f.problems.field('lon')}
        />
        <TextInput
          label="Phone number"
          value={v.phone}
          onChange={set('phone')}
          error={f.problems.field('phone')}
        />
        <Textarea
          label="Rooms (one a line)"
          value={v.rooms}
          onChange={set('rooms')}
          error={f.problems.field('rooms')}
          autosize
          minRows={1}
        />
      </Group>
    </FormFrame>
  );
}

function NewTemplate({ centre }: { centre: CentreView }) {
  const [name, setName] = useState('');
  const [minutes, setMinutes] = useState('15');
  const [perSlot, setPerSlot] = useState('1');
  const [kinds, setKinds] = useState<string[]>(['urgent_face_to_face']);
  const f = useSubmit(['name', 'templateId', 'slotMinutes', 'patientsPerSlot', 'kinds']);
  return (
    <FormFrame
      id="template-heading"
      title="Add a slot template"
      submitLabel="Add template"
      busy={f.busy}
      done={f.done}
      problem={f.problems.form}
      onSubmit={() =>
        f.run(
          () =>
            api('POST', `/api/v1/centres/${centre.centreId}/templates`, {
              templateId: slug(name),
              name: name.trim(),
              slotMinutes: num(minutes),
              patientsPerSlot: num(perSlot),
              kinds,
            }),
          `Template ${name.trim()} added.`,
          () => setName(''),
        )
      }
    >
      <TextInput
        label="Template name"
        value={name}
        onChange={(e) => setName(e.currentTarget.value)}
        error={f.problems.field('name') ?? f.problems.field('templateId')}
      />
      <Group grow align="flex-start">
        <TextInput
          label="Slot length (minutes)"
          inputMode="numeric"
          value={minutes}
          onChange={(e) => setMinutes(e.currentTarget.value)}
          error={f.problems.field('slotMinutes')}
        />
        <TextInput
          label="Patients per slot"
          inputMode="numeric"
          value={perSlot}
          onChange={(e) => setPerSlot(e.currentTarget.value)}
          error={f.problems.field('patientsPerSlot')}
        />
      </Group>
      <Checkbox.Group
        label="Kinds of appointment"
        value={kinds}
        onChange={setKinds}
        error={f.problems.field('kinds')}
      >
        <Stack gap="xs" mt={4}>
          {Object.entries(APPOINTMENT_KIND_WORDS).map(([value, label]) => (
            <Checkbox key={value} value={value} label={label} />
          ))}
        </Stack>
      </Checkbox.Group>
    </FormFrame>
  );
}

function NewSession({ centre }: { centre: CentreView }) {
  const templates = centre.templates ?? [];
  const [v, setV] = useState({
    roomId: '',
    templateId: '',
    clinicianName: '',
    date: ukDate(Date.now()),
    start: '18:00',
    end: '22:00',
  });
  const f = useSubmit(['roomId', 'templateId', 'clinicianName', 'date', 'startLocal', 'endLocal']);
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => {
    const value = e.currentTarget.value;
    setV((old) => ({ ...old, [k]: value }));
  };
  return (
    <FormFrame
      id="session-heading"
      title="Plan a clinician session"
      submitLabel="Plan session"
      busy={f.busy}
      done={f.done}
      problem={f.problems.form}
      onSubmit={() =>
        f.run(
          () =>
            api('POST', `/api/v1/centres/${centre.centreId}/sessions`, {
              roomId: v.roomId || centre.rooms[0]?.roomId,
              templateId: v.templateId || templates[0]?.templateId,
              clinicianId: null,
              clinicianName: v.clinicianName.trim(),
              date: v.date,
              startLocal: v.start,
              endLocal: v.end,
            }),
          `Session planned on ${v.date}, ${v.start}–${v.end} (UK time).`,
        )
      }
    >
      <Group grow align="flex-start">
        <NativeSelect
          label="Room"
          data={centre.rooms.map((r) => ({ value: r.roomId, label: r.name }))}
          value={v.roomId || centre.rooms[0]?.roomId || ''}
          onChange={set('roomId')}
          error={f.problems.field('roomId')}
        />
        <NativeSelect
          label="Slot template"
          data={
            templates.length
              ? templates.map((t) => ({ value: t.templateId, label: t.name }))
              : [{ value: '', label: 'Add a template first' }]
          }
          value={v.templateId || templates[0]?.templateId || ''}
          onChange={set('templateId')}
          error={f.problems.field('templateId')}
        />
      </Group>
      <TextInput
        label="Clinician’s name"
        value={v.clinicianName}
        onChange={set('clinicianName')}
        error={f.problems.field('clinicianName')}
      />
      <Group grow align="flex-start">
        <TextInput
          label="Date"
          type="date"
          value={v.date}
          onChange={set('date')}
          error={f.problems.field('date')}
        />
        <TextInput
          label="From (UK time)"
          type="time"
          value={v.start}
          onChange={set('start')}
          error={f.problems.field('startLocal')}
        />
        <TextInput
          label="To (UK time)"
          type="time"
          value={v.end}
          onChange={set('end')}
          error={f.problems.field('endLocal')}
        />
      </Group>
    </FormFrame>
  );
}

function AllocationPolicy({ centre }: { centre: CentreView }) {
  const [toNodeId, setToNodeId] = useState('');
  const [count, setCount] = useState('2');
  const [cutoff, setCutoff] = useState('60');
  const f = useSubmit(['toNodeId', 'count', 'cutoffMinutesBeforeStart']);
  return (
    <FormFrame
      id="allocation-heading"
      title="Slots handed to another node"
      submitLabel="Set allocation"
      busy={f.busy}
      done={f.done}
      problem={f.problems.form}
      onSubmit={() =>
        f.run(
          () =>
            api('POST', `/api/v1/centres/${centre.centreId}/allocation-policy`, {
              toNodeId: toNodeId.trim(),
              count: num(count),
              cutoffMinutesBeforeStart: num(cutoff),
            }),
          'Allocation set: sessions planned from now on hand over their slots by it.',
        )
      }
    >
      <Text size="sm">
        The node of the 111 call centre or the CAS gets this many slots of each session, to book even when it
        cannot reach anyone; the ones it has not used come back at the cut-off.
      </Text>
      <TextInput
        label="Node that gets the slots (its node id)"
        value={toNodeId}
        onChange={(e) => setToNodeId(e.currentTarget.value)}
        error={f.problems.field('toNodeId')}
      />
      <Group grow align="flex-start">
        <TextInput
          label="Slots of each session"
          inputMode="numeric"
          value={count}
          onChange={(e) => setCount(e.currentTarget.value)}
          error={f.problems.field('count')}
        />
        <TextInput
          label="Given back (minutes before the slot)"
          inputMode="numeric"
          value={cutoff}
          onChange={(e) => setCutoff(e.currentTarget.value)}
          error={f.problems.field('cutoffMinutesBeforeStart')}
        />
      </Group>
    </FormFrame>
  );
}

function Diary({ centre }: { centre: CentreView }) {
  const [date, setDate] = useState(() => ukDate(Date.now()));
  const diary = useDiary(centre.centreId, date);
  const [chosen, setChosen] = useState<string[]>([]);
  const [reason, setReason] = useState('');
  const f = useSubmit(['slotIds', 'reason']);
  const slots = [...(diary.data?.slots ?? [])].sort((a, b) => a.startMs - b.startMs);
  const act = (what: 'block' | 'release') =>
    f.run(
      () => api('POST', `/api/v1/slots/${what}`, { slotIds: chosen, reason: reason.trim() }),
      `${chosen.length} ${chosen.length === 1 ? 'slot' : 'slots'} ${what === 'block' ? 'blocked' : 'released'}.`,
      () => {
        setChosen([]);
        setReason('');
      },
    );
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="diary-heading">
      <Title order={2} size="h4" id="diary-heading" mb="xs">
        Diary of {centre.name}
      </Title>
      <TextInput
        label="Day of the diary"
        type="date"
        maw={220}
        value={date}
        onChange={(e) => setDate(e.currentTarget.value)}
      />
      {diary.isError && <Alert color="red">The diary could not be read: {diary.error.message}</Alert>}
      {diary.data && slots.length === 0 && <Text mt="xs">No sessions on this day.</Text>}
      {slots.length > 0 && (
        <Table data-testid="diary-slots" withRowBorders mt="xs">
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Choose</Table.Th>
              <Table.Th scope="col">Time (UK)</Table.Th>
              <Table.Th scope="col">Room and clinician</Table.Th>
              <Table.Th scope="col">Booked</Table.Th>
              <Table.Th scope="col">Held by</Table.Th>
              <Table.Th scope="col">Blocked</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {slots.map((s) => (
              <Table.Tr key={s.slotId} data-slot-id={s.slotId} data-blocked={s.blocked ? 'yes' : 'no'}>
                <Table.Td>
                  <Checkbox
                    aria-label={`Choose the slot at ${slotTime(s.startLocal)}${s.roomName ? ` in ${s.roomName}` : ''}`}
                    checked={chosen.includes(s.slotId)}
                    onChange={(e) => {
                      const on = e.currentTarget.checked;
                      setChosen((c) => (on ? [...c, s.slotId] : c.filter((id) => id !== s.slotId)));
                    }}
                  />
                </Table.Td>
                <Table.Td>{slotTime(s.startLocal)}</Table.Td>
                <Table.Td>{[s.roomName, s.clinicianName].filter(Boolean).join(' · ') || '—'}</Table.Td>
                <Table.Td>
                  {s.bookings} of {s.capacity}
                </Table.Td>
                <Table.Td>{s.ownerNodeName ?? s.ownerNodeId ?? 'nobody'}</Table.Td>
                <Table.Td>
                  {s.blocked ? `Blocked${s.blockReason ? `: ${s.blockReason}` : ''}` : 'No'}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {slots.length > 0 && (
        <Stack
          component="form"
          gap="xs"
          mt="sm"
          aria-label="Block or release slots"
          onSubmit={(e: FormEvent) => e.preventDefault()}
        >
          <FormAlert message={f.problems.form} />
          <Textarea
            label="Reason for blocking or releasing"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            error={f.problems.field('reason') ?? f.problems.field('slotIds')}
            autosize
            minRows={1}
          />
          <Group>
            <Button loading={f.busy} disabled={chosen.length === 0} onClick={() => void act('block')}>
              Block the chosen slots
            </Button>
            <Button
              loading={f.busy}
              variant="default"
              disabled={chosen.length === 0}
              onClick={() => void act('release')}
            >
              Release the chosen slots
            </Button>
            {f.done && <Text role="status">{f.done}</Text>}
          </Group>
        </Stack>
      )}
    </Paper>
  );
}
