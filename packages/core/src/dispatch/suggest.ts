import { ValidationError, type FieldIssue } from '../errors.ts';
import { greatCircleKm } from '../directory/search.ts';
import { formatLondonTime, type TimingStatus } from '../queue/priority.ts';

/**
 * Home-visit dispatch (C7): car statuses, visit outcomes, and which car to suggest for a visit. Every
 * instant is UTC epoch milliseconds given by the caller (the core reads no clock).
 *
 * The estimate is deliberately simple and explainable to a dispatcher: straight-line (great-circle)
 * distance times a road factor, driven at an average speed, started when the car finishes what it is
 * doing. It is a suggestion: the dispatcher allocates.
 */

export const VEHICLE_STATUSES = [
  'available',
  'allocated',
  'travelling',
  'on_scene',
  'leaving',
  'back_at_base',
  'off_duty',
] as const;
export type VehicleStatus = (typeof VEHICLE_STATUSES)[number];

export const VEHICLE_STATUS_LABELS: Record<VehicleStatus, string> = {
  available: 'Available',
  allocated: 'Allocated',
  travelling: 'Travelling',
  on_scene: 'On scene',
  leaving: 'Leaving',
  back_at_base: 'Back at base',
  off_duty: 'Off duty',
};

/** Statuses in which the car is working a visit: it can take another only after finishing it. */
export const BUSY_VEHICLE_STATUSES: readonly VehicleStatus[] = ['allocated', 'travelling', 'on_scene'];

export const VISIT_OUTCOMES = ['seen', 'not_at_home', 'converted_to_ambulance', 'admitted'] as const;
export type VisitOutcome = (typeof VISIT_OUTCOMES)[number];

export const VISIT_OUTCOME_LABELS: Record<VisitOutcome, string> = {
  seen: 'Seen',
  not_at_home: 'Not at home',
  converted_to_ambulance: 'Converted to ambulance',
  admitted: 'Admitted',
};

/**
 * Roads are longer than the straight line: 1.4 is the usual ratio of road to straight-line distance
 * for journeys of a few to a few tens of kilometres in Britain.
 */
export const ROAD_FACTOR = 1.4;
/** A car's average speed over a visit journey, mixing town and country roads. */
export const AVERAGE_SPEED_KMH = 40;
/** How long a crew is taken to spend with a patient when the caller knows no better. */
export const ON_SCENE_MINUTES = 30;
/** A visit is at risk when less than this is left before its deadline. */
export const VISIT_AT_RISK_MINUTES = 30;
/** A position older than this is named in the suggestion's reason: the car may have moved. */
export const STALE_POSITION_MINUTES = 10;

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

export interface CarForSuggestion {
  vehicleId: string;
  callSign: string;
  status: VehicleStatus;
  /** Last known position, and when it was reported. */
  lat: number;
  lon: number;
  positionAtMs: number;
  /** When the car will have finished its current visit; null when it is free now. */
  busyUntilMs: number | null;
  /** Where it will be then (the current visit's address); its last position when absent. */
  freeAt?: { lat: number; lon: number } | null;
  /** A driver and a clinician are on shift on the car (rota `crewOf(...).available`). */
  crewOnShift: boolean;
}

export interface VisitForSuggestion {
  visitId: string;
  lat: number;
  lon: number;
  deadlineMs: number;
  /** Clinical priority: lower is more urgent. Orders visits with equal deadlines. */
  priority: number;
}

export interface EstimateOptions {
  roadFactor?: number;
  averageSpeedKmh?: number;
}

export interface SuggestOptions extends EstimateOptions {
  /** Only the best this many (the board shows three): the others' reasons are never worded. */
  limit?: number;
}

export interface CarSuggestion {
  vehicleId: string;
  callSign: string;
  /** Estimated arrival at the visit, as an instant. */
  etaMs: number;
  /** Road distance estimate from where the car starts the journey (straight line × road factor). */
  distanceKm: number;
  meetsDeadline: boolean;
  /** Plain words for the dispatcher: free or busy, how far, how long, against the deadline. */
  reason: string;
}

function optionsOf(opts: EstimateOptions | undefined): { roadFactor: number; averageSpeedKmh: number } {
  const roadFactor = opts?.roadFactor ?? ROAD_FACTOR;
  const averageSpeedKmh = opts?.averageSpeedKmh ?? AVERAGE_SPEED_KMH;
  const issues: FieldIssue[] = [];
  if (!(Number.isFinite(roadFactor) && roadFactor >= 1 && roadFactor <= 5))
    issues.push({ path: 'roadFactor', message: 'road factor must be between 1 and 5' });
  if (!(Number.isFinite(averageSpeedKmh) && averageSpeedKmh >= 5 && averageSpeedKmh <= 130))
    issues.push({ path: 'averageSpeedKmh', message: 'average speed must be between 5 and 130 km/h' });
  if (issues.length > 0) throw new ValidationError(issues);
  return { roadFactor, averageSpeedKmh };
}

