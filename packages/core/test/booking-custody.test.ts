import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyCustodyEvent,
  emptyCustody,
  foldCustody,
  freePlaces,
  mayBook,
  ownerOf,
  pickAllocation,
  slotsDueBack,
  generateSlots,
  type CustodyInputEvent,
  type CustodyState,
  type DiarySession,
} from '../src/index.ts';

/**
 * Slot custody (CONTRACT-16): one owner per slot, ownership moved only by its owner, bookings only by
 * the owner within capacity. Nodes: `centre` (the centre's home node), `nhs111` (the call centre).
 */

const session: DiarySession = {
  sessionId: 'sess-1',
  centreId: 'northgate',
  roomId: 'room-1',
  clinicianId: null,
  clinicianName: 'Dr A Sample',
  date: '2026-12-05',
  startLocal: '18:00',
  endLocal: '19:00',
  template: {
    templateId: 'pair',
    name: 'Pairs',
    slotMinutes: 15,
    patientsPerSlot: 2,
    kinds: ['urgent_face_to_face'],
  },
};
const SLOT = 'sess-1/1';
const BEFORE = Date.parse('2026-12-05T12:00:00Z');

const centreDefined: CustodyInputEvent = {
  node: 'hub',
  type: 'booking.centre_defined',
  payload: { centreId: 'northgate', homeNodeId: 'centre' },
};
const planned: CustodyInputEvent = {
  node: 'hub',
  type: 'booking.session_planned',
  payload: { centreId: 'northgate', session, homeNodeId: 'centre' },
};
const allocate = (
  node: string,
  toNodeId: string,
  slotIds = [SLOT],
  returnAtMs = BEFORE + 3_600_000,
): CustodyInputEvent => ({
  node,
  type: 'booking.slots_allocated',
  payload: { centreId: 'northgate', sessionId: 'sess-1', slotIds, toNodeId, returnAtMs },
});
const giveBack = (node: string, toNodeId: string, slotIds = [SLOT]): CustodyInputEvent => ({
  node,
  type: 'booking.slots_returned',
  payload: { centreId: 'northgate', slotIds, toNodeId },
});
const book = (node: string, bookingId: string, slotId = SLOT): CustodyInputEvent => ({
  node,
  type: 'booking.booked',
  payload: { bookingId, slotId, kind: 'urgent_face_to_face' },
});
const cancel = (node: string, bookingId: string): CustodyInputEvent => ({
  node,
  type: 'booking.cancelled',
  payload: { bookingId, reason: 'patient better' },
});

const base = (): CustodyState => foldCustody([centreDefined, planned]);

