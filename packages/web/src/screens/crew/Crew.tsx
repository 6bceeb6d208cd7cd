import { Alert, Button, NativeSelect, Paper, Stack, Text, Textarea, TextInput, Title } from '@mantine/core';
import './crew.css';
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { ApiError } from '../../lib/api.ts';
import {
  ageText,
  CREW_KEY,
  crewPosition,
  crewStatus,
  useCrew,
  VEHICLE_STATUS_ORDER,
  VEHICLE_STATUS_WORDS,
  VISIT_OUTCOME_ORDER,
  VISIT_OUTCOME_WORDS,
  visitOutcome,
  type VehicleStatus,
  type VisitOutcome,
} from '../../lib/dispatch.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useNow } from '../../lib/live.ts';
import { londonTime, londonWhen } from '../../lib/time.ts';

/** The statuses a crew sets from the phone, in the order of a visit. */
const CREW_STATUSES: readonly VehicleStatus[] = VEHICLE_STATUS_ORDER.filter((s) => s !== 'allocated');

/**
 * The crew's phone (`/crew`, visits.crew; laid out for 390×844): the car, the status buttons with the
 * time each was last set, sending the position (the browser's location, or typed in when it is not
 * given), the current visit with its address and access instructions, and its outcome. Read every
 * 5 s; a status shows as the car's only once the server has it (the button waits for the re-read).
 */
export function Crew() {
  const crew = useCrew();
  const queryClient = useQueryClient();
  const now = useNow(5000);
  const reread = () => queryClient.refetchQueries({ queryKey: CREW_KEY, exact: true });
  // Said once the server took it, and kept after the visit leaves the car (the case is closed).
  const [lastOutcome, setLastOutcome] = useState<string | null>(null);

  if (crew.isPending)
    return (
      <Stack className="crew-page">
        <PageTitle>My car</PageTitle>
        <Text>Loading your car…</Text>
      </Stack>
    );
  if (crew.isError && !crew.data)
    return (
      <Stack className="crew-page">
        <PageTitle>My car</PageTitle>
        <Alert color="red" role="alert">
          {crew.error instanceof ApiError && (crew.error.status === 403 || crew.error.status === 404)
            ? `You are not on shift on a car now: ${crew.error.detail ?? crew.error.title}.`
            : `Your car could not be read: ${crew.error.message}. It is read again by itself.`}
        </Alert>
      </Stack>
    );
  const { vehicle, visit, statusTimes } = crew.data;
  return (
    <Stack className="crew-page" gap="sm">
      <PageTitle text="My car">{vehicle ? `My car: ${vehicle.callSign}` : 'My car'}</PageTitle>
      {crew.isError && (
        <Alert color="orange" role="status">
          Not read again since {londonTime(crew.dataUpdatedAt)}: the server is not answering. What is shown
          may have changed.
        </Alert>
      )}
      {!vehicle ? (
        <Text data-testid="crew-no-car">
          You are not on a car’s crew now{crew.data.notice ? `: ${crew.data.notice}` : ''}. The rota puts you
          on a car for your shift.
        </Text>
      ) : (
        <>
          <Text data-testid="crew-car" data-status={vehicle.status}>
            <strong>{VEHICLE_STATUS_WORDS[vehicle.status]}</strong>
            {vehicle.statusAtMs !== null && ` since ${londonWhen(vehicle.statusAtMs, now)}`}
            {vehicle.registration && ` · ${vehicle.registration}`}
            {(vehicle.driver || vehicle.clinician) &&
              ` · crew: ${[vehicle.driver, vehicle.clinician].filter(Boolean).join(' and ')}`}
          </Text>
          <StatusButtons current={vehicle.status} times={statusTimes} now={now} onDone={reread} />
          <PositionPanel
            lastAtMs={vehicle.positionAtMs}
            last={
              vehicle.lat !== null && vehicle.lon !== null ? { lat: vehicle.lat, lon: vehicle.lon } : null
            }
            now={now}
            onDone={reread}
          />
        </>
      )}
      {visit ? (
        <Paper
          withBorder
          p="sm"
          component="section"
          aria-labelledby="crew-visit-heading"
          data-testid="crew-visit"
        >
          <Title order={2} size="h4" id="crew-visit-heading">
            Current visit
          </Title>
          <Text fw={700} data-testid="crew-visit-address">
            {visit.address}
          </Text>
          {visit.patientName && <Text>Patient: {visit.patientName}</Text>}
          {visit.phone && <Text>Phone: {visit.phone}</Text>}
          <Text>Why: {visit.reason || 'No reason given'}</Text>
          <Text>Due by {londonWhen(visit.deadlineMs, now)}</Text>
          <Text mt="xs" fw={700}>
            Access
          </Text>
          <Text data-testid="crew-access">
            {visit.accessInstructions ?? 'No access instructions recorded.'}
          </Text>
          <OutcomeForm
            visitId={visit.visitId}
            recorded={visit.outcome}
            onDone={async (words) => {
              setLastOutcome(words);
              await reread();
            }}
          />
        </Paper>
      ) : (
        vehicle && <Text data-testid="crew-no-visit">No visit allocated to your car.</Text>
      )}
      {lastOutcome && (
        <Text role="status" data-testid="crew-outcome-sent">
          Outcome recorded: {lastOutcome}.
        </Text>
      )}
    </Stack>
  );
}

