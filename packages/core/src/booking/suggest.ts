import type { ConsultationOutcome, DispositionKind } from '../cases/lifecycle.ts';
import { greatCircleKm } from '../directory/search.ts';
import { timingStatus, type TimingStatus } from '../queue/priority.ts';
import { SAMPLE_DX_CODES, type DxCodeTable } from '../triage/dx-codes.ts';
import { compareSlotIds } from './custody.ts';
import type { AppointmentKind, Slot } from './diary.ts';

/**
 * Booking while on the call (C6): which dispositions and outcomes can be booked at a treatment
 * centre and with what timeframe, the slots to offer, and how long a patient at the centre has
 * waited.
 */

// ---- which dispositions and outcomes are bookable ---------------------------------------------------

/** A disposition as the case holds it (case.disposition_reached). */
export interface DispositionForBooking {
  kind: DispositionKind;
  dxCode?: string;
  timeframeMinutes?: number;
}

/** A clinician's outcome (case.outcome_recorded), with the kind and window the clinician chose. */
export interface OutcomeForBooking {
  outcome: ConsultationOutcome;
  appointmentKind?: AppointmentKind;
  timeframeMinutes?: number;
}

/** The window a clinician's "Book an appointment" gets when the clinician names none. */
export const DEFAULT_OUTCOME_TIMEFRAME_MINUTES = 24 * 60;
/** The longest window a booking can carry: the diary looks two weeks ahead. */
export const MAX_BOOKING_TIMEFRAME_MINUTES = 14 * 24 * 60;

export interface BookingTimeframe {
  kind: AppointmentKind;
  minutes: number;
}

/**
 * Whether a disposition or outcome can be booked at a treatment centre, and the kind and window:
 *
 * | from                                                          | bookable as                      |
 * |---------------------------------------------------------------|----------------------------------|
 * | contact_primary_care with a window (Dx05–Dx08, or one given)  | urgent_face_to_face, that window |
 * | contact_primary_care with no window (own GP, non-urgent)      | no: the patient's own practice   |
 * | ed_utc whose Dx code sends the patient to an urgent treatment | urgent_face_to_face, that window |
 * | centre (`attends: urgent_treatment_centre`)                   |                                  |
 * | ed_utc for an emergency department, or with no known Dx code  | no                               |
 * | ambulance, speak_to_primary_care, self_care, dental,          | no: an ambulance, a clinician's  |
 * | pharmacy, other                                               | call-back first, or elsewhere    |
 * | outcome book_appointment                                      | the clinician's kind (default    |
 * |                                                               | urgent_face_to_face) and window  |
 * |                                                               | (default 24 hours)               |
 * | any other outcome                                             | no                               |
 *
 * A speak-to-primary-care disposition is not bookable from the call: a clinician speaks to the
 * patient first, and books through the outcome if a face-to-face assessment is needed.
 */
export function bookingTimeframe(
  from: DispositionForBooking | OutcomeForBooking,
  dxCodes: DxCodeTable = SAMPLE_DX_CODES,
): BookingTimeframe | null {
  const window = (minutes: number | null | undefined): number | null =>
    minutes === null || minutes === undefined || !Number.isInteger(minutes) || minutes < 1
      ? null
      : Math.min(minutes, MAX_BOOKING_TIMEFRAME_MINUTES);
  if ('outcome' in from) {
    if (from.outcome !== 'book_appointment') return null;
    return {
      kind: from.appointmentKind ?? 'urgent_face_to_face',
      minutes: window(from.timeframeMinutes) ?? DEFAULT_OUTCOME_TIMEFRAME_MINUTES,
    };
  }
  const dx = from.dxCode === undefined ? undefined : dxCodes.get(from.dxCode);
  const minutes = window(from.timeframeMinutes ?? dx?.timeframeMinutes);
  switch (from.kind) {
    case 'contact_primary_care':
      return minutes === null ? null : { kind: 'urgent_face_to_face', minutes };
    case 'ed_utc':
      return dx?.attends === 'urgent_treatment_centre' && minutes !== null
        ? { kind: 'urgent_face_to_face', minutes }
        : null;
    case 'ambulance':
    case 'speak_to_primary_care':
    case 'self_care':
    case 'dental':
    case 'pharmacy':
    case 'other':
      return null;
  }
}

// ---- suggestions --------------------------------------------------------------------------------------

export interface CentreForSuggestion {
  centreId: string;
  name: string;
  lat: number;
  lon: number;
}

export type SlotForSuggestion = Slot & {
  /** Places left in the slot, in the asking node's view. */
  free: number;
  /** Whether the asking node owns the slot (only then can it book it). */
  bookableHere: boolean;
};