describe('custody of slots', () => {
  it('the home node owns every slot of a planned session; a replay changes nothing', () => {
    const s = base();
    expect(s.slots.size).toBe(4);
    for (const id of s.slots.keys()) expect(ownerOf(s, id)).toBe('centre');
    applyCustodyEvent(s, planned);
    expect(s.slots.size).toBe(4);
    expect(ownerOf(s, 'sess-9/1')).toBeNull();
    expect(mayBook(s, 'sess-9/1', 'centre', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'no_such_slot',
    });
  });

  it('the slots written in the planned event are taken as written', () => {
    const slots = generateSlots(session).map(({ slotId, startMs, endMs, startLocal }) => ({
      slotId,
      startMs,
      endMs,
      startLocal,
    }));
    const s = foldCustody([
      centreDefined,
      {
        ...planned,
        payload: { centreId: 'northgate', session, homeNodeId: 'centre', slots: slots.slice(0, 2) },
      },
    ]);
    expect([...s.slots.keys()]).toEqual(['sess-1/1', 'sess-1/2']);
    expect(s.slots.get(SLOT)).toMatchObject({
      startLocal: '2026-12-05 18:00',
      utcOffsetMinutes: 0,
      capacity: 2,
    });
  });

  it('hand-over: the giver stops owning when it writes it, the receiver owns once it has read it', () => {
    const giver = base();
    applyCustodyEvent(giver, allocate('centre', 'nhs111'));
    expect(mayBook(giver, SLOT, 'centre', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'slot_not_owned_here',
      ownerNodeId: 'nhs111',
    });
    // The receiver before it has read the hand-over: not its slot.
    const receiverBefore = base();
    expect(mayBook(receiverBefore, SLOT, 'nhs111', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'slot_not_owned_here',
      ownerNodeId: 'centre',
    });
    const receiver = foldCustody([allocate('centre', 'nhs111')], base());
    expect(mayBook(receiver, SLOT, 'nhs111', 'urgent_face_to_face', BEFORE)).toEqual({ ok: true });
    expect(ownerOf(receiver, 'sess-1/2')).toBe('centre');
  });

  it('return: the holder gives slots back (by the timer at the cut-off); the centre books again', () => {
    const s = foldCustody([allocate('centre', 'nhs111', ['sess-1/1', 'sess-1/3'], BEFORE + 1000)], base());
    expect(slotsDueBack(s, 'nhs111', BEFORE)).toEqual([]);
    expect(slotsDueBack(s, 'nhs111', BEFORE + 1000)).toEqual([
      { toNodeId: 'centre', slotIds: ['sess-1/1', 'sess-1/3'] },
    ]);
    expect(slotsDueBack(s, 'centre', BEFORE + 1000)).toEqual([]);
    applyCustodyEvent(s, giveBack('nhs111', 'centre', ['sess-1/1', 'sess-1/3']));
    expect(ownerOf(s, 'sess-1/3')).toBe('centre');
    expect(slotsDueBack(s, 'nhs111', BEFORE + 1000)).toEqual([]);
    expect(mayBook(s, 'sess-1/3', 'centre', 'urgent_face_to_face', BEFORE)).toEqual({ ok: true });
    expect(s.violations).toEqual([]);
  });

  it('a node that does not own a slot cannot hand it over or return it: ignored and raised', () => {
    const s = base();
    const raised = applyCustodyEvent(s, allocate('nhs111', 'cas'));
    expect(raised).toEqual([
      {
        kind: 'handover_by_non_owner',
        nodeId: 'nhs111',
        slotId: SLOT,
        bookingId: null,
        ownerNodeId: 'centre',
      },
    ]);
    expect(ownerOf(s, SLOT)).toBe('centre');
    applyCustodyEvent(s, giveBack('cas', 'nhs111'));
    expect(ownerOf(s, SLOT)).toBe('centre');
    expect(s.violations.map((v) => v.kind)).toEqual(['handover_by_non_owner', 'handover_by_non_owner']);
  });

  it('capacity: the owner fills the slot, then slot_full; a cancellation frees a place', () => {
    const s = base();
    expect(freePlaces(s, SLOT)).toBe(2);
    applyCustodyEvent(s, book('centre', 'b1'));
    applyCustodyEvent(s, book('centre', 'b2'));
    expect(freePlaces(s, SLOT)).toBe(0);
    expect(mayBook(s, SLOT, 'centre', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'slot_full',
    });
    applyCustodyEvent(s, book('centre', 'b2')); // a replay of the same booking is not a second one
    expect(s.slots.get(SLOT)!.bookings.size).toBe(2);
    applyCustodyEvent(s, cancel('centre', 'b1'));
    expect(mayBook(s, SLOT, 'centre', 'urgent_face_to_face', BEFORE)).toEqual({ ok: true });
    expect(s.violations).toEqual([]);
  });

  it("the receiver's view holds the giver's bookings, so the slot is never filled twice over", () => {
    const events = [book('centre', 'b1'), allocate('centre', 'nhs111'), book('nhs111', 'b2')];
    const s = foldCustody(events, base());
    expect(mayBook(s, SLOT, 'nhs111', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'slot_full',
    });
    expect(s.violations).toEqual([]);
  });

  it('a cancellation by a non-owner frees the place only for the owner, once read', () => {
    // nhs111 booked in its allocation, then gave the slot back; the centre now owns it.
    const shared = [
      allocate('centre', 'nhs111'),
      book('nhs111', 'b1'),
      book('nhs111', 'b2'),
      giveBack('nhs111', 'centre'),
    ];
    const centre = foldCustody(shared, base());
    expect(mayBook(centre, SLOT, 'centre', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'slot_full',
    });
    // nhs111 cancels b1 (allowed: it only frees a place), but cannot re-use it.
    const nhs111 = foldCustody([...shared, cancel('nhs111', 'b1')], base());
    expect(mayBook(nhs111, SLOT, 'nhs111', 'urgent_face_to_face', BEFORE)).toMatchObject({
      reason: 'slot_not_owned_here',
      ownerNodeId: 'centre',
    });
    // Until the centre reads the cancellation it still counts two; after, one place is free.
    expect(freePlaces(centre, SLOT)).toBe(0);
    applyCustodyEvent(centre, cancel('nhs111', 'b1'));
    expect(mayBook(centre, SLOT, 'centre', 'urgent_face_to_face', BEFORE)).toEqual({ ok: true });
  });

  it('bookings by a non-owner or beyond capacity are kept and raised, never silently settled', () => {
    const s = base();
    const byOther = applyCustodyEvent(s, book('nhs111', 'b1'));
    expect(byOther).toEqual([
      { kind: 'booked_by_non_owner', nodeId: 'nhs111', slotId: SLOT, bookingId: 'b1', ownerNodeId: 'centre' },
    ]);
    applyCustodyEvent(s, book('centre', 'b2'));
    expect(applyCustodyEvent(s, book('centre', 'b3')).map((v) => v.kind)).toEqual(['over_capacity']);
    expect(s.slots.get(SLOT)!.bookings.size).toBe(3);
    expect(applyCustodyEvent(s, book('centre', 'b4', 'sess-7/1')).map((v) => v.kind)).toEqual([
      'unknown_slot',
    ]);
    const noCentre = emptyCustody();
    applyCustodyEvent(noCentre, { ...planned, payload: { session } });
    expect(noCentre.violations.map((v) => v.kind)).toEqual(['unknown_centre']);
  });

  it('blocked, cancelled, started and wrong-kind slots are refused in that order after ownership', () => {
    const s = base();
    applyCustodyEvent(s, {
      node: 'hub',
      type: 'booking.slots_blocked',
      payload: { slotIds: [SLOT], reason: 'room closed' },
    });
    expect(mayBook(s, SLOT, 'centre', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'slot_blocked',
    });
    expect(mayBook(s, SLOT, 'nhs111', 'urgent_face_to_face', BEFORE)).toMatchObject({
      reason: 'slot_not_owned_here',
    });
    applyCustodyEvent(s, {
      node: 'hub',
      type: 'booking.slots_released',
      payload: { slotIds: [SLOT], reason: 'open' },
    });
    const start = s.slots.get(SLOT)!.startMs;
    expect(mayBook(s, SLOT, 'centre', 'urgent_face_to_face', start)).toEqual({ ok: true });
    expect(mayBook(s, SLOT, 'centre', 'urgent_face_to_face', start + 1)).toEqual({
      ok: false,
      reason: 'slot_in_past',
    });
    expect(mayBook(s, SLOT, 'centre', 'dressing', BEFORE)).toEqual({ ok: false, reason: 'wrong_kind' });
    applyCustodyEvent(s, {
      node: 'hub',
      type: 'booking.session_cancelled',
      payload: { sessionId: 'sess-1', reason: 'ill' },
    });
    expect(mayBook(s, 'sess-1/4', 'centre', 'urgent_face_to_face', BEFORE)).toEqual({
      ok: false,
      reason: 'slot_blocked',
    });
  });

  it('allocation picks slots spread through the session, deterministically', () => {
    const slots = generateSlots({ ...session, endLocal: '20:00' }); // 8 slots
    expect(pickAllocation(slots, { count: 3 })).toEqual(['sess-1/1', 'sess-1/3', 'sess-1/6']);
    expect(pickAllocation(slots, { share: 0.5 })).toEqual(['sess-1/1', 'sess-1/3', 'sess-1/5', 'sess-1/7']);
    expect(pickAllocation(slots, { count: 20 })).toHaveLength(8);
    expect(pickAllocation(slots, { share: 0.1 })).toEqual([]);
    expect(pickAllocation([...slots].reverse(), { count: 3 })).toEqual(['sess-1/1', 'sess-1/3', 'sess-1/6']);
  });
});

