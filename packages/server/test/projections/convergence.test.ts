import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importBatch } from '../../src/ledger/import.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { snapshotTestTables } from '../support/ledger-fixture.ts';
import { collectBatches, registerPeer, startTestNode, toNumbered, type TestNode } from '../support/nodes.ts';

/**
 * Acceptance: projections rebuilt from scratch equal the incrementally maintained ones, also after
 * merging three nodes' events arriving in random order.
 */
const RUNS = Number(process.env.HOLDFAST_CONVERGENCE_RUNS ?? 25);

interface Command {
  node: number;
  advanceMs: number;
  kind: 'note' | 'status' | 'tick';
  item: number;
  status: 'open' | 'waiting' | 'closed';
}

const arbCommand: fc.Arbitrary<Command> = fc.record({
  node: fc.integer({ min: 0, max: 2 }),
  advanceMs: fc.integer({ min: 0, max: 3000 }),
  kind: fc.constantFrom('note' as const, 'status' as const, 'tick' as const),
  item: fc.integer({ min: 0, max: 3 }),
  status: fc.constantFrom('open' as const, 'waiting' as const, 'closed' as const),
});

describe.each(STORE_KINDS)('projection convergence on %s', (kind) => {
  let sources: TestNode[];
  let hub: TestNode;
  let hub2: TestNode;
  let run = 0;

  beforeAll(async () => {
    // Sources keep their own clocks, started apart, so their events interleave in ledger order.
    sources = [];
    for (let i = 0; i < 3; i++)
      sources.push(
        await startTestNode(
          'sqlite',
          { node: `site-${i}`, tenant: 'seed' },
          { checkpointEvery: 4, startMs: 1_764_000_000_000 + i * 500 },
        ),
      );
    hub = await startTestNode(kind, { node: 'hub', tenant: 'seed' });
    hub2 = await startTestNode(kind, { node: 'hub2', tenant: 'seed' });
  });
  afterAll(async () => {
    for (const n of [...(sources ?? []), hub, hub2]) await n?.destroy();
  });

  it('locally appended events: incremental equals rebuilt', async () => {
    const node = sources[0]!;
    for (let i = 0; i < 30; i++) {
      node.clock.advance(10);
      await node.ledger.append([
        {
          tenant: 'seed',
          type: 'test.item.noted',
          actor: 'user:u',
          payload: { item: `x${i % 3}`, text: `t${i}` },
        },
      ]);
    }
    const incremental = await snapshotTestTables(node.store.db);
    await node.projections.rebuild();
    expect(await snapshotTestTables(node.store.db)).toEqual(incremental);
    expect(incremental.items.length).toBe(3);
  });

  it(`three nodes' events merged in random order converge (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbCommand, { minLength: 5, maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.infiniteStream(fc.nat()),
        fc.infiniteStream(fc.nat()),
        async (commands, batchSize, shuffle1, shuffle2) => {
          run++;
          const tenant = `m${run}`;
          for (const s of sources) await s.ledger.registerSelf(tenant, 'site');
          for (const h of [hub, hub2]) {
            await h.ledger.registerSelf(tenant, 'hub');
            for (const s of sources) await registerPeer(h, s, tenant);
          }
          for (const c of commands) {
            const node = sources[c.node]!;
            node.clock.advance(c.advanceMs);
            const payload =
              c.kind === 'tick'
                ? { n: c.item }
                : c.kind === 'note'
                  ? { item: `case-${c.item}`, text: `from ${node.identity.node}` }
                  : { item: `case-${c.item}`, status: c.status };
            const type =
              c.kind === 'tick' ? 'test.tick' : c.kind === 'note' ? 'test.item.noted' : 'test.item.status';
            await node.ledger.append([{ tenant, type, actor: 'user:u', payload }]);
          }
          const batches: string[][] = [];
          for (const s of sources)
            batches.push(...(await collectBatches(s, tenant, batchSize, [s.identity.node])));
          const order = (stream: fc.Stream<number>) => {
            const keyed = batches.map((b, i) => ({ b, k: 0, i }));
            const it = stream[Symbol.iterator]();
            for (const entry of keyed) entry.k = it.next().value as number;
            return keyed.sort((x, y) => x.k - y.k || x.i - y.i).map((x) => x.b);
          };
          for (const b of order(shuffle1)) await importBatch(hub.ledger, tenant, toNumbered(b));
          for (const b of order(shuffle2)) await importBatch(hub2.ledger, tenant, toNumbered(b));

          const incremental = await tenantSnapshot(hub, tenant);
          expect(await tenantSnapshot(hub2, tenant)).toEqual(incremental);
          // The reference: every event folded once, in ledger order, from scratch.
          await hub.projections.rebuild();
          expect(await tenantSnapshot(hub, tenant)).toEqual(incremental);
        },
      ),
      { numRuns: RUNS, seed: process.env.HOLDFAST_SEED ? Number(process.env.HOLDFAST_SEED) : undefined },
    );
  });
});

async function tenantSnapshot(node: TestNode, tenant: string): Promise<unknown> {
  const all = await snapshotTestTables(node.store.db);
  const mine = (rows: unknown[]) => rows.filter((r) => (r as { tenant: string }).tenant === tenant);
  return { items: mine(all.items), ticks: mine(all.ticks) };
}
