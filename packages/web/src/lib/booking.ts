import { useQuery } from '@tanstack/react-query';
import {
  APPOINTMENT_KIND_WORDS as KIND_WORDS,
  bookingTimeframe,
  waitingAtRisk,
  type AppointmentKind,
  type BookingTimeframe,
  type DispositionKind,
} from '@holdfast/core';
import type { TimingStatus } from '@holdfast/core/queue/priority';
import { api } from './api.ts';

/**
 * Treatment-centre appointments (C6, issue 16) as the screens need them: every call to the booking
 * routes of CONTRACT-16 and the JSON shapes they answer with, in one place so they are easy to
 * reconcile with the server (packages/server/src/booking/routes.ts).
 */

export const BOOKING_PERMISSIONS = {
  book: 'appointments.book',
  diaries: 'diaries.manage',
  reception: 'reception.work',
} as const;

export const APPOINTMENT_KIND_WORDS: Record<string, string> = KIND_WORDS;

/**
 * Whether a confirmed disposition can be booked at a treatment centre, and as what (core
 * `bookingTimeframe`: a window to contact primary care, or an urgent treatment centre's Dx code).
 */
export function dispositionBooking(d: {
  kind: string;
  dxCode: string | null;
  timeframeMinutes: number | null;
}): BookingTimeframe | null {
  return bookingTimeframe({
    kind: d.kind as DispositionKind,
    ...(d.dxCode ? { dxCode: d.dxCode } : {}),
    ...(d.timeframeMinutes !== null ? { timeframeMinutes: d.timeframeMinutes } : {}),
  });
}

/** The kind of appointment a clinician's "Book an appointment" books (core's default). */
export function outcomeBooking(): BookingTimeframe | null {
  return bookingTimeframe({ outcome: 'book_appointment' });
}

export type { AppointmentKind };

export type AppointmentState = 'booked' | 'arrived' | 'seen' | 'did_not_attend' | 'cancelled';

export const APPOINTMENT_STATE_WORDS: Record<AppointmentState, string> = {
  booked: 'Booked',
  arrived: 'Arrived: waiting to be seen',
  seen: 'Seen',
  did_not_attend: 'Did not attend',
  cancelled: 'Cancelled',
};

export interface SlotView {
  slotId: string;
  sessionId: string;
  centreId: string;
  roomId: string;
  startMs: number;
  endMs: number;
  /** 'YYYY-MM-DD HH:mm', UK time. */
  startLocal: string;
  capacity: number;
  kinds: string[];
}

export interface AppointmentOption {
  slot: SlotView;
  centre: { centreId: string; name: string; address?: string; postcode?: string };
  distanceKm: number | null;
  withinTimeframe: boolean;
  free?: number;
  bookableHere: boolean;
  ownerNodeId?: string | null;
  ownerNodeName?: string | null;
}

export interface AppointmentOptions {
  kind: string;
  timeframeMinutes?: number | null;
  deadlineMs?: number | null;
  options: AppointmentOption[];
}

export interface AppointmentView {
  bookingId: string;
  caseId: string;
  slotId: string;
  kind: string;
  centreId: string;
  centreName: string;
  address: string;
  postcode?: string | null;
  phone?: string | null;
  startMs: number;
  startLocal: string;
  state: AppointmentState;
  outsideTimeframeReason: string | null;
  cancelReason?: string | null;
}

export interface RoomView {
  roomId: string;
  name: string;
}

export interface TemplateView {
  templateId: string;
  name: string;
  slotMinutes: number;
  patientsPerSlot: number;
  kinds: string[];
}

export interface CentreView {
  centreId: string;
  siteId: string;
  name: string;
  address: string;
  postcode: string;
  lat: number;
  lon: number;
  phone: string;
  homeNodeId: string;
  homeNodeName?: string | null;
  rooms: RoomView[];
  templates?: TemplateView[];
  timeframeNote?: string | null;
}

export interface DiarySlot extends SlotView {
  ownerNodeId: string | null;
  ownerNodeName?: string | null;
  bookings: number;
  blocked: boolean;
  blockReason?: string | null;
  clinicianName?: string | null;
  roomName?: string | null;
}

export type Waiting = 'on_time' | 'at_risk' | 'breached';

export interface ReceptionRow {
  bookingId: string;
  caseId: string;
  startMs: number;
  startLocal: string;
  patientName: string;
  kind: string;
  state: AppointmentState;
  walkIn: boolean;
  arrivedAtMs: number | null;
  waitingMinutes: number | null;
  timeframeMinutes: number | null;
  waiting: Waiting | null;
  seenByName: string | null;
}

