import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.ts';
import {
  compareQueueEntries,
  deadlineMs,
  formatLondonDateTime,
  formatLondonTime,
  londonWallTime,
  orderQueue,
  queueTiming,
  timingStatus,
  type QueueEntry,
} from '../src/queue/priority.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0) =>
  Date.UTC(y, mo - 1, d, h, mi, s, ms);

// UK clock changes (last Sunday of March / October, 01:00 UTC)
const SPRING_2025 = utc(2025, 3, 30, 1);
const AUTUMN_2025 = utc(2025, 10, 26, 1);

function issuesOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).issues.map((i) => i.path);
  }
  throw new Error('expected a ValidationError');
}

describe('the test environment', () => {
  it('runs with TZ=UTC, so London display cannot be borrowed from the host zone', () => {
    expect(new Date(SPRING_2025 + HOUR).getTimezoneOffset()).toBe(0);
    expect(new Date(SPRING_2025 + HOUR).getHours()).toBe(2);
    expect(Intl.DateTimeFormat().resolvedOptions().timeZone).toMatch(/^(UTC|Etc\/UTC)$/);
  });
});

describe('deadlines', () => {
  it('is the time the call was received plus the timeframe', () => {
    const received = utc(2025, 1, 15, 9, 0);
    expect(deadlineMs(received, 20)).toBe(received + 20 * MIN);
    expect(deadlineMs(received, 6 * 60)).toBe(utc(2025, 1, 15, 15, 0));
  });

  it('refuses malformed instants and timeframes, naming them', () => {
    expect(issuesOf(() => deadlineMs(utc(2025, 1, 1), 0))).toEqual(['timeframeMinutes']);
    expect(issuesOf(() => deadlineMs(utc(2025, 1, 1), -5))).toEqual(['timeframeMinutes']);
    expect(issuesOf(() => deadlineMs(utc(2025, 1, 1), 1.5))).toEqual(['timeframeMinutes']);
    expect(issuesOf(() => deadlineMs(Number.NaN, 20))).toEqual(['callReceivedAtMs']);
    expect(issuesOf(() => queueTiming({ callReceivedAtMs: 0, timeframeMinutes: 20 }, 1.5))).toEqual([
      'nowMs',
    ]);
    expect(issuesOf(() => formatLondonTime(-1))).toEqual(['ms']);
  });
});