// The checks run for every car of every suggestion: field paths are only put into words when wrong.
function checkPoint(lat: number, lon: number, prefix: () => string, issues: FieldIssue[]): void {
  if (!(Number.isFinite(lat) && lat >= -90 && lat <= 90))
    issues.push({ path: `${prefix()}.lat`, message: 'latitude must be between -90 and 90' });
  if (!(Number.isFinite(lon) && lon >= -180 && lon <= 180))
    issues.push({ path: `${prefix()}.lon`, message: 'longitude must be between -180 and 180' });
}

function checkInstant(ms: number | null, path: () => string, issues: FieldIssue[]): void {
  if (ms !== null && !(Number.isInteger(ms) && ms >= 0 && ms <= 8.64e15))
    issues.push({ path: path(), message: `${path()} must be a time (whole epoch milliseconds)` });
}

function checkCar(car: CarForSuggestion, i: number, issues: FieldIssue[]): void {
  const prefix = () => `cars.${i}`;
  checkPoint(car.lat, car.lon, prefix, issues);
  if (car.freeAt) checkPoint(car.freeAt.lat, car.freeAt.lon, () => `${prefix()}.freeAt`, issues);
  checkInstant(car.positionAtMs, () => `${prefix()}.positionAtMs`, issues);
  checkInstant(car.busyUntilMs, () => `${prefix()}.busyUntilMs`, issues);
  if (!(VEHICLE_STATUSES as readonly string[]).includes(car.status))
    issues.push({ path: `${prefix()}.status`, message: 'status is not a known car status' });
}

function checkVisit(visit: VisitForSuggestion, nowMs: number, issues: FieldIssue[]): void {
  checkPoint(visit.lat, visit.lon, () => 'visit', issues);
  checkInstant(visit.deadlineMs, () => 'visit.deadlineMs', issues);
  checkInstant(nowMs, () => 'nowMs', issues);
}

/**
 * When the car will be free: its `busyUntilMs`; for a car working a visit whose finish the caller
 * did not give, a full time on scene from now (never "free now": that would send a busy crew first).
 */
function freeFromMs(car: CarForSuggestion, nowMs: number): number {
  if (car.busyUntilMs !== null) return Math.max(nowMs, car.busyUntilMs);
  return BUSY_VEHICLE_STATUSES.includes(car.status) ? nowMs + ON_SCENE_MINUTES * MINUTE_MS : nowMs;
}

/** Where the car starts its journey to the next visit, and when. */
function journeyStart(car: CarForSuggestion, nowMs: number): { lat: number; lon: number; atMs: number } {
  const atMs = freeFromMs(car, nowMs);
  const from = atMs > nowMs && car.freeAt ? car.freeAt : car;
  return { lat: from.lat, lon: from.lon, atMs };
}

/** Straight-line distance × road factor, in km. */
export function roadDistanceKm(
  from: { lat: number; lon: number },
  to: { lat: number; lon: number },
  opts?: EstimateOptions,
): number {
  const { roadFactor } = optionsOf(opts);
  return (
    greatCircleKm({ latitude: from.lat, longitude: from.lon }, { latitude: to.lat, longitude: to.lon }) *
    roadFactor
  );
}

/** Driving time for a road distance at the average speed, in whole milliseconds (rounded up). */
export function travelMs(roadKm: number, opts?: EstimateOptions): number {
  const { averageSpeedKmh } = optionsOf(opts);
  return Math.ceil((roadKm / averageSpeedKmh) * HOUR_MS);
}

/**
 * When the car would reach the visit: it finishes its current visit (`busyUntilMs`, or now if free
 * or overrunning), then drives there from where it then is.
 */
export function estimateArrivalMs(
  car: CarForSuggestion,
  visit: Pick<VisitForSuggestion, 'lat' | 'lon'>,
  nowMs: number,
  opts?: EstimateOptions,
): number {
  const start = journeyStart(car, nowMs);
  return start.atMs + travelMs(roadDistanceKm(start, visit, opts), opts);
}

/**
 * When a car working a visit will be free: travelling or allocated to it, the drive there plus the
 * time on scene; on scene since `statusSinceMs`, that plus the time on scene (now if overrunning).
 * Null for a car that is not working a visit. The server gives the result as `busyUntilMs`, with the
 * current visit's address as `freeAt`.
 */
export function estimateBusyUntilMs(
  car: { status: VehicleStatus; statusSinceMs: number; lat: number; lon: number },
  currentVisit: { lat: number; lon: number } | null,
  nowMs: number,
  opts?: EstimateOptions & { onSceneMinutes?: number },
): number | null {
  const onSceneMs = (opts?.onSceneMinutes ?? ON_SCENE_MINUTES) * MINUTE_MS;
  switch (car.status) {
    case 'allocated':
    case 'travelling':
      if (!currentVisit) return nowMs + onSceneMs;
      return nowMs + travelMs(roadDistanceKm(car, currentVisit, opts), opts) + onSceneMs;
    case 'on_scene':
      return Math.max(nowMs, car.statusSinceMs + onSceneMs);
    case 'available':
    case 'leaving':
    case 'back_at_base':
    case 'off_duty':
      return null;
  }
}

