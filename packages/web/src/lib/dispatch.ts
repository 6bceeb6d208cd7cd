import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { timingAt, type Timing } from '../components/Timing.tsx';
import { api } from './api.ts';
import type { LiveState } from './live.ts';

/**
 * Home visits and dispatch (C7) as the screens need them: every call to the visit, vehicle, board and
 * crew routes of CONTRACT-17 and the JSON they answer with, read in one place (`readBoard`,
 * `readCrew`) so a difference with the server is mended here and not in each screen. Times are read
 * whether the server sends epoch milliseconds (`deadlineMs`) or ISO text (`deadline`).
 */

export const VEHICLE_STATUS_ORDER = [
  'available',
  'allocated',
  'travelling',
  'on_scene',
  'leaving',
  'back_at_base',
  'off_duty',
] as const;
export type VehicleStatus = (typeof VEHICLE_STATUS_ORDER)[number];

export const VEHICLE_STATUS_WORDS: Record<VehicleStatus, string> = {
  available: 'Available',
  allocated: 'Allocated',
  travelling: 'Travelling',
  on_scene: 'On scene',
  leaving: 'Leaving',
  back_at_base: 'Back at base',
  off_duty: 'Off duty',
};

export const VISIT_OUTCOME_ORDER = ['seen', 'not_at_home', 'converted_to_ambulance', 'admitted'] as const;
export type VisitOutcome = (typeof VISIT_OUTCOME_ORDER)[number];

export const VISIT_OUTCOME_WORDS: Record<VisitOutcome, string> = {
  seen: 'Seen and treated at home',
  not_at_home: 'Not at home',
  converted_to_ambulance: 'Converted to an ambulance (999 handover)',
  admitted: 'Admitted to hospital',
};

export const VISIT_STATUS_WORDS: Record<string, string> = {
  requested: 'Waiting for a car',
  waiting: 'Waiting for a car',
  allocated: 'Car allocated',
  travelling: 'Car travelling',
  on_scene: 'Crew on scene',
  leaving: 'Crew leaving',
  completed: 'Outcome recorded',
  outcome_recorded: 'Outcome recorded',
  cancelled: 'Cancelled',
  reconciliation: 'Allocated twice: to decide',
};

export interface Suggestion {
  vehicleId: string;
  etaMs: number;
  distanceKm: number;
  meetsDeadline: boolean;
  reason: string;
}

export interface Visit {
  visitId: string;
  caseId: string;
  status: string;
  reason: string;
  /** The clinician's "home visit within N hours". */
  withinHours: number | null;
  priority: string;
  deadlineMs: number;
  requestedAtMs: number;
  siteId: string | null;
  lat: number | null;
  lon: number | null;
  /** One line: the address lines and postcode joined. */
  address: string;
  vehicleId: string | null;
  /** The server's timing when it sends one; else worked out here from the deadline. */
  timing: Timing | null;
  suggestions: Suggestion[];
  /** Only for the allocated car's crew and clinicians (the server leaves it out for others). */
  accessInstructions: string | null;
  patientName: string | null;
  phone: string | null;
  outcome: string | null;
  /** Open double-allocation items about this visit (decided in the reconciliation list). */
  conflicts: string[];
}

export interface Vehicle {
  vehicleId: string;
  callSign: string;
  registration: string;
  status: VehicleStatus;
  statusAtMs: number | null;
  visitId: string | null;
  lat: number | null;
  lon: number | null;
  positionAtMs: number | null;
  accuracyM: number | null;
  baseSiteId: string | null;
  baseLat: number | null;
  baseLon: number | null;
  driver: string | null;
  clinician: string | null;
  /** Both of the crew on shift: only then is the car offered. */
  available: boolean;
}

export interface MapSite {
  siteId: string;
  name: string;
  lat: number;
  lon: number;
}