function StatusButtons({
  current,
  times,
  now,
  onDone,
}: {
  current: VehicleStatus;
  times: Partial<Record<VehicleStatus, number>>;
  now: number;
  onDone: () => Promise<unknown>;
}) {
  const [sending, setSending] = useState<VehicleStatus | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const press = async (status: VehicleStatus) => {
    setSending(status);
    setProblem(null);
    try {
      await crewStatus(status);
      await onDone();
    } catch (error) {
      setProblem(error instanceof ApiError ? error.plain() : 'Not sent: the server could not be reached.');
    } finally {
      setSending(null);
    }
  };
  return (
    <section aria-labelledby="crew-status-heading">
      <Title order={2} size="h4" id="crew-status-heading" mb={4}>
        Status
      </Title>
      <div className="crew-status-grid" role="group" aria-label="Set the car's status">
        {CREW_STATUSES.map((s) => {
          const at = times[s];
          return (
            <Button
              key={s}
              size="md"
              variant={current === s ? 'filled' : 'default'}
              aria-pressed={current === s}
              loading={sending === s}
              disabled={sending !== null && sending !== s}
              onClick={() => void press(s)}
              data-status={s}
              className="crew-status-button"
            >
              <span>
                {VEHICLE_STATUS_WORDS[s]}
                <span className="crew-status-time">{at !== undefined ? londonWhen(at, now) : '—'}</span>
              </span>
            </Button>
          );
        })}
      </div>
      {problem && (
        <Text c="red.9" role="alert" fw={700}>
          {problem}
        </Text>
      )}
    </section>
  );
}

/**
 * Sending the car's position: the browser's location when it gives one (asked each time the button
 * is pressed, never tracked in the background), else latitude and longitude typed in. "Sent" is said
 * only once the server has taken it.
 */
function PositionPanel({
  last,
  lastAtMs,
  now,
  onDone,
}: {
  last: { lat: number; lon: number } | null;
  lastAtMs: number | null;
  now: number;
  onDone: () => Promise<unknown>;
}) {
  const problems = useFormProblems();
  const [manual, setManual] = useState(false);
  const [lat, setLat] = useState('');
  const [lon, setLon] = useState('');
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState<string | null>(null);

  const send = async (p: { lat: number; lon: number; accuracyM: number }) => {
    setBusy(true);
    try {
      const r = await crewPosition(p);
      setSent(
        r.recorded === false
          ? `Not kept: ${r.reason ?? 'a position was kept moments ago'}.`
          : `Position sent at ${londonTime(Date.now())}.`,
      );
      await onDone();
    } catch (error) {
      problems.fromError(error, ['lat', 'lon', 'accuracyM']);
    } finally {
      setBusy(false);
    }
  };

  const fromPhone = () => {
    problems.clear();
    setSent(null);
    if (!('geolocation' in navigator)) {
      setManual(true);
      problems.setForm('This browser cannot give the location: type it in below.');
      return;
    }
    setBusy(true);
    navigator.geolocation.getCurrentPosition(
      (pos) =>
        void send({
          lat: pos.coords.latitude,
          lon: pos.coords.longitude,
          accuracyM: Math.round(pos.coords.accuracy),
        }),
      (err) => {
        setBusy(false);
        setManual(true);
        problems.setForm(
          err.code === err.PERMISSION_DENIED
            ? 'The phone did not allow the location to be read: type it in below.'
            : 'The phone could not find its location: type it in below.',
        );
      },
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 30_000 },
    );
  };

  const typed = (e: FormEvent) => {
    e.preventDefault();
    problems.clear();
    setSent(null);
    const la = Number(lat.trim());
    const lo = Number(lon.trim());
    let bad = false;
    if (lat.trim() === '' || !Number.isFinite(la) || la < -90 || la > 90) {
      problems.setField('lat', 'Give the latitude as a number from -90 to 90, e.g. 53.4084.');
      bad = true;
    }
    if (lon.trim() === '' || !Number.isFinite(lo) || lo < -180 || lo > 180) {
      problems.setField('lon', 'Give the longitude as a number from -180 to 180, e.g. -2.9916.');
      bad = true;
    }
    if (!bad) void send({ lat: la, lon: lo, accuracyM: 100 });
  };

  return (
    <section aria-labelledby="crew-position-heading">
      <Title order={2} size="h4" id="crew-position-heading" mb={4}>
        Position
      </Title>
      <Text size="sm" data-testid="crew-last-position">
        {last && lastAtMs !== null
          ? `Last sent: ${last.lat.toFixed(4)}, ${last.lon.toFixed(4)} (${ageText(lastAtMs, now)})`
          : 'No position sent yet.'}
      </Text>
      <FormAlert message={problems.form} title="Position not sent" />
      <Button fullWidth size="md" mt={4} loading={busy && !manual} onClick={fromPhone}>
        Send my position
      </Button>
      {!manual && (
        <Button variant="subtle" size="compact-sm" mt={4} onClick={() => setManual(true)}>
          Type the position in instead
        </Button>
      )}
      {manual && (
        <form onSubmit={typed} noValidate aria-label="Type the position">
          <TextInput
            label="Latitude"
            inputMode="decimal"
            value={lat}
            onChange={(e) => setLat(e.currentTarget.value)}
            error={problems.field('lat')}
          />
          <TextInput
            label="Longitude"
            inputMode="decimal"
            value={lon}
            onChange={(e) => setLon(e.currentTarget.value)}
            error={problems.field('lon')}
          />
          <Button type="submit" fullWidth size="md" mt="xs" loading={busy}>
            Send this position
          </Button>
        </form>
      )}
      {sent && (
        <Text role="status" size="sm" data-testid="crew-position-sent">
          {sent}
        </Text>
      )}
    </section>
  );
}