/**
 * The scheme as a property: three nodes, each acting only on its own view (book when mayBook says so,
 * hand over or return what it owns, cancel anything it has seen), exchanging whole chain prefixes at
 * random. Every event carries a Lamport-style clock that is above everything its writer had read (as
 * the hybrid logical clock does), so ledger order is (clock, node, seq). Folding all events in that
 * order, and every node's own view, raises no violation and never exceeds capacity.
 */
describe('custody under arbitrary interleavings', () => {
  const NODES = ['centre', 'nhs111', 'cas'] as const;
  type Node = (typeof NODES)[number];
  interface Ev extends CustodyInputEvent {
    clock: number;
    seq: number;
  }
  const order = (a: Ev, b: Ev) =>
    a.clock - b.clock || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0) || a.seq - b.seq;

  it('no slot over capacity and no violation, for any schedule', () => {
    const step = fc.record({
      node: fc.constantFrom(...NODES),
      action: fc.constantFrom('book', 'book', 'book', 'give', 'cancel', 'sync', 'sync'),
      slot: fc.integer({ min: 1, max: 4 }),
      other: fc.constantFrom(...NODES),
    });
    let booked = 0;
    let refusedNotOwned = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 10, maxLength: 80 }), (steps) => {
        const chains = new Map<Node, Ev[]>(NODES.map((n) => [n, []]));
        // What each node has read of each chain (a prefix length), and its clock.
        const seen = new Map<Node, Map<Node, number>>(
          NODES.map((n) => [n, new Map(NODES.map((m) => [m, 0]))]),
        );
        const clock = new Map<Node, number>(NODES.map((n) => [n, 0]));
        const genesis: Ev[] = [
          { ...centreDefined, clock: 0, seq: 0 },
          { ...planned, clock: 0, seq: 1 },
        ];
        const view = (n: Node): CustodyState => {
          const evs = [...genesis];
          for (const m of NODES) evs.push(...chains.get(m)!.slice(0, seen.get(n)!.get(m)!));
          return foldCustody(evs.sort(order));
        };
        const write = (n: Node, type: string, payload: unknown) => {
          const c = clock.get(n)! + 1;
          clock.set(n, c);
          const chain = chains.get(n)!;
          chain.push({ node: n, type, payload, clock: c, seq: chain.length + 1 });
          seen.get(n)!.set(n, chain.length);
        };
        let nextBooking = 0;
        for (const s of steps) {
          const slotId = `sess-1/${s.slot}`;
          const v = view(s.node);
          switch (s.action) {
            case 'book': {
              const may = mayBook(v, slotId, s.node, 'urgent_face_to_face', BEFORE);
              if (may.ok) {
                write(s.node, 'booking.booked', {
                  bookingId: `b${nextBooking++}`,
                  slotId,
                  kind: 'urgent_face_to_face',
                });
                booked++;
              } else if (may.reason === 'slot_not_owned_here') refusedNotOwned++;
              break;
            }
            case 'give':
              if (ownerOf(v, slotId) === s.node && s.other !== s.node) {
                const type = s.other === 'centre' ? 'booking.slots_returned' : 'booking.slots_allocated';
                write(s.node, type, { slotIds: [slotId], toNodeId: s.other, returnAtMs: BEFORE });
              }
              break;
            case 'cancel': {
              const first = v.slots.get(slotId)!.bookings.keys().next();
              if (first.done !== true) write(s.node, 'booking.cancelled', { bookingId: first.value });
              break;
            }
            case 'sync': {
              // s.node reads all of s.other's chain (a whole prefix, as sync delivers it).
              const len = chains.get(s.other)!.length;
              seen.get(s.node)!.set(s.other, len);
              const maxClock = chains.get(s.other)!.reduce((m, e) => Math.max(m, e.clock), 0);
              clock.set(s.node, Math.max(clock.get(s.node)!, maxClock));
              break;
            }
          }
          expect(v.violations).toEqual([]);
        }
        const all = [...genesis, ...NODES.flatMap((n) => chains.get(n)!)].sort(order);
        const merged = foldCustody(all);
        expect(merged.violations).toEqual([]);
        for (const slot of merged.slots.values())
          expect(slot.bookings.size).toBeLessThanOrEqual(slot.capacity);
        // And incrementally: at every point of ledger order.
        const incremental = emptyCustody();
        for (const e of all) {
          applyCustodyEvent(incremental, e);
          for (const slot of incremental.slots.values())
            expect(slot.bookings.size).toBeLessThanOrEqual(slot.capacity);
        }
      }),
      { numRuns: 300, seed: 16 },
    );
    // The property exercised what it claims: bookings were made and refusals by non-owners happened.
    expect(booked).toBeGreaterThan(100);
    expect(refusedNotOwned).toBeGreaterThan(20);
  });
});
