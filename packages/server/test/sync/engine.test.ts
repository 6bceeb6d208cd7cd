import { defineEventType, FixedClock } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { importWorkerStats, startImportWorkers } from '../../src/ledger/import-parallel.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { registerPeerKey, SyncEngine, type SyncTransport } from '../../src/sync/engine.ts';
import { handlePull, handlePush, readableEventTypes } from '../../src/sync/handlers.ts';
import {
  MemoryTransport,
  SyncUnreachableError,
  type SyncCall,
  type SyncInterceptor,
} from '../../src/sync/memory-transport.ts';
import {
  SYNC_PROTOCOL_VERSION,
  SyncRefusedError,
  type PullRequest,
  type PushRequest,
} from '../../src/sync/protocol.ts';
import { freshStore, type StoreKind } from '../support/databases.ts';
import { snapshotTestTables, testItemsProjection, testRegistry } from '../support/ledger-fixture.ts';
import { ledgerRows, startTestNode, type TestNode } from '../support/nodes.ts';

const TENANT = 'northshire';

/**
 * The hub is named so its chain sorts AFTER the sites' chains: a site pulling through it receives
 * the other site's chain before the hub chain that registers that site's key, which exercises the
 * "held back, retried after the rest" path on every relay.
 */
const HUB = 'zz-hub';

/** Enrolment as H4b will do it: the hub vouches for each site; each site pins the hub's key. */
async function enrol(hub: HoldfastNode, sites: HoldfastNode[]): Promise<void> {
  for (const s of sites) {
    await registerPeerKey(hub, TENANT, s.identity.node, s.identity.signer.publicKey, 'site');
    await registerPeerKey(s, TENANT, hub.identity.node, hub.identity.signer.publicKey, 'hub');
  }
}

async function note(node: TestNode, count: number, prefix: string): Promise<void> {
  for (let i = 0; i < count; i++) {
    node.clock.advance(1000);
    await node.ledger.append([
      {
        tenant: TENANT,
        type: 'test.item.noted',
        actor: 'user:u1',
        payload: { item: `${prefix}-${i % 3}`, text: `${prefix} note ${i}` },
      },
    ]);
  }
}

async function expectConverged(nodes: HoldfastNode[]): Promise<void> {
  const rows = await ledgerRows(nodes[0]!, TENANT);
  const tables = await snapshotTestTables(nodes[0]!.store.db);
  for (const n of nodes.slice(1)) {
    expect(await ledgerRows(n, TENANT)).toEqual(rows);
    expect(await snapshotTestTables(n.store.db)).toEqual(tables);
  }
  for (const n of nodes) {
    const report = await verifyStore(n.store, ledgerCrypto, { tenant: TENANT });
    expect(report.faults).toEqual([]);
  }
}

async function refusal(p: Promise<unknown>): Promise<SyncRefusedError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof SyncRefusedError) return error;
    throw error;
  }
  throw new Error('expected a SyncRefusedError');
}

