import { describe, expect, it } from 'vitest';
import { BUILTIN_PROJECTIONS, createServerRegistry } from '../../src/node/node.ts';
import { ProjectionEngine } from '../../src/projections/engine.ts';
import { foldsTypes, type ProjectedEvent, type Projection } from '../../src/projections/projection.ts';
import type { Store } from '../../src/store/store.ts';
import type { Tx } from '../../src/store/store.ts';

/**
 * A projection's `folds` lets a restore's rebuild skip events of other types without reading them,
 * which is right only if `apply` leaves its tables alone for those types: it must not even touch
 * the transaction.
 */
describe('projections declare the event types they fold', () => {
  it('foldsTypes takes prefixes ending in a dot and exact types', () => {
    const folds = foldsTypes('case.', 'node.registered');
    expect(folds('case.opened')).toBe(true);
    expect(folds('node.registered')).toBe(true);
    expect(folds('node.registered_again')).toBe(false);
    expect(folds('cases.opened')).toBe(false);
    expect(folds('case')).toBe(false);
  });

  it('every built-in projection declares them, and its apply touches nothing for any other registered type', async () => {
    const untouchable = new Proxy({} as Tx, {
      get(_target, key) {
        throw new Error(`apply used the transaction (${String(key)}) for a type it does not fold`);
      },
    });
    const types = [
      ...new Set(
        createServerRegistry()
          .all()
          .map((d) => d.type),
      ),
      'bench.case.note_added',
    ];
    let skipped = 0;
    for (const p of BUILTIN_PROJECTIONS) {
      expect(p.folds, p.name).toBeTypeOf('function');
      expect(
        types.some((t) => p.folds!(t)),
        `${p.name} folds some registered type`,
      ).toBe(true);
      for (const type of types.filter((t) => !p.folds!(t))) {
        const event = {
          tenant: 't',
          node: 'n',
          seq: 1,
          id: 'id',
          hlc: '0000000000000-0000-n',
          type,
          v: 1,
          actor: 'user:a',
          payloadJson: '{}',
          prevHash: '0'.repeat(64),
          hash: '0'.repeat(64),
          subject: null,
          get payload(): Record<string, unknown> {
            throw new Error(`apply read the payload of ${type}, a type it does not fold`);
          },
        } as ProjectedEvent;
        await p.apply(untouchable, event);
        skipped++;
      }
    }
    expect(skipped).toBeGreaterThan(BUILTIN_PROJECTIONS.length * 10);
  });

  it("the engine hands an appended event only to the projections that fold its type, and batched ones the commit's events at its end", async () => {
    const calls: string[] = [];
    const projection = (name: string, folds?: (type: string) => boolean): Projection => ({
      name,
      version: 1,
      tables: [],
      folds,
      create: async () => undefined,
      apply: async (_trx, e) => void calls.push(`${name}:${e.type}`),
      resetSubject: async () => undefined,
    });
    const batched: Projection = {
      ...projection('audit', foldsTypes('audit.')),
      applyBatch: async (_trx, events) =>
        void calls.push(`audit batch:${events.map((e) => e.type).join(',')}`),
    };
    const engine = new ProjectionEngine(
      {} as Store,
      [
        projection('cases', foldsTypes('case.')),
        batched,
        projection('nodes', foldsTypes('node.registered')),
        projection('everything'),
      ],
      () => 'now',
    );
    const event = (type: string) => ({ type, subject: null }) as ProjectedEvent;
    const commit = engine.appending({} as Tx);
    await commit.apply([event('case.opened'), event('audit.access')]);
    await commit.apply([event('node.registered'), event('audit.denied')]);
    expect(calls).toEqual([
      'cases:case.opened',
      'everything:case.opened',
      'everything:audit.access',
      'nodes:node.registered',
      'everything:node.registered',
      'everything:audit.denied',
    ]);
    calls.length = 0;
    await commit.finish();
    expect(calls).toEqual(['audit batch:audit.access,audit.denied']);
    calls.length = 0;
    await commit.finish();
    expect(calls).toEqual([]);
  });
});
