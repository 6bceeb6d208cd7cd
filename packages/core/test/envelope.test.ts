import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalBody,
  canonicalJson,
  compareLedgerOrder,
  FixedClock,
  formatHlc,
  HybridLogicalClock,
  parseHlc,
} from '../src/index.ts';

const jsonValue = fc.jsonValue({ maxDepth: 3 }).filter((v) => typeof v !== 'number' || Number.isFinite(v));

describe('canonical envelope body', () => {
  it('equals the RFC 8785 canonical JSON of the envelope for any payload and field values', () => {
    fc.assert(
      fc.property(
        fc.record({
          id: fc.uuid(),
          tenant: fc.string({ minLength: 1 }),
          node: fc.string({ minLength: 1 }),
          seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          hlc: fc.string(),
          type: fc.string({ minLength: 1 }),
          v: fc.integer({ min: 1, max: 1000 }),
          actor: fc.string({ unit: 'grapheme' }),
          prevHash: fc.stringMatching(/^[0-9a-f]{64}$/),
        }),
        fc.dictionary(fc.string({ unit: 'grapheme' }), jsonValue),
        (fields, payload) => {
          const payloadJson = canonicalJson(payload);
          expect(canonicalBody({ ...fields, payloadJson })).toBe(canonicalJson({ ...fields, payload }));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses values JSON cannot carry exactly', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow();
    expect(() => canonicalJson({ a: Infinity })).toThrow();
    expect(() => canonicalJson({ a: '\ud800' })).toThrow(/surrogate/i);
  });
});

describe('hybrid logical clock', () => {
  it('formats so that string order is clock order', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 47 }),
        fc.nat({ max: 999_999 }),
        fc.nat({ max: 2 ** 47 }),
        fc.nat({ max: 999_999 }),
        (w1, c1, w2, c2) => {
          const a = formatHlc({ wallMs: w1, counter: c1 });
          const b = formatHlc({ wallMs: w2, counter: c2 });
          const byValue = w1 - w2 || c1 - c2;
          expect(Math.sign(a < b ? -1 : a > b ? 1 : 0)).toBe(Math.sign(byValue));
          expect(parseHlc(a)).toEqual({ wallMs: w1, counter: c1 });
        },
      ),
    );
  });

  it('never goes backwards, whatever the wall clock and remote clocks do', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('tick' as const), wall: fc.nat({ max: 10_000 }) }),
            fc.record({
              kind: fc.constant('observe' as const),
              wall: fc.nat({ max: 10_000 }),
              remote: fc.nat({ max: 20_000 }),
              counter: fc.nat({ max: 999_999 }),
            }),
          ),
        ),
        (steps) => {
          const clock = new FixedClock(0);
          const hlc = new HybridLogicalClock(clock);
          let last = hlc.current();
          for (const step of steps) {
            clock.set(step.wall);
            if (step.kind === 'tick') {
              const t = hlc.tick();
              expect(t > last).toBe(true);
              last = t;
            } else {
              const remote = formatHlc({ wallMs: step.remote, counter: step.counter });
              hlc.observe(remote);
              expect(hlc.current() >= remote).toBe(true);
              expect(hlc.current() >= last).toBe(true);
              last = hlc.current();
              expect(hlc.tick() > remote).toBe(true);
              last = hlc.current();
            }
          }
        },
      ),
    );
  });

  it('orders events by (hlc, node, seq)', () => {
    const e = (hlc: string, node: string, seq: number) => ({ hlc, node, seq });
    const sorted = [e('2', 'a', 1), e('1', 'b', 9), e('1', 'a', 2), e('1', 'a', 1)].sort(compareLedgerOrder);
    expect(sorted).toEqual([e('1', 'a', 1), e('1', 'a', 2), e('1', 'b', 9), e('2', 'a', 1)]);
  });
});
