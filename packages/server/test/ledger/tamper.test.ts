import fc from 'fast-check';
import type { Selectable } from 'kysely';
import type { LedgerEventsTable } from '../../src/store/schema.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealEvent } from '@holdfast/core';
import { startVerifyWorkers, workerStats } from '../../src/ledger/verify-parallel.ts';
import { verifyStore, type VerifyReport } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { BUILTIN_PROJECTIONS } from '../../src/node/node.ts';
import { ProjectionEngine } from '../../src/projections/engine.ts';
import { Store } from '../../src/store/store.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { buildChain, insertFixture, type FixtureChain } from '../support/ledger-fixture.ts';

/**
 * Acceptance: random ledgers of several nodes, one random tampering applied to the store directly,
 * and `verify` names the exact first bad event every time.
 */
const RUNS = Number(process.env.HOLDFAST_TAMPER_RUNS ?? 1000);

/** Verify in this thread and two worker threads however small the store. */
const IN_WORKERS = { workers: 3, minEventsPerWorker: 1 };

type Tamper =
  | { kind: 'edit-payload'; seq: number; at: number }
  | { kind: 'edit-hash'; seq: number }
  | { kind: 'delete'; seq: number }
  | { kind: 'reorder'; a: number; b: number }
  | { kind: 'duplicate'; seq: number }
  | { kind: 'truncate-middle'; from: number; to: number }
  | { kind: 'splice'; seq: number; source: 'other-node' | 'other-tenant'; replace: boolean }
  | { kind: 'alter-signature'; checkpoint: number; at: number }
  | { kind: 'move-checkpoint'; checkpoint: number; to: number }
  | { kind: 'alter-checkpoint-hash'; checkpoint: number };

interface Scenario {
  counts: number[];
  checkpointEvery: number;
  target: number;
  tamper: Tamper;
}

/** Events in a chain = count + 1 (the self-registration). */
function arbScenario(): fc.Arbitrary<Scenario> {
  return fc
    .record({
      counts: fc.array(fc.integer({ min: 3, max: 14 }), { minLength: 2, maxLength: 4 }),
      checkpointEvery: fc.integer({ min: 2, max: 6 }),
      targetPick: fc.nat(),
      r: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
      kind: fc.constantFrom(
        'edit-payload',
        'edit-hash',
        'delete',
        'reorder',
        'duplicate',
        'truncate-middle',
        'splice',
        'alter-signature',
        'move-checkpoint',
        'alter-checkpoint-hash',
      ),
      spliceSource: fc.constantFrom('other-node' as const, 'other-tenant' as const),
      replace: fc.boolean(),
    })
    .map(({ counts, checkpointEvery, targetPick, r, kind, spliceSource, replace }) => {
      const target = targetPick % counts.length;
      const n = counts[target]! + 1;
      const pick = (i: number, lo: number, hi: number): number => lo + (r[i]! % (hi - lo + 1));
      const cpSeqs = checkpointSeqs(n, checkpointEvery);
      let tamper: Tamper;
      switch (kind) {
        case 'edit-payload':
          tamper = { kind, seq: pick(0, 1, n), at: r[1]! };
          break;
        case 'edit-hash':
          tamper = { kind, seq: pick(0, 1, n) };
          break;
        case 'delete':
          tamper = { kind, seq: pick(0, 1, n) };
          break;
        case 'reorder': {
          const a = pick(0, 1, n - 1);
          tamper = { kind, a, b: pick(1, a + 1, n) };
          break;
        }
        case 'duplicate':
          tamper = { kind, seq: pick(0, 1, n) };
          break;
        case 'truncate-middle': {
          const from = pick(0, 2, n - 1);
          tamper = { kind, from, to: pick(1, from, n - 1) };
          break;
        }
        case 'splice':
          tamper = { kind, seq: pick(0, 1, n), source: spliceSource, replace };
          break;
        case 'alter-signature':
          tamper = { kind, checkpoint: cpSeqs[r[0]! % cpSeqs.length]!, at: r[1]! };
          break;
        case 'move-checkpoint': {
          const free = Array.from({ length: n + 3 }, (_, i) => i + 1).filter((s) => !cpSeqs.includes(s));
          tamper = { kind, checkpoint: cpSeqs[r[0]! % cpSeqs.length]!, to: free[r[1]! % free.length]! };
          break;
        }
        case 'alter-checkpoint-hash':
          tamper = { kind, checkpoint: cpSeqs[r[0]! % cpSeqs.length]! };
          break;
        default:
          throw new Error(`unhandled tamper kind ${kind}`);
      }
      return { counts, checkpointEvery, target, tamper };
    });
}

