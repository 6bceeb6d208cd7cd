import { Badge, Button, Grid, Group, NativeSelect, Paper, Stack, Text, Textarea, Title } from '@mantine/core';
import './dispatch.css';
import { createContext, memo, useCallback, useContext, useMemo, useState, type FormEvent } from 'react';
import { PageTitle } from '../../components/PageTitle.tsx';
import { TimingBadge, TIMING_WORDS, type Timing } from '../../components/Timing.tsx';
import { ApiError, isServerUnavailable } from '../../lib/api.ts';
import {
  ageText,
  allocate,
  POSITION_OLD_AFTER_MS,
  reallocate,
  useBoard,
  VEHICLE_STATUS_ORDER,
  VEHICLE_STATUS_WORDS,
  VISIT_STATUS_WORDS,
  visitTimingOf,
  type Suggestion,
  type Vehicle,
  type Visit,
} from '../../lib/dispatch.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { useNow } from '../../lib/live.ts';
import { Link } from '../../lib/router.tsx';
import { useSession } from '../../lib/session.tsx';
import { londonTime, londonWhen } from '../../lib/time.ts';
import { DispatchMap } from './DispatchMap.tsx';

/** Visits still needing or having a car; the rest (done, cancelled) leave the board. */
const OPEN_VISIT = new Set([
  'requested',
  'waiting',
  'allocated',
  'travelling',
  'on_scene',
  'leaving',
  'reconciliation',
]);

/**
 * The dispatcher's board (C7): visits by deadline with their state against it, the suggested car for
 * each with its estimated arrival, cars by status with their last position and its age, and a map
 * beside the lists. Live: each dispatch or case event re-reads the board (coalesced). An allocation
 * shows only once the server's board says so: the button waits for the re-read.
 */