/** 'YYYY-MM-DD' of an instant in UK time: the diary's and reception's day. */
export function ukDate(atMs: number): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Europe/London',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date(atMs));
}

/** '18:30' of a slot's 'YYYY-MM-DD HH:mm' (UK time). */
export function slotTime(startLocal: string): string {
  return startLocal.slice(11, 16);
}

const dayWords = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'UTC',
  weekday: 'long',
  day: 'numeric',
  month: 'long',
});

/** "Saturday 5 December, 18:30" from a slot's 'YYYY-MM-DD HH:mm' (UK time, as the patient is told). */
export function slotWhen(startLocal: string): string {
  const [date = '', time = ''] = startLocal.split(' ');
  return `${dayWords.format(new Date(`${date}T00:00:00Z`))}, ${time}`;
}

export function distanceWords(km: number | null): string {
  if (km === null) return 'distance not known';
  return `${km.toFixed(1)} km (${(km / 1.609344).toFixed(1)} miles)`;
}

export function useCentres(enabled = true) {
  return useQuery({
    queryKey: ['centres'],
    queryFn: async () => (await api<{ centres: CentreView[] }>('GET', '/api/v1/centres')).centres,
    staleTime: 60_000,
    enabled,
  });
}

export function useAppointmentOptions(caseId: string, kind: string | null) {
  return useQuery({
    queryKey: ['appointment-options', caseId, kind],
    queryFn: () =>
      api<AppointmentOptions>(
        'GET',
        `/api/v1/cases/${caseId}/appointment-options?${new URLSearchParams(kind ? { kind, limit: '12' } : { limit: '12' }).toString()}`,
      ),
  });
}

export function useAppointments(caseId: string) {
  return useQuery({
    queryKey: ['appointments', caseId],
    queryFn: () => api<{ appointments: AppointmentView[] }>('GET', `/api/v1/cases/${caseId}/appointments`),
  });
}

export function useDiary(centreId: string | null, date: string) {
  return useQuery({
    queryKey: ['diary', centreId, date],
    queryFn: () =>
      api<{ date: string; slots: DiarySlot[] }>(
        'GET',
        `/api/v1/centres/${centreId}/diary?${new URLSearchParams({ date }).toString()}`,
      ),
    enabled: !!centreId,
  });
}

export function useReception(centreId: string | null, date: string) {
  return useQuery({
    queryKey: ['reception', centreId, date],
    queryFn: () =>
      api<{ date: string; appointments: ReceptionRow[] }>(
        'GET',
        `/api/v1/centres/${centreId}/reception?${new URLSearchParams({ date }).toString()}`,
      ),
    enabled: !!centreId,
    // Arrivals, walk-ins and patients seen at other desks show without reloading.
    refetchInterval: 5_000,
  });
}

export const bookAppointment = (
  caseId: string,
  body: { slotId: string; kind: string; outsideTimeframeReason?: string },
) => api<{ appointment: AppointmentView }>('POST', `/api/v1/cases/${caseId}/appointments`, body);

export const cancelAppointment = (bookingId: string, reason: string) =>
  api<{ appointment: AppointmentView }>('POST', `/api/v1/appointments/${bookingId}/cancel`, { reason });

export const rebookAppointment = (
  bookingId: string,
  body: { slotId: string; reason: string; outsideTimeframeReason?: string },
) => api<{ appointment: AppointmentView }>('POST', `/api/v1/appointments/${bookingId}/rebook`, body);

export const receptionAction = (bookingId: string, action: 'arrived' | 'did-not-attend' | 'seen') =>
  api<unknown>('POST', `/api/v1/appointments/${bookingId}/${action}`, {});

/**
 * How long an arrived patient has waited against the timeframe, coloured as the CAS queue colours a
 * deadline (core `waitingAtRisk`: at risk in the last fifth of the window); null before arrival and once seen.
 */
export function waitingState(
  r: Pick<ReceptionRow, 'state' | 'arrivedAtMs' | 'timeframeMinutes' | 'waiting'>,
  nowMs: number,
): { timing: TimingStatus; remainingSeconds: number; waitedMinutes: number } | null {
  if (r.state !== 'arrived' || r.arrivedAtMs === null) return null;
  const waitedMinutes = Math.max(0, Math.floor((nowMs - r.arrivedAtMs) / 60_000));
  if (!r.timeframeMinutes) return { timing: r.waiting ?? 'on_time', remainingSeconds: 0, waitedMinutes };
  const deadline = r.arrivedAtMs + r.timeframeMinutes * 60_000;
  return {
    timing: waitingAtRisk(r.arrivedAtMs, nowMs, r.timeframeMinutes),
    remainingSeconds: Math.round((deadline - nowMs) / 1000),
    waitedMinutes,
  };
}