function checkpointSeqs(n: number, every: number): number[] {
  const seqs: number[] = [];
  for (let s = 1; s <= n; s++) if (s % every === 0 || s === n) seqs.push(s);
  return seqs;
}

/** The seq `verify` must name for each tampering. */
function expectedFirstBad(t: Tamper): number {
  switch (t.kind) {
    case 'edit-payload':
    case 'edit-hash':
    case 'delete':
    case 'splice':
      return t.seq;
    case 'reorder':
      return t.a;
    case 'duplicate':
      return t.seq + 1;
    case 'truncate-middle':
      return t.from;
    case 'alter-signature':
    case 'alter-checkpoint-hash':
      return t.checkpoint;
    case 'move-checkpoint':
      return t.to;
  }
}

function flipChar(text: string, at: number, alphabet: string): string {
  const i = at % text.length;
  const c = text[i]!;
  const replacement = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length] ?? alphabet[0]!;
  return text.slice(0, i) + (replacement === c ? alphabet[1]! : replacement) + text.slice(i + 1);
}

async function applyTamper(store: Store, chain: FixtureChain, donor: FixtureChain, t: Tamper): Promise<void> {
  const { tenant, node } = chain;
  const events = () =>
    store.db.selectFrom('ledger_events').where('tenant', '=', tenant).where('node', '=', node);
  const setSeq = (from: number, to: number) =>
    store.db
      .updateTable('ledger_events')
      .set({ seq: to })
      .where('tenant', '=', tenant)
      .where('node', '=', node)
      .where('seq', '=', from)
      .execute();
  /** Moves seqs > after up by one, top first, to make room at after + 1. */
  const shiftUp = async (after: number) => {
    const top = Number(
      (
        await events()
          .select((eb) => eb.fn.max('seq').as('m'))
          .executeTakeFirstOrThrow()
      ).m,
    );
    for (let s = top; s > after; s--) await setSeq(s, s + 1);
  };
  const insertCopy = async (row: Selectable<LedgerEventsTable>, seq: number) => {
    const { pos: _pos, ...rest } = row;
    await store.db
      .insertInto('ledger_events')
      .values({ ...rest, tenant, node, seq, id: `spliced-${seq}-${row.id}` })
      .execute();
  };
  switch (t.kind) {
    case 'edit-payload': {
      const row = await events().select('payload').where('seq', '=', t.seq).executeTakeFirstOrThrow();
      const edited = flipChar(row.payload, t.at, 'abcdefghijklmnopqrstuvwxyz0123456789{}":,');
      await store.db
        .updateTable('ledger_events')
        .set({ payload: edited })
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.seq)
        .execute();
      return;
    }
    case 'edit-hash': {
      const row = await events().select('hash').where('seq', '=', t.seq).executeTakeFirstOrThrow();
      await store.db
        .updateTable('ledger_events')
        .set({ hash: flipChar(row.hash, 7, '0123456789abcdef') })
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.seq)
        .execute();
      return;
    }
    case 'delete':
      await store.db
        .deleteFrom('ledger_events')
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.seq)
        .execute();
      return;
    case 'reorder':
      await setSeq(t.a, -1);
      await setSeq(t.b, t.a);
      await setSeq(-1, t.b);
      return;
    case 'duplicate': {
      const row = await events().selectAll().where('seq', '=', t.seq).executeTakeFirstOrThrow();
      await shiftUp(t.seq);
      await insertCopy(row, t.seq + 1);
      return;
    }
    case 'truncate-middle':
      await store.db
        .deleteFrom('ledger_events')
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '>=', t.from)
        .where('seq', '<=', t.to)
        .execute();
      return;
    case 'splice': {
      const source = await store.db
        .selectFrom('ledger_events')
        .selectAll()
        .where('tenant', '=', donor.tenant)
        .where('node', '=', donor.node)
        .where('seq', '=', Math.min(t.seq, donor.events.length))
        .executeTakeFirstOrThrow();
      if (t.replace) {
        await store.db
          .deleteFrom('ledger_events')
          .where('tenant', '=', tenant)
          .where('node', '=', node)
          .where('seq', '=', t.seq)
          .execute();
      } else {
        await shiftUp(t.seq - 1);
      }
      await insertCopy(source, t.seq);
      return;
    }
    case 'alter-signature': {
      const cp = await store.db
        .selectFrom('checkpoints')
        .select('signature')
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.checkpoint)
        .executeTakeFirstOrThrow();
      // Not the last character: its low bits are padding and may not change the decoded signature.
      const at = t.at % (cp.signature.length - 2);
      const altered = flipChar(
        cp.signature,
        at,
        'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
      );
      await store.db
        .updateTable('checkpoints')
        .set({ signature: altered })
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.checkpoint)
        .execute();
      return;
    }
    case 'move-checkpoint':
      await store.db
        .updateTable('checkpoints')
        .set({ seq: t.to })
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.checkpoint)
        .execute();
      return;
    case 'alter-checkpoint-hash': {
      const cp = await store.db
        .selectFrom('checkpoints')
        .select('hash')
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.checkpoint)
        .executeTakeFirstOrThrow();
      await store.db
        .updateTable('checkpoints')
        .set({ hash: flipChar(cp.hash, 3, '0123456789abcdef') })
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', t.checkpoint)
        .execute();
      return;
    }
  }
}

