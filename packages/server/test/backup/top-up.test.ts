import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.ts';
import { restoreBackup, RestoreError } from '../../src/backup/restore.ts';
import { topUpFromPeer } from '../../src/backup/top-up.ts';
import { buildHoldfastApp } from '../../src/http/holdfast-app.ts';
import { createLogger } from '../../src/http/logger.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { createPgDatabase, STORE_KINDS } from '../support/databases.ts';
import { registerPeer, type TestNode } from '../support/nodes.ts';
import {
  appendNotes,
  buildHub,
  NODE_OPTIONS,
  openRestored,
  PASSPHRASE,
  removeTempDirs,
  tempDir,
  TENANT,
} from './fixture.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  removeTempDirs();
});

describe('restore --peer', () => {
  it('tops a restored hub up from a live site over signed HTTP sync, as the restored node', async () => {
    const { hub, site } = await buildHub();
    cleanups.push(
      () => hub.destroy(),
      () => site.destroy(),
    );
    await registerPeer(site, hub, TENANT);
    const dir = tempDir();
    await runBackup(hub, { dir, key: PASSPHRASE, dataDir: hub.config.dataDir });
    // After the backup the site carries on; the hub is then lost.
    await appendNotes(site as TestNode, 7000, 12);
    await site.ledger.checkpointNow(TENANT);
    const siteHead = (await site.ledger.head(TENANT)).seq;
    expect((await hub.ledger.chainHeads(TENANT)).get('site-a')).toBeLessThan(siteHead);

    const { app } = await buildHoldfastApp(site, { logger: createLogger('silent'), webDist: false });
    cleanups.push(() => (app as FastifyInstance).close());
    const url = await app.listen({ host: '127.0.0.1', port: 0 });

    const target = { store: 'sqlite' as const, dataDir: join(tempDir(), 'node'), checkpointEvery: 20 };
    const report = await restoreBackup({
      from: dir,
      key: PASSPHRASE,
      target,
      // The site's clock: signed requests carry the time, and the site refuses one far from its own.
      node: { ...NODE_OPTIONS, clock: site.clock },
      peers: [url],
      topUp: topUpFromPeer,
    });
    expect(report.toppedUp).toHaveLength(1);
    expect(report.toppedUp[0]!.peer).toBe(`site-a=${url}`);
    expect(report.toppedUp[0]!.events).toBeGreaterThanOrEqual(12);
    const node = await openRestored(target);
    try {
      expect((await node.ledger.chainHeads(TENANT)).get('site-a')).toBe(siteHead);
      expect((await verifyStore(node.store, ledgerCrypto)).ok).toBe(true);
    } finally {
      await node.close();
    }
  });
});

describe.each(STORE_KINDS)('restore --peer with a peer down (%s target)', (kind) => {
  it('skips the peer that does not answer by name, completes from the backup and the peer that answers, and counts the peers apart', async () => {
    const { hub, site } = await buildHub();
    cleanups.push(
      () => hub.destroy(),
      () => site.destroy(),
    );
    await registerPeer(site, hub, TENANT);
    const dir = tempDir();
    await runBackup(hub, { dir, key: PASSPHRASE, dataDir: hub.config.dataDir });
    await appendNotes(site as TestNode, 7000, 12);
    await site.ledger.checkpointNow(TENANT);
    const siteHead = (await site.ledger.head(TENANT)).seq;
    const { app } = await buildHoldfastApp(site, { logger: createLogger('silent'), webDist: false });
    cleanups.push(() => (app as FastifyInstance).close());
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    // Nobody listens on port 9: this peer is down.
    const down = 'site-a=http://127.0.0.1:9';

    let target: Parameters<typeof restoreBackup>[0]['target'] = {
      store: 'sqlite',
      dataDir: join(tempDir(), 'node'),
      checkpointEvery: 20,
    };
    if (kind === 'postgres') {
      const db = await createPgDatabase();
      cleanups.push(db.drop);
      target = { ...target, store: 'postgres', databaseUrl: db.url };
    }
    const log: string[] = [];
    const report = await restoreBackup({
      from: dir,
      key: PASSPHRASE,
      target,
      node: { ...NODE_OPTIONS, clock: site.clock },
      peers: [down, url],
      topUp: topUpFromPeer,
      log: (line) => log.push(line),
    });
    expect(report.skippedPeers).toHaveLength(1);
    expect(report.skippedPeers[0]!.peer).toBe(down);
    expect(report.skippedPeers[0]!.problem).toMatch(/cannot reach site-a at http:\/\/127\.0\.0\.1:9/);
    expect(
      log.some((l) => l.startsWith(`peer ${down} skipped:`) && l.includes('holdfast top-up --peer')),
    ).toBe(true);
    expect(report.toppedUp.map((t) => t.peer)).toEqual([`site-a=${url}`]);
    expect(report.toppedUp[0]!.events).toBeGreaterThanOrEqual(12);
    expect(report.toppedUp[0]!.ms).toBeGreaterThan(0);
    expect(report.peerEvents).toBe(report.toppedUp[0]!.events);
    // The backup's own figures cover the backup only; the final chains include the peer's events.
    const fromBackup = report.chains.find((c) => c.node === 'site-a')!.lastSeq;
    expect(fromBackup).toBeLessThan(siteHead);
    expect(report.finalChains.find((c) => c.node === 'site-a')!.lastSeq).toBe(siteHead);
    expect(report.backupEventsPerSecond).toBeGreaterThan(0);
    const node = await openRestored(target);
    try {
      expect((await node.ledger.chainHeads(TENANT)).get('site-a')).toBe(siteHead);
      expect((await verifyStore(node.store, ledgerCrypto)).ok).toBe(true);
    } finally {
      await node.close();
    }
  });
});

describe('restore with no usable backup', () => {
  it('says what to do next, and leaves the target empty', async () => {
    const target = { store: 'sqlite' as const, dataDir: join(tempDir(), 'node'), checkpointEvery: 20 };
    const empty = tempDir();
    // A directory without the backup's key file: refused before anything is written.
    const notBackup = await restoreBackup({ from: empty, key: PASSPHRASE, target }).catch((e: unknown) => e);
    expect((notBackup as Error).message).toContain(`${empty} is not a Holdfast backup`);
    expect((notBackup as Error).message).toContain('What to do next:');
    // A backup directory whose manifests are all gone.
    const { hub, site } = await buildHub();
    cleanups.push(
      () => hub.destroy(),
      () => site.destroy(),
    );
    const dir = tempDir();
    await runBackup(hub, { dir, key: PASSPHRASE, dataDir: hub.config.dataDir });
    for (const f of readdirSync(dir)) if (f !== 'backup-key.json') rmSync(join(dir, f), { recursive: true });
    const error = await restoreBackup({ from: dir, key: PASSPHRASE, target }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreError);
    const message = (error as Error).message;
    expect(message).toContain(`${dir} holds no backup manifest`);
    expect(message).toContain('What to do next:');
    expect(message).toMatch(
      /passphrase file or key file must be the one that wrapped this backup's data key/,
    );
    expect(message).toContain('holdfast backup verify <dir>');
    expect(message).toContain('holdfast init --role site --hub <url> --token <token> --node <new id>');
    expect(message).toMatch(/A hub cannot be rebuilt from peers alone/);
    expect(existsSync(join(target.dataDir, 'node.json'))).toBe(false);
  });
});
