import { z } from 'zod';
import { ROLES, type Role } from '../accounts/roles.ts';
import { ValidationError } from '../errors.ts';
import { zodIssuesToFieldIssues } from '../ledger/registry.ts';
import {
  WALL_CLOCK_TIME,
  addDays,
  datesCovering,
  londonWallToMs,
  minutesOfDay,
} from '../directory/opening-times.ts';

/**
 * The rota (C12): who works in which role, where, from when to when. Every instant is UTC epoch
 * milliseconds given by the caller (the core reads no clock); a shift covers [startMs, endMs), so a
 * shift ending at 08:00 and the next starting at 08:00 leave no gap and do not overlap.
 */

export const ROTA_LOCATION_KINDS = ['site', 'car', 'cas', 'centre'] as const;
export type RotaLocationKind = (typeof ROTA_LOCATION_KINDS)[number];

export const ROTA_LOCATION_LABELS: Record<RotaLocationKind, string> = {
  site: 'Site',
  car: 'Car',
  cas: 'Clinical assessment service',
  centre: 'Treatment centre',
};

/** Where a shift is worked. The CAS is one place per provider (id null); the others name theirs. */
export interface RotaLocation {
  kind: RotaLocationKind;
  id: string | null;
}

export interface Shift {
  shiftId: string;
  userId: string;
  userName: string;
  role: Role;
  location: RotaLocation;
  startMs: number;
  endMs: number;
}

export type ShiftInput = Omit<Shift, 'shiftId'>;

/** The longest shift the rota takes: anything longer is a typing mistake (a wrong date), not a shift. */
export const MAX_SHIFT_HOURS = 24;
const HOUR_MS = 3_600_000;

/** Roles that make a car's crew: a driver and one clinician. */
export const CAR_CLINICIAN_ROLES: readonly Role[] = ['clinician', 'prescriber'];
export const CAR_DRIVER_ROLES: readonly Role[] = ['driver'];

const instant = (name: string) =>
  z
    .number({ error: `${name} must be a time (epoch milliseconds)` })
    .int(`${name} must be whole milliseconds`)
    .min(0, `${name} must not be before 1970`)
    .max(8.64e15, `${name} is out of range`);

export const rotaLocationSchema = z
  .strictObject({
    kind: z.enum(ROTA_LOCATION_KINDS, {
      error: `location kind must be one of ${ROTA_LOCATION_KINDS.join(', ')}`,
    }),
    id: z.string().trim().min(1, 'location id must not be empty').max(128).nullable(),
  })
  .superRefine((loc, ctx) => {
    if (loc.kind === 'cas' && loc.id !== null)
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'the CAS has no location id: leave it empty' });
    if (loc.kind !== 'cas' && loc.id === null)
      ctx.addIssue({
        code: 'custom',
        path: ['id'],
        message: `a ${loc.kind} shift must name its ${loc.kind}`,
      });
  });

/** One shift as entered on the screen or sent to the API (the shift id is given by the server). */
export const shiftInputSchema = z
  .strictObject({
    userId: z.string().trim().min(1, 'user must be given').max(128),
    userName: z.string().trim().min(1, 'user name must be given').max(200),
    role: z.enum(ROLES, { error: 'role is not a known role' }),
    location: rotaLocationSchema,
    startMs: instant('start'),
    endMs: instant('end'),
  })
  .superRefine((s, ctx) => {
    for (const problem of shiftTimeProblems(s.startMs, s.endMs))
      ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
  });

/** Problems with a shift's start and end, by field ('startMs' or 'endMs'); none when it is sound. */
export function shiftTimeProblems(startMs: number, endMs: number): { field: 'endMs'; message: string }[] {
  if (endMs <= startMs) return [{ field: 'endMs', message: 'end must be after start' }];
  if (endMs - startMs > MAX_SHIFT_HOURS * HOUR_MS)
    return [{ field: 'endMs', message: `a shift may be at most ${MAX_SHIFT_HOURS} hours long` }];
  return [];
}

/** A checked shift input, or a ValidationError naming each bad field under `prefix`. */
export function parseShiftInput(value: unknown, prefix = ''): ShiftInput {
  const r = shiftInputSchema.safeParse(value);
  if (!r.success) throw new ValidationError(zodIssuesToFieldIssues(r.error, prefix));
  return r.data;
}