export function DispatchBoard() {
  const session = useSession();
  const canDispatch = session.can('visits.dispatch');
  const { board, state } = useBoard(session.can('queue.read'));
  const offset = board.data ? board.data.nowMs - board.dataUpdatedAt : 0;
  const now = useNow(1000) + offset;

  const visits = useMemo(
    () =>
      (board.data?.visits ?? [])
        .filter((v) => OPEN_VISIT.has(v.status))
        .sort((a, b) => a.deadlineMs - b.deadlineMs || (a.visitId < b.visitId ? -1 : 1)),
    [board.data],
  );
  // Each visit's state against its deadline: the list (and the map) change only when one does.
  const timingKey = visits.map((v) => visitTimingOf(v, now)).join();
  const timed = useMemo(
    () => visits.map((visit) => ({ visit, timing: visitTimingOf(visit, now) })),
    // `now` counts only through timingKey: the list is the same object until a timing changes.
    [visits, timingKey],
  );
  const vehicles = useMemo(
    () =>
      [...(board.data?.vehicles ?? [])].sort(
        (a, b) =>
          VEHICLE_STATUS_ORDER.indexOf(a.status) - VEHICLE_STATUS_ORDER.indexOf(b.status) ||
          a.callSign.localeCompare(b.callSign),
      ),
    [board.data],
  );
  const carsById = useMemo(() => new Map(vehicles.map((v) => [v.vehicleId, v])), [vehicles]);
  const visitsById = useMemo(() => new Map(visits.map((v) => [v.visitId, v])), [visits]);
  const refetch = board.refetch;
  const onDone = useCallback(() => refetch(), [refetch]);
  const nowMinute = Math.floor(now / 60_000) * 60_000;
  const counts = { breached: 0, at_risk: 0, on_time: 0 };
  for (const t of timed) counts[t.timing]++;
  const offered = vehicles.filter((v) => v.available && v.status === 'available').length;

  return (
    <Stack gap="xs">
      <Group justify="space-between" wrap="nowrap">
        <PageTitle>Dispatch board</PageTitle>
        <Badge
          variant={state === 'live' ? 'outline' : 'filled'}
          color={state === 'live' ? '#1b5e20' : '#8a4b00'}
          data-testid="board-live"
          data-live={session.can('queue.read') ? state : 'polling'}
        >
          {!session.can('queue.read')
            ? 'Read every 5 seconds'
            : state === 'live'
              ? 'Live: updates without reloading'
              : state === 'connecting'
                ? 'Connecting to live updates…'
                : 'Live updates lost: reconnecting…'}
        </Badge>
      </Group>
      <Text role="status" aria-live="polite" fw={700} data-testid="board-summary">
        {board.isPending
          ? 'Loading the board…'
          : board.isError && !board.data
            ? `The board could not be read: ${board.error.message}. It is read again by itself.`
            : `${timed.length} ${timed.length === 1 ? 'visit' : 'visits'}: ${counts.breached} breached, ${counts.at_risk} at risk, ${counts.on_time} on time · ${offered} of ${vehicles.length} cars available with a crew on shift${board.isError ? ` · last read ${ageText(board.dataUpdatedAt, Date.now())}: the server is not answering` : ''}`}
      </Text>
      {(board.data?.openItems ?? 0) > 0 && (
        <Text className="board-warning" role="alert" data-testid="board-open-items">
          ! {board.data?.openItems} double {board.data?.openItems === 1 ? 'allocation' : 'allocations'} to
          decide: a shift manager decides them on the dashboard&apos;s reconciliation list.
        </Text>
      )}
      {board.isError && board.data && !isServerUnavailable(board.error) && (
        <Text c="red.9" role="alert">
          The board could not be read again: {board.error.message}
        </Text>
      )}
      <Grid gap="md">
        <Grid.Col span={{ base: 12, lg: 7 }}>
          <Stack gap="md">
            <section aria-labelledby="visits-heading">
              <Title order={2} size="h4" id="visits-heading" mb={4}>
                Visits by deadline
              </Title>
              {board.isSuccess && timed.length === 0 && (
                <Text data-testid="no-visits">No home visits are waiting or under way.</Text>
              )}
              <ul className="board-list" aria-label="Home visits, earliest deadline first">
                <CarsContext.Provider value={vehicles}>
                  {timed.map(({ visit, timing }) => (
                    <VisitRow
                      key={visit.visitId}
                      visit={visit}
                      timing={timing}
                      remainingSeconds={shownRemaining(visit.deadlineMs, now)}
                      nowMinute={nowMinute}
                      car={visit.vehicleId ? carsById.get(visit.vehicleId) : undefined}
                      bestCar={
                        visit.suggestions[0] ? carsById.get(visit.suggestions[0].vehicleId) : undefined
                      }
                      canDispatch={canDispatch}
                      onDone={onDone}
                    />
                  ))}
                </CarsContext.Provider>
              </ul>
            </section>
            <section aria-labelledby="cars-heading">
              <Title order={2} size="h4" id="cars-heading" mb={4}>
                Cars by status
              </Title>
              {board.isSuccess && vehicles.length === 0 && <Text>No cars are registered.</Text>}
              <table className="board-cars" data-testid="board-cars">
                <caption className="visually-hidden">Cars by status, with last position and its age</caption>
                <thead>
                  <tr>
                    <th scope="col">Car</th>
                    <th scope="col">Status</th>
                    <th scope="col">Crew on shift</th>
                    <th scope="col">Last position</th>
                    <th scope="col">Visit</th>
                  </tr>
                </thead>
                <tbody>
                  {vehicles.map((v) => (
                    <CarRow
                      key={v.vehicleId}
                      car={v}
                      nowBucket={Math.floor(now / 5000) * 5000}
                      visit={v.visitId ? visitsById.get(v.visitId) : undefined}
                    />
                  ))}
                </tbody>
              </table>
            </section>
          </Stack>
        </Grid.Col>
        <Grid.Col span={{ base: 12, lg: 5 }}>
          <section aria-labelledby="map-heading" className="board-map-section">
            <Title order={2} size="h4" id="map-heading" mb={4}>
              Map
            </Title>
            <DispatchMap visits={timed} vehicles={vehicles} sites={board.data?.sites ?? []} />
          </section>
        </Grid.Col>
      </Grid>
      <Text size="sm" c="dimmed">
        States: {Object.values(TIMING_WORDS).join(', ')}. Arrival times are estimates: straight-line distance
        with a road factor, plus the time to finish a current visit. Times are UK time.
      </Text>
    </Stack>
  );
}

