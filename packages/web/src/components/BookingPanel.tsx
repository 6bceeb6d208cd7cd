import { Alert, Badge, Button, Group, Paper, Stack, Table, Text, Textarea, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../lib/api.ts';
import {
  APPOINTMENT_KIND_WORDS,
  APPOINTMENT_STATE_WORDS,
  bookAppointment,
  cancelAppointment,
  distanceWords,
  rebookAppointment,
  slotWhen,
  useAppointmentOptions,
  useAppointments,
  type AppointmentOption,
  type AppointmentView,
} from '../lib/booking.ts';
import { useFormProblems } from '../lib/forms.ts';
import { useSession } from '../lib/session.tsx';
import { FormAlert } from './FormAlert.tsx';

/**
 * Booking a treatment-centre appointment while on the call (C6): the earliest suitable slots across
 * the provider's centres (nearest first within the timeframe, then those outside it, flagged), a
 * slot this node does not hold shown as "held by … — not bookable from here", and the appointment
 * shown as booked only once the server has answered 201 (its answer carries the address and time
 * the patient is told). Rebooking and cancelling take a reason; a time outside the timeframe takes a
 * clinician's recorded reason (health advisers are not offered it; the server refuses it too).
 */
export function BookingPanel({ caseId, kind }: { caseId: string; kind: string | null }) {
  const appointments = useAppointments(caseId);
  const current = (appointments.data?.appointments ?? []).filter(
    (a) => a.state === 'booked' || a.state === 'arrived',
  );
  const past = (appointments.data?.appointments ?? []).filter(
    (a) => a.state !== 'booked' && a.state !== 'arrived',
  );
  return (
    <Paper
      withBorder
      p="md"
      component="section"
      aria-labelledby="booking-heading"
      data-testid="booking-panel"
    >
      <Title order={2} size="h4" id="booking-heading" mb="xs">
        Treatment-centre appointment
      </Title>
      {appointments.isError && (
        <Alert color="red">The case’s appointments could not be read: {appointments.error.message}</Alert>
      )}
      {appointments.isPending ? (
        <Text>Reading the case’s appointments…</Text>
      ) : current.length > 0 ? (
        current.map((a) => <BookedAppointment key={a.bookingId} appointment={a} kind={kind} />)
      ) : (
        <SlotChoice caseId={caseId} kind={kind} />
      )}
      {past.length > 0 && (
        <>
          <Title order={3} size="h6" mt="sm">
            Earlier appointments on this case
          </Title>
          <ul data-testid="earlier-appointments">
            {past.map((a) => (
              <li key={a.bookingId}>
                {slotWhen(a.startLocal)} at {a.centreName}: {APPOINTMENT_STATE_WORDS[a.state]}
                {a.cancelReason ? ` (${a.cancelReason})` : ''}
              </li>
            ))}
          </ul>
        </>
      )}
    </Paper>
  );
}

/** What the patient is told, from the server's own answer. */
function appointmentWords(a: AppointmentView): string {
  return `${slotWhen(a.startLocal)} at ${a.centreName}, ${a.address}${a.postcode ? `, ${a.postcode}` : ''}`;
}

function BookedAppointment({ appointment: a, kind }: { appointment: AppointmentView; kind: string | null }) {
  const headingRef = useRef<HTMLParagraphElement>(null);
  const [mode, setMode] = useState<'none' | 'cancel' | 'rebook'>('none');
  useEffect(() => headingRef.current?.focus(), [a.bookingId]);
  return (
    <Stack gap="xs" data-testid="appointment" data-state={a.state}>
      <Alert color="#1e6b30" variant="light" title={APPOINTMENT_STATE_WORDS[a.state]} role="status">
        <Text fw={700} ref={headingRef} tabIndex={-1} data-testid="appointment-when-where">
          {appointmentWords(a)}
        </Text>
        {a.state === 'booked' && (
          <Text size="sm">
            Tell the patient the time and the address{a.phone ? ` (the centre’s number is ${a.phone})` : ''}.
          </Text>
        )}
        {a.outsideTimeframeReason && (
          <Text size="sm">Booked outside the timeframe: {a.outsideTimeframeReason}</Text>
        )}
      </Alert>
      {a.state === 'booked' && mode === 'none' && (
        <Group>
          <Button variant="default" onClick={() => setMode('rebook')}>
            Rebook…
          </Button>
          <Button variant="default" onClick={() => setMode('cancel')}>
            Cancel appointment…
          </Button>
        </Group>
      )}
      {mode === 'cancel' && <CancelForm appointment={a} onDone={() => setMode('none')} />}
      {mode === 'rebook' && (
        <SlotChoice caseId={a.caseId} kind={kind ?? a.kind} rebook={a} onDone={() => setMode('none')} />
      )}
    </Stack>
  );
}

function CancelForm({ appointment: a, onDone }: { appointment: AppointmentView; onDone: () => void }) {
  const queryClient = useQueryClient();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setBusy(true);
    try {
      await cancelAppointment(a.bookingId, reason);
      await queryClient.invalidateQueries({ queryKey: ['appointments', a.caseId] });
      await queryClient.invalidateQueries({ queryKey: ['case', a.caseId] });
      onDone();
    } catch (error) {
      problems.fromError(error, ['reason']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Stack
      component="form"
      gap="xs"
      onSubmit={(e: FormEvent) => void submit(e)}
      aria-label="Cancel the appointment"
    >
      <FormAlert message={problems.form} />
      <Textarea
        label="Why is the appointment being cancelled?"
        value={reason}
        onChange={(e) => setReason(e.currentTarget.value)}
        error={problems.field('reason')}
        autosize
        minRows={1}
      />
      <Group>
        <Button type="submit" color="#a51d1d" loading={busy}>
          Cancel the appointment
        </Button>
        <Button variant="default" onClick={onDone}>
          Keep the appointment
        </Button>
      </Group>
    </Stack>
  );
}

/**
 * The suggested slots and the choice of one: book it (or move the appointment to it). A slot is
 * never shown as booked here; the booked appointment above replaces this list once the server said so.
 */
function SlotChoice({
  caseId,
  kind,
  rebook,
  onDone,
}: {
  caseId: string;
  kind: string | null;
  rebook?: AppointmentView;
  onDone?: () => void;
}) {
  const { can } = useSession();
  // Only a clinician may book outside the timeframe, with a reason (the server checks the role too).
  const clinician = can('consultations.write');
  const options = useAppointmentOptions(caseId, kind);
  const queryClient = useQueryClient();
  const [chosen, setChosen] = useState<AppointmentOption | null>(null);
  const [outsideReason, setOutsideReason] = useState('');
  const [rebookReason, setRebookReason] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const list = (options.data?.options ?? []).filter((o) => o.slot.slotId !== rebook?.slotId);

  const send = async (option: AppointmentOption) => {
    problems.clear();
    setBusy(true);
    try {
      const outside = !option.withinTimeframe ? { outsideTimeframeReason: outsideReason } : {};
      if (rebook)
        await rebookAppointment(rebook.bookingId, {
          slotId: option.slot.slotId,
          reason: rebookReason,
          ...outside,
        });
      else
        await bookAppointment(caseId, {
          slotId: option.slot.slotId,
          kind: kind ?? option.slot.kinds[0] ?? 'urgent_face_to_face',
          ...outside,
        });
      setChosen(null);
      await queryClient.invalidateQueries({ queryKey: ['appointments', caseId] });
      await queryClient.invalidateQueries({ queryKey: ['case', caseId] });
      onDone?.();
    } catch (error) {
      problems.fromError(error, ['outsideTimeframeReason', 'reason']);
      // Taken or moved meanwhile (409): the list is read again so it shows what is free now.
      if (error instanceof ApiError && error.status === 409) {
        await queryClient.invalidateQueries({ queryKey: ['appointment-options', caseId] });
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack gap="xs" data-testid="slot-choice">
      <Title order={3} size="h5" id={rebook ? 'rebook-heading' : 'slots-heading'}>
        {rebook ? 'Move the appointment to another time' : 'Earliest suitable times'}
      </Title>
      {options.data?.timeframeMinutes ? (
        <Text size="sm">
          {kind ? `${APPOINTMENT_KIND_WORDS[kind] ?? kind}: ` : ''}within {options.data.timeframeMinutes}{' '}
          minutes of the call. Nearest first within the timeframe; times outside it are listed after, marked.
        </Text>
      ) : null}
      <FormAlert message={problems.form} title="Not booked" />
      {rebook && (
        <Textarea
          label="Why is the appointment being moved?"
          value={rebookReason}
          onChange={(e) => setRebookReason(e.currentTarget.value)}
          error={problems.field('reason')}
          autosize
          minRows={1}
        />
      )}
      {options.isPending && <Text>Finding free times…</Text>}
      {options.isError && <Alert color="red">Free times could not be read: {options.error.message}</Alert>}
      {options.data && list.length === 0 && (
        <Text data-testid="no-slots">
          No free time at any treatment centre: refer elsewhere or phone a centre.
        </Text>
      )}
      {list.length > 0 && (
        <Table data-testid="appointment-options" withRowBorders>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Time</Table.Th>
              <Table.Th scope="col">Centre</Table.Th>
              <Table.Th scope="col">Distance</Table.Th>
              <Table.Th scope="col">Places</Table.Th>
              <Table.Th scope="col">Book</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {list.map((o) => {
              const label = `${slotWhen(o.slot.startLocal)} at ${o.centre.name}`;
              return (
                <Table.Tr
                  key={o.slot.slotId}
                  data-slot-id={o.slot.slotId}
                  data-bookable={o.bookableHere ? 'yes' : 'no'}
                  data-within={o.withinTimeframe ? 'yes' : 'no'}
                >
                  <Table.Td>
                    {slotWhen(o.slot.startLocal)}
                    {!o.withinTimeframe && (
                      <Badge ml="xs" color="#8a4b00" variant="outline">
                        Outside the timeframe
                      </Badge>
                    )}
                  </Table.Td>
                  <Table.Td>
                    {o.centre.name}
                    {o.centre.postcode ? `, ${o.centre.postcode}` : ''}
                  </Table.Td>
                  <Table.Td>{distanceWords(o.distanceKm)}</Table.Td>
                  <Table.Td>{o.free ?? ''}</Table.Td>
                  <Table.Td>
                    {!o.bookableHere ? (
                      <Text size="sm" data-testid="not-bookable-here">
                        Held by {o.ownerNodeName ?? o.ownerNodeId ?? 'another node'} — not bookable from here
                      </Text>
                    ) : !o.withinTimeframe && !clinician ? (
                      <Text size="sm">Only a clinician can book outside the timeframe, with a reason.</Text>
                    ) : !o.withinTimeframe ? (
                      <Button
                        size="compact-sm"
                        variant="default"
                        aria-label={`Choose ${label}`}
                        onClick={() => setChosen(o)}
                      >
                        Choose…
                      </Button>
                    ) : (
                      <Button
                        size="compact-sm"
                        aria-label={`${rebook ? 'Move to' : 'Book'} ${label}`}
                        loading={busy}
                        onClick={() => void send(o)}
                      >
                        {rebook ? 'Move here' : 'Book'}
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
      {chosen && (
        <Stack
          component="form"
          gap="xs"
          aria-label="Book outside the timeframe"
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            void send(chosen);
          }}
        >
          <Textarea
            label="Why book outside the timeframe? (recorded with the booking)"
            description={`${slotWhen(chosen.slot.startLocal)} at ${chosen.centre.name} is later than the disposition allows.`}
            value={outsideReason}
            onChange={(e) => setOutsideReason(e.currentTarget.value)}
            error={problems.field('outsideTimeframeReason')}
            autosize
            minRows={1}
          />
          <Group>
            <Button type="submit" loading={busy}>
              {rebook ? 'Move it outside the timeframe' : 'Book outside the timeframe'}
            </Button>
            <Button variant="default" onClick={() => setChosen(null)}>
              Choose another time
            </Button>
          </Group>
        </Stack>
      )}
      {busy && (
        <Text role="status" data-testid="booking-sending">
          Asking the server to book… not booked yet.
        </Text>
      )}
      {rebook && onDone && (
        <Group>
          <Button variant="default" onClick={onDone}>
            Keep the appointment as it is
          </Button>
        </Group>
      )}
    </Stack>
  );
}