export interface RotaFilter {
  role?: Role | readonly Role[];
  /** A kind alone matches every location of that kind. */
  location?: { kind: RotaLocationKind; id?: string | null };
  userId?: string;
}

function matches(shift: Shift, filter: RotaFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.userId !== undefined && shift.userId !== filter.userId) return false;
  if (filter.role !== undefined) {
    const roles: readonly Role[] = typeof filter.role === 'string' ? [filter.role] : filter.role;
    if (!roles.includes(shift.role)) return false;
  }
  if (filter.location) {
    if (shift.location.kind !== filter.location.kind) return false;
    if (filter.location.id !== undefined && shift.location.id !== filter.location.id) return false;
  }
  return true;
}

/** Whether the shift covers the instant (start inclusive, end exclusive). */
export function coversInstant(shift: Pick<Shift, 'startMs' | 'endMs'>, atMs: number): boolean {
  return shift.startMs <= atMs && atMs < shift.endMs;
}

/** The same order on every node: start, then location, role, user name and shift id. */
export function compareShifts(a: Shift, b: Shift): number {
  return (
    a.startMs - b.startMs ||
    cmp(a.location.kind, b.location.kind) ||
    cmp(a.location.id ?? '', b.location.id ?? '') ||
    cmp(a.role, b.role) ||
    cmp(a.userName, b.userName) ||
    cmp(a.shiftId, b.shiftId)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The shifts being worked at `atMs` that match the filter, in rota order. */
export function onDuty(shifts: readonly Shift[], atMs: number, filter?: RotaFilter): Shift[] {
  return shifts.filter((s) => coversInstant(s, atMs) && matches(s, filter)).sort(compareShifts);
}

/**
 * Who comes on next: for each location and role, the shifts that start soonest after `atMs` (all of
 * them when several start at the same time), in rota order. Shifts already running are not "next".
 */
export function nextOnDuty(shifts: readonly Shift[], atMs: number, filter?: RotaFilter): Shift[] {
  const soonest = new Map<string, number>();
  const later = shifts.filter((s) => s.startMs > atMs && matches(s, filter));
  for (const s of later) {
    const key = slotKey(s);
    const known = soonest.get(key);
    if (known === undefined || s.startMs < known) soonest.set(key, s.startMs);
  }
  return later.filter((s) => soonest.get(slotKey(s)) === s.startMs).sort(compareShifts);
}

function slotKey(s: Pick<Shift, 'role' | 'location'>): string {
  return `${s.location.kind}\u0000${s.location.id ?? ''}\u0000${s.role}`;
}

// ---- minimum staffing and gaps ---------------------------------------------------------------------

/**
 * At least `minimum` people in `role` at `location`; with `fromLocal`/`toLocal` ("HH:MM", UK time),
 * only during that part of each day (to at or before from runs past midnight: 20:00–08:00).
 */
export interface StaffingMinimum {
  role: Role;
  location: RotaLocation;
  minimum: number;
  fromLocal?: string;
  toLocal?: string;
}

export const staffingMinimumSchema = z
  .strictObject({
    role: z.enum(ROLES, { error: 'role is not a known role' }),
    location: rotaLocationSchema,
    minimum: z
      .number({ error: 'minimum must be a number' })
      .int('minimum must be a whole number')
      .min(0, 'minimum must not be negative')
      .max(1000, 'minimum must be at most 1000'),
    fromLocal: z.string().regex(WALL_CLOCK_TIME, 'from must be a time like 08:00').optional(),
    toLocal: z.string().regex(WALL_CLOCK_TIME, 'to must be a time like 20:00').optional(),
  })
  .superRefine((m, ctx) => {
    if ((m.fromLocal === undefined) !== (m.toLocal === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [m.fromLocal === undefined ? 'fromLocal' : 'toLocal'],
        message: 'give both from and to, or neither (all day)',
      });
  });

export interface StaffingGap {
  role: Role;
  location: RotaLocation;
  fromMs: number;
  toMs: number;
  /** Distinct people on duty throughout [fromMs, toMs). */
  onDuty: number;
  minimum: number;
}

/**
 * Where the rota falls short of each minimum within [fromMs, toMs): maximal intervals in which fewer
 * distinct people than the minimum are on duty (a person with two overlapping shifts counts once).
 * Ordered by start, then location and role.
 */
export function staffingGaps(
  shifts: readonly Shift[],
  minimums: readonly StaffingMinimum[],
  fromMs: number,
  toMs: number,
): StaffingGap[] {
  if (!(toMs > fromMs)) return [];
  const gaps: StaffingGap[] = [];
  for (const minimum of minimums) {
    if (minimum.minimum <= 0) continue;
    const relevant = shifts.filter(
      (s) =>
        s.role === minimum.role &&
        s.location.kind === minimum.location.kind &&
        (s.location.id ?? null) === (minimum.location.id ?? null) &&
        s.endMs > fromMs &&
        s.startMs < toMs,
    );
    for (const window of windowsOf(minimum, fromMs, toMs)) gaps.push(...gapsIn(relevant, minimum, window));
  }
  return gaps.sort(
    (a, b) =>
      a.fromMs - b.fromMs ||
      cmp(a.location.kind, b.location.kind) ||
      cmp(a.location.id ?? '', b.location.id ?? '') ||
      cmp(a.role, b.role),
  );
}

interface Window {
  startMs: number;
  endMs: number;
}

/** The parts of [fromMs, toMs) a minimum applies to: all of it, or each day's local window. */
function windowsOf(minimum: StaffingMinimum, fromMs: number, toMs: number): Window[] {
  if (minimum.fromLocal === undefined || minimum.toLocal === undefined)
    return [{ startMs: fromMs, endMs: toMs }];
  const opens = minutesOfDay(minimum.fromLocal);
  const closes = minutesOfDay(minimum.toLocal);
  const out: Window[] = [];
  for (const { date } of datesCovering(fromMs, toMs)) {
    const startMs = londonWallToMs(date, opens);
    const endMs = closes > opens ? londonWallToMs(date, closes) : londonWallToMs(addDays(date, 1), closes);
    const clipped = { startMs: Math.max(startMs, fromMs), endMs: Math.min(endMs, toMs) };
    if (clipped.endMs > clipped.startMs) out.push(clipped);
  }
  return out;
}

/** Sweep the shifts' starts and ends across one window, counting distinct people. */
function gapsIn(shifts: readonly Shift[], minimum: StaffingMinimum, window: Window): StaffingGap[] {
  const points = new Set<number>([window.startMs, window.endMs]);
  for (const s of shifts) {
    if (s.startMs > window.startMs && s.startMs < window.endMs) points.add(s.startMs);
    if (s.endMs > window.startMs && s.endMs < window.endMs) points.add(s.endMs);
  }
  const sorted = [...points].sort((a, b) => a - b);
  const gaps: StaffingGap[] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    const from = sorted[i]!;
    const to = sorted[i + 1]!;
    const people = new Set(shifts.filter((s) => coversInstant(s, from)).map((s) => s.userId)).size;
    if (people >= minimum.minimum) continue;
    const last = gaps[gaps.length - 1];
    if (last && last.toMs === from && last.onDuty === people) last.toMs = to;
    else
      gaps.push({
        role: minimum.role,
        location: { kind: minimum.location.kind, id: minimum.location.id ?? null },
        fromMs: from,
        toMs: to,
        onDuty: people,
        minimum: minimum.minimum,
      });
  }
  return gaps;
}

// ---- a car's crew ---------------------------------------------------------------------------------

export interface Crew {
  driver: Shift | null;
  clinician: Shift | null;
  /** Both a driver and a clinician are on shift on the car: only then is it offered for dispatch. */
  available: boolean;
}

/** Who crews the car at `atMs` (the first on the rota of each, when more than one is rostered). */
export function crewOf(vehicleId: string, shifts: readonly Shift[], atMs: number): Crew {
  const onCar = onDuty(shifts, atMs, { location: { kind: 'car', id: vehicleId } });
  const driver = onCar.find((s) => CAR_DRIVER_ROLES.includes(s.role)) ?? null;
  const clinician = onCar.find((s) => CAR_CLINICIAN_ROLES.includes(s.role)) ?? null;
  return { driver, clinician, available: driver !== null && clinician !== null };
}
