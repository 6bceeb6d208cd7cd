import type { AppointmentKind, DiarySession, Slot } from './diary.ts';
import { generateSlots } from './diary.ts';

/**
 * Slot custody (C6, CONTRACT-16): no double booking by construction, even while nodes cannot see
 * each other.
 *
 * - Every slot has exactly one owner node at every point of the ledger. When a session is planned,
 *   the centre's home node owns all its slots.
 * - Ownership moves only by an event written by the current owner in its own chain
 *   (`booking.slots_allocated`: the owner hands slots to another node; `booking.slots_returned`: the
 *   holder gives them back). A node never takes ownership; it is given it.
 * - A booking is written only by the slot's owner, after counting the slot's bookings in its own view.
 *
 * Why it holds: a chain has one writer and a node knows all its own events, so the giver stops owning
 * at the hand-over it wrote, and the receiver starts owning only once it has read that hand-over. The
 * receiver read the giver's chain up to the hand-over, so its view holds every booking the giver made;
 * a booking is always counted by the one node allowed to add to it. Hybrid logical clocks order an
 * event after everything its writer had read, so folding every node's events in ledger order
 * (hlc, node, seq) sees each hand-over before the receiver's bookings, and every node reaches the same
 * state. A cancellation may be written by any node: it only frees a place, and the owner can re-use
 * the place once it has read the cancellation.
 *
 * The fold checks the invariant anyway (assertions in production code): a booking written by a node
 * that did not own the slot at that point, a booking beyond capacity, or a hand-over by a non-owner is
 * a violation, recorded and returned — never silently settled (the server raises it as a
 * reconciliation item of kind `double_booking`). The booking itself is kept: the patient was told.
 */

/** The fields of a ledger event the fold reads. Payloads were checked by the event registry. */
export interface CustodyInputEvent {
  /** The node whose chain holds the event (the envelope's `node`). */
  node: string;
  type: string;
  payload: unknown;
}

export interface SlotBooking {
  bookingId: string;
  kind: AppointmentKind;
  /** The node that wrote the booking. */
  byNodeId: string;
}

export interface CustodySlot extends Slot {
  ownerNodeId: string;
  /** Set while the slot is held by a node it was allocated to: who gave it and when it goes back. */
  allocation: { fromNodeId: string; returnAtMs: number } | null;
  blocked: boolean;
  /** The session was cancelled: nothing more may be booked into it. */
  sessionCancelled: boolean;
  bookings: Map<string, SlotBooking>;
}

export type CustodyViolationKind =
  'booked_by_non_owner' | 'over_capacity' | 'handover_by_non_owner' | 'unknown_slot' | 'unknown_centre';

export interface CustodyViolation {
  kind: CustodyViolationKind;
  /** The event's writer. */
  nodeId: string;
  slotId: string | null;
  bookingId: string | null;
  /** The owner in ledger order at that point, if the slot was known. */
  ownerNodeId: string | null;
}

export interface CustodyState {
  /** centreId → home node, as first defined (a later definition does not move slots). */
  centres: Map<string, { homeNodeId: string }>;
  slots: Map<string, CustodySlot>;
  /** bookingId → slotId, for the bookings still in a slot. */
  bookingSlot: Map<string, string>;
  sessions: Set<string>;
  violations: CustodyViolation[];
}

export function emptyCustody(): CustodyState {
  return {
    centres: new Map(),
    slots: new Map(),
    bookingSlot: new Map(),
    sessions: new Set(),
    violations: [],
  };
}

interface CentreDefined {
  centreId: string;
  homeNodeId: string;
}
interface SessionPlanned {
  /** Either the session itself or `{ session }`; `homeNodeId` pins the first owner when given. */
  session?: DiarySession;
  homeNodeId?: string;
  sessionId?: string;
  /**
   * The slots as the planner generated them. When present they are taken as written, so every node
   * agrees even if its time-zone database differs from the planner's.
   */
  slots?: { slotId: string; startMs: number; endMs: number; startLocal: string }[];
}
interface SessionCancelled {
  sessionId: string;
}
interface SlotsMoved {
  slotIds: string[];
  toNodeId: string;
  returnAtMs?: number;
}
interface SlotsFlagged {
  slotIds: string[];
}
interface Booked {
  bookingId: string;
  slotId: string;
  kind: AppointmentKind;
}
interface Cancelled {
  bookingId: string;
}

/**
 * Applies one event (in ledger order) and returns the violations it raised (also appended to
 * `state.violations`). Events of other types are ignored. A replayed event (a booking id already
 * held, a session already planned) changes nothing.
 */