function OutcomeForm({
  visitId,
  recorded,
  onDone,
}: {
  visitId: string;
  recorded: string | null;
  onDone: (words: string) => Promise<unknown>;
}) {
  const problems = useFormProblems();
  const [outcome, setOutcome] = useState<VisitOutcome | ''>('');
  const [note, setNote] = useState('');
  // Never preselected: the crew chooses the category every time.
  const [category, setCategory] = useState('');
  const [busy, setBusy] = useState(false);
  if (recorded)
    return (
      <Text role="status" mt="sm" data-testid="crew-outcome-recorded">
        Outcome recorded: {VISIT_OUTCOME_WORDS[recorded as VisitOutcome] ?? recorded}.
      </Text>
    );
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    problems.clear();
    if (!outcome) return problems.setField('outcome', 'Choose the outcome of the visit.');
    setBusy(true);
    try {
      await visitOutcome(
        visitId,
        outcome,
        note.trim(),
        outcome === 'converted_to_ambulance' && category !== '' ? Number(category) : null,
      );
      await onDone(VISIT_OUTCOME_WORDS[outcome]);
    } catch (error) {
      problems.fromError(error, ['outcome', 'note', 'ambulanceCategory']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-labelledby="crew-outcome-heading">
      <Title order={3} size="h5" id="crew-outcome-heading" mt="sm">
        Outcome of the visit
      </Title>
      <FormAlert message={problems.form} />
      <NativeSelect
        label="Outcome"
        data={[
          { value: '', label: 'Choose the outcome' },
          ...VISIT_OUTCOME_ORDER.map((o) => ({ value: o, label: VISIT_OUTCOME_WORDS[o] })),
        ]}
        value={outcome}
        onChange={(e) => setOutcome(e.currentTarget.value as VisitOutcome | '')}
        error={problems.field('outcome')}
      />
      {outcome === 'converted_to_ambulance' && (
        <NativeSelect
          label="Ambulance category"
          data={[
            { value: '', label: 'Choose a category' },
            ...['1', '2', '3', '4'].map((v) => ({ value: v, label: `Category ${v}` })),
          ]}
          value={category}
          onChange={(e) => setCategory(e.currentTarget.value)}
          error={problems.field('ambulanceCategory')}
        />
      )}
      <Textarea
        label="Note"
        value={note}
        onChange={(e) => setNote(e.currentTarget.value)}
        error={problems.field('note')}
        autosize
        minRows={2}
      />
      <Button type="submit" fullWidth size="md" mt="xs" loading={busy}>
        Record visit outcome
      </Button>
    </form>
  );
}
