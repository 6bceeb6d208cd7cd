import { describe, expect, it } from 'vitest';
import {
  bookingTimeframe,
  suggestSlots,
  waitingAtRisk,
  DEFAULT_OUTCOME_TIMEFRAME_MINUTES,
  type AppointmentKind,
  type CentreForSuggestion,
  type SlotForSuggestion,
} from '../src/index.ts';

const at = (hhmm: string) => Date.parse(`2026-12-05T${hhmm}:00Z`); // December: London is UTC

// The patient is at Northgate's door; Eastfield is about 5 km east, Southbank about 12 km south.
const centres: CentreForSuggestion[] = [
  { centreId: 'A', name: 'Northgate', lat: 53.8, lon: -1.55 },
  { centreId: 'B', name: 'Eastfield', lat: 53.8, lon: -1.4741 },
  { centreId: 'C', name: 'Southbank', lat: 53.6921, lon: -1.55 },
];
const patient = { lat: 53.8, lon: -1.55 };

function slot(
  name: string,
  centreId: string,
  n: number,
  hhmm: string,
  opts: { free?: number; bookableHere?: boolean; kinds?: AppointmentKind[] } = {},
): SlotForSuggestion & { name: string } {
  return {
    name,
    slotId: `${centreId}-s/${n}`,
    sessionId: `${centreId}-s`,
    centreId,
    roomId: 'r',
    startMs: at(hhmm),
    endMs: at(hhmm) + 15 * 60_000,
    startLocal: `2026-12-05 ${hhmm}`,
    utcOffsetMinutes: 0,
    capacity: 1,
    kinds: opts.kinds ?? ['urgent_face_to_face'],
    free: opts.free ?? 1,
    bookableHere: opts.bookableHere ?? true,
  };
}

/**
 * Now 18:00, timeframe 2 hours: deadline 20:00.
 *
 * | slot | centre (km) | start | note                         | group                     | round | place |
 * |------|-------------|-------|------------------------------|---------------------------|-------|-------|
 * | a1   | A (0)       | 19:30 |                              | within, bookable          | 0     | 1     |
 * | b1   | B (5)       | 18:30 |                              | within, bookable          | 0     | 2     |
 * | c1   | C (12)      | 18:15 |                              | within, bookable          | 0     | 3     |
 * | a2   | A (0)       | 19:45 |                              | within, bookable          | 1     | 4     |
 * | b2   | B (5)       | 19:00 |                              | within, bookable          | 1     | 5     |
 * | b3   | B (5)       | 20:00 | at the deadline: within      | within, bookable          | 2     | 6     |
 * | c2   | C (12)      | 18:45 | held by another node         | within, not bookable here | 0     | 7     |
 * | a3   | A (0)       | 21:00 | after the deadline           | after (by time, then km)  | 0     | 8     |
 * | b4   | B (5)       | 21:00 | after the deadline           | after                     | 0     | 9     |
 * | c3   | C (12)      | 22:00 | after the deadline           | after                     | 0     | 10    |
 * | x    | A (0)       | 18:10 | full                         | not suitable              |       |       |
 * | p    | B (5)       | 17:45 | already started              | not suitable              |       |       |
 * | d    | C (12)      | 18:20 | dressings only               | not suitable              |       |       |
 * | z    | Z (?)       | 18:05 | a centre not listed          | not suitable              |       |       |
 */
const table = [
  slot('x', 'A', 1, '18:10', { free: 0 }),
  slot('a1', 'A', 2, '19:30'),
  slot('a2', 'A', 3, '19:45'),
  slot('a3', 'A', 4, '21:00'),
  slot('p', 'B', 1, '17:45'),
  slot('b1', 'B', 2, '18:30'),
  slot('b2', 'B', 3, '19:00'),
  slot('b3', 'B', 4, '20:00'),
  slot('b4', 'B', 5, '21:00'),
  slot('c1', 'C', 1, '18:15'),
  slot('d', 'C', 2, '18:20', { kinds: ['dressing'] }),
  slot('c2', 'C', 3, '18:45', { bookableHere: false }),
  slot('c3', 'C', 4, '22:00'),
  slot('z', 'Z', 1, '18:05'),
];
// Given in another order, to show the input order does not matter.
const shuffled = [...table].reverse();

const names = (r: { slot: SlotForSuggestion }[]) =>
  r.map((s) => (s.slot as SlotForSuggestion & { name: string }).name);