export function applyCustodyEvent(state: CustodyState, event: CustodyInputEvent): CustodyViolation[] {
  const raised: CustodyViolation[] = [];
  const violate = (
    kind: CustodyViolationKind,
    slotId: string | null,
    bookingId: string | null,
    ownerNodeId: string | null,
  ): void => {
    const v = { kind, nodeId: event.node, slotId, bookingId, ownerNodeId };
    raised.push(v);
    state.violations.push(v);
  };
  switch (event.type) {
    case 'booking.centre_defined': {
      const p = event.payload as CentreDefined;
      if (!state.centres.has(p.centreId)) state.centres.set(p.centreId, { homeNodeId: p.homeNodeId });
      break;
    }
    case 'booking.session_planned': {
      const p = event.payload as SessionPlanned & Partial<DiarySession>;
      const session = (p.session ?? p) as DiarySession;
      if (state.sessions.has(session.sessionId)) break;
      const owner = p.homeNodeId ?? state.centres.get(session.centreId)?.homeNodeId;
      if (owner === undefined) {
        violate('unknown_centre', null, null, null);
        break;
      }
      state.sessions.add(session.sessionId);
      for (const slot of plannedSlots(session, p.slots)) {
        state.slots.set(slot.slotId, {
          ...slot,
          ownerNodeId: owner,
          allocation: null,
          blocked: false,
          sessionCancelled: false,
          bookings: new Map(),
        });
      }
      break;
    }
    case 'booking.session_cancelled': {
      const p = event.payload as SessionCancelled;
      for (const slot of state.slots.values())
        if (slot.sessionId === p.sessionId) slot.sessionCancelled = true;
      break;
    }
    case 'booking.slots_allocated':
    case 'booking.slots_returned': {
      const p = event.payload as SlotsMoved;
      for (const slotId of p.slotIds) {
        const slot = state.slots.get(slotId);
        if (slot === undefined) {
          violate('unknown_slot', slotId, null, null);
          continue;
        }
        if (slot.ownerNodeId !== event.node) {
          // Only the owner can give a slot away: anything else is ignored and raised.
          violate('handover_by_non_owner', slotId, null, slot.ownerNodeId);
          continue;
        }
        if (p.toNodeId === event.node) continue;
        slot.allocation =
          event.type === 'booking.slots_allocated'
            ? { fromNodeId: event.node, returnAtMs: p.returnAtMs ?? slot.startMs }
            : null;
        slot.ownerNodeId = p.toNodeId;
      }
      break;
    }
    case 'booking.slots_blocked':
    case 'booking.slots_released': {
      const p = event.payload as SlotsFlagged;
      for (const slotId of p.slotIds) {
        const slot = state.slots.get(slotId);
        if (slot !== undefined) slot.blocked = event.type === 'booking.slots_blocked';
      }
      break;
    }
    case 'booking.booked': {
      const p = event.payload as Booked;
      if (state.bookingSlot.has(p.bookingId)) break;
      const slot = state.slots.get(p.slotId);
      if (slot === undefined) {
        violate('unknown_slot', p.slotId, p.bookingId, null);
        break;
      }
      if (slot.ownerNodeId !== event.node)
        violate('booked_by_non_owner', slot.slotId, p.bookingId, slot.ownerNodeId);
      if (slot.bookings.size >= slot.capacity)
        violate('over_capacity', slot.slotId, p.bookingId, slot.ownerNodeId);
      slot.bookings.set(p.bookingId, { bookingId: p.bookingId, kind: p.kind, byNodeId: event.node });
      state.bookingSlot.set(p.bookingId, slot.slotId);
      break;
    }
    case 'booking.cancelled': {
      const p = event.payload as Cancelled;
      const slotId = state.bookingSlot.get(p.bookingId);
      if (slotId === undefined) break;
      state.slots.get(slotId)?.bookings.delete(p.bookingId);
      state.bookingSlot.delete(p.bookingId);
      break;
    }
    default:
      break;
  }
  return raised;
}

function plannedSlots(session: DiarySession, written: SessionPlanned['slots']): Slot[] {
  if (written === undefined) return generateSlots(session);
  return written.map((w) => ({
    slotId: w.slotId,
    sessionId: session.sessionId,
    centreId: session.centreId,
    roomId: session.roomId,
    startMs: w.startMs,
    endMs: w.endMs,
    startLocal: w.startLocal,
    // The wall clock read as if it were UTC, less the instant: the offset, without a zone database.
    utcOffsetMinutes: Math.round((Date.parse(`${w.startLocal.replace(' ', 'T')}:00Z`) - w.startMs) / 60_000),
    capacity: session.template.patientsPerSlot,
    kinds: [...session.template.kinds],
  }));
}

/** Folds events given in ledger order (hlc, node, seq) into a new state. */
export function foldCustody(
  events: Iterable<CustodyInputEvent>,
  state: CustodyState = emptyCustody(),
): CustodyState {
  for (const e of events) applyCustodyEvent(state, e);
  return state;
}

