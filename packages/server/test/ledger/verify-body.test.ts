import {
  canonicalBody,
  canonicalJson,
  formatHlc,
  GENESIS_HASH,
  sealEvent,
  signCheckpoint,
  type Checkpoint,
  type StoredEvent,
} from '@holdfast/core';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVerifyWorkers } from '../../src/ledger/verify-parallel.ts';
import { rowToStored } from '../../src/ledger/rows.ts';
import { bodyStats, SQLITE_VERIFY_COLUMNS } from '../../src/ledger/verify-range.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { BUILTIN_PROJECTIONS } from '../../src/node/node.ts';
import { ProjectionEngine } from '../../src/projections/engine.ts';
import { Store } from '../../src/store/store.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { fixtureId, fixtureSigner, insertFixture, type FixtureChain } from '../support/ledger-fixture.ts';

/**
 * On SQLite verify hashes each event's canonical body as the store builds it from the event's
 * columns (verify-range.ts): SQLite's JSON string escaping must give exactly core's `canonicalBody`,
 * or every such event would be checked the slow way. These tests hold the two equal for strings that
 * need escaping, and show that a row whose body does not check out, or that the store will not build
 * a body for, is still checked and found good or bad exactly as before (on PostgreSQL verify builds
 * the body itself, and the same cases are checked there).
 */

/** Everything JSON.stringify escapes or might be suspected of escaping, and text beyond ASCII. */
const AWKWARD = [
  'a "quoted" word',
  'back\\slash and \\u0041 spelled out',
  'controls \b \f \n \r \t \u0001 \u001f end',
  'delete \u007f, no-break\u00a0space, line\u2028and paragraph\u2029separators',
  'accents é ø ß, Welsh ŵ ŷ, 中文, emoji 😀 and a slash /',
  '<script>alert(1)</script> & ampersand',
];

let nextId = 900_000;

/** One chain whose envelope strings and payload text are the awkward strings above. */
function awkwardChain(tenant: string, node: string): FixtureChain {
  const signer = fixtureSigner(node);
  const events: StoredEvent[] = [];
  let prevHash = GENESIS_HASH;
  const firstId = (nextId += 1_000);
  for (let seq = 1; seq <= AWKWARD.length * 2; seq++) {
    const text = AWKWARD[seq % AWKWARD.length]!;
    const e = sealEvent(ledgerCrypto, {
      id: seq % 2 === 0 ? `${fixtureId(firstId + seq)} ${text}` : fixtureId(firstId + seq),
      tenant,
      node,
      seq,
      hlc: formatHlc({ wallMs: 1_765_000_000_000 + seq * 10, counter: 0 }),
      type: seq % 3 === 0 ? `test.${text}` : 'test.item.noted',
      v: 1,
      actor: `user:${text}`,
      payloadJson: canonicalJson({ item: 'i1', text, nested: { list: [text, 1, true, null] } }),
      prevHash,
    });
    events.push(e);
    prevHash = e.hash;
  }
  const checkpoints: Checkpoint[] = [signCheckpoint(signer, events[events.length - 1]!)];
  return { tenant, node, signer, events, checkpoints };
}

/**
 * A chain of three plain events, sealed and checkpointed at its end; `second` changes the second
 * event's clock or payload before it is sealed (it is given that event's prevHash).
 */
function threeEventChain(
  tenant: string,
  second: (prevHash: string) => { hlc?: string; payload?: Record<string, unknown> },
): FixtureChain {
  const node = 'node-a';
  const signer = fixtureSigner(node);
  const events: StoredEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= 3; seq++) {
    const changed = seq === 2 ? second(prevHash) : {};
    const e = sealEvent(ledgerCrypto, {
      id: fixtureId((nextId += 10)),
      tenant,
      node,
      seq,
      hlc: changed.hlc ?? formatHlc({ wallMs: 1_765_000_000_000 + seq * 10, counter: 0 }),
      type: 'test.item.noted',
      v: 1,
      actor: 'user:u1',
      payloadJson: canonicalJson(changed.payload ?? { item: 'i1', text: 't' }),
      prevHash,
    });
    events.push(e);
    prevHash = e.hash;
  }
  return { tenant, node, signer, events, checkpoints: [signCheckpoint(signer, events[2]!)] };
}

