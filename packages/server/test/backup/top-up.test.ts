import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.ts';
import { restoreBackup } from '../../src/backup/restore.ts';
import { topUpFromPeer } from '../../src/backup/top-up.ts';
import { buildHoldfastApp } from '../../src/http/holdfast-app.ts';
import { createLogger } from '../../src/http/logger.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
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