function suggestionWords(s: Suggestion, car: Vehicle | undefined, nowDay: number): string {
  return `${car?.callSign ?? 'A car'}: arrives about ${londonWhen(s.etaMs, nowDay)} (${s.distanceKm.toFixed(1)} km)${s.meetsDeadline ? ', within the deadline' : ', after the deadline'}`;
}

/** Every car, for choosing one by hand (read only by an open choice, so a car's change re-renders no row). */
const CarsContext = createContext<Vehicle[]>([]);

/**
 * The time left to a deadline as the badge words it: to the second within the hour, to the minute
 * beyond (so a row far from its deadline is drawn again once a minute, not every second).
 */
function shownRemaining(deadlineMs: number, now: number): number {
  const s = Math.round((deadlineMs - now) / 1000);
  return Math.abs(s) < 3600 ? s : Math.sign(s) * Math.floor(Math.abs(s) / 60) * 60;
}

/** What a row shows of a suggestion: its car, arrival to the minute, distance, deadline and reason. */
function suggestionShown(s: Suggestion | undefined): string {
  return s
    ? `${s.vehicleId} ${Math.floor(s.etaMs / 60_000)} ${s.distanceKm.toFixed(1)} ${s.meetsDeadline} ${s.reason}`
    : '';
}

/**
 * A row is drawn again only when something it shows changed: a board read gives every waiting
 * visit new arrival estimates (the clock moved on) that mostly read the same to the minute.
 */
function sameVisitRow(a: VisitRowProps, b: VisitRowProps): boolean {
  for (const key of Object.keys(a) as (keyof VisitRowProps)[])
    if (key !== 'visit' && a[key] !== b[key]) return false;
  if (a.visit === b.visit) return true;
  const { suggestions: sa, ...restA } = a.visit;
  const { suggestions: sb, ...restB } = b.visit;
  for (const key of Object.keys(restA) as (keyof typeof restA)[]) {
    const x = restA[key];
    const y = restB[key];
    if (x !== y && !(Array.isArray(x) && Array.isArray(y) && x.join() === y.join())) return false;
  }
  return sa.length === sb.length && sa.every((s, i) => suggestionShown(s) === suggestionShown(sb[i]));
}

interface VisitRowProps {
  visit: Visit;
  timing: Timing;
  remainingSeconds: number;
  nowMinute: number;
  car: Vehicle | undefined;
  bestCar: Vehicle | undefined;
  canDispatch: boolean;
  onDone: () => Promise<unknown>;
}