describe.each(['sqlite', 'postgres'] as StoreKind[])('sync engine, hub on %s', (hubKind) => {
  let hub: TestNode;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    // The hub checks pushed backlogs in worker threads (started now, so every push of several
    // batches below goes through them).
    hub = await startTestNode(
      hubKind,
      { node: HUB, tenant: TENANT, role: 'hub' },
      { checkpointEvery: 4, importWorkers: true },
    );
    await startImportWorkers(hub.ledger.options.importWorkers!);
    a = await startTestNode(
      'sqlite',
      { node: 'site-a', tenant: TENANT },
      { checkpointEvery: 4, startMs: 1_764_000_000_300 },
    );
    b = await startTestNode(
      'sqlite',
      { node: 'site-b', tenant: TENANT },
      { checkpointEvery: 4, startMs: 1_764_000_000_700 },
    );
    await enrol(hub, [a, b]);
  });
  afterAll(async () => {
    for (const n of [hub, a, b]) await n?.destroy();
  });

  it("relays one site's events to the other through the hub, and every node verifies", async () => {
    await note(a, 13, 'a');
    await note(b, 7, 'b');
    const engineA = new SyncEngine(a, TENANT, new MemoryTransport(hub), {
      maxEventsPerRequest: 6,
      batchEvents: 4,
    });
    const engineB = new SyncEngine(b, TENANT, new MemoryTransport(hub), {
      maxEventsPerRequest: 6,
      batchEvents: 4,
    });

    const a1 = await engineA.syncOnce();
    // site-a's chain: its self-registration, its pin of the hub key, 13 notes.
    expect(a1.pushed).toBe(15);
    expect(a1.unsentEvents).toBe(0);
    expect(a1.pullRequests).toBeGreaterThan(0);

    const b1 = await engineB.syncOnce();
    // site-b took site-a's chain from the hub although it sorts before the hub chain that vouches for site-a.
    expect(b1.refused).toEqual([]);
    expect(b1.pulled).toBeGreaterThanOrEqual(15);
    expect(b1.pushed).toBe(9);
    const a2 = await engineA.syncOnce();
    expect(a2.pulled).toBe(9);
    expect(a2.pushed).toBe(0);
    expect(a2.unsentEvents).toBe(0);
    expect(a2.unreceivedEvents).toBe(0);
    await expectConverged([hub, a, b]);

    // Nothing left to do: a further round moves nothing either way.
    const again = await engineB.syncOnce();
    expect({ pulled: again.pulled, pushed: again.pushed, unsent: again.unsentEvents }).toEqual({
      pulled: 0,
      pushed: 0,
      unsent: 0,
    });
  });

  it('witnesses: each importer counter-signs the chains it took, and the witnesses travel and verify', async () => {
    const witnessed = async (n: HoldfastNode, chain: string, signer: string) =>
      (await n.ledger.checkpoints(TENANT, chain)).filter((c) => c.signer === signer).length;
    expect(await witnessed(hub, 'site-a', HUB)).toBeGreaterThan(0);
    expect(await witnessed(hub, 'site-b', HUB)).toBeGreaterThan(0);
    expect(await witnessed(a, HUB, 'site-a')).toBeGreaterThan(0);
    expect(await witnessed(b, 'site-a', 'site-b')).toBeGreaterThan(0);
    // The hub's witness of site-a's chain reached site-b with the chain (relay).
    expect(await witnessed(b, 'site-a', HUB)).toBeGreaterThan(0);
    const report = await verifyStore(b.store, ledgerCrypto, { tenant: TENANT });
    expect(report.ok).toBe(true);
    const chainA = report.chains.find((c) => c.node === 'site-a')!;
    expect(chainA.checkpointsChecked).toBeGreaterThan(chainA.lastSeq / 4);

    // A witness whose signature no longer matches is caught by verify, naming the chain and seq.
    const w = (await b.ledger.checkpoints(TENANT, 'site-a')).find((c) => c.signer === HUB)!;
    const flipped = (w.signature[5] === 'A' ? 'B' : 'A') as string;
    await b.store.db
      .updateTable('checkpoints')
      .set({ signature: w.signature.slice(0, 5) + flipped + w.signature.slice(6) })
      .where('tenant', '=', TENANT)
      .where('node', '=', 'site-a')
      .where('seq', '=', w.seq)
      .where('signer', '=', HUB)
      .execute();
    const bad = await verifyStore(b.store, ledgerCrypto, { tenant: TENANT });
    expect(bad.faults).toEqual([
      expect.objectContaining({ node: 'site-a', seq: w.seq, problem: expect.stringContaining(HUB) }),
    ]);
    await b.store.db
      .updateTable('checkpoints')
      .set({ signature: w.signature })
      .where('tenant', '=', TENANT)
      .where('node', '=', 'site-a')
      .where('seq', '=', w.seq)
      .where('signer', '=', HUB)
      .execute();
  });

  it('replaying a push or a pull changes nothing', async () => {
    await note(a, 5, 'replay');
    await note(b, 2, 'replay');
    await new SyncEngine(b, TENANT, new MemoryTransport(hub)).syncOnce();
    const calls: { call: SyncCall; answer: unknown }[] = [];
    const record: SyncInterceptor = async (call, deliver) => {
      const sent = JSON.parse(JSON.stringify(call)) as SyncCall;
      const answer = await deliver(call);
      calls.push({ call: sent, answer: JSON.parse(JSON.stringify(answer)) });
      return answer;
    };
    const r = await new SyncEngine(a, TENANT, new MemoryTransport(hub, { interceptor: record }), {
      maxEventsPerRequest: 100,
    }).syncOnce();
    expect(r.pushed).toBe(5);
    expect(r.pulled).toBe(2);
    const push = calls.find((c) => c.call.kind === 'push')!;
    const pull = calls.find((c) => c.call.kind === 'pull')!;
    const snapshot = async (n: HoldfastNode) => ({
      rows: await ledgerRows(n, TENANT),
      checkpoints: await n.store.db
        .selectFrom('checkpoints')
        .selectAll()
        .orderBy('node')
        .orderBy('seq')
        .orderBy('signer')
        .execute(),
      tables: await snapshotTestTables(n.store.db),
    });
    const before = await snapshot(hub);
    const replayed = await handlePush(hub, push.call.request);
    expect(replayed.inserted).toBe(0);
    expect(replayed.alreadyHeld).toBe(5);
    expect(replayed.accepted).toBe((push.call.request as PushRequest).batches.length);
    // The same pull answered again: the same batches, and the hub is unchanged.
    const pulledAgain = await handlePull(hub, pull.call.request);
    expect(pulledAgain.batches).toEqual((pull.answer as { batches: string[][] }).batches);
    expect(pulledAgain.batches.flat().length).toBeGreaterThan(0);
    expect(await snapshot(hub)).toEqual(before);
    // And the site importing that pull answer again changes nothing on the site.
    const siteBefore = await snapshot(a);
    const again = await new SyncEngine(a, TENANT, {
      pull: async () => pull.answer as never,
      push: async (req) => handlePush(hub, req),
    }).syncOnce();
    expect(again.pulled).toBe(0);
    expect(again.alreadyHeld).toBeGreaterThan(0);
    expect(await snapshot(a)).toEqual(siteBefore);
  });

  it('a push whose batches arrive out of order keeps back the ones after a gap; they go in once it fills', async () => {
    await note(a, 9, 'order');
    const pushes: PushRequest[] = [];
    // Capture the round's push without delivering it (the peer never hears of it).
    const capture: SyncInterceptor = async (call, deliver) => {
      if (call.kind === 'pull') return deliver(call);
      pushes.push(call.request);
      throw new SyncUnreachableError();
    };
    await expect(
      new SyncEngine(a, TENANT, new MemoryTransport(hub, { interceptor: capture }), {
        batchEvents: 4,
      }).syncOnce(),
    ).rejects.toBeInstanceOf(SyncUnreachableError);
    const batches = pushes[0]!.batches;
    expect(batches.length).toBeGreaterThanOrEqual(2);
    const before = await ledgerRows(hub, TENANT);
    const later = await handlePush(hub, { ...pushes[0]!, batches: batches.slice(1).reverse() });
    expect(later).toMatchObject({ accepted: 0, inserted: 0, deferred: batches.length - 1 });
    expect(await ledgerRows(hub, TENANT)).toEqual(before);
    const first = await handlePush(hub, { ...pushes[0]!, batches: [batches[0]!] });
    expect(first.accepted).toBe(1);
    // All of them again, in reverse: the retry after the rest takes each once its predecessor is in.
    const rest = await handlePush(hub, { ...pushes[0]!, batches: [...batches].reverse() });
    expect(rest).toMatchObject({ deferred: 0, accepted: batches.length, inserted: 9 - first.inserted });
    expect(rest.positions['site-a']).toBe((await a.ledger.chainHeads(TENANT)).get('site-a'));
  });

  it('an interruption at any call of a round is resumed by the next round, nothing lost or doubled', async () => {
    const options = { maxEventsPerRequest: 3, batchEvents: 2 };
    // A clean round of this shape makes 5 calls (2 pulls, 3 pushes: batches end at checkpoints, every 4).
    for (let k = 1; k <= 5; k++) {
      // site-a's round will pull site-b's new events and push its own: several calls each way.
      await note(b, 5, `cut${k}`);
      await new SyncEngine(b, TENANT, new MemoryTransport(hub), options).syncOnce();
      await note(a, 12, `cut${k}`);
      let n = 0;
      // Odd k: the request is lost; even k: the request arrives but its answer is lost.
      const faulty: SyncInterceptor = async (call, deliver) => {
        n++;
        if (n === k && k % 2 === 1) throw new SyncUnreachableError();
        const answer = await deliver(call);
        if (n === k) throw new SyncUnreachableError('answer lost');
        return answer;
      };
      const cut = new SyncEngine(a, TENANT, new MemoryTransport(hub, { interceptor: faulty }), options);
      await expect(cut.syncOnce()).rejects.toBeInstanceOf(SyncUnreachableError);
      expect(n).toBe(k);
      const resumed = await new SyncEngine(a, TENANT, new MemoryTransport(hub), options).syncOnce();
      expect(resumed.unsentEvents).toBe(0);
      await new SyncEngine(b, TENANT, new MemoryTransport(hub), options).syncOnce();
      await new SyncEngine(a, TENANT, new MemoryTransport(hub), options).syncOnce();
    }
    await expectConverged([hub, a, b]);
  });

  it('a tampered batch is refused naming the event, and nothing of it is stored', async () => {
    await note(a, 4, 'tamper');
    const tamper: SyncInterceptor = (call, deliver) => {
      if (call.kind !== 'push') return deliver(call);
      const batches = call.request.batches.map((batch) =>
        batch.map((line) => line.replace('tamper note 2', 'tamper note X')),
      );
      return deliver({ ...call, request: { ...call.request, batches } });
    };
    const before = await ledgerRows(hub, TENANT);
    const aRows = (await ledgerRows(a, TENANT)) as { node: string; seq: number; payload: string }[];
    const target = aRows.find((r) => r.node === 'site-a' && r.payload.includes('tamper note 2'))!;
    const err = await refusal(
      new SyncEngine(a, TENANT, new MemoryTransport(hub, { interceptor: tamper }), {
        maxEventsPerRequest: 100,
      }).syncOnce(),
    );
    expect(err.reason).toBe('bad_history');
    expect(err.refusedBy).toBe(HUB);
    expect(err.issues).toContainEqual(
      expect.objectContaining({ node: 'site-a', seq: target.seq, path: expect.stringMatching(/hash/) }),
    );
    expect(err.message).toContain(`node site-a seq ${target.seq}`);
    expect(await ledgerRows(hub, TENANT)).toEqual(before);
    // The honest copy then goes through.
    const ok = await new SyncEngine(a, TENANT, new MemoryTransport(hub)).syncOnce();
    expect(ok.pushed).toBe(4);
  });

  it('a merge of many batches, checked in worker threads, refuses a tampered batch in the middle: the batches before it stay, nothing of it or after it is stored', async () => {
    await note(a, 16, 'backlog');
    const tamper: SyncInterceptor = (call, deliver) => {
      if (call.kind !== 'push') return deliver(call);
      const batches = call.request.batches.map((batch) =>
        batch.map((line) => line.replace('backlog note 11', 'backlog note X')),
      );
      return deliver({ ...call, request: { ...call.request, batches } });
    };
    const aRows = (await ledgerRows(a, TENANT)) as { node: string; seq: number; payload: string }[];
    const target = aRows.find((r) => r.node === 'site-a' && r.payload.includes('backlog note 11'))!;
    const heldBefore = (await ledgerRows(hub, TENANT)) as { node: string; seq: number }[];
    const headBefore = Math.max(0, ...heldBefore.filter((r) => r.node === 'site-a').map((r) => r.seq));
    const checkedInWorkers = importWorkerStats.batches;
    const err = await refusal(
      new SyncEngine(a, TENANT, new MemoryTransport(hub, { interceptor: tamper }), {
        maxEventsPerRequest: 100,
        batchEvents: 4,
      }).syncOnce(),
    );
    expect(importWorkerStats.batches).toBeGreaterThan(checkedInWorkers);
    expect(err.reason).toBe('bad_history');
    expect(err.issues).toContainEqual(
      expect.objectContaining({ node: 'site-a', seq: target.seq, path: expect.stringMatching(/hash/) }),
    );
    const held = ((await ledgerRows(hub, TENANT)) as { node: string; seq: number }[])
      .filter((r) => r.node === 'site-a')
      .map((r) => r.seq);
    const headAfter = Math.max(...held);
    // Whole batches before the bad one went in; the bad one (up to its checkpoint) and the rest did not.
    expect(headAfter).toBeGreaterThan(headBefore);
    expect(headAfter).toBeLessThan(target.seq);
    expect(target.seq - headAfter).toBeLessThanOrEqual(4);
    expect(held).toEqual(Array.from({ length: headAfter }, (_, i) => i + 1));
    expect((await verifyStore(hub.store, ledgerCrypto, { tenant: TENANT })).faults).toEqual([]);
    // The honest copy then goes through, also in workers.
    const ok = await new SyncEngine(a, TENANT, new MemoryTransport(hub), {
      maxEventsPerRequest: 100,
      batchEvents: 4,
    }).syncOnce();
    expect(ok.pushed).toBe(aRows.filter((r) => r.node === 'site-a').length - headAfter);
  });

  it("a hub whose store was edited directly is caught by a site's next sync, naming the event", async () => {
    await note(a, 8, 'late');
    await new SyncEngine(a, TENANT, new MemoryTransport(hub)).syncOnce();
    const rowsOf = async (n: HoldfastNode) =>
      (await ledgerRows(n, TENANT)) as { node: string; seq: number; payload: string }[];
    const held = (await rowsOf(b)).filter((r) => r.node === 'site-a');
    const heldByB = held[Math.floor(held.length / 2)]!;
    const newForB = (await rowsOf(hub)).find(
      (r) => r.node === 'site-a' && r.payload.includes('late note 5'),
    )!;
    const bBefore = await ledgerRows(b, TENANT);
    const setPayload = (seq: number, payload: string) =>
      hub.store.db
        .updateTable('ledger_events')
        .set({ payload })
        .where('tenant', '=', TENANT)
        .where('node', '=', 'site-a')
        .where('seq', '=', seq)
        .execute();

    // An event site-b does not hold yet: the next ordinary round refuses it.
    await setPayload(newForB.seq, newForB.payload.replace('late note 5', 'late note 6'));
    const e1 = await refusal(new SyncEngine(b, TENANT, new MemoryTransport(hub)).syncOnce());
    expect(e1.reason).toBe('bad_history');
    expect(e1.refusedBy).toBe('site-b');
    expect(e1.message).toContain(`node site-a seq ${newForB.seq}`);
    expect(await ledgerRows(b, TENANT)).toEqual(bBefore);
    await setPayload(newForB.seq, newForB.payload);

    // An event site-b holds already: an audit round compares the hub's copy with its own.
    await setPayload(heldByB.seq, heldByB.payload.replace('note', 'NOTE'));
    const e2 = await refusal(new SyncEngine(b, TENANT, new MemoryTransport(hub)).syncOnce({ audit: true }));
    expect(e2.reason).toBe('bad_history');
    expect(e2.issues).toContainEqual(expect.objectContaining({ node: 'site-a', seq: heldByB.seq }));
    await setPayload(heldByB.seq, heldByB.payload);

    // An event deleted from the hub's store: named as missing.
    const deleted = await hub.store.db
      .selectFrom('ledger_events')
      .selectAll()
      .where('tenant', '=', TENANT)
      .where('node', '=', 'site-a')
      .where('seq', '=', heldByB.seq)
      .executeTakeFirstOrThrow();
    await hub.store.db.deleteFrom('ledger_events').where('pos', '=', deleted.pos).execute();
    const e3 = await refusal(new SyncEngine(b, TENANT, new MemoryTransport(hub)).syncOnce({ audit: true }));
    expect(e3.reason).toBe('bad_history');
    expect(e3.message).toContain(`node site-a seq ${heldByB.seq} is missing`);
    const { pos: _pos, ...row } = deleted;
    await hub.store.db.insertInto('ledger_events').values(row).execute();

    // Restored: the audit passes and the round completes.
    const ok = await new SyncEngine(b, TENANT, new MemoryTransport(hub)).syncOnce({ audit: true });
    // The 8 late notes, plus what site-a pushed since site-b's last round.
    expect(ok.pulled).toBe((await rowsOf(hub)).filter((r) => r.node === 'site-a').length - held.length);
    expect(ok.unreceivedEvents).toBe(0);
    expect(ok.alreadyHeld).toBeGreaterThan(held.length);
  });
});