describe('timing status at the exact boundaries', () => {
  const received = utc(2025, 1, 15, 9, 0);
  const entry = { callReceivedAtMs: received, timeframeMinutes: 20 };
  const deadline = received + 20 * MIN;
  const fifth = (20 * MIN) / 5; // 4 minutes

  it.each([
    [received - 1, 'on_time'], // clocks of other nodes may be a little behind
    [received, 'on_time'],
    [deadline - fifth, 'on_time'], // exactly a fifth left: not yet less than a fifth
    [deadline - fifth + 1, 'at_risk'],
    [deadline - 1, 'at_risk'],
    [deadline, 'at_risk'], // "within 20 minutes" includes the 20th minute
    [deadline + 1, 'breached'],
    [deadline + 24 * HOUR, 'breached'],
  ] as const)('at %d the case is %s', (now, status) => {
    expect(timingStatus(entry, now)).toBe(status);
  });

  it('reports time remaining, negative once breached', () => {
    expect(queueTiming(entry, received)).toEqual({
      deadlineMs: deadline,
      remainingMs: 20 * MIN,
      status: 'on_time',
    });
    expect(queueTiming(entry, deadline + 5 * MIN).remainingMs).toBe(-5 * MIN);
  });

  it('a one-minute window is at risk for its last 12 seconds', () => {
    const e = { callReceivedAtMs: received, timeframeMinutes: 1 };
    expect(timingStatus(e, received + 48_000)).toBe('on_time');
    expect(timingStatus(e, received + 48_001)).toBe('at_risk');
  });

  it('status only ever worsens as time passes, and matches remaining/window < 1/5', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: utc(2000, 1, 1), max: utc(2037, 1, 1) }),
        fc.integer({ min: 1, max: 14 * 24 * 60 }),
        fc.integer({ min: -HOUR, max: 30 * 24 * HOUR }),
        fc.integer({ min: 0, max: 30 * 24 * HOUR }),
        (received, minutes, offset, later) => {
          const e = { callReceivedAtMs: received, timeframeMinutes: minutes };
          const now = Math.max(0, received + offset);
          const rank = { on_time: 0, at_risk: 1, breached: 2 } as const;
          const a = timingStatus(e, now);
          const b = timingStatus(e, now + later);
          expect(rank[b]).toBeGreaterThanOrEqual(rank[a]);
          const remaining = received + minutes * MIN - now;
          const expected =
            remaining < 0 ? 'breached' : remaining / (minutes * MIN) < 0.2 ? 'at_risk' : 'on_time';
          expect(a).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('queue order', () => {
  const at = utc(2025, 6, 1, 12, 0);
  const entry = (
    caseId: string,
    receivedMinutesAgo: number,
    timeframeMinutes: number,
    priority: number,
  ): QueueEntry => ({
    caseId,
    callReceivedAtMs: at - receivedMinutesAgo * MIN,
    timeframeMinutes,
    priority,
  });

  it('orders by deadline first, whatever the priority', () => {
    const urgentButLater = entry('a', 0, 60, 1); // deadline 13:00
    const routineButSooner = entry('b', 50, 60, 9); // deadline 12:10
    expect(orderQueue([urgentButLater, routineButSooner]).map((e) => e.caseId)).toEqual(['b', 'a']);
  });

  it('then by clinical priority (lower is more urgent), then by case id', () => {
    // all due at 12:20
    const q = [entry('d', 0, 20, 3), entry('c', 40, 60, 1), entry('b', 100, 120, 3), entry('a', 10, 30, 2)];
    expect(orderQueue(q).map((e) => e.caseId)).toEqual(['c', 'a', 'b', 'd']);
  });

  it('compares case ids by code unit, not locale, so every node agrees', () => {
    const q = [entry('b', 0, 20, 1), entry('B', 0, 20, 1), entry('a', 0, 20, 1), entry('A', 0, 20, 1)];
    expect(orderQueue(q).map((e) => e.caseId)).toEqual(['A', 'B', 'a', 'b']);
  });

  it('leaves the input alone and refuses invalid entries, naming them', () => {
    const q = [entry('b', 0, 60, 1), entry('a', 0, 20, 1)];
    const copy = JSON.parse(JSON.stringify(q)) as QueueEntry[];
    orderQueue(q);
    expect(q).toEqual(copy);
    expect(
      issuesOf(() => orderQueue([entry('a', 0, 20, 1), { ...entry('b', 0, 20, 1), priority: 1.5 }])),
    ).toEqual(['entries.1.priority']);
    expect(issuesOf(() => orderQueue([{ ...entry('a', 0, 20, 1), timeframeMinutes: -1 }]))).toEqual([
      'entries.0.timeframeMinutes',
    ]);
  });

  const entries = fc.array(
    fc.record({
      caseId: fc.string({ minLength: 1, maxLength: 4 }),
      callReceivedAtMs: fc.integer({ min: at - 10 * HOUR, max: at }),
      timeframeMinutes: fc.constantFrom(20, 60, 120, 360, 720, 1440),
      priority: fc.integer({ min: 1, max: 5 }),
    }),
    { maxLength: 40 },
  );

  it('is a total order: sorted by (deadline, priority, id), and the same for any input order', () => {
    fc.assert(
      fc.property(entries, fc.infiniteStream(fc.nat()), (q, noise) => {
        const sorted = orderQueue(q);
        const key = (e: QueueEntry) => [e.callReceivedAtMs + e.timeframeMinutes * MIN, e.priority] as const;
        for (let i = 1; i < sorted.length; i++) {
          const [d0, p0] = key(sorted[i - 1]!);
          const [d1, p1] = key(sorted[i]!);
          expect(
            d0 < d1 || (d0 === d1 && (p0 < p1 || (p0 === p1 && sorted[i - 1]!.caseId <= sorted[i]!.caseId))),
          ).toBe(true);
        }
        const it = noise[Symbol.iterator]();
        const shuffled = q
          .map((e) => ({ e, k: it.next().value as number }))
          .sort((a, b) => a.k - b.k)
          .map(({ e }) => e);
        expect(orderQueue(shuffled).map(key)).toEqual(sorted.map(key));
        expect(orderQueue(shuffled).map((e) => e.caseId)).toEqual(sorted.map((e) => e.caseId));
        for (const a of q) expect(Math.sign(compareQueueEntries(a, a))).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('across the UK clock changes', () => {
  it('shows the moment of each change correctly', () => {
    expect(formatLondonTime(SPRING_2025 - 1)).toBe('00:59 GMT');
    expect(formatLondonTime(SPRING_2025)).toBe('02:00 BST');
    expect(formatLondonTime(AUTUMN_2025 - 1)).toBe('01:59 BST');
    expect(formatLondonTime(AUTUMN_2025)).toBe('01:00 GMT');
  });

  it('a 2-hour window spanning the spring-forward hour is 120 real minutes, shown at the right wall time', () => {
    const received = utc(2025, 3, 30, 0, 30); // 00:30 GMT
    const deadline = deadlineMs(received, 120);
    expect(deadline - received).toBe(120 * MIN);
    expect(formatLondonTime(received)).toBe('00:30 GMT');
    // Wall clocks show 03:30, three hours on: the hour from 01:00 to 02:00 GMT did not exist.
    expect(formatLondonDateTime(deadline)).toBe('Sun 30 Mar 2025 03:30 BST');
    // 03:00 BST is 02:00 UTC: 30 of 120 minutes left, so not at risk (less than 24 left).
    expect(timingStatus({ callReceivedAtMs: received, timeframeMinutes: 120 }, utc(2025, 3, 30, 2, 0))).toBe(
      'on_time',
    );
    expect(
      timingStatus({ callReceivedAtMs: received, timeframeMinutes: 120 }, utc(2025, 3, 30, 2, 6, 0, 1)),
    ).toBe('at_risk');
    expect(timingStatus({ callReceivedAtMs: received, timeframeMinutes: 120 }, deadline + 1)).toBe(
      'breached',
    );
  });

  it('a 2-hour window spanning the fall-back hour is 120 real minutes, shown at the right wall time', () => {
    const received = utc(2025, 10, 26, 0, 30); // 01:30 BST
    const deadline = deadlineMs(received, 120);
    expect(deadline - received).toBe(120 * MIN);
    expect(formatLondonTime(received)).toBe('01:30 BST');
    // Wall clocks show 02:30, one hour on: 01:00–02:00 was lived twice.
    expect(formatLondonDateTime(deadline)).toBe('Sun 26 Oct 2025 02:30 GMT');
    expect(timingStatus({ callReceivedAtMs: received, timeframeMinutes: 120 }, deadline)).toBe('at_risk');
  });

  it('tells apart the two 01:30s of the autumn night by their zone', () => {
    expect(formatLondonTime(utc(2025, 10, 26, 0, 30))).toBe('01:30 BST');
    expect(formatLondonTime(utc(2025, 10, 26, 1, 30))).toBe('01:30 GMT');
  });

  it.each([
    [2024, 3, 31],
    [2024, 10, 27],
    [2026, 3, 29],
    [2026, 10, 25],
  ])('changes on %d-%d-%d at 01:00 UTC', (y, m, d) => {
    const change = utc(y, m, d, 1);
    const before = londonWallTime(change - 1);
    const after = londonWallTime(change);
    expect(before.zone).toBe(m === 3 ? 'GMT' : 'BST');
    expect(after.zone).toBe(m === 3 ? 'BST' : 'GMT');
    expect(after.hour).toBe(m === 3 ? '02' : '01');
  });

  /** The UK rule, written out independently: BST from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC. */
  function lastSunday01Utc(year: number, month: number): number {
    const lastDay = new Date(Date.UTC(year, month, 0)); // day 0 of the next month
    return Date.UTC(year, month - 1, lastDay.getUTCDate() - lastDay.getUTCDay(), 1);
  }

  it('for any instant this century, shows UTC in winter and UTC+1 in summer', () => {
    fc.assert(
      fc.property(fc.integer({ min: utc(2000, 1, 1), max: utc(2037, 12, 31) }), (ms) => {
        const year = new Date(ms).getUTCFullYear();
        const summer = ms >= lastSunday01Utc(year, 3) && ms < lastSunday01Utc(year, 10);
        const wall = new Date(ms + (summer ? HOUR : 0));
        const w = londonWallTime(ms);
        expect(w.zone).toBe(summer ? 'BST' : 'GMT');
        expect(Number(w.hour)).toBe(wall.getUTCHours());
        expect(Number(w.minute)).toBe(wall.getUTCMinutes());
        expect(Number(w.day)).toBe(wall.getUTCDate());
        expect(Number(w.year)).toBe(wall.getUTCFullYear());
      }),
      { numRuns: 5000 },
    );
  });
});