/** One visit: its deadline state, where, why, the car (allocated or suggested) and the actions. */
const VisitRow = memo(function VisitRow({
  visit,
  timing,
  remainingSeconds,
  nowMinute: now,
  car,
  bestCar,
  canDispatch,
  onDone,
}: VisitRowProps) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [choosing, setChoosing] = useState<'allocate' | 'reallocate' | null>(null);
  const best = visit.suggestions[0];
  const waiting = visit.vehicleId === null;
  const where = visit.address;
  const run = async (action: () => Promise<unknown>) => {
    setBusy(true);
    setProblem(null);
    try {
      await action();
      // Shown as allocated only when the board read back says so.
      await onDone();
      setChoosing(null);
    } catch (error) {
      setProblem(
        error instanceof ApiError && error.status === 409
          ? `Not done: ${error.detail ?? error.title}. The board has been read again.`
          : error instanceof ApiError
            ? error.plain()
            : 'Not done: the server could not be reached.',
      );
      await onDone().catch(() => undefined);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li
      className="board-visit"
      data-testid="board-visit"
      data-visit-id={visit.visitId}
      data-timing={timing}
      data-status={visit.status}
      aria-label={`Visit to ${where}`}
    >
      <Group justify="space-between" align="flex-start" wrap="wrap" gap="xs">
        <div>
          <TimingBadge timing={timing} remainingSeconds={remainingSeconds} />{' '}
          <Text span size="sm">
            due by {londonWhen(visit.deadlineMs, now)}
          </Text>
          <Text fw={700}>{where}</Text>
          <Text size="sm">
            {visit.reason || 'No reason given'}
            {visit.priority ? ` · priority ${visit.priority}` : ''}
          </Text>
        </div>
        <div>
          <Text size="sm" fw={700} data-testid="visit-status">
            {VISIT_STATUS_WORDS[visit.status] ?? visit.status}
            {car ? `: ${car.callSign} (${VEHICLE_STATUS_WORDS[car.status]})` : ''}
          </Text>
          {visit.caseId && (
            <Link to={`/cases/${visit.caseId}/summary`} className="board-link">
              Case summary
            </Link>
          )}
        </div>
      </Group>
      {visit.conflicts.length > 0 && (
        <Text size="sm" className="board-warning" role="alert" data-testid="visit-conflict">
          ! Allocated twice while sites could not see each other: check with both crews; a shift manager
          decides it in the reconciliation list.
        </Text>
      )}
      {waiting && (
        <Text size="sm" data-testid="visit-suggestion">
          {best
            ? `Suggested: ${suggestionWords(best, bestCar, now)}${best.reason ? ` — ${best.reason}` : ''}`
            : 'No car can be suggested: none is available with a crew on shift.'}
        </Text>
      )}
      {canDispatch && waiting && (
        <Group gap="xs" mt={4}>
          {best && bestCar && (
            <Button
              size="compact-sm"
              loading={busy}
              onClick={() => void run(() => allocate(visit.visitId, best.vehicleId))}
              aria-label={`Allocate ${bestCar.callSign} to the visit at ${where}`}
            >
              Allocate {bestCar.callSign}
            </Button>
          )}
          <Button
            size="compact-sm"
            variant="default"
            onClick={() => setChoosing(choosing === 'allocate' ? null : 'allocate')}
            aria-expanded={choosing === 'allocate'}
            aria-label={`Choose another car for the visit at ${where}`}
          >
            Choose another car…
          </Button>
        </Group>
      )}
      {canDispatch && !waiting && (
        <Button
          size="compact-sm"
          variant="default"
          mt={4}
          onClick={() => setChoosing(choosing === 'reallocate' ? null : 'reallocate')}
          aria-expanded={choosing === 'reallocate'}
          aria-label={`Re-allocate the visit at ${where}`}
        >
          Re-allocate…
        </Button>
      )}
      {choosing && (
        <CarChoice
          visit={visit}
          reallocating={choosing === 'reallocate'}
          busy={busy}
          onSubmit={(vehicleId, reason) =>
            run(() =>
              choosing === 'reallocate'
                ? reallocate(visit.visitId, vehicleId, reason)
                : allocate(visit.visitId, vehicleId),
            )
          }
        />
      )}
      {problem && (
        <Text c="red.9" role="alert" size="sm" fw={700}>
          {problem}
        </Text>
      )}
    </li>
  );
}, sameVisitRow);