describe('sync refusals', () => {
  let hub: TestNode;
  let a: TestNode;
  let future: HoldfastNode & { cleanup(): Promise<void> };

  /** An event type only a newer node has. */
  const futureType = defineEventType({
    type: 'test.future',
    v: 2,
    schema: z.strictObject({ n: z.number().int() }),
  });

  beforeAll(async () => {
    hub = await startTestNode('sqlite', { node: HUB, tenant: TENANT, role: 'hub' }, { checkpointEvery: 4 });
    a = await startTestNode('sqlite', { node: 'site-a', tenant: TENANT }, { checkpointEvery: 4 });
    const fresh = await freshStore('sqlite');
    const node = await initNode(
      { ...fresh.config, checkpointEvery: 4 },
      { node: 'site-new', tenant: TENANT, role: 'site' },
      {
        clock: new FixedClock(1_764_000_000_000),
        registry: testRegistry().register(futureType),
        projections: [testItemsProjection],
      },
    );
    future = {
      ...node,
      cleanup: async () => {
        await node.close();
        await fresh.cleanup();
      },
    };
    await enrol(hub, [a, future]);
    await future.ledger.append([
      { tenant: TENANT, type: 'test.future', actor: 'user:u1', payload: { n: 1 } },
    ]);
  });
  afterAll(async () => {
    await hub?.destroy();
    await a?.destroy();
    await future?.cleanup();
  });

  function pullFrom(node: HoldfastNode, over: Partial<PullRequest> = {}): PullRequest {
    return {
      protocol: SYNC_PROTOCOL_VERSION,
      tenant: TENANT,
      from: node.identity.node,
      positions: {},
      eventTypes: readableEventTypes(node.ledger),
      maxEvents: 100,
      ...over,
    };
  }

  it('a newer protocol is refused naming both versions, either way round', async () => {
    const err = await refusal(handlePull(hub, { ...pullFrom(a), protocol: 2, somethingNew: true }));
    expect(err.reason).toBe('protocol_version');
    expect(err.message).toMatch(/site-a speaks sync protocol version 2, this node speaks version 1/);
    // A peer answering in a newer protocol is refused by the engine.
    const newer: SyncTransport = {
      pull: async () => ({ protocol: 2, positions: {}, batches: [], more: false }),
      push: async () => {
        throw new Error('not reached');
      },
    };
    const e2 = await refusal(new SyncEngine(a, TENANT, newer).syncOnce());
    expect(e2.reason).toBe('protocol_version');
    expect(e2.message).toContain('version 2');
  });

  it('an event type or version a node cannot read is refused naming it', async () => {
    // Pushed by the newer site to a hub that does not know the type: the hub refuses, saying which.
    const pushErr = await refusal(new SyncEngine(future, TENANT, new MemoryTransport(hub)).syncOnce());
    expect(pushErr.reason).toBe('schema_version');
    expect(pushErr.refusedBy).toBe(HUB);
    expect(pushErr.message).toContain('test.future version 2');
    expect(pushErr.issues[0]).toMatchObject({ node: 'site-new' });
    expect((await hub.ledger.chainHeads(TENANT)).get('site-new')).toBeUndefined();
    // Pulled from the newer site by a node that reads only older versions: refused before sending.
    const older = { ...readableEventTypes(hub.ledger), 'test.future': 1 };
    const pullErr = await refusal(handlePull(future, pullFrom(hub, { eventTypes: older })));
    expect(pullErr.reason).toBe('schema_version');
    expect(pullErr.message).toContain('test.future version 2');
    expect(pullErr.message).toContain('up to version 1');
  });

  it('a requester of another tenant, or not enrolled, is refused', async () => {
    const stranger = await refusal(handlePull(hub, pullFrom(a, { from: 'site-unknown' })));
    expect(stranger.reason).toBe('unknown_node');
    const otherTenant = await refusal(handlePull(hub, pullFrom(a, { tenant: 'elsewhere' })));
    expect(otherTenant.reason).toBe('tenant');
    const malformed = await refusal(
      handlePush(hub, { protocol: 1, tenant: TENANT, from: 'site-a', batches: 'x' }),
    );
    expect(malformed.reason).toBe('bad_request');
    expect(malformed.issues[0]!.path).toBe('batches');
  });
});
