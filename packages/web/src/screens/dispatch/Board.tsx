import { Badge, Button, Group, NativeSelect, Paper, Stack, Text, Textarea, Title } from '@mantine/core';
import './dispatch.css';
import {
  createContext,
  memo,
  useCallback,
  useContext,
  useDeferredValue,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
  type FormEvent,
} from 'react';
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
import { londonDay, londonTime, londonWhen } from '../../lib/time.ts';
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

  // From the board's lists, not the board: a car's new position (a new board with the same
  // visits) must not make every visit row and marker compare again.
  // The visits deferred (drawn in an interruptible render after the urgent ones): a board read
  // every few seconds changes many of them, and drawing those must not hold up a car's new
  // position, which comes as an urgent patch of the cars alone.
  const boardVisits = useDeferredValue(board.data?.visits);
  const boardVehicles = board.data?.vehicles;
  const visits = useMemo(
    () =>
      (boardVisits ?? [])
        .filter((v) => OPEN_VISIT.has(v.status))
        .sort((a, b) => a.deadlineMs - b.deadlineMs || (a.visitId < b.visitId ? -1 : 1)),
    [boardVisits],
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
      [...(boardVehicles ?? [])].sort(
        (a, b) =>
          VEHICLE_STATUS_ORDER.indexOf(a.status) - VEHICLE_STATUS_ORDER.indexOf(b.status) ||
          a.callSign.localeCompare(b.callSign),
      ),
    [boardVehicles],
  );
  const carsById = useMemo(() => new Map(vehicles.map((v) => [v.vehicleId, v])), [vehicles]);
  const visitsById = useMemo(() => new Map(visits.map((v) => [v.visitId, v])), [visits]);
  // The cars for a choice by hand and the clock for the countdowns: each read by the few parts
  // that show them, so neither draws every row again when it changes.
  const [carsStore] = useState(() => new Kept<Vehicle[]>([]));
  const [clockStore] = useState(() => new Kept<number>(now));
  useEffect(() => carsStore.set(vehicles), [carsStore, vehicles]);
  useEffect(() => clockStore.set(now), [clockStore, now]);
  const refetch = board.refetch;
  const onDone = useCallback(() => refetch(), [refetch]);
  // Times are worded with their date only on another UK day: rows compare the day, not the minute.
  const today = londonDay(now);
  const nowDay = useMemo(
    () => now,
    // `now` counts only through `today`: the same value all day.
    [today],
  );
  const carBucket = Math.floor(now / 5000) * 5000;
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
        {board.isPending || (board.data && !boardVisits)
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
      {/* Plain columns, not Mantine's Grid: its context value is new on each render, and the
          board renders every second, which made React search all 500 rows for readers of it. */}
      <div className="board-columns">
        <div>
          <Stack gap="md">
            <section aria-labelledby="visits-heading">
              <Title order={2} size="h4" id="visits-heading" mb={4}>
                Visits by deadline
              </Title>
              {board.isSuccess && boardVisits && timed.length === 0 && (
                <Text data-testid="no-visits">No home visits are waiting or under way.</Text>
              )}
              <ul className="board-list" aria-label="Home visits, earliest deadline first">
                <CarsContext.Provider value={carsStore}>
                  <ClockContext.Provider value={clockStore}>
                    {timed.map(({ visit, timing }) => {
                      const car = visit.vehicleId ? carsById.get(visit.vehicleId) : undefined;
                      const best = visit.suggestions[0];
                      return (
                        <VisitRow
                          key={visit.visitId}
                          visit={visit}
                          timing={timing}
                          nowDay={nowDay}
                          carWords={car ? `${car.callSign} (${VEHICLE_STATUS_WORDS[car.status]})` : ''}
                          bestCallSign={best ? carsById.get(best.vehicleId)?.callSign : undefined}
                          canDispatch={canDispatch}
                          onDone={onDone}
                        />
                      );
                    })}
                  </ClockContext.Provider>
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
                      age={v.positionAtMs !== null ? ageText(v.positionAtMs, carBucket) : ''}
                      old={v.positionAtMs !== null && carBucket - v.positionAtMs > POSITION_OLD_AFTER_MS}
                      nowDay={nowDay}
                      visit={v.visitId ? visitsById.get(v.visitId) : undefined}
                    />
                  ))}
                </tbody>
              </table>
            </section>
          </Stack>
        </div>
        <div>
          <section aria-labelledby="map-heading" className="board-map-section">
            <Title order={2} size="h4" id="map-heading" mb={4}>
              Map
            </Title>
            <DispatchMap visits={timed} vehicles={vehicles} sites={board.data?.sites ?? []} />
          </section>
        </div>
      </div>
      <Text size="sm" c="dimmed">
        States: {Object.values(TIMING_WORDS).join(', ')}. Arrival times are estimates: straight-line distance
        with a road factor, plus the time to finish a current visit. Times are UK time.
      </Text>
    </Stack>
  );
}