describe.each(STORE_KINDS)('verify with bodies built by the store (%s)', (kind) => {
  let store: Store;
  let cleanup: () => Promise<void>;

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

  /** SQLite: every row of a tenant, the body the store builds and core's canonical body of the stored event. */
  async function bodies(tenant: string): Promise<{ store: string | null; core: string }[]> {
    const stored = await store.db
      .selectFrom('ledger_events')
      .selectAll()
      .where('tenant', '=', tenant)
      .orderBy('node')
      .orderBy('seq')
      .execute();
    const built = await sql<{ body: string | null }>`select ${sql.raw(SQLITE_VERIFY_COLUMNS)}
      from ledger_events where tenant = ${tenant} order by node, seq`.execute(store.db);
    expect(built.rows).toHaveLength(stored.length);
    return stored.map((row, i) => ({ store: built.rows[i]!.body, core: canonicalBody(rowToStored(row)) }));
  }

  /** Verify, in this thread and in workers, names `seq` of `tenant` as changed after it was written. */
  async function expectChangedAt(tenant: string, seq: number, rangeEvents: number): Promise<void> {
    await startVerifyWorkers(3);
    for (const options of [{ workers: 1 }, { workers: 3, minEventsPerWorker: 1, rangeEvents }]) {
      const report = await verifyStore(store, ledgerCrypto, { tenant, ...options });
      expect(report.faults.map((f) => [f.seq, f.problem])).toEqual([
        [seq, 'content does not match its hash (the event was changed after it was written)'],
      ]);
    }
  }

  it('verifies events whose strings need escaping without checking any of them twice', async () => {
    const tenant = 'tenant "with" \\ quotes\tand é';
    await insertFixture(store, [awkwardChain(tenant, 'node-a'), awkwardChain(tenant, 'node "b" \u2028')]);
    if (kind === 'sqlite') {
      const built = await bodies(tenant);
      expect(built).toHaveLength(AWKWARD.length * 4);
      for (const b of built) expect(b.store).toBe(b.core);
    }
    // In this thread, and in workers (on PostgreSQL they read on connections of their own).
    await startVerifyWorkers(3);
    for (const options of [{ workers: 1 }, { workers: 3, minEventsPerWorker: 1, rangeEvents: 5 }]) {
      const before = bodyStats.rebuilt;
      const report = await verifyStore(store, ledgerCrypto, { tenant, ...options });
      expect(report.faults).toEqual([]);
      expect(report.eventsChecked).toBe(AWKWARD.length * 4);
      expect(bodyStats.rebuilt).toBe(before);
    }
  });

  it('checks a row the slow way where the store’s body does not match, and still finds an edit', async () => {
    const tenant = 'edited';
    await insertFixture(store, [awkwardChain(tenant, 'node-a')]);
    // Change one character of one payload: the stored hash no longer fits.
    await sql`update ledger_events set payload = replace(payload, '"i1"', '"i2"')
      where tenant = ${tenant} and seq = 7`.execute(store.db);
    await startVerifyWorkers(3);
    for (const options of [{ workers: 1 }, { workers: 3, minEventsPerWorker: 1, rangeEvents: 3 }]) {
      const before = bodyStats.rebuilt;
      const report = await verifyStore(store, ledgerCrypto, { tenant, ...options });
      expect(report.faults.map((f) => [f.seq, f.problem])).toEqual([
        [7, 'content does not match its hash (the event was changed after it was written)'],
      ]);
      // The edited row, and no other, was read again whole.
      expect(bodyStats.rebuilt - before).toBe(1);
    }
  });

  if (kind === 'sqlite') {
    it('refuses an event whose payload was cut short and whose v took the rest (the body would be the original)', async () => {
      const tenant = 'shifted';
      // The second event's payload ends with what the envelope's own tail would be.
      const chain = threeEventChain(tenant, (prevHash) => ({
        payload: { a: 1, prevHash, seq: 2, tenant, type: 'test.item.noted', v: 1 },
      }));
      await insertFixture(store, [chain]);
      // Cut the payload before its nested keys and put them, with the rest of the envelope, in v:
      // concatenated, the columns give the original body, which fits the stored hash.
      const original = chain.events[1]!;
      const body = canonicalBody(original);
      const payloadEnd = body.indexOf('"payload":') + '"payload":'.length + original.payloadJson.length;
      const envelopeTail = body.slice(payloadEnd); // ,"prevHash":…,"v":1}
      const cut = '{"a":1';
      const shiftedV = `1}${envelopeTail.slice(0, -1)}`;
      await sql`update ledger_events set payload = ${cut}, v = ${shiftedV} where tenant = ${tenant} and seq = 2`.execute(
        store.db,
      );
      const shifted = await store.db
        .selectFrom('ledger_events')
        .select(['payload', 'v'])
        .where('tenant', '=', tenant)
        .where('seq', '=', 2)
        .executeTakeFirstOrThrow();
      // Without the checks on the columns' types the store would build the original body from these.
      const unchecked = SQLITE_VERIFY_COLUMNS.replace(
        /case when .*? then (concat\(.*\)) end as body/,
        '$1 as body',
      );
      const rebuiltByStore = await sql<{
        body: string;
      }>`select ${sql.raw(unchecked)} from ledger_events where tenant = ${tenant} and seq = 2`.execute(
        store.db,
      );
      expect(rebuiltByStore.rows[0]!.body).toBe(body);
      expect(typeof shifted.v).toBe('string');
      // The store builds no body for it; the row is checked whole, and its content does not fit.
      expect((await bodies(tenant))[1]!.store).toBeNull();
      await expectChangedAt(tenant, 2, 1);
    });

    it('refuses an event whose strings were rewritten as JSONB blobs that SQLite would quote back to the same body', async () => {
      // SQLite reads a blob in a JSON function as JSONB where it is well-formed JSONB: json_quote of
      // jsonb('"x"') gives "x" again. The store's body would be the original; the row is not.
      const tenant = 'jsonb';
      await insertFixture(store, [awkwardChain(tenant, 'node-a')]);
      await sql`update ledger_events set type = jsonb(json_quote(type)), actor = jsonb(json_quote(actor)),
        id = jsonb(json_quote(id)) where tenant = ${tenant} and seq = 5`.execute(store.db);
      const retyped = await sql<{ t: string }>`select typeof(type) as t from ledger_events
        where tenant = ${tenant} and seq = 5`.execute(store.db);
      expect(retyped.rows[0]!.t).toBe('blob');
      expect((await bodies(tenant))[4]!.store).toBeNull();
      await expectChangedAt(tenant, 5, 2);
    });

    /**
     * A store of its own whose events table was rebuilt as someone with the file could: `columns` is
     * the new table's column list (no NOT NULL; types as given), the rows copied over, then `edit`.
     */
    async function rebuiltEventsTable(
      chains: FixtureChain[],
      columns: string,
      edit: string,
    ): Promise<{ store: Store; done(): Promise<void> }> {
      const fresh = await freshStore('sqlite');
      const own = await Store.open(fresh.storeOptions);
      await new ProjectionEngine(own, BUILTIN_PROJECTIONS, () => '2026-01-01T00:00:00Z').ensureUpToDate();
      await insertFixture(own, chains);
      own.sqliteHandle()!.exec(`create table loose (${columns});
        insert into loose select * from ledger_events; drop table ledger_events;
        alter table loose rename to ledger_events;
        create unique index ledger_events_chain on ledger_events (tenant, node, seq); ${edit}`);
      return {
        store: own,
        done: async () => {
          await own.close();
          await fresh.cleanup();
        },
      };
    }

    it('finishes, reporting the chain short, where a row has no tenant (a table rebuilt without NOT NULL)', async () => {
      const { store: own, done } = await rebuiltEventsTable(
        [awkwardChain('nulled', 'node-a'), awkwardChain('other', 'node-a')],
        `pos integer primary key autoincrement, tenant text, node text, seq bigint, id text, hlc text,
          type text, v integer, actor text, payload text, prev_hash text, hash text, subject text`,
        `update ledger_events set tenant = null where tenant = 'nulled' and seq = 3`,
      );
      try {
        // Listing the chains once stepped back to the start at a null tenant and never returned.
        const report = await verifyStore(own, ledgerCrypto, { workers: 1 });
        expect(report.faults.map((f) => [f.tenant, f.seq])).toEqual([['nulled', 3]]);
        expect(report.faults[0]!.problem).toContain('event missing: seq 3 is absent');
        expect(report.chains.map((c) => c.tenant).sort()).toEqual(['nulled', 'other']);
      } finally {
        await done();
      }
    });

    it('reports, not throws, a clock stored as a number whose event was sealed with it (a table rebuilt without types)', async () => {
      // Sealed with digits as the clock: stored as a number, it reads back as the same body.
      const chain = threeEventChain('numbered', () => ({ hlc: '12345' }));
      const { store: own, done } = await rebuiltEventsTable(
        [chain],
        'pos integer primary key autoincrement, tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject',
        'update ledger_events set hlc = 12345 where seq = 2',
      );
      try {
        for (const workers of [1, 3]) {
          const report = await verifyStore(own, ledgerCrypto, {
            workers,
            minEventsPerWorker: 1,
            rangeEvents: 1,
          });
          expect(report.faults.map((f) => [f.seq, f.problem])).toEqual([
            [2, 'hybrid clock "12345" is not an HLC value'],
          ]);
        }
      } finally {
        await done();
      }
    });

    it('checks rows whose columns have a type the ledger never writes without the store’s body, with the same result', async () => {
      const tenant = 'retyped';
      await insertFixture(store, [awkwardChain(tenant, 'node-a')]);
      // The same text as a blob: the store builds no body (json_quote would fail on a blob, or drop
      // an integer's quotes), and verify's own body of the stored event still matches.
      await sql`update ledger_events set payload = cast(payload as blob) where tenant = ${tenant} and seq in (3, 4)`.execute(
        store.db,
      );
      const built = await bodies(tenant);
      expect(built.filter((b) => b.store === null)).toHaveLength(2);
      const before = bodyStats.rebuilt;
      const report = await verifyStore(store, ledgerCrypto, { tenant, workers: 1 });
      expect(report.faults).toEqual([]);
      expect(report.eventsChecked).toBe(AWKWARD.length * 2);
      expect(bodyStats.rebuilt - before).toBe(2);
    });
  }
});