// Clock words are wanted for hundreds of cars per visit and hundreds of visits per board: worded
// once per minute (through Intl, which is slow) and remembered; emptied when large (no answer changes).
const clockWordsCache = new Map<number, string>();
function clockWords(ms: number): string {
  const minute = Math.floor(ms / MINUTE_MS);
  let words = clockWordsCache.get(minute);
  if (words === undefined) {
    if (clockWordsCache.size > 10_000) clockWordsCache.clear();
    words = formatLondonTime(minute * MINUTE_MS);
    clockWordsCache.set(minute, words);
  }
  return words;
}

function minutesWords(ms: number): string {
  const minutes = Math.ceil(ms / MINUTE_MS);
  return minutes === 1 ? '1 min' : `${minutes} min`;
}

function reasonFor(
  car: CarForSuggestion,
  nowMs: number,
  distanceKm: number,
  etaMs: number,
  deadlineMs: number,
): string {
  const freeAt = freeFromMs(car, nowMs);
  const parts = [
    freeAt === nowMs
      ? 'free now,'
      : car.busyUntilMs === null
        ? `busy (finish not known, taken as ${clockWords(freeAt)}), then`
        : `busy until ${clockWords(freeAt)}, then`,
    `${distanceKm.toFixed(1)} km by road: arrives about ${clockWords(etaMs)}`,
  ];
  const slack = deadlineMs - etaMs;
  parts.push(
    slack >= 0
      ? `(${minutesWords(slack)} before the deadline)`
      : `(${minutesWords(-slack)} after the deadline)`,
  );
  const age = nowMs - car.positionAtMs;
  if (age > STALE_POSITION_MINUTES * MINUTE_MS) parts.push(`; position ${minutesWords(age)} old`);
  return parts.join(' ').replace(' ;', ';');
}

/** Whether a car may be offered at all: its crew is on shift and it is not off duty. */
export function isDispatchable(car: Pick<CarForSuggestion, 'status' | 'crewOnShift'>): boolean {
  return car.crewOnShift && car.status !== 'off_duty';
}

/**
 * The cars that could go to the visit, best first. Cars whose crew is not on shift, and cars off
 * duty, are left out. Order: cars that arrive by the deadline first; then the earliest arrival
 * (including the time to finish a current visit); then a car free now before a busy one; then the
 * shorter drive; then call sign and vehicle id, so every node suggests the same car.
 */
export function suggestCars(
  visit: VisitForSuggestion,
  cars: readonly CarForSuggestion[],
  nowMs: number,
  opts?: SuggestOptions,
): CarSuggestion[] {
  const options = optionsOf(opts);
  const issues: FieldIssue[] = [];
  checkVisit(visit, nowMs, issues);
  cars.forEach((car, i) => checkCar(car, i, issues));
  if (issues.length > 0) throw new ValidationError(issues);
  const to = { latitude: visit.lat, longitude: visit.lon };
  const ranked = cars.filter(isDispatchable).map((car) => {
    const start = journeyStart(car, nowMs);
    const distanceKm = greatCircleKm({ latitude: start.lat, longitude: start.lon }, to) * options.roadFactor;
    const etaMs = start.atMs + Math.ceil((distanceKm / options.averageSpeedKmh) * HOUR_MS);
    return { car, free: start.atMs === nowMs, etaMs, distanceKm, meetsDeadline: etaMs <= visit.deadlineMs };
  });
  ranked.sort(
    (a, b) =>
      Number(b.meetsDeadline) - Number(a.meetsDeadline) ||
      a.etaMs - b.etaMs ||
      Number(b.free) - Number(a.free) ||
      a.distanceKm - b.distanceKm ||
      cmp(a.car.callSign, b.car.callSign) ||
      cmp(a.car.vehicleId, b.car.vehicleId),
  );
  const best = opts?.limit === undefined ? ranked : ranked.slice(0, Math.max(0, opts.limit));
  return best.map((r) => ({
    vehicleId: r.car.vehicleId,
    callSign: r.car.callSign,
    etaMs: r.etaMs,
    distanceKm: r.distanceKm,
    meetsDeadline: r.meetsDeadline,
    reason: reasonFor(r.car, nowMs, r.distanceKm, r.etaMs, visit.deadlineMs),
  }));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A visit's state against its deadline: breached after it, at risk within `atRiskMinutes` of it
 * (the deadline instant itself is still on time or at risk, as for the CAS queue).
 */
export function visitTiming(
  deadlineMs: number,
  nowMs: number,
  atRiskMinutes = VISIT_AT_RISK_MINUTES,
): TimingStatus {
  const remainingMs = deadlineMs - nowMs;
  if (remainingMs < 0) return 'breached';
  if (remainingMs < atRiskMinutes * MINUTE_MS) return 'at_risk';
  return 'on_time';
}

/** The visits queue's order: earliest deadline, then the more urgent priority, then visit id. */
export function compareVisits(
  a: Pick<VisitForSuggestion, 'visitId' | 'deadlineMs' | 'priority'>,
  b: Pick<VisitForSuggestion, 'visitId' | 'deadlineMs' | 'priority'>,
): number {
  return a.deadlineMs - b.deadlineMs || a.priority - b.priority || cmp(a.visitId, b.visitId);
}
