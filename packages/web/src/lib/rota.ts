import {
  ROLE_LABELS,
  ROTA_LOCATION_LABELS,
  type RotaLocation,
  type RotaLocationKind,
  type Role,
  type Shift,
} from '@holdfast/core';
import { addDays, londonWall, londonWallToMs, minutesOfDay } from '@holdfast/core/directory/opening-times';
import { useQuery } from '@tanstack/react-query';
import { api } from './api.ts';
import type { Site } from './types.ts';

/**
 * The rota (C12) as the screens need it: the rota routes of CONTRACT-17 and their answers. Shifts are
 * core's `Shift` with the person's display name; days are UK days (a shift list for "5 Dec" runs
 * from UK midnight to UK midnight, 23 or 25 hours on the days the clocks change).
 */

export interface ShiftView extends Shift {
  displayName?: string;
}

export interface StaffMember {
  userId: string;
  userName: string;
  displayName: string;
  roles: Role[];
}

export interface RotaNow {
  nowMs: number;
  onDuty: ShiftView[];
  next: ShiftView[];
}

export interface GapView {
  role: Role;
  location: RotaLocation;
  fromMs: number;
  toMs: number;
  onDuty: number;
  minimum: number;
}

export interface ImportProblem {
  line: number;
  field: string;
  message: string;
}

/** The UK calendar day an instant falls on, "2026-12-05". */
export const ukDay = (ms: number): string => londonWall(ms).date;

/** [start, end) of a UK day in epoch ms. */
export function ukDayBounds(day: string): { fromMs: number; toMs: number } {
  return { fromMs: londonWallToMs(day, 0), toMs: londonWallToMs(addDays(day, 1), 0) };
}

/**
 * A shift entered as a UK day and two UK times of day: an end at or before the start is the next
 * morning (a night shift, 20:00 to 08:00). Null when a time is not a time.
 */
export function shiftTimes(
  day: string,
  start: string,
  end: string,
): { startMs: number; endMs: number } | null {
  const s = minutesOfDay(start);
  const e = minutesOfDay(end);
  if (!/^\d{4}-\d\d-\d\d$/.test(day) || !(s >= 0 && s < 1440) || !(e >= 0 && e <= 1440)) return null;
  return {
    startMs: londonWallToMs(day, s),
    endMs: e > s ? londonWallToMs(day, e) : londonWallToMs(addDays(day, 1), e),
  };
}

export function roleWords(role: Role): string {
  return ROLE_LABELS[role] ?? role;
}

/** "Site: North Quay", "Car: NQ1", "Clinical assessment service", "Treatment centre: …". */
export function locationWords(
  location: RotaLocation,
  names: { sites?: readonly Site[]; cars?: readonly { vehicleId: string; callSign: string }[] },
): string {
  const kind = ROTA_LOCATION_LABELS[location.kind];
  if (location.kind === 'cas' || location.id === null) return kind;
  const name =
    location.kind === 'site'
      ? names.sites?.find((s) => s.siteId === location.id)?.name
      : location.kind === 'car'
        ? names.cars?.find((c) => c.vehicleId === location.id)?.callSign
        : undefined;
  return `${kind}: ${name ?? location.id}`;
}

export const locationKey = (l: RotaLocation): string => `${l.kind}:${l.id ?? ''}`;

export function useShifts(day: string) {
  return useQuery({
    queryKey: ['rota', 'shifts', day],
    queryFn: async () => {
      const { fromMs, toMs } = ukDayBounds(day);
      return (await api<{ shifts: ShiftView[] }>('GET', `/api/v1/rota/shifts?from=${fromMs}&to=${toMs}`))
        .shifts;
    },
    refetchInterval: 60_000,
  });
}

export function useRotaNow() {
  return useQuery({
    queryKey: ['rota', 'now'],
    queryFn: async () => {
      const r = await api<{ nowMs?: number; now?: string; onDuty: ShiftView[]; next: ShiftView[] }>(
        'GET',
        '/api/v1/rota/now',
      );
      return { nowMs: r.nowMs ?? (r.now ? Date.parse(r.now) : Date.now()), onDuty: r.onDuty, next: r.next };
    },
    refetchInterval: 60_000,
  });
}

export function useGaps(enabled: boolean) {
  return useQuery({
    queryKey: ['rota', 'gaps'],
    queryFn: async () => (await api<{ gaps: GapView[] }>('GET', '/api/v1/rota/gaps')).gaps,
    enabled,
    refetchInterval: 60_000,
  });
}

export function useStaff(enabled: boolean) {
  return useQuery({
    queryKey: ['rota', 'staff'],
    queryFn: async () => (await api<{ staff: StaffMember[] }>('GET', '/api/v1/rota/staff')).staff,
    enabled,
    staleTime: 5 * 60_000,
  });
}

/** The cars, for naming car shifts and choosing a car (empty when the route is not there). */
export function useCars() {
  return useQuery({
    queryKey: ['vehicles'],
    queryFn: async () => {
      const r = await api<{ vehicles: { vehicleId: string; callSign: string; retired?: boolean }[] }>(
        'GET',
        '/api/v1/vehicles',
      );
      return r.vehicles.filter((v) => !v.retired);
    },
    retry: false,
    staleTime: 60_000,
  });
}

export interface ShiftRequest {
  userId: string;
  role: Role;
  location: RotaLocation;
  startMs: number;
  endMs: number;
}

export const planShift = (s: ShiftRequest) => api('POST', '/api/v1/rota/shifts', s);

export const cancelShift = (shiftId: string, reason: string) =>
  api('POST', `/api/v1/rota/shifts/${shiftId}/cancel`, { reason });

export const importRota = (csv: string) => api<{ imported: number }>('POST', '/api/v1/rota/import', { csv });

/** The import's refusal, line by line (the server's `problems`, else its field messages). */
export function importProblems(body: Record<string, unknown>): ImportProblem[] {
  const list = body.problems;
  if (!Array.isArray(list)) return [];
  return list.flatMap((p: unknown) => {
    if (typeof p !== 'object' || p === null) return [];
    const o = p as Record<string, unknown>;
    return typeof o.line === 'number'
      ? [{ line: o.line, field: String(o.field ?? ''), message: String(o.message ?? '') }]
      : [];
  });
}

export type { RotaLocationKind };
