import { describe, expect, it } from 'vitest';
import { callTimingMeasures, nearestRankCentile, normalisePhoneLine, type TimedCall } from '../src/index.ts';

/** IUC ADC B01–B07 from telephony timings (telephony/measures.ts), and matching a caller's line. */
describe('call timing measures', () => {
  const T0 = Date.UTC(2026, 10, 20, 10);
  const answered = (waitMs: number): TimedCall => ({
    offeredAtMs: T0,
    answeredAtMs: T0 + waitMs,
    abandonedAtMs: null,
  });
  const abandoned = (waitMs: number): TimedCall => ({
    offeredAtMs: T0,
    answeredAtMs: null,
    abandonedAtMs: T0 + waitMs,
  });

  it('takes the nearest-rank centile', () => {
    expect(nearestRankCentile([], 0.95)).toBe(0);
    expect(nearestRankCentile([7], 0.95)).toBe(7);
    expect(nearestRankCentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9);
    expect(nearestRankCentile([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 0.95)).toBe(10);
    expect(nearestRankCentile([5, 1, 3], 0.5)).toBe(3);
  });

  it('counts 60 s exactly as within 60 s, times from the offer, and leaves calls ended in the message out', () => {
    const values = callTimingMeasures([
      answered(60_000), // exactly 60 s: within
      answered(60_001), // just over
      answered(0),
      abandoned(29_500),
      abandoned(90_250),
      { offeredAtMs: null, answeredAtMs: null, abandonedAtMs: T0 + 5_000 }, // during the introduction
      { offeredAtMs: T0, answeredAtMs: null, abandonedAtMs: null }, // still waiting: not timed yet
    ]);
    expect(values).toEqual({
      B01: 2,
      B02: 2,
      B03: 120, // 120.001 s, rounded
      B04: 61, // 60.001 s rounded up: a centile never flatters
      B05: 61,
      B06: 120, // 119.75 s, rounded
      B07: 91, // 90.25 s rounded up
    });
    expect(callTimingMeasures([])).toEqual({ B01: 0, B02: 0, B03: 0, B04: 0, B05: 0, B06: 0, B07: 0 });
  });

  it('reads a caller’s line and a typed call-back number the same way', () => {
    expect(normalisePhoneLine('07700 900123')).toBe('07700900123');
    expect(normalisePhoneLine('+44 7700 900123')).toBe('07700900123');
    expect(normalisePhoneLine('0044 (7700) 900-123')).toBe('07700900123');
    expect(normalisePhoneLine('+353 1 234 5678')).toBe('35312345678');
    expect(normalisePhoneLine('withheld')).toBeNull();
    expect(normalisePhoneLine('')).toBeNull();
    expect(normalisePhoneLine(null)).toBeNull();
  });
});