export interface Board {
  nowMs: number;
  visits: Visit[];
  vehicles: Vehicle[];
  sites: MapSite[];
  /** Double allocations not yet decided (the reconciliation list), when the server says. */
  openItems: number;
}

export interface CrewView {
  nowMs: number;
  vehicle: Vehicle | null;
  visit: Visit | null;
  /** When the car last entered each status (for the buttons' times). */
  statusTimes: Partial<Record<VehicleStatus, number>>;
  shift: { startMs: number; endMs: number } | null;
  /** Why there is no car (not on a car's shift now), in the server's words. */
  notice: string | null;
}

// ---- reading the server's answers -------------------------------------------------------------

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** An instant from `<key>Ms` (a number) or `<key>` / `<key>At` (ISO text or a number). */
export function instantOf(o: Json, key: string): number | null {
  for (const k of [`${key}Ms`, `${key}AtMs`, key, `${key}At`]) {
    const v = o[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string') {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) return t;
    }
  }
  return null;
}

function addressText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (!isObject(v)) return 'Address not given';
  const lines = Array.isArray(v.lines) ? v.lines.filter((l): l is string => typeof l === 'string') : [];
  const line = str(v.line) ?? str(v.text);
  return [...lines, ...(line ? [line] : []), str(v.postcode)].filter((s) => s && s.trim()).join(', ');
}

function person(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v)) return str(v.userName) ?? str(v.displayName) ?? str(v.name);
  return null;
}

const TIMINGS: readonly string[] = ['on_time', 'at_risk', 'breached'];

export function readVisit(o: Json): Visit {
  const suggestions = Array.isArray(o.suggestions) ? o.suggestions.filter(isObject) : [];
  const position = isObject(o.position) ? o.position : o;
  return {
    visitId: String(o.visitId),
    caseId: str(o.caseId) ?? '',
    status: str(o.status) ?? 'requested',
    reason: str(o.reason) ?? '',
    withinHours: num(o.withinHours),
    priority: String(o.priority ?? ''),
    deadlineMs: instantOf(o, 'deadline') ?? 0,
    requestedAtMs: instantOf(o, 'requestedAt') ?? instantOf(o, 'requested') ?? instantOf(o, 'created') ?? 0,
    siteId: str(o.siteId),
    lat: num(position.lat),
    lon: num(position.lon),
    address:
      typeof o.address === 'string' && typeof o.postcode === 'string' && !o.address.includes(o.postcode)
        ? `${o.address}, ${o.postcode}`
        : addressText(o.address ?? o.postcode),
    vehicleId: str(o.vehicleId),
    timing: typeof o.timing === 'string' && TIMINGS.includes(o.timing) ? (o.timing as Timing) : null,
    suggestions: suggestions.map((s) => ({
      vehicleId: String(s.vehicleId),
      etaMs: instantOf(s, 'eta') ?? 0,
      distanceKm: num(s.distanceKm) ?? 0,
      meetsDeadline: s.meetsDeadline === true,
      reason: str(s.reason) ?? '',
    })),
    accessInstructions: str(o.accessInstructions),
    patientName: str(o.patientName),
    phone: str(o.phone) ?? str(o.callbackNumber),
    outcome: isObject(o.outcome) ? str(o.outcome.outcome) : str(o.outcome),
    conflicts: Array.isArray(o.conflicts)
      ? o.conflicts.filter((c): c is string => typeof c === 'string')
      : [],
  };
}

export function readVehicle(o: Json): Vehicle {
  const crew = isObject(o.crew) ? o.crew : {};
  const position = isObject(o.position) ? o.position : o;
  const status = str(o.status) as VehicleStatus | null;
  return {
    vehicleId: String(o.vehicleId),
    callSign: str(o.callSign) ?? String(o.vehicleId),
    registration: str(o.registration) ?? '',
    status: status && status in VEHICLE_STATUS_WORDS ? status : 'off_duty',
    statusAtMs: instantOf(o, 'statusAt') ?? instantOf(o, 'statusChanged'),
    visitId: str(o.visitId),
    lat: num(position.lat),
    lon: num(position.lon),
    positionAtMs: instantOf(position, 'positionAt') ?? (position !== o ? instantOf(position, 'at') : null),
    accuracyM: num(position.accuracyM),
    baseSiteId: str(o.baseSiteId),
    baseLat: num(o.baseLat),
    baseLon: num(o.baseLon),
    driver: person(crew.driver),
    clinician: person(crew.clinician),
    available: o.available !== false && o.crewOnShift !== false,
  };
}