/** The node that owns a slot in this view, or null for a slot the view does not know. */
export function ownerOf(state: CustodyState, slotId: string): string | null {
  return state.slots.get(slotId)?.ownerNodeId ?? null;
}

/** Places left in a slot in this view (0 for an unknown slot). */
export function freePlaces(state: CustodyState, slotId: string): number {
  const slot = state.slots.get(slotId);
  return slot === undefined ? 0 : Math.max(0, slot.capacity - slot.bookings.size);
}

export type MayBookRefusal =
  'no_such_slot' | 'slot_not_owned_here' | 'slot_blocked' | 'slot_in_past' | 'wrong_kind' | 'slot_full';

export type MayBook = { ok: true } | { ok: false; reason: MayBookRefusal; ownerNodeId?: string };

/**
 * Whether `nodeId` may book `slotId` for `kind` now, in its own view. Checked in this order: the slot
 * is known; it is owned here (else `slot_not_owned_here` naming the owner); it is not blocked and its
 * session not cancelled; it has not started (`startMs` before `nowMs` is in the past); it takes the
 * kind; a place is free. The service must ask this and write the booking in one step with no other
 * write of the same slot between (the database is the last line of defence).
 */
export function mayBook(
  state: CustodyState,
  slotId: string,
  nodeId: string,
  kind: AppointmentKind,
  nowMs: number,
): MayBook {
  const slot = state.slots.get(slotId);
  if (slot === undefined) return { ok: false, reason: 'no_such_slot' };
  if (slot.ownerNodeId !== nodeId)
    return { ok: false, reason: 'slot_not_owned_here', ownerNodeId: slot.ownerNodeId };
  if (slot.blocked || slot.sessionCancelled) return { ok: false, reason: 'slot_blocked' };
  if (slot.startMs < nowMs) return { ok: false, reason: 'slot_in_past' };
  if (!slot.kinds.includes(kind)) return { ok: false, reason: 'wrong_kind' };
  if (slot.bookings.size >= slot.capacity) return { ok: false, reason: 'slot_full' };
  return { ok: true };
}

/**
 * The slots `nodeId` holds by allocation whose cut-off has come, grouped by the node each goes back
 * to: what the holder's timer writes as `booking.slots_returned`. A slot goes back whether or not it
 * was used: its bookings stay, and a place freed later is then the home node's to re-use.
 */
export function slotsDueBack(
  state: CustodyState,
  nodeId: string,
  nowMs: number,
): { toNodeId: string; slotIds: string[] }[] {
  const byGiver = new Map<string, string[]>();
  for (const slot of state.slots.values()) {
    if (slot.ownerNodeId !== nodeId || slot.allocation === null || slot.allocation.returnAtMs > nowMs)
      continue;
    const list = byGiver.get(slot.allocation.fromNodeId) ?? [];
    list.push(slot.slotId);
    byGiver.set(slot.allocation.fromNodeId, list);
  }
  return [...byGiver.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([toNodeId, slotIds]) => ({ toNodeId, slotIds: slotIds.sort(compareSlotIds) }));
}

/** Slot ids in session order, then slot number (so `s/2` before `s/10`). */
export function compareSlotIds(a: string, b: string): number {
  const ia = a.lastIndexOf('/');
  const ib = b.lastIndexOf('/');
  const sa = a.slice(0, ia);
  const sb = b.slice(0, ib);
  if (sa !== sb) return sa < sb ? -1 : 1;
  return Number(a.slice(ia + 1)) - Number(b.slice(ib + 1));
}

export type AllocationAmount = { count: number } | { share: number };

/**
 * Which of a session's slots the owner hands to another node under an allocation policy: `count`
 * slots, or a `share` (0–1, rounded down) of them, spread evenly through the session (every k-th slot,
 * starting with the first) so the receiver can offer times across the whole session. The caller passes
 * the candidates (the owner's slots with no booking, not blocked). Deterministic: the same slots on
 * every run.
 */
export function pickAllocation(candidates: readonly Slot[], amount: AllocationAmount): string[] {
  const ordered = [...candidates].sort((a, b) => a.startMs - b.startMs || compareSlotIds(a.slotId, b.slotId));
  const wanted =
    'count' in amount
      ? Math.max(0, Math.min(ordered.length, Math.floor(amount.count)))
      : Math.max(0, Math.min(ordered.length, Math.floor(ordered.length * amount.share)));
  if (wanted === 0) return [];
  const picked: string[] = [];
  for (let i = 0; i < wanted; i++) picked.push(ordered[Math.floor((i * ordered.length) / wanted)]!.slotId);
  return picked;
}
