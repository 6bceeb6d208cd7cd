import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  generateSlots,
  localToUtcMs,
  parseSlotId,
  sessionBounds,
  utcMsToLocal,
  formatLocal,
  type DiarySession,
  type SlotTemplate,
} from '../src/index.ts';
import { ValidationError } from '../src/errors.ts';

const quarterHour: SlotTemplate = {
  templateId: 'quarter',
  name: 'Quarter-hour, one patient',
  slotMinutes: 15,
  patientsPerSlot: 1,
  kinds: ['urgent_face_to_face', 'routine'],
};

function session(date: string, startLocal: string, endLocal: string, template = quarterHour): DiarySession {
  return {
    sessionId: `s-${date}-${startLocal.replace(':', '')}`,
    centreId: 'northgate',
    roomId: 'room-1',
    clinicianId: null,
    clinicianName: 'Dr A Sample',
    date,
    startLocal,
    endLocal,
    template,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
/** Each slot as 'HH:mm+offset=UTC HH:mm', so a table reads both clocks. */
const shown = (s: DiarySession) =>
  generateSlots(s).map(
    (x) => `${x.startLocal.slice(11)}+${x.utcOffsetMinutes / 60}=${iso(x.startMs).slice(11, 16)}`,
  );

describe('diary sessions across the clock changes (Europe/London)', () => {
  it.each([
    // 2026: clocks go forward at 01:00 GMT on Sunday 29 March, back at 01:00 GMT on Sunday 25 October.
    ['2026-03-29', '2026-10-25'],
    // 2027: forward on 28 March, back on 31 October.
    ['2027-03-28', '2027-10-31'],
  ])('spring %s: 01:00–03:00 is one hour; autumn %s: three hours with 01:xx twice', (spring, autumn) => {
    // 01:00–02:00 does not exist on the spring night: the session starts at the jump (02:00 BST).
    expect(shown(session(spring, '01:00', '03:00'))).toEqual([
      '02:00+1=01:00',
      '02:15+1=01:15',
      '02:30+1=01:30',
      '02:45+1=01:45',
    ]);
    // 01:00 BST is 00:00 UTC; 03:00 GMT is 03:00 UTC: the repeated hour is there, told apart by the offset.
    expect(shown(session(autumn, '01:00', '03:00'))).toEqual([
      '01:00+1=00:00',
      '01:15+1=00:15',
      '01:30+1=00:30',
      '01:45+1=00:45',
      '01:00+0=01:00',
      '01:15+0=01:15',
      '01:30+0=01:30',
      '01:45+0=01:45',
      '02:00+0=02:00',
      '02:15+0=02:15',
      '02:30+0=02:30',
      '02:45+0=02:45',
    ]);
  });

  it('an overnight session across the spring change is 11 hours, across the autumn change 13', () => {
    const hourly: SlotTemplate = { ...quarterHour, templateId: 'hour', slotMinutes: 60 };
    const spring = generateSlots(session('2026-03-28', '20:00', '08:00', hourly));
    expect(spring).toHaveLength(11);
    expect(spring.map((s) => s.startLocal.slice(11))).toEqual([
      '20:00',
      '21:00',
      '22:00',
      '23:00',
      '00:00',
      '02:00',
      '03:00',
      '04:00',
      '05:00',
      '06:00',
      '07:00',
    ]);
    expect(spring[4]!.startLocal).toBe('2026-03-29 00:00');
    expect(iso(spring.at(-1)!.endMs)).toBe('2026-03-29T07:00:00.000Z'); // 08:00 BST
    const autumn = generateSlots(session('2026-10-24', '20:00', '08:00', hourly));
    expect(autumn).toHaveLength(13);
    expect(autumn.map((s) => s.startLocal.slice(11))).toEqual([
      '20:00',
      '21:00',
      '22:00',
      '23:00',
      '00:00',
      '01:00',
      '01:00',
      '02:00',
      '03:00',
      '04:00',
      '05:00',
      '06:00',
      '07:00',
    ]);
    expect(iso(autumn[0]!.startMs)).toBe('2026-10-24T19:00:00.000Z'); // 20:00 BST
    expect(iso(autumn.at(-1)!.endMs)).toBe('2026-10-25T08:00:00.000Z'); // 08:00 GMT
  });

  it('ordinary days: winter is UTC, summer an hour ahead; slots are whole and numbered from 1', () => {
    const winter = generateSlots(session('2026-12-05', '18:30', '19:40'));
    expect(winter.map((s) => s.slotId)).toEqual([1, 2, 3, 4].map((n) => `s-2026-12-05-1830/${n}`));
    expect(iso(winter[0]!.startMs)).toBe('2026-12-05T18:30:00.000Z');
    // 70 minutes make four 15-minute slots; the last 10 minutes are not a slot.
    expect(iso(winter.at(-1)!.endMs)).toBe('2026-12-05T19:30:00.000Z');
    const summer = generateSlots(session('2026-07-01', '18:30', '19:00'));
    expect(summer.map((s) => iso(s.startMs))).toEqual([
      '2026-07-01T17:30:00.000Z',
      '2026-07-01T17:45:00.000Z',
    ]);
    expect(summer[0]).toMatchObject({
      capacity: 1,
      kinds: ['urgent_face_to_face', 'routine'],
      centreId: 'northgate',
    });
    expect(parseSlotId(summer[1]!.slotId)).toEqual({ sessionId: 's-2026-07-01-1830', n: 2 });
    expect(parseSlotId('no-number')).toBeNull();
  });

  it('a session ending at 24:00 ends at the next midnight', () => {
    const b = sessionBounds({ date: '2026-07-01', startLocal: '22:00', endLocal: '24:00' });
    expect([iso(b.startMs), iso(b.endMs)]).toEqual(['2026-07-01T21:00:00.000Z', '2026-07-01T23:00:00.000Z']);
  });

  it('refuses malformed sessions naming the field', () => {
    const bad = (s: DiarySession) => {
      try {
        generateSlots(s);
      } catch (e) {
        expect(e).toBeInstanceOf(ValidationError);
        return (e as ValidationError).issues.map((i) => i.path);
      }
      throw new Error('accepted');
    };
    expect(bad(session('2026-02-30', '09:00', '10:00'))).toEqual(['date']);
    expect(bad(session('2026-03-01', '9:00', '10:00'))).toEqual(['session.startLocal']);
    expect(bad(session('2026-03-01', '09:00', '09:10'))).toEqual(['session.endLocal']);
    expect(
      bad({ ...session('2026-03-01', '09:00', '10:00'), template: { ...quarterHour, kinds: [] } }),
    ).toEqual(['session.template.kinds']);
    expect(
      bad({ ...session('2026-03-01', '09:00', '10:00'), template: { ...quarterHour, slotMinutes: 0 } }),
    ).toEqual(['session.template.slotMinutes']);
  });
});

describe('localToUtcMs and its reverse', () => {
  it.each([
    ['2026-03-29', '00:59', '2026-03-29T00:59:00.000Z'],
    // In the gap: the instant the clocks jump to.
    ['2026-03-29', '01:00', '2026-03-29T01:00:00.000Z'],
    ['2026-03-29', '01:30', '2026-03-29T01:00:00.000Z'],
    ['2026-03-29', '02:00', '2026-03-29T01:00:00.000Z'],
    ['2026-03-29', '02:01', '2026-03-29T01:01:00.000Z'],
    // Twice: the first (BST) of the two.
    ['2026-10-25', '00:59', '2026-10-24T23:59:00.000Z'],
    ['2026-10-25', '01:00', '2026-10-25T00:00:00.000Z'],
    ['2026-10-25', '01:59', '2026-10-25T00:59:00.000Z'],
    ['2026-10-25', '02:00', '2026-10-25T02:00:00.000Z'],
    ['2027-03-28', '01:30', '2027-03-28T01:00:00.000Z'],
    ['2027-10-31', '01:30', '2027-10-31T00:30:00.000Z'],
    ['2026-12-31', '24:00', '2027-01-01T00:00:00.000Z'],
  ])('%s %s London is %s', (date, time, expected) => {
    expect(iso(localToUtcMs(date, time))).toBe(expected);
  });

  it('works for another zone (New York, clocks forward on 8 March 2026 at 02:00)', () => {
    expect(iso(localToUtcMs('2026-03-08', '01:59', 'America/New_York'))).toBe('2026-03-08T06:59:00.000Z');
    expect(iso(localToUtcMs('2026-03-08', '02:30', 'America/New_York'))).toBe('2026-03-08T07:00:00.000Z');
    expect(iso(localToUtcMs('2026-03-08', '03:00', 'America/New_York'))).toBe('2026-03-08T07:00:00.000Z');
    expect(utcMsToLocal(Date.parse('2026-03-08T07:00:00Z'), 'America/New_York')).toEqual({
      date: '2026-03-08',
      time: '03:00',
      utcOffsetMinutes: -240,
    });
    expect(() => localToUtcMs('2026-03-08', '03:00', 'Mars/Olympus')).toThrow(ValidationError);
  });

  it('round trip: every minute of 2026–2027 reads back to itself, but the second of a repeated hour', () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    const end = Date.parse('2028-01-01T00:00:00Z');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: (end - start) / 60_000 }), (minute) => {
        const ms = start + minute * 60_000;
        const local = utcMsToLocal(ms);
        const back = localToUtcMs(local.date, local.time);
        // The repeated hour (autumn, GMT): the wall clock names the earlier (BST) instant.
        const repeated = local.utcOffsetMinutes === 0 && utcMsToLocal(ms - 3_600_000).time === local.time;
        expect(back).toBe(repeated ? ms - 3_600_000 : ms);
        expect(formatLocal(ms)).toBe(`${local.date} ${local.time}`);
      }),
      { numRuns: 3000 },
    );
    // And the autumn hour itself, minute by minute.
    for (let m = 0; m < 180; m++) {
      const ms = Date.parse('2026-10-24T23:30:00Z') + m * 60_000;
      const local = utcMsToLocal(ms);
      const back = localToUtcMs(local.date, local.time);
      expect(back === ms || back === ms - 3_600_000).toBe(true);
    }
  });
});
