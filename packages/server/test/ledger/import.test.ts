import fc from 'fast-check';
import {
  canonicalJson,
  fromStored,
  GENESIS_HASH,
  ImportRefusedError,
  sealEvent,
  signCheckpoint,
  toStored,
  type LedgerEvent,
  type StoredEvent,
} from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importBatch } from '../../src/ledger/import.ts';
import { checkpointLine, eventLine } from '../../src/ledger/ndjson.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { Ed25519Signer, ledgerCrypto } from '../../src/node/crypto.ts';
import { STORE_KINDS } from '../support/databases.ts';
import {
  collectBatches,
  ledgerRows,
  registerPeer,
  startTestNode,
  toNumbered,
  type TestNode,
} from '../support/nodes.ts';

const TENANT = 'northshire';

describe.each(STORE_KINDS)('import and export on %s', (kind) => {
  let a: TestNode;
  let b1: TestNode;
  let b2: TestNode;
  let exported: string[][];

  beforeAll(async () => {
    a = await startTestNode('sqlite', { node: 'site-a', tenant: TENANT });
    for (let i = 0; i < 37; i++) {
      a.clock.advance(1000);
      await a.ledger.append([
        i % 4 === 3
          ? {
              tenant: TENANT,
              type: 'test.item.status',
              actor: 'user:u1',
              payload: { item: `case-${i % 5}`, status: 'waiting' },
            }
          : {
              tenant: TENANT,
              type: 'test.item.noted',
              actor: 'user:u1',
              payload: { item: `case-${i % 5}`, text: `note ${i}` },
            },
      ]);
    }
    exported = await collectBatches(a, TENANT, 6, ['site-a']);
    b1 = await startTestNode(kind, { node: 'hub-b1', tenant: TENANT });
    b2 = await startTestNode(kind, { node: 'hub-b2', tenant: TENANT });
    await registerPeer(b1, a, TENANT);
    await registerPeer(b2, a, TENANT);
  });
  afterAll(async () => {
    for (const n of [a, b1, b2]) await n?.destroy();
  });

  it('exports batches that each end at a checkpoint signed by the chain node', () => {
    expect(exported.length).toBeGreaterThan(4);
    for (const batch of exported) {
      const last = JSON.parse(batch[batch.length - 1]!) as { kind: string; signer: string };
      expect(last.kind).toBe('checkpoint');
      expect(last.signer).toBe('site-a');
    }
  });

  it("imports node A's events twice, in shuffled batch order, into two nodes with identical results", async () => {
    const order1 = fc.sample(
      fc.shuffledSubarray(
        exported.map((_, i) => i),
        { minLength: exported.length, maxLength: exported.length },
      ),
      { numRuns: 1, seed: 11 },
    )[0]!;
    const order2 = fc.sample(
      fc.shuffledSubarray(
        exported.map((_, i) => i),
        { minLength: exported.length, maxLength: exported.length },
      ),
      { numRuns: 1, seed: 99 },
    )[0]!;
    expect(order1).not.toEqual(order2);
    for (const i of order1) await importBatch(b1.ledger, TENANT, toNumbered(exported[i]!));
    for (const i of order2) await importBatch(b2.ledger, TENANT, toNumbered(exported[i]!));
    const rows1 = await ledgerRows(b1, TENANT);
    // The second import of the same events changes nothing.
    let inserted = 0;
    for (const i of order2)
      inserted += (await importBatch(b1.ledger, TENANT, toNumbered(exported[i]!))).inserted;
    expect(inserted).toBe(0);
    expect(await ledgerRows(b1, TENANT)).toEqual(rows1);

    const aRows = (await ledgerRows(a, TENANT)).filter((r) => (r as { node: string }).node === 'site-a');
    const chainOf = (rows: unknown[]) => rows.filter((r) => (r as { node: string }).node === 'site-a');
    expect(chainOf(rows1)).toEqual(aRows);
    expect(chainOf(await ledgerRows(b2, TENANT))).toEqual(aRows);
    expect((await verifyStore(b1.store, ledgerCrypto, { tenant: TENANT })).faults).toEqual([]);
    expect((await verifyStore(b2.store, ledgerCrypto, { tenant: TENANT })).faults).toEqual([]);
  });

  describe('refuses forged events and stores nothing of their batch', () => {
    let victim: TestNode;
    let source: StoredEvent[];
    beforeAll(async () => {
      victim = await startTestNode(kind, { node: 'hub-v', tenant: TENANT });
      await registerPeer(victim, a, TENANT);
      source = await a.ledger.readChain(TENANT, 'site-a', 1);
    });
    afterAll(async () => victim?.destroy());

    async function expectRefused(lines: string[], pattern: RegExp): Promise<void> {
      const before = await ledgerRows(victim, TENANT);
      const error = await importBatch(victim.ledger, TENANT, toNumbered(lines)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImportRefusedError);
      expect((error as Error).message).toMatch(pattern);
      expect(await ledgerRows(victim, TENANT)).toEqual(before);
    }

    /** Changes one event's payload and re-hashes the chain from there, as a forger would. */
    function forge(events: StoredEvent[], at: number): StoredEvent[] {
      const out = events.map((e) => ({ ...e }));
      out[at] = {
        ...out[at]!,
        payloadJson: canonicalJson({ item: 'case-1', text: 'forged' }),
        type: 'test.item.noted',
      };
      let prev = at === 0 ? GENESIS_HASH : out[at - 1]!.hash;
      for (let i = at; i < out.length; i++) {
        const { hash: _h, ...rest } = out[i]!;
        out[i] = sealEvent(ledgerCrypto, { ...rest, prevHash: prev });
        prev = out[i]!.hash;
      }
      return out;
    }

    it('an event with a plausible hash but a checkpoint that does not match its signature', async () => {
      const events = forge(source.slice(0, 10), 4);
      const head = events[events.length - 1]!;
      const realCheckpoint = signCheckpoint(a.identity.signer, source[9]!);
      const lines = [
        ...events.map((e) => eventLine(fromStored(e))),
        checkpointLine({ ...realCheckpoint, hash: head.hash }),
      ];
      await expectRefused(lines, /line 11: signature: checkpoint signature by site-a is not valid/);
    });

    it('a checkpoint signed with an unregistered node key', async () => {
      const rogue = Ed25519Signer.generate('rogue').signer;
      const events = forge(source.slice(0, 10), 4);
      const lines = [
        ...events.map((e) => eventLine(fromStored(e))),
        checkpointLine(signCheckpoint(rogue, events[9]!)),
      ];
      await expectRefused(
        lines,
        /line 11: signature: checkpoint signed by rogue, which is not a registered node/,
      );
    });

    it("a checkpoint claiming to be the node's but signed with another key", async () => {
      const impostor = new Ed25519Signer('site-a', Ed25519Signer.generate('x').signer['privateKey' as never]);
      const events = forge(source.slice(0, 10), 4);
      const lines = [
        ...events.map((e) => eventLine(fromStored(e))),
        checkpointLine(signCheckpoint(impostor, events[9]!)),
      ];
      await expectRefused(lines, /line 11: signature: checkpoint signature by site-a is not valid/);
    });

    it('events of an unregistered node', async () => {
      const stranger = await startTestNode('sqlite', { node: 'stranger', tenant: TENANT });
      try {
        const batches = await collectBatches(stranger, TENANT, 100);
        await expectRefused(batches[0]!, /node: stranger is not a registered node of tenant northshire/);
      } finally {
        await stranger.destroy();
      }
    });

    it('events not covered by any checkpoint', async () => {
      const lines = source.slice(0, 3).map((e) => eventLine(fromStored(e)));
      await expectRefused(lines, /line 3: node site-a seq 3 is not covered by a checkpoint signed by site-a/);
    });

    it('a good batch with one forged event in it stores none of it', async () => {
      const genuine = exported[0]!;
      const tampered = genuine.map((line, i) => (i === 2 ? line.replace('"note', '"NOTE') : line));
      await expectRefused(tampered, /line 3: hash: does not match the event content/);
    });
  });

  describe('bad input names the line and field and stores nothing', () => {
    let target: TestNode;
    let good: LedgerEvent[];
    beforeAll(async () => {
      target = await startTestNode(kind, { node: 'hub-x', tenant: TENANT });
      await registerPeer(target, a, TENANT);
      good = (await a.ledger.readChain(TENANT, 'site-a', 1, 5)).map(fromStored);
    });
    afterAll(async () => target?.destroy());

    async function expectBad(lines: string[], pattern: RegExp): Promise<void> {
      const before = await ledgerRows(target, TENANT);
      const error = await importBatch(target.ledger, TENANT, toNumbered(lines)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImportRefusedError);
      expect((error as Error).message).toMatch(pattern);
      expect(await ledgerRows(target, TENANT)).toEqual(before);
    }

    const lines = (events: LedgerEvent[]) => events.map(eventLine);

    it('a malformed NDJSON line', async () => {
      await expectBad([...lines(good.slice(0, 2)), '{"kind":"event", "id": '], /line 3: not valid JSON/);
    });
    it('an event of another tenant', async () => {
      const other = { ...good[1]!, tenant: 'southshire' };
      await expectBad(
        [eventLine(good[0]!), eventLine(other)],
        /line 2: tenant: belongs to tenant southshire, but this import is for tenant northshire/,
      );
    });
    it('an unknown event type', async () => {
      const odd = { ...good[1]!, type: 'case.teleported' };
      await expectBad(
        [eventLine(good[0]!), eventLine(odd)],
        /line 2: type: event type case.teleported version 1 is not registered/,
      );
    });
    it('a payload failing its schema', async () => {
      const bad = { ...good[1]!, payload: { item: 'case-1', text: 42 } };
      await expectBad([eventLine(good[0]!), eventLine(bad)], /line 2: payload\.text: /);
    });
    it('an envelope field failing its schema', async () => {
      const bad = { ...good[1]!, seq: -3 };
      await expectBad([eventLine(good[0]!), eventLine(bad)], /line 2: seq: /);
    });
    it('a line that is neither event nor checkpoint', async () => {
      await expectBad(['{"kind":"gossip"}'], /line 1: kind: must be "event" or "checkpoint"/);
    });
  });
});

void toStored;