describe.each(STORE_KINDS)('tamper detection on %s', (kind) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let run = 0;

  beforeAll(async () => {
    const fresh = await freshStore(kind);
    cleanup = fresh.cleanup;
    store = await Store.open(fresh.storeOptions);
    await new ProjectionEngine(store, BUILTIN_PROJECTIONS, () => '2026-01-01T00:00:00Z').ensureUpToDate();
  });
  afterAll(async () => {
    await store.close();
    await cleanup();
  });

  it('an untampered multi-node ledger verifies', async () => {
    const chains = ['n1', 'n2', 'n3'].map((node, i) =>
      buildChain({ tenant: 'clean', node, count: 40 + i, checkpointEvery: 7, startMs: 1_764_000_000_000 }),
    );
    await insertFixture(store, chains);
    const report = await verifyStore(store, ledgerCrypto, { tenant: 'clean' });
    expect(report.faults).toEqual([]);
    expect(report.eventsChecked).toBe(41 + 42 + 43);
    expect(report.chains.map((c) => c.sealedSeq)).toEqual([41, 42, 43]);
  });

  /** One random tampering, checked by `check` (the store's verify, or verify through workers). */
  const tamperProperty = (runs: number, check: (tenant: string) => Promise<VerifyReport>) =>
    fc.assert(
      fc.asyncProperty(arbScenario(), async (s) => {
        run++;
        const tenant = `t${run}`;
        const chains = s.counts.map((count, i) =>
          buildChain({
            tenant,
            node: `node-${i}`,
            count,
            checkpointEvery: s.checkpointEvery,
            startMs: 1_764_000_000_000 + i,
          }),
        );
        // Donors for splices: another node of the same tenant, or the same node id in another tenant.
        const donorTenant = `${tenant}-other`;
        const target = chains[s.target]!;
        const donor =
          s.tamper.kind === 'splice' && s.tamper.source === 'other-tenant'
            ? buildChain({
                tenant: donorTenant,
                node: target.node,
                count: 20,
                checkpointEvery: 5,
                startMs: 1_764_000_000_500,
              })
            : chains[(s.target + 1) % chains.length]!;
        await insertFixture(store, donor.tenant === donorTenant ? [...chains, donor] : chains);
        const before = await check(tenant);
        expect(before.faults).toEqual([]);

        await applyTamper(store, target, donor, s.tamper);
        const after = await check(tenant);
        expect(after.ok).toBe(false);
        expect(after.faults.map((f) => ({ node: f.node, seq: f.seq }))).toEqual([
          { node: target.node, seq: expectedFirstBad(s.tamper) },
        ]);
        expect(after.faults[0]!.problem.length).toBeGreaterThan(10);
      }),
      { numRuns: runs, seed: process.env.HOLDFAST_SEED ? Number(process.env.HOLDFAST_SEED) : undefined },
    );

  it(`verify names the exact first bad event after any one tampering (${RUNS} runs)`, async () => {
    await tamperProperty(RUNS, (tenant) => verifyStore(store, ledgerCrypto, { tenant, workers: 1 }));
  });

  it('verify in worker threads, seq ranges of 3 events, names the same first bad event as one pass (10 runs)', async () => {
    await startVerifyWorkers(IN_WORKERS.workers);
    const before = workerStats.ranges;
    await tamperProperty(10, async (tenant) => {
      const inWorkers = await verifyStore(store, ledgerCrypto, { tenant, ...IN_WORKERS, rangeEvents: 3 });
      // Everything a single pass reports, to the counts and the wording of the fault.
      expect(inWorkers).toEqual(await verifyStore(store, ledgerCrypto, { tenant, workers: 1 }));
      return inWorkers;
    });
    expect(workerStats.ranges).toBeGreaterThan(before);
  });

  it('verify in worker threads names a fault at a range boundary and one deep inside a range by their seq', async () => {
    const tenant = 'ranges';
    // Seq ranges of 10 events: 1-10, 11-20, ... Each chain is tampered with in one place.
    const chains = ['edit-last', 'edit-first', 'edit-deep', 'delete-last', 'delete-first', 'rehash'].map(
      (node, i) =>
        buildChain({ tenant, node, count: 59, checkpointEvery: 7, startMs: 1_764_000_000_000 + i }),
    );
    await insertFixture(store, chains);
    const options = { tenant, ...IN_WORKERS, rangeEvents: 10 };
    await startVerifyWorkers(IN_WORKERS.workers);
    const before = workerStats.ranges;
    expect((await verifyStore(store, ledgerCrypto, options)).faults).toEqual([]);
    const where = (node: string, seq: number) =>
      store.db
        .updateTable('ledger_events')
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', seq);
    const remove = (node: string, seq: number) =>
      store.db
        .deleteFrom('ledger_events')
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', seq)
        .execute();
    await where('edit-last', 30).set({ payload: '{"n":30}' }).execute();
    await where('edit-first', 31).set({ payload: '{"n":31}' }).execute();
    await where('edit-deep', 45).set({ payload: '{"n":45}' }).execute();
    await remove('delete-last', 20);
    await remove('delete-first', 41);
    // Re-hashed from seq 31 (a range's first) to the chain's end: the checkpoint at 35 no longer
    // matches, and the edit lies after the one at 28 (in the range before).
    const rehash = chains[5]!;
    const edited = rehash.events.map((e) => ({ ...e }));
    edited[30]!.payloadJson = '{"n":31}';
    for (let i = 30; i < edited.length; i++) {
      const { hash: _old, ...rest } = { ...edited[i]!, prevHash: edited[i - 1]!.hash };
      edited[i] = sealEvent(ledgerCrypto, rest);
      await where('rehash', i + 1)
        .set({ payload: edited[i]!.payloadJson, prev_hash: edited[i]!.prevHash, hash: edited[i]!.hash })
        .execute();
    }

    const report = await verifyStore(store, ledgerCrypto, options);
    expect(report.faults.map((f) => [f.node, f.fromSeq, f.seq])).toEqual([
      ['delete-first', 41, 41],
      ['delete-last', 20, 20],
      ['edit-deep', 45, 45],
      ['edit-first', 31, 31],
      ['edit-last', 30, 30],
      ['rehash', 29, 35],
    ]);
    expect(report).toEqual(await verifyStore(store, ledgerCrypto, { tenant, workers: 1 }));
    expect(workerStats.ranges).toBeGreaterThan(before);
  });
});