export interface SlotSuggestion<S extends SlotForSuggestion = SlotForSuggestion> {
  slot: S;
  centre: CentreForSuggestion;
  /** Great-circle distance from the patient, or null when the patient's location is not known. */
  distanceKm: number | null;
  /** The slot starts at or before the deadline. */
  withinTimeframe: boolean;
}

export interface SuggestInput<S extends SlotForSuggestion> {
  slots: readonly S[];
  centres: readonly CentreForSuggestion[];
  /** Where the patient is, or null when not known (then there is no distance, only time). */
  from: { lat: number; lon: number } | null;
  nowMs: number;
  /** The end of the timeframe: received + timeframe. */
  deadlineMs: number;
  kind: AppointmentKind;
  /** How many suggestions at most (default 10, at most 100). */
  limit?: number;
}

export const DEFAULT_SUGGESTION_LIMIT = 10;
export const MAX_SUGGESTION_LIMIT = 100;

/**
 * The slots to offer while on the call. Suitable: the slot takes the kind, has a free place, has not
 * started (`startMs >= nowMs`) and belongs to a listed centre. Order (every node gives the same):
 *
 * 1. slots within the timeframe (starting at or before the deadline) before slots after it;
 * 2. slots this node can book before slots held by another node (shown so the adviser knows);
 * 3. the centre's round: each centre's earliest suitable slot of the group (round 0), then each
 *    centre's second (round 1), and so on — so the first suggestions are one per centre;
 * 4. within the timeframe: nearest centre first (no distance known: after those with one), then the
 *    earlier start; after the timeframe: the earlier start first, then the nearer centre;
 * 5. slot id, so that equal slots keep one order.
 *
 * Worked cases are in packages/core/test/booking-suggest.test.ts.
 */
export function suggestSlots<S extends SlotForSuggestion>(input: SuggestInput<S>): SlotSuggestion<S>[] {
  const limit = Math.max(
    0,
    Math.min(MAX_SUGGESTION_LIMIT, Math.floor(input.limit ?? DEFAULT_SUGGESTION_LIMIT)),
  );
  const centres = new Map(input.centres.map((c) => [c.centreId, c]));
  const distance = new Map<string, number | null>();
  for (const c of input.centres) {
    distance.set(
      c.centreId,
      input.from === null
        ? null
        : greatCircleKm(
            { latitude: input.from.lat, longitude: input.from.lon },
            { latitude: c.lat, longitude: c.lon },
          ),
    );
  }

  interface Ranked {
    s: SlotSuggestion<S>;
    group: number;
    round: number;
  }
  const ranked: Ranked[] = [];
  const suitable = input.slots
    .filter(
      (s) =>
        s.free > 0 && s.startMs >= input.nowMs && s.kinds.includes(input.kind) && centres.has(s.centreId),
    )
    .sort((a, b) => a.startMs - b.startMs || compareSlotIds(a.slotId, b.slotId));
  const rounds = new Map<string, number>();
  for (const slot of suitable) {
    const withinTimeframe = slot.startMs <= input.deadlineMs;
    const group = (withinTimeframe ? 0 : 2) + (slot.bookableHere ? 0 : 1);
    const key = `${group} ${slot.centreId}`;
    const round = rounds.get(key) ?? 0;
    rounds.set(key, round + 1);
    ranked.push({
      s: {
        slot,
        centre: centres.get(slot.centreId)!,
        distanceKm: distance.get(slot.centreId) ?? null,
        withinTimeframe,
      },
      group,
      round,
    });
  }
  const byDistance = (a: number | null, b: number | null): number =>
    a === b ? 0 : a === null ? 1 : b === null ? -1 : a - b;
  ranked.sort((a, b) => {
    if (a.group !== b.group) return a.group - b.group;
    if (a.round !== b.round) return a.round - b.round;
    const d = byDistance(a.s.distanceKm, b.s.distanceKm);
    const t = a.s.slot.startMs - b.s.slot.startMs;
    const first = a.s.withinTimeframe ? d || t : t || d;
    return first || compareSlotIds(a.s.slot.slotId, b.s.slot.slotId);
  });
  return ranked.slice(0, limit).map((r) => r.s);
}

// ---- waiting at the centre ----------------------------------------------------------------------------

/**
 * How a patient waiting at the centre stands, as the CAS queue shows a case: on time, at risk (less
 * than a fifth of the window left) or breached (waited longer than the timeframe). The window runs
 * from arrival.
 */
export function waitingAtRisk(arrivedAtMs: number, nowMs: number, timeframeMinutes: number): TimingStatus {
  return timingStatus({ callReceivedAtMs: arrivedAtMs, timeframeMinutes }, nowMs);
}
