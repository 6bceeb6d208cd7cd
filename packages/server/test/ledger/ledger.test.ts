import { ConflictError, ValidationError } from '@holdfast/core';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { readHeadMark } from '../../src/ledger/head-mark.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { openNode } from '../../src/node/node.ts';
import type { Projection } from '../../src/projections/projection.ts';
import type { Tx } from '../../src/store/store.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { snapshotTestTables, testItemsProjection, testRegistry } from '../support/ledger-fixture.ts';
import { ledgerRows, startTestNode, type TestNode } from '../support/nodes.ts';

const T = 'northshire';

describe.each(STORE_KINDS)('ledger on %s', (kind) => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode(kind, { node: 'site-1', tenant: T }, { checkpointEvery: 10 });
  });
  afterAll(async () => node?.destroy());

  it('refuses a payload failing its schema, naming the field, and stores nothing', async () => {
    const before = await ledgerRows(node, T);
    const error = await node.ledger
      .append([
        { tenant: T, type: 'test.item.noted', actor: 'user:u', payload: { item: 'a', text: 'fine' } },
        {
          tenant: T,
          type: 'test.item.noted',
          actor: 'user:u',
          payload: { item: 'a', text: 'x'.repeat(201) },
        },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]!.path).toBe('payload.text');
    await expect(
      node.ledger.append([{ tenant: T, type: 'test.unknown', actor: 'user:u', payload: {} }]),
    ).rejects.toThrow(/not registered/);
    expect(await ledgerRows(node, T)).toEqual(before);
  });

  it('group-commits concurrent appends into one gap-free chain with checkpoints every K events', async () => {
    const start = (await node.ledger.head(T)).seq;
    const appends = Array.from({ length: 200 }, (_, i) =>
      node.ledger.append([
        {
          tenant: T,
          type: 'test.item.noted',
          actor: 'user:u',
          payload: { item: `c${i % 9}`, text: `n${i}` },
        },
      ]),
    );
    const results = (await Promise.all(appends)).flat();
    const seqs = results.map((e) => e.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => start + 1 + i));
    // Each caller got its own event back.
    expect(new Set(results.map((e) => e.id)).size).toBe(200);
    const checkpoints = await node.ledger.checkpoints(T, 'site-1');
    const head = await node.ledger.head(T);
    // After every commit the unsealed tail is shorter than K.
    expect(head.seq - head.checkpointedSeq).toBeLessThan(10);
    expect(checkpoints.length).toBeGreaterThanOrEqual(2);
    const report = await verifyStore(node.store, ledgerCrypto, { tenant: T });
    expect(report.faults).toEqual([]);
    expect(report.eventsChecked).toBe(head.seq);
  });

  it('while appends keep coming the head mark is written once per commit, and ends confirmed at the head', async () => {
    const markBefore = readHeadMark(node.config.dataDir, node.identity.signer, ledgerCrypto)!.counter;
    let commits = 0;
    onTestFinished(node.ledger.subscribe(() => commits++));
    const note = (text: string) => ({
      tenant: T,
      type: 'test.item.noted',
      actor: 'user:u',
      payload: { item: 'm', text },
    });
    // The first append's commit waits in its guard until the others are queued behind it.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const first = node.ledger.append([note('m0')], { guard: () => gate });
    await new Promise((resolve) => setImmediate(resolve));
    const rest = Array.from({ length: 20 }, (_, i) => node.ledger.append([note(`m${i + 1}`)]));
    open();
    await Promise.all([first, ...rest]);
    expect(commits).toBe(2);
    // The callers are answered before the last confirmation; head() waits for the write lock.
    const head = await node.ledger.head(T);
    const mark = readHeadMark(node.config.dataDir, node.identity.signer, ledgerCrypto)!;
    // Before: write-ahead and confirmation for each commit (4). Now the second commit's write-ahead
    // also records the first commit's head as committed, and only the last commit is confirmed alone.
    expect(mark.counter - markBefore).toBe(3);
    expect(mark.chains.get(T)).toEqual({ committed: { seq: head.seq, hash: expect.any(String) } });
  });

  it('a guard that refuses inside a group leaves out its own append only: the rest commit, gap-free, each guard seeing those before it', async () => {
    const start = (await node.ledger.head(T)).seq;
    const noted = (trx: Tx) =>
      trx
        .selectFrom('ledger_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('tenant', '=', T)
        .where('payload', 'like', '%"text":"g%')
        .executeTakeFirstOrThrow()
        .then((r) => Number(r.n));
    const seenBefore: number[] = [];
    const appends = Array.from({ length: 30 }, (_, i) =>
      node.ledger
        .append(
          [{ tenant: T, type: 'test.item.noted', actor: 'user:u', payload: { item: 'g', text: `g${i}` } }],
          {
            guard: async (trx) => {
              seenBefore[i] = await noted(trx);
              // A guard that wrote before refusing (guards should only read): its write is undone.
              if (i === 7)
                await trx
                  .withTables<{ test_ticks: { tenant: string; type: string; n: number } }>()
                  .insertInto('test_ticks')
                  .values({ tenant: T, type: 'written-by-a-refusing-guard', n: 1 })
                  .execute();
              if (i % 3 === 1) throw new ConflictError(`refused ${i}`);
              // A failing statement (PostgreSQL then refuses the rest of the transaction): undone too.
              if (i % 10 === 2) await sql`select * from no_such_table`.execute(trx);
            },
          },
        )
        .then(
          (events) => ({ i, events }),
          (error: unknown) => ({ i, error }),
        ),
    );
    const results = await Promise.all(appends);
    const refused = results.filter((r) => 'error' in r).map((r) => r.i);
    expect(refused).toEqual(
      Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 === 1 || i % 10 === 2),
    );
    const committed = results.flatMap((r) => ('events' in r ? r.events : []));
    expect(committed.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: committed.length }, (_, k) => start + 1 + k),
    );
    // Each guard saw exactly the appends queued before it that were not refused.
    for (let i = 0; i < 30; i++)
      expect(seenBefore[i]).toBe(
        Array.from({ length: i }, (_, k) => k).filter((k) => !refused.includes(k)).length,
      );
    const stored = (await ledgerRows(node, T)).filter((r) =>
      (r as { payload: string }).payload.includes('"text":"g'),
    );
    expect(stored.length).toBe(committed.length);
    const ticks = await sql<{ type: string }>`select type from test_ticks`.execute(node.store.db);
    expect(ticks.rows.map((r) => r.type)).not.toContain('written-by-a-refusing-guard');
    const report = await verifyStore(node.store, ledgerCrypto, { tenant: T });
    expect(report.faults).toEqual([]);
  });

  it('keeps a group in one transaction when its guards refuse after plain reads, and commits it append by append when a refusing guard wrote', async () => {
    const runs = (guarded: number, wrote: number | null) => {
      const calls = new Array<number>(guarded).fill(0);
      const appends = calls.map((_, i) =>
        node.ledger
          .append([{ tenant: T, type: 'test.tick', actor: 'user:u', payload: { n: i } }], {
            guard: async (trx) => {
              calls[i]!++;
              await trx.selectFrom('ledger_events').select('seq').limit(1).execute();
              if (i === wrote)
                await trx
                  .withTables<{ test_ticks: { tenant: string; type: string; n: number } }>()
                  .insertInto('test_ticks')
                  .values({ tenant: T, type: 'written-by-a-refusing-guard', n: 2 })
                  .execute();
              if (i % 2 === 1) throw new ConflictError(`refused ${i}`);
            },
          })
          .then(
            () => 'committed',
            () => 'refused',
          ),
      );
      return Promise.all(appends).then((outcomes) => ({ outcomes, calls }));
    };
    // Appended together, so one group: every guard runs once (no second try of the group).
    const plain = await runs(12, null);
    expect(plain.outcomes).toEqual(plain.calls.map((_, i) => (i % 2 === 1 ? 'refused' : 'committed')));
    expect(plain.calls.slice(1)).toEqual(new Array(11).fill(1));
    // A refusal that wrote abandons the group's transaction: the appends are committed one by one
    // (their guards run again), with the same outcomes, and the write is undone.
    const wrote = await runs(12, 5);
    expect(wrote.outcomes).toEqual(plain.outcomes);
    expect(wrote.calls.filter((n) => n === 2).length).toBeGreaterThan(1);
    const ticks = await sql<{ type: string }>`select type from test_ticks`.execute(node.store.db);
    expect(ticks.rows.map((r) => r.type)).not.toContain('written-by-a-refusing-guard');
    expect((await verifyStore(node.store, ledgerCrypto, { tenant: T })).faults).toEqual([]);
  });

  it('reads by node and seq range, and by tenant in ledger order', async () => {
    const chain = await node.ledger.readChain(T, 'site-1', 5, 9);
    expect(chain.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9]);
    const all = [];
    let after: { hlc: string; node: string; seq: number } | null = null;
    for (;;) {
      const page = await node.ledger.readTenant(T, after, 37);
      if (page.length === 0) break;
      all.push(...page);
      after = page[page.length - 1]!;
    }
    expect(all.length).toBe((await node.ledger.head(T)).seq);
    for (let i = 1; i < all.length; i++) expect(all[i]!.hlc > all[i - 1]!.hlc).toBe(true);
  });

  it('signs a checkpoint on demand only when the head moved', async () => {
    await node.ledger.append([{ tenant: T, type: 'test.tick', actor: 'user:u', payload: { n: 1 } }]);
    const c = await node.ledger.checkpointNow(T);
    expect(c?.seq).toBe((await node.ledger.head(T)).seq);
    expect(await node.ledger.checkpointNow(T)).toBeNull();
  });

  it('rebuilds a projection at start when its version changed, and only then', async () => {
    const own = await startTestNode(kind, { node: 'site-2', tenant: T });
    for (let i = 0; i < 12; i++) {
      await own.ledger.append([
        {
          tenant: T,
          type: 'test.item.noted',
          actor: 'user:u',
          payload: { item: `c${i % 3}`, text: `n${i}` },
        },
      ]);
    }
    const expected = await snapshotTestTables(own.store.db);
    const total = (await ledgerRows(own, T)).length;
    await own.close();
    let applied = 0;
    const counting = (version: number): Projection => ({
      ...testItemsProjection,
      version,
      async apply(trx, e) {
        applied++;
        await testItemsProjection.apply(trx, e);
      },
    });
    const reopen = async (version: number) => {
      applied = 0;
      const again = await openNode(own.config, {
        registry: testRegistry(),
        projections: [counting(version)],
        clock: own.clock,
      });
      const snapshot = await snapshotTestTables(again.store.db);
      await again.close();
      return { applied, snapshot };
    };
    try {
      expect((await reopen(1)).applied).toBe(0);
      const rebuilt = await reopen(2);
      expect(rebuilt.applied).toBe(total);
      expect(rebuilt.snapshot).toEqual(expected);
      expect((await reopen(2)).applied).toBe(0);
    } finally {
      await own.removeStore();
    }
  });
});
