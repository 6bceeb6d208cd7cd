import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildHoldfastApp } from '../../src/http/holdfast-app.ts';
import { createLogger } from '../../src/http/logger.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { Ed25519Signer, ledgerCrypto } from '../../src/node/crypto.ts';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { issueEnrolmentToken, joinHub } from '../../src/sync/enrolment.ts';
import { SyncEngine } from '../../src/sync/engine.ts';
import { HttpSyncTransport } from '../../src/sync/http-transport.ts';
import { SyncRefusedError } from '../../src/sync/protocol.ts';
import { SyncRunner } from '../../src/sync/runner.ts';
import { SyncStatusStore, syncStatusReport } from '../../src/sync/status.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { ledgerRows } from '../support/nodes.ts';

/**
 * A hub whose store was edited behind its back (a payload changed, an event deleted) is caught by a
 * site at its next sync, which names the event and stores nothing of the bad history: its own
 * ledger is unchanged and still verifies, and its sync status shows the refusal. Sites that held
 * the edited events already catch the edit on an audit round (the runner runs one regularly).
 */
const TENANT = 'northshire';

describe.each(STORE_KINDS)('a tampered hub (%s store)', (kind) => {
  let hub: HoldfastNode;
  let app: FastifyInstance;
  let hubUrl: string;
  let site: HoldfastNode;
  const cleanups: (() => Promise<void>)[] = [];

  /** Events on the hub's own chain (registrations of made-up nodes: a key is a fine thing to forge). */
  async function hubEvents(n: number): Promise<number[]> {
    const sealed = await hub.ledger.append(
      Array.from({ length: n }, (_, i) => ({
        tenant: TENANT,
        type: 'node.registered',
        actor: 'system:test',
        payload: {
          node: `device-${i}`,
          publicKey: Ed25519Signer.generate(`device-${i}`).signer.publicKey,
          role: 'site' as const,
        },
      })),
    );
    await hub.ledger.checkpointNow(TENANT);
    return sealed.map((e) => e.seq);
  }

  /** What an attacker with the database's password does: edits rows, leaves the hub running. */
  async function changePayload(seq: number): Promise<void> {
    const forged = Ed25519Signer.generate('forged').signer.publicKey;
    const r = await hub.store.db
      .updateTable('ledger_events')
      .set({ payload: JSON.stringify({ node: 'device-x', publicKey: forged, role: 'hub' }) })
      .where('tenant', '=', TENANT)
      .where('node', '=', 'hub-1')
      .where('seq', '=', seq)
      .executeTakeFirst();
    expect(Number(r.numUpdatedRows)).toBe(1);
  }

  async function deleteEvent(seq: number): Promise<void> {
    const r = await hub.store.db
      .deleteFrom('ledger_events')
      .where('tenant', '=', TENANT)
      .where('node', '=', 'hub-1')
      .where('seq', '=', seq)
      .executeTakeFirst();
    expect(Number(r.numDeletedRows)).toBe(1);
  }

  /** A runner that audits on its first round and then every `auditEveryRounds` (default: never again). */
  function runner(auditEveryRounds = 1_000_000): { runner: SyncRunner; status: SyncStatusStore } {
    const transport = new HttpSyncTransport({
      url: hubUrl,
      peerNode: 'hub-1',
      peerPublicKey: hub.identity.publicKey,
      signer: site.identity.signer,
      tenant: TENANT,
      clock: site.clock,
    });
    const status = new SyncStatusStore(site.store, site.clock);
    // Not started: each round is run by hand.
    const r = new SyncRunner(
      new SyncEngine(site, TENANT, transport),
      status,
      { tenant: TENANT, node: 'hub-1', url: hubUrl },
      { nowMs: () => site.clock.nowMs() },
      { auditEveryRounds, auditLastEvents: 100 },
    );
    return { runner: r, status };
  }

  /** The site's whole ledger and checkpoints, to show a refused sync changed nothing. */
  async function siteSnapshot(): Promise<unknown> {
    const checkpoints = await site.store.db
      .selectFrom('checkpoints')
      .selectAll()
      .orderBy('node')
      .orderBy('seq')
      .orderBy('signer')
      .execute();
    return { events: await ledgerRows(site, TENANT), checkpoints };
  }

  async function expectSiteSound(): Promise<void> {
    const report = await verifyStore(site.store, ledgerCrypto, {});
    expect(report.faults).toEqual([]);
    expect(report.ok).toBe(true);
  }

  // A fresh hub and site for each case: one tampering must not explain another's refusal.
  beforeEach(async () => {
    const fresh = await freshStore(kind);
    hub = await initNode(
      { ...fresh.config, checkpointEvery: 10 },
      { node: 'hub-1', tenant: TENANT, role: 'hub' },
    );
    ({ app } = await buildHoldfastApp(hub, { logger: createLogger('silent'), webDist: false }));
    hubUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(async () => {
      await app.close();
      await hub.close();
      await fresh.cleanup();
    });
    await hubEvents(12);
    const siteStore = await freshStore('sqlite');
    const { token } = await issueEnrolmentToken(hub.store, hub.clock, {
      tenant: TENANT,
      createdBy: 'user:admin',
    });
    const joined = await joinHub(
      { ...siteStore.config, checkpointEvery: 10 },
      { node: 'site-a', hubUrl, token },
    );
    site = joined.node;
    if (joined.firstSync instanceof Error) throw joined.firstSync;
    cleanups.push(async () => {
      await site.close();
      await siteStore.cleanup();
    });
  });
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  it('a changed payload in events the site has not yet pulled: refused, naming the node and seq; nothing stored', async () => {
    const seqs = await hubEvents(8);
    const target = seqs[3]!;
    await changePayload(target);
    const before = await siteSnapshot();
    const { runner: r, status } = runner();
    await r.runRound();
    expect(r.lastError).toBeInstanceOf(SyncRefusedError);
    const refusal = r.lastError as SyncRefusedError;
    expect(refusal.reason).toBe('bad_history');
    expect(refusal.refusedBy).toBe('site-a');
    expect(refusal.issues.some((i) => i.node === 'hub-1' && i.seq === target)).toBe(true);
    expect(refusal.message).toContain(`node hub-1 seq ${target}`);
    expect(await siteSnapshot()).toEqual(before);
    await expectSiteSound();
    const report = await syncStatusReport(site, status, r.peerPositions);
    expect(report.connected).toBe(false);
    expect(report.lastError).toMatch(new RegExp(`^refused \\(bad_history\\): .*node hub-1 seq ${target}`));
    // Named for what it is: the hub's history is bad, not this site's (no lasting alarm for that).
    expect(report.state).toBe('refused');
    expect(report.problem).toBe('hub_history_bad');
    expect(report.alarms).toEqual([]);
    // No payload content in what the status shows.
    expect(report.lastError).not.toContain('device-x');
    // Still refused at the next round: the site does not come to accept it.
    await r.runRound();
    expect((r.lastError as SyncRefusedError | null)?.reason).toBe('bad_history');
    expect(await siteSnapshot()).toEqual(before);
  });

  it('a deleted event in the range the site pulls: refused, naming the chain and where it breaks; nothing stored', async () => {
    const seqs = await hubEvents(8);
    const target = seqs[3]!;
    await deleteEvent(target);
    const before = await siteSnapshot();
    const { runner: r, status } = runner();
    await r.runRound();
    const refusal = r.lastError as SyncRefusedError;
    expect(refusal).toBeInstanceOf(SyncRefusedError);
    expect(refusal.reason).toBe('bad_history');
    // The hole is named: the chain and the seq that is missing.
    expect(refusal.issues.some((i) => i.node === 'hub-1' && i.seq === target)).toBe(true);
    expect(refusal.message).toContain(`node hub-1 seq ${target} is missing`);
    expect(await siteSnapshot()).toEqual(before);
    await expectSiteSound();
    const report = await syncStatusReport(site, status, r.peerPositions);
    expect(report.lastError).toMatch(/^refused \(bad_history\): .*node hub-1 seq \d+/);
  });

  it('an event the site already held, changed on the hub: caught by an audit round, naming it', async () => {
    // The site holds hub-1 seq 1..held; the first events of the chain were pulled at enrolment.
    const target = 5;
    expect((await site.ledger.chainHeads(TENANT)).get('hub-1')).toBeGreaterThanOrEqual(target);
    await changePayload(target);
    const before = await siteSnapshot();
    const { runner: r, status } = runner();
    // Its first round is an audit round: the events it holds are asked for again and compared.
    await r.runRound();
    const error = r.lastError;
    expect(error).toBeInstanceOf(SyncRefusedError);
    expect((error as SyncRefusedError).reason).toBe('bad_history');
    expect((error as SyncRefusedError).issues.some((i) => i.node === 'hub-1' && i.seq === target)).toBe(true);
    expect((await syncStatusReport(site, status, null)).lastError).toMatch(
      new RegExp(`^refused \\(bad_history\\): .*hub-1 seq ${target}`),
    );
    expect(await siteSnapshot()).toEqual(before);
    await expectSiteSound();
  });
});