export function readBoard(raw: unknown, receivedAtMs: number): Board {
  const o = isObject(raw) ? raw : {};
  const list = (v: unknown) => (Array.isArray(v) ? v.filter(isObject) : []);
  return {
    nowMs: instantOf(o, 'now') ?? receivedAtMs,
    visits: list(o.visits).map(readVisit),
    vehicles: list(o.vehicles ?? o.cars).map(readVehicle),
    openItems: num(o.openItems) ?? 0,
    sites: list(o.sites).flatMap((s) => {
      const lat = num(s.lat);
      const lon = num(s.lon);
      return lat === null || lon === null
        ? []
        : [{ siteId: String(s.siteId), name: str(s.name) ?? 'Site', lat, lon }];
    }),
  };
}

export function readCrew(raw: unknown, receivedAtMs: number): CrewView {
  const o = isObject(raw) ? raw : {};
  const times: Partial<Record<VehicleStatus, number>> = {};
  const history = Array.isArray(o.statusTimes) ? o.statusTimes.filter(isObject) : [];
  for (const h of history) {
    const s = str(h.status) as VehicleStatus | null;
    const at = instantOf(h, 'at');
    if (s && at !== null && s in VEHICLE_STATUS_WORDS) times[s] = at;
  }
  if (isObject(o.statusTimes) && !Array.isArray(o.statusTimes))
    for (const [s, v] of Object.entries(o.statusTimes)) {
      const at = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
      if (s in VEHICLE_STATUS_WORDS && Number.isFinite(at)) times[s as VehicleStatus] = at;
    }
  const shift = isObject(o.shift) ? o.shift : null;
  const vehicle = isObject(o.vehicle) ? readVehicle(o.vehicle) : isObject(o.car) ? readVehicle(o.car) : null;
  if (vehicle?.statusAtMs && times[vehicle.status] === undefined) times[vehicle.status] = vehicle.statusAtMs;
  return {
    nowMs: instantOf(o, 'now') ?? receivedAtMs,
    vehicle,
    visit: isObject(o.visit) ? readVisit(o.visit) : null,
    statusTimes: times,
    shift: shift ? { startMs: instantOf(shift, 'start') ?? 0, endMs: instantOf(shift, 'end') ?? 0 } : null,
    notice: str(o.notice),
  };
}

/** The visit's state against its deadline: the server's word when it gave one. */
export function visitTimingOf(v: Visit, nowMs: number): Timing {
  // Between reads the clock moves on: a deadline passed is breached whatever the last read said.
  if (nowMs > v.deadlineMs) return 'breached';
  if (v.timing && v.timing !== 'breached') return v.timing;
  return timingAt(v.deadlineMs, v.requestedAtMs || v.deadlineMs - 3_600_000, nowMs);
}