/** Choosing a car by hand (suggested ones first, with their arrival), and for a re-allocation, why. */
function CarChoice({
  visit,
  reallocating,
  busy,
  onSubmit,
}: {
  visit: Visit;
  reallocating: boolean;
  busy: boolean;
  onSubmit: (vehicleId: string, reason: string) => Promise<void>;
}) {
  const problems = useFormProblems();
  const cars = useContext(CarsContext);
  const suggested = new Map(visit.suggestions.map((s) => [s.vehicleId, s]));
  const options = cars
    .filter((c) => c.vehicleId !== visit.vehicleId)
    .sort(
      (a, b) =>
        (suggested.get(a.vehicleId)?.etaMs ?? Infinity) - (suggested.get(b.vehicleId)?.etaMs ?? Infinity),
    );
  const [vehicleId, setVehicleId] = useState('');
  const [reason, setReason] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    problems.clear();
    if (!vehicleId) return problems.setField('vehicleId', 'Choose a car.');
    if (reallocating && reason.trim().length < 3)
      return problems.setField(
        'reason',
        'Say why the visit is moved to another car (at least 3 characters).',
      );
    void onSubmit(vehicleId, reason.trim());
  };
  return (
    <Paper
      withBorder
      p="xs"
      mt={4}
      component="form"
      onSubmit={submit}
      noValidate
      aria-label={reallocating ? 'Re-allocate the visit' : 'Allocate a car'}
    >
      <Group align="flex-end" gap="xs" wrap="wrap">
        <NativeSelect
          size="xs"
          label={reallocating ? 'New car' : 'Car'}
          data={[
            { value: '', label: 'Choose a car' },
            ...options.map((c) => {
              const s = suggested.get(c.vehicleId);
              const state = !c.available ? 'crew not on shift' : VEHICLE_STATUS_WORDS[c.status].toLowerCase();
              return {
                value: c.vehicleId,
                label: `${c.callSign} — ${state}${s ? `, arrives about ${londonTime(s.etaMs)}` : ''}`,
              };
            }),
          ]}
          value={vehicleId}
          onChange={(e) => setVehicleId(e.currentTarget.value)}
          error={problems.field('vehicleId')}
        />
        {reallocating && (
          <Textarea
            size="xs"
            label="Reason for re-allocating"
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            error={problems.field('reason')}
            autosize
            minRows={1}
          />
        )}
        <Button type="submit" size="compact-sm" loading={busy}>
          {reallocating ? 'Re-allocate' : 'Allocate'}
        </Button>
      </Group>
    </Paper>
  );
}

/** One car: status and since when, crew, last position and its age (old ones said so). */
const CarRow = memo(function CarRow({
  car,
  nowBucket,
  visit,
}: {
  car: Vehicle;
  nowBucket: number;
  visit: Visit | undefined;
}) {
  const old = car.positionAtMs !== null && nowBucket - car.positionAtMs > POSITION_OLD_AFTER_MS;
  return (
    <tr
      data-testid="board-vehicle"
      data-vehicle-id={car.vehicleId}
      data-position-at={car.positionAtMs ?? ''}
      data-status={car.status}
      data-available={car.available}
    >
      <th scope="row">
        {car.callSign}
        {car.registration && (
          <Text span size="xs" c="dimmed">
            {' '}
            {car.registration}
          </Text>
        )}
      </th>
      <td data-col="status">
        {VEHICLE_STATUS_WORDS[car.status]}
        {car.statusAtMs !== null && ` since ${londonWhen(car.statusAtMs, nowBucket)}`}
      </td>
      <td data-col="crew">
        {car.available ? (
          `${car.driver ?? 'driver'} · ${car.clinician ?? 'clinician'}`
        ) : (
          <span className="board-warning">Crew not on shift: not offered</span>
        )}
      </td>
      <td data-col="position" data-testid="vehicle-position">
        {car.lat !== null && car.lon !== null && car.positionAtMs !== null ? (
          <>
            {car.lat.toFixed(4)}, {car.lon.toFixed(4)} ·{' '}
            <span className={old ? 'board-warning' : undefined}>
              {ageText(car.positionAtMs, nowBucket)}
              {old ? ' (old)' : ''}
            </span>
          </>
        ) : (
          'No position reported'
        )}
      </td>
      <td data-col="visit">{visit ? visit.address : '—'}</td>
    </tr>
  );
});
