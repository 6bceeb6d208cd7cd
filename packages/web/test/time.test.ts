import { describe, expect, it } from 'vitest';
import { londonDateTime, londonTime, londonWhen, londonZone } from '../src/lib/time.ts';

/**
 * UK times on screen say GMT or BST (lib/time.ts). Run with TZ=UTC (vitest.config.ts sets it): the
 * browser's or machine's own zone must not matter. 01:45 happens twice on Sunday 25 October 2026.
 */
describe('UK times with their zone', () => {
  const FIRST = '2026-10-25T00:45:00Z'; // 01:45 BST
  const SECOND = '2026-10-25T01:45:00Z'; // 01:45 GMT, an hour later

  it('tells the two 01:45s of the autumn clock change apart', () => {
    expect(process.env.TZ).toBe('UTC');
    expect(londonTime(FIRST)).toBe('01:45 BST');
    expect(londonTime(SECOND)).toBe('01:45 GMT');
    expect(londonZone(FIRST)).toBe('BST');
    expect(londonZone(SECOND)).toBe('GMT');
    expect(londonDateTime(FIRST)).toBe('25 Oct 2026, 01:45:00 BST');
    expect(londonDateTime(SECOND)).toBe('25 Oct 2026, 01:45:00 GMT');
    const sameDay = Date.parse('2026-10-25T09:00:00Z');
    expect(londonWhen(FIRST, sameDay)).toBe('01:45 BST');
    expect(londonWhen(SECOND, sameDay)).toBe('01:45 GMT');
    expect(londonWhen(SECOND, Date.parse('2026-10-26T09:00:00Z'))).toBe('Sun 25 Oct 01:45 GMT');
  });

  it('says GMT in winter and BST in summer, around the spring change too', () => {
    expect(londonTime('2026-03-29T00:59:00Z')).toBe('00:59 GMT');
    expect(londonTime('2026-03-29T01:00:00Z')).toBe('02:00 BST');
    expect(londonTime('2026-07-01T23:30:00Z')).toBe('00:30 BST');
    expect(londonTime(Date.UTC(2026, 11, 4, 21, 5))).toBe('21:05 GMT');
  });
});