/** "just now", "45 s ago", "12 min ago", "2 h 05 min ago". */
export function ageText(atMs: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - atMs) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min ago`;
}

/** A position older than this is shown as old (the phone may have lost signal). */
export const POSITION_OLD_AFTER_MS = 10 * 60_000;

// ---- the map ------------------------------------------------------------------------------------

export interface MapPoint {
  lat: number;
  lon: number;
}

/**
 * A plain equirectangular projection fitted to the points: longitude is scaled by the cosine of the
 * middle latitude (so a kilometre east is as long as a kilometre north near there), the box around
 * the points is centred in the drawing with `pad` left on each side, and north is up. No tiles, no
 * network: the points are all there is. One point, or none, gets a box of about 5 km around it.
 */
export function fitProjection(
  points: readonly MapPoint[],
  width: number,
  height: number,
  pad: number,
): (p: MapPoint) => { x: number; y: number } {
  const lats = points.map((p) => p.lat);
  const lons = points.map((p) => p.lon);
  const midLat = lats.length ? (Math.min(...lats) + Math.max(...lats)) / 2 : 0;
  const k = Math.cos((midLat * Math.PI) / 180);
  const xs = lons.map((l) => l * k);
  const ys = lats;
  const MIN_SPAN = 0.045; // degrees of latitude: about 5 km
  let minX = xs.length ? Math.min(...xs) : 0;
  let maxX = xs.length ? Math.max(...xs) : 0;
  let minY = ys.length ? Math.min(...ys) : 0;
  let maxY = ys.length ? Math.max(...ys) : 0;
  if (maxX - minX < MIN_SPAN)
    [minX, maxX] = [(minX + maxX) / 2 - MIN_SPAN / 2, (minX + maxX) / 2 + MIN_SPAN / 2];
  if (maxY - minY < MIN_SPAN)
    [minY, maxY] = [(minY + maxY) / 2 - MIN_SPAN / 2, (minY + maxY) / 2 + MIN_SPAN / 2];
  const scale = Math.min((width - 2 * pad) / (maxX - minX), (height - 2 * pad) / (maxY - minY));
  const offsetX = (width - scale * (maxX - minX)) / 2;
  const offsetY = (height - scale * (maxY - minY)) / 2;
  return (p) => ({
    x: offsetX + (p.lon * k - minX) * scale,
    y: height - offsetY - (p.lat - minY) * scale,
  });
}

// ---- live updates ----------------------------------------------------------------------------------

/** A message of the stream: a case's (case id and type) or a visit's or car's (type and subject). */
export interface DispatchEvent {
  name: string;
  caseId: string | null;
  type: string | null;
  /** The event's subject for a dispatch event (`vehicle:<id>`, `vehicle-position:<id>`, `visit:<id>`). */
  subject: string | null;
  /** A car's new position, carried by its `vehicle.position_reported` message (to readers of the cars). */
  position: LivePosition | null;
}

/** What a position message carries: the car, where, how accurately, and when (the server's time). */
export interface LivePosition {
  vehicleId: string;
  lat: number;
  lon: number;
  accuracyM: number | null;
  positionAtMs: number;
}

function readLivePosition(v: unknown): LivePosition | null {
  if (!isObject(v)) return null;
  const vehicleId = str(v.vehicleId);
  const lat = num(v.lat);
  const lon = num(v.lon);
  const positionAtMs = num(v.positionAtMs);
  if (vehicleId === null || lat === null || lon === null || positionAtMs === null) return null;
  return { vehicleId, lat, lon, accuracyM: num(v.accuracyM), positionAtMs };
}

/**
 * Follows the server-sent events for dispatch (the stream `/api/v1/queue/stream?follow=true` with its
 * `dispatch` events, and the `case` events: a case closing closes its visit). Each event calls
 * `onChange`; a dropped stream re-reads once when it comes back. Users without `queue.read` cannot
 * open the stream: `enabled` false leaves it closed (the screen then reads on a timer).
 */
export function useDispatchEvents(enabled: boolean, onChange: (event: DispatchEvent) => void): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const handler = useRef(onChange);
  handler.current = onChange;
  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource('/api/v1/queue/stream?follow=true', { withCredentials: true });
    let dropped = false;
    source.addEventListener('open', () => {
      setState('live');
      if (dropped)
        handler.current({ name: 'reconnect', caseId: null, type: null, subject: null, position: null });
      dropped = false;
    });
    source.addEventListener('error', () => {
      dropped = true;
      setState('reconnecting');
    });
    for (const name of ['dispatch', 'visit', 'vehicle', 'rota', 'case'])
      source.addEventListener(name, (message) => {
        let data: Json = {};
        try {
          const parsed: unknown = JSON.parse((message as MessageEvent<string>).data);
          if (isObject(parsed)) data = parsed;
        } catch {
          // Unreadable: still a change, read the board.
        }
        handler.current({
          name,
          caseId: str(data.caseId),
          type: str(data.type),
          subject: str(data.subject),
          position: readLivePosition(data.position),
        });
      });
    return () => source.close();
  }, [enabled]);
  return state;
}

/**
 * Calls `read` at most once at a time: a change while a read is running asks for exactly one more
 * read after it, so the last change is never dropped and a burst of changes costs two reads.
 */
export function coalesced(read: () => Promise<unknown>): () => void {
  let running = false;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    void read()
      .catch(() => undefined)
      .finally(() => {
        running = false;
        if (again) run();
      });
  };
  return run;
}

export const BOARD_KEY = ['dispatch', 'board'] as const;

/**
 * After a car's new position the suggestions (arrival estimates) are read again with the board, at
 * most this long after: the car itself is patched at once, from the position in the stream's message
 * (or, when the message has none, a read of that one car).
 */
export const SUGGESTIONS_REREAD_MS = 2_000;

/** The board with one car replaced; a position older than the one shown is never put back. */
export function patchVehicle(board: Board, car: Vehicle): Board {
  const i = board.vehicles.findIndex((v) => v.vehicleId === car.vehicleId);
  if (i < 0) return board;
  const shown = board.vehicles[i]!;
  if ((shown.positionAtMs ?? -Infinity) > (car.positionAtMs ?? -Infinity)) return board;
  const vehicles = [...board.vehicles];
  vehicles[i] = car;
  return { ...board, vehicles };
}

/** The board with one car's position moved (as `patchVehicle`: never back in time). */
export function patchPosition(board: Board, p: LivePosition): Board {
  const shown = board.vehicles.find((v) => v.vehicleId === p.vehicleId);
  if (!shown || (shown.positionAtMs ?? -Infinity) >= p.positionAtMs) return board;
  return patchVehicle(board, {
    ...shown,
    lat: p.lat,
    lon: p.lon,
    accuracyM: p.accuracyM,
    positionAtMs: p.positionAtMs,
  });
}

/**
 * A board just read, with any car's position that the board shown holds newer (patched from a read
 * of that car while this board's read was under way) kept: a car is never drawn back in time.
 */
function keepNewerPositions(read: Board, shown: Board | undefined): Board {
  if (!shown) return read;
  const newer = new Map(shown.vehicles.map((v) => [v.vehicleId, v]));
  let changed = false;
  const vehicles = read.vehicles.map((v) => {
    const s = newer.get(v.vehicleId);
    if (!s || (s.positionAtMs ?? -Infinity) <= (v.positionAtMs ?? -Infinity)) return v;
    changed = true;
    return { ...v, lat: s.lat, lon: s.lon, positionAtMs: s.positionAtMs, accuracyM: s.accuracyM };
  });
  return changed ? { ...read, vehicles } : read;
}

/**
 * The board, read again on every dispatch or case event (coalesced) and every 15 s regardless. A
 * car's new position is patched into the board from the stream's message (one row and one marker
 * change; no read); the board's suggestions follow within SUGGESTIONS_REREAD_MS.
 */
export function useBoard(live: boolean) {
  const queryClient = useQueryClient();
  const board = useQuery({
    queryKey: BOARD_KEY,
    queryFn: async () =>
      keepNewerPositions(
        readBoard(await api<unknown>('GET', '/api/v1/dispatch/board'), Date.now()),
        queryClient.getQueryData<Board>(BOARD_KEY),
      ),
    refetchInterval: live ? 15_000 : 5_000,
  });
  const reread = useRef<() => void>(() => undefined);
  const later = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    reread.current = coalesced(() => queryClient.refetchQueries({ queryKey: BOARD_KEY, exact: true }));
    return () => {
      if (later.current) clearTimeout(later.current);
    };
  }, [queryClient]);
  const caseIds = useRef(new Set<string>());
  caseIds.current = new Set(board.data?.visits.map((v) => v.caseId));
  const state = useDispatchEvents(live, (event) => {
    // A position's subject is `vehicle-position:<id>` (the server's event), a car's `vehicle:<id>`.
    const vehicleId =
      event.type === 'vehicle.position_reported'
        ? /^vehicle(?:-position)?:(.+)$/.exec(event.subject ?? '')?.[1]
        : undefined;
    if (vehicleId) {
      const position = event.position?.vehicleId === vehicleId ? event.position : null;
      if (position) queryClient.setQueryData<Board>(BOARD_KEY, (b) => (b ? patchPosition(b, position) : b));
      else
        void api<{ vehicle?: unknown }>('GET', `/api/v1/vehicles/${encodeURIComponent(vehicleId)}`)
          .then((answer) => {
            if (!isObject(answer.vehicle)) return;
            const car = readVehicle(answer.vehicle);
            queryClient.setQueryData<Board>(BOARD_KEY, (b) => (b ? patchVehicle(b, car) : b));
          })
          .catch(() => reread.current());
      later.current ??= setTimeout(() => {
        later.current = null;
        reread.current();
      }, SUGGESTIONS_REREAD_MS);
      return;
    }
    // Most case events are about cases with no visit: only a follow-up (a visit may have been
    // requested) or a change to a case on the board is worth a read.
    if (
      event.name === 'case' &&
      event.type !== 'case.follow_up_arranged' &&
      !(event.caseId && caseIds.current.has(event.caseId))
    )
      return;
    reread.current();
  });
  return { board, state, reread: () => reread.current() };
}

// ---- commands -----------------------------------------------------------------------------------

export const allocate = (visitId: string, vehicleId: string) =>
  api('POST', `/api/v1/visits/${visitId}/allocate`, { vehicleId });

export const reallocate = (visitId: string, vehicleId: string, reason: string) =>
  api('POST', `/api/v1/visits/${visitId}/reallocate`, { vehicleId, reason });

export const crewStatus = (status: VehicleStatus) => api('POST', '/api/v1/crew/status', { status });

/** Kept or not: positions are kept at most every 15 s unless the car moved far (the server's reason). */
export const crewPosition = (p: { lat: number; lon: number; accuracyM: number }) =>
  api<{ recorded?: boolean; reason?: string }>('POST', '/api/v1/crew/position', p);

export const visitOutcome = (
  visitId: string,
  outcome: VisitOutcome,
  note: string,
  ambulanceCategory: number | null,
) =>
  api('POST', `/api/v1/visits/${visitId}/outcome`, {
    outcome,
    note,
    ...(ambulanceCategory !== null ? { ambulanceCategory } : {}),
  });

/** A case's home visits (the clinician's case page); re-read every 10 s, as dispatch moves them on. */
export function useCaseVisits(caseId: string) {
  return useQuery({
    queryKey: ['visits', 'case', caseId],
    queryFn: async () => {
      const raw = await api<{ visits?: unknown }>(
        'GET',
        `/api/v1/visits?caseId=${encodeURIComponent(caseId)}&state=all`,
      );
      return (Array.isArray(raw.visits) ? raw.visits.filter(isObject) : []).map(readVisit);
    },
    refetchInterval: 10_000,
  });
}

export const CREW_KEY = ['crew', 'me'] as const;

export function useCrew() {
  return useQuery({
    queryKey: CREW_KEY,
    queryFn: async () => readCrew(await api<unknown>('GET', '/api/v1/crew/me'), Date.now()),
    // The crew's phone has no event stream (drivers do not read the CAS queue): read every 5 s.
    refetchInterval: 5_000,
  });
}