function suggestionWords(s: Suggestion, callSign: string | undefined, nowDay: number): string {
  return `${callSign ?? 'A car'}: arrives about ${londonWhen(s.etaMs, nowDay)} (${s.distanceKm.toFixed(1)} km)${s.meetsDeadline ? ', within the deadline' : ', after the deadline'}`;
}

/**
 * A value that changes while the board stays up, read through `useSyncExternalStore` by only the
 * parts that show it: a context holding it never changes, so a change draws none of the rows again.
 */
class Kept<T> {
  private readonly listeners = new Set<() => void>();
  constructor(private value: T) {}
  readonly get = (): T => this.value;
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
  set(value: T): void {
    if (Object.is(value, this.value)) return;
    this.value = value;
    for (const listener of this.listeners) listener();
  }
}

/** Every car, for choosing one by hand (read only by an open choice). */
const CarsContext = createContext<Kept<Vehicle[]>>(new Kept<Vehicle[]>([]));
/** The board's clock (server time), read by each countdown: a second passing redraws the badges only. */
const ClockContext = createContext<Kept<number>>(new Kept<number>(0));

/** A visit's deadline badge with the time left, drawn again only when what it shows changes. */
const Countdown = memo(function Countdown({ timing, deadlineMs }: { timing: Timing; deadlineMs: number }) {
  const clock = useContext(ClockContext);
  const remainingSeconds = useSyncExternalStore(clock.subscribe, () =>
    shownRemaining(deadlineMs, clock.get()),
  );
  return <TimingBadge timing={timing} remainingSeconds={remainingSeconds} />;
});

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
  /** An instant of today (UK): times on another day are worded with their date. */
  nowDay: number;
  /** The allocated car's call sign and status in words, or ''. */
  carWords: string;
  /** The suggested car's call sign. */
  bestCallSign: string | undefined;
  canDispatch: boolean;
  onDone: () => Promise<unknown>;
}

/** One visit: its deadline state, where, why, the car (allocated or suggested) and the actions. */
const VisitRow = memo(function VisitRow({
  visit,
  timing,
  nowDay: now,
  carWords,
  bestCallSign,
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
          <Countdown timing={timing} deadlineMs={visit.deadlineMs} />{' '}
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
            {carWords ? `: ${carWords}` : ''}
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
            ? `Suggested: ${suggestionWords(best, bestCallSign, now)}${best.reason ? ` — ${best.reason}` : ''}`
            : 'No car can be suggested: none is available with a crew on shift.'}
        </Text>
      )}
      {canDispatch && waiting && (
        <Group gap="xs" mt={4}>
          {best && bestCallSign && (
            <Button
              size="compact-sm"
              loading={busy}
              onClick={() => void run(() => allocate(visit.visitId, best.vehicleId))}
              aria-label={`Allocate ${bestCallSign} to the visit at ${where}`}
            >
              Allocate {bestCallSign}
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
  const carsStore = useContext(CarsContext);
  const cars = useSyncExternalStore(carsStore.subscribe, carsStore.get);
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
  age,
  old,
  nowDay,
  visit,
}: {
  car: Vehicle;
  /** The position's age in words ('' without one). */
  age: string;
  old: boolean;
  nowDay: number;
  visit: Visit | undefined;
}) {
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
        {car.statusAtMs !== null && ` since ${londonWhen(car.statusAtMs, nowDay)}`}
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
              {age}
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