describe('suggestSlots: the hand-worked table', () => {
  const input = {
    slots: shuffled,
    centres,
    from: patient,
    nowMs: at('18:00'),
    deadlineMs: at('20:00'),
    kind: 'urgent_face_to_face' as const,
  };

  it('one per centre nearest first, then the next round; held slots after; after the timeframe by time', () => {
    const r = suggestSlots({ ...input, limit: 20 });
    expect(names(r)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'b3', 'c2', 'a3', 'b4', 'c3']);
    expect(r.map((s) => s.withinTimeframe)).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(r[0]!.distanceKm).toBeCloseTo(0, 5);
    expect(r[1]!.distanceKm).toBeCloseTo(5, 0);
    expect(r[2]!.distanceKm).toBeCloseTo(12, 0);
    expect(r[1]!.centre.name).toBe('Eastfield');
    expect(r[6]!.slot.bookableHere).toBe(false);
  });

  it('the limit keeps the first ones (default 10)', () => {
    expect(names(suggestSlots({ ...input, limit: 4 }))).toEqual(['a1', 'b1', 'c1', 'a2']);
    expect(suggestSlots(input)).toHaveLength(10);
    expect(suggestSlots({ ...input, limit: 0 })).toEqual([]);
  });

  it('without the patient’s location: earliest first in each round', () => {
    const r = suggestSlots({ ...input, from: null, limit: 20 });
    expect(names(r)).toEqual(['c1', 'b1', 'a1', 'b2', 'a2', 'b3', 'c2', 'a3', 'b4', 'c3']);
    expect(r.every((s) => s.distanceKm === null)).toBe(true);
  });

  it('a kind no slot takes gives nothing; another kind gives its own slots', () => {
    expect(suggestSlots({ ...input, kind: 'routine' })).toEqual([]);
    expect(names(suggestSlots({ ...input, kind: 'dressing' }))).toEqual(['d']);
  });

  it('later in the evening: past slots drop out and the deadline moves', () => {
    const r = suggestSlots({ ...input, nowMs: at('19:40'), deadlineMs: at('21:40'), limit: 20 });
    expect(names(r)).toEqual(['a2', 'b3', 'a3', 'b4', 'c3']);
    expect(r.map((s) => s.withinTimeframe)).toEqual([true, true, true, true, false]);
  });
});

describe('bookingTimeframe: which dispositions and outcomes are bookable', () => {
  it.each([
    [
      { kind: 'contact_primary_care', dxCode: 'Dx05' },
      { kind: 'urgent_face_to_face', minutes: 120 },
    ],
    [
      { kind: 'contact_primary_care', dxCode: 'Dx08' },
      { kind: 'urgent_face_to_face', minutes: 1440 },
    ],
    [
      { kind: 'contact_primary_care', timeframeMinutes: 360 },
      { kind: 'urgent_face_to_face', minutes: 360 },
    ],
    [{ kind: 'contact_primary_care', dxCode: 'Dx10' }, null],
    [{ kind: 'contact_primary_care' }, null],
    [
      { kind: 'ed_utc', dxCode: 'SAMPLE-UTC-4H' },
      { kind: 'urgent_face_to_face', minutes: 240 },
    ],
    [{ kind: 'ed_utc', dxCode: 'SAMPLE-ED-1H' }, null],
    [{ kind: 'ed_utc', timeframeMinutes: 60 }, null],
    [{ kind: 'speak_to_primary_care', dxCode: 'Dx12' }, null],
    [{ kind: 'ambulance', dxCode: 'SAMPLE-AMB-C3' }, null],
    [{ kind: 'self_care' }, null],
    [{ kind: 'dental', dxCode: 'SAMPLE-DENTAL-4H' }, null],
    [{ kind: 'pharmacy', dxCode: 'Dx28' }, null],
    [{ kind: 'other', dxCode: 'SAMPLE-MH-1H' }, null],
    [
      { outcome: 'book_appointment' },
      { kind: 'urgent_face_to_face', minutes: DEFAULT_OUTCOME_TIMEFRAME_MINUTES },
    ],
    [
      { outcome: 'book_appointment', appointmentKind: 'dressing', timeframeMinutes: 720 },
      { kind: 'dressing', minutes: 720 },
    ],
    [{ outcome: 'advice_and_close' }, null],
    [{ outcome: 'home_visit' }, null],
  ] as const)('%j → %j', (from, expected) => {
    expect(bookingTimeframe(from)).toEqual(expected);
  });

  it('a window longer than the diary looks ahead is cut to two weeks', () => {
    expect(bookingTimeframe({ kind: 'contact_primary_care', timeframeMinutes: 99_999 })).toEqual({
      kind: 'urgent_face_to_face',
      minutes: 14 * 24 * 60,
    });
  });
});

describe('waitingAtRisk: a patient waiting at the centre, as the CAS queue shows a case', () => {
  it.each([
    [0, 'on_time'],
    [95, 'on_time'],
    [97, 'at_risk'], // less than a fifth of 120 minutes (24) left
    [120, 'at_risk'], // the deadline itself is still within the timeframe
    [121, 'breached'],
  ] as const)('%i minutes after arrival with a 2-hour timeframe: %s', (minutes, expected) => {
    expect(waitingAtRisk(at('18:00'), at('18:00') + minutes * 60_000, 120)).toBe(expected);
  });
});
