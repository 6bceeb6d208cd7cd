import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.ts';
import { ChainFaultError } from '../../src/backup/chain-check.ts';
import { chunkPath, listManifests } from '../../src/backup/format.ts';
import { BackupKeyError, resolveKeySource, WRONG_KEY_MESSAGE } from '../../src/backup/keys.ts';
import { restoreBackup, RestoreError } from '../../src/backup/restore.ts';
import { verifyBackup } from '../../src/backup/verify-backup.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { createPgDatabase } from '../support/databases.ts';
import type { TestNode } from '../support/nodes.ts';
import {
  appendNotes,
  buildHub,
  fileHashes,
  flipByte,
  NODE_OPTIONS,
  openRestored,
  PASSPHRASE,
  removeTempDirs,
  snapshot,
  tempDir,
  TENANT,
  WRONG_PASSPHRASE,
} from './fixture.ts';
import pg from 'pg';

let hub: TestNode;
let site: TestNode;
let witness: () => Promise<void>;
const pgDrops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  ({ hub, site, witness } = await buildHub());
});

afterAll(async () => {
  await hub.destroy();
  await site.destroy();
  for (const drop of pgDrops) await drop();
  removeTempDirs();
});

async function pgTarget() {
  const db = await createPgDatabase();
  pgDrops.push(db.drop);
  return {
    store: 'postgres' as const,
    databaseUrl: db.url,
    dataDir: join(tempDir(), 'node'),
    checkpointEvery: 20,
  };
}

function sqliteTarget() {
  return { store: 'sqlite' as const, dataDir: join(tempDir(), 'node'), checkpointEvery: 20 };
}

async function pgTableCount(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query(
      "select count(*)::int as n from information_schema.tables where table_schema = 'public'",
    );
    return r.rows[0].n as number;
  } finally {
    await c.end();
  }
}

const backup = (dir: string, node: TestNode = hub, extra: Partial<Parameters<typeof runBackup>[1]> = {}) =>
  runBackup(node, { dir, key: PASSPHRASE, dataDir: node.config.dataDir, ...extra });

describe('backup and restore', () => {
  it('restores onto SQLite and PostgreSQL with identical events, checkpoints (own and witnessed) and projections', async () => {
    const dir = tempDir();
    const report = await backup(dir);
    expect(report.manifest).toBe(1);
    expect(report.newEvents).toBe(report.totalEvents);
    const expected = await snapshot(hub);
    expect((expected.events as unknown[]).length).toBe(report.totalEvents);

    for (const target of [sqliteTarget(), await pgTarget()]) {
      const restored = await restoreBackup({ from: dir, key: PASSPHRASE, target, node: NODE_OPTIONS });
      expect(restored.manifest).toBe(1);
      expect(restored.rejected).toEqual([]);
      expect(restored.events).toBe(report.totalEvents);
      expect(restored.chains.map((c) => c.node)).toEqual(['hub-1', 'site-a']);
      const cps = expected.checkpoints as { node: string; signer: string }[];
      expect(cps.some((c) => c.node === 'hub-1' && c.signer === 'site-a')).toBe(true);
      expect(restored.checkpoints.witnessed).toBe(cps.filter((c) => c.signer !== c.node).length);
      expect(restored.checkpoints.own).toBe(cps.filter((c) => c.signer === c.node).length);
      const node = await openRestored(target);
      try {
        expect(node.identity.node).toBe('hub-1');
        expect(node.identity.signer.publicKey).toBe(hub.identity.signer.publicKey);
        expect(await snapshot(node)).toEqual(expected);
        const verified = await verifyStore(node.store, ledgerCrypto);
        expect(verified.ok).toBe(true);
        expect(verified.eventsChecked).toBe(report.totalEvents);
        // The restored hub continues its own chain where it left off.
        await appendNotes(node, 5000, 1);
        expect((await node.ledger.head(TENANT)).seq).toBe((await hub.ledger.head(TENANT)).seq + 1);
        // The restored node backs up again (on PostgreSQL: the store's other read path).
        if (target.store === 'postgres') {
          const again = tempDir();
          const b = await runBackup(node, { dir: again, key: PASSPHRASE, dataDir: target.dataDir });
          expect(b.totalEvents).toBe(report.totalEvents + 1);
          expect((await verifyBackup(again, PASSPHRASE)).ok).toBe(true);
        }
      } finally {
        await node.close();
      }
    }
  });

  it('is incremental, never rewrites an earlier file, and chains its manifests', async () => {
    const dir = tempDir();
    const first = await backup(dir);
    const before = fileHashes(dir);
    await appendNotes(hub, 200, 30);
    await witness();
    const second = await backup(dir);
    expect(second.manifest).toBe(2);
    expect(second.basedOn).toBe(1);
    expect(second.newEvents).toBeGreaterThanOrEqual(30);
    expect(second.newEvents).toBeLessThan(first.totalEvents);
    expect(second.totalEvents).toBe(first.totalEvents + second.newEvents);
    // Only the new events chunk and the changed checkpoints chunk of the hub's chain are new: the
    // identity and the site's chunks are reused by address.
    expect(second.newChunks).toBe(2);
    expect(second.reusedChunks).toBeGreaterThanOrEqual(2);
    const after = fileHashes(dir);
    for (const [file, hash] of before) expect(after.get(file), file).toBe(hash);
    expect(after.size).toBe(before.size + 3); // two chunks and a manifest
    const manifests = listManifests(dir);
    expect(manifests[0]!.manifest!.previous).toEqual({ number: 1, sha256: manifests[1]!.sha256 });
    // A third backup with nothing new reuses every chunk.
    const third = await backup(dir);
    expect(third.newEvents).toBe(0);
    expect(third.newChunks).toBe(0);
    const verified = await verifyBackup(dir, PASSPHRASE);
    expect(verified.ok).toBe(true);
    expect(verified.restorable).toBe(3);
  });

  it('a corrupted newest manifest: verify names it and restore uses the previous one', async () => {
    const dir = tempDir();
    const first = await backup(dir);
    await appendNotes(hub, 300, 10);
    await backup(dir);
    flipByte(join(dir, 'manifests', '000002.json'), 200);
    const verified = await verifyBackup(dir, PASSPHRASE);
    expect(verified.ok).toBe(false);
    expect(verified.firstProblem).toMatch(/manifests\/000002\.json/);
    expect(verified.restorable).toBe(1);
    const lines: string[] = [];
    const restored = await restoreBackup({
      from: dir,
      key: PASSPHRASE,
      target: sqliteTarget(),
      node: NODE_OPTIONS,
      log: (l) => lines.push(l),
    });
    expect(restored.manifest).toBe(1);
    expect(restored.events).toBe(first.totalEvents);
    expect(restored.rejected[0]!.file).toMatch(/000002\.json/);
    expect(lines.join('\n')).toMatch(/000002\.json .*trying the previous manifest/);
    // A backup after the damage builds on manifest 1 and leaves manifest 2 as it is.
    const damaged = readFileSync(join(dir, 'manifests', '000002.json'));
    const next = await backup(dir);
    expect(next.basedOn).toBe(1);
    expect(next.manifest).toBe(3);
    expect(readFileSync(join(dir, 'manifests', '000002.json'))).toEqual(damaged);
  });

  it('a corrupted chunk of the newest backup: verify names the chunk, restore falls back and removes what it wrote', async () => {
    const dir = tempDir();
    const first = await backup(dir);
    await appendNotes(hub, 400, 10);
    await backup(dir);
    const [newest, previous] = listManifests(dir);
    const old = new Set(previous!.manifest!.chunks.map((c) => c.address));
    const fresh = newest!.manifest!.chunks.find((c) => c.kind === 'events' && !old.has(c.address))!;
    flipByte(join(dir, chunkPath(fresh.address)), 40);
    const verified = await verifyBackup(dir, PASSPHRASE);
    expect(verified.ok).toBe(false);
    expect(verified.firstProblem).toContain(chunkPath(fresh.address));
    expect(verified.firstProblem).toMatch(/does not decrypt/);
    expect(verified.restorable).toBe(1);
    const target = await pgTarget();
    const restored = await restoreBackup({ from: dir, key: PASSPHRASE, target, node: NODE_OPTIONS });
    expect(restored.manifest).toBe(1);
    expect(restored.rejected[0]!.problem).toContain(chunkPath(fresh.address));
    const node = await openRestored(target);
    try {
      expect((await verifyStore(node.store, ledgerCrypto)).eventsChecked).toBe(first.totalEvents);
    } finally {
      await node.close();
    }
  });

  it('a wrong passphrase or a key file instead: a clear error and nothing written', async () => {
    const dir = tempDir();
    await backup(dir);
    const before = fileHashes(dir);
    const target = await pgTarget();
    await expect(
      restoreBackup({ from: dir, key: WRONG_PASSPHRASE, target, node: NODE_OPTIONS }),
    ).rejects.toThrow(WRONG_KEY_MESSAGE);
    await expect(
      restoreBackup({
        from: dir,
        key: { kind: 'key-file', key: Buffer.alloc(32, 7), from: 'test' },
        target,
        node: NODE_OPTIONS,
      }),
    ).rejects.toThrow(/wrapped by a passphrase/);
    expect(existsSync(target.dataDir)).toBe(false);
    expect(await pgTableCount(target.databaseUrl)).toBe(0);
    await expect(backup(dir, hub, { key: WRONG_PASSPHRASE })).rejects.toBeInstanceOf(BackupKeyError);
    await expect(verifyBackup(dir, WRONG_PASSPHRASE)).rejects.toThrow(WRONG_KEY_MESSAGE);
    expect(fileHashes(dir)).toEqual(before);
  });

  it('takes a key only from a file or the environment, and says how when none is given', () => {
    expect(() => resolveKeySource({}, {})).toThrow(
      /--passphrase-file FILE, --key-file FILE, or set HOLDFAST_BACKUP_PASSPHRASE/,
    );
    expect(() => resolveKeySource({}, { HOLDFAST_BACKUP_PASSPHRASE: 'short' })).toThrow(/at least 12/);
    expect(resolveKeySource({}, { HOLDFAST_BACKUP_PASSPHRASE: 'long enough phrase' }).kind).toBe(
      'passphrase',
    );
  });

  it('refuses a target that is not empty', async () => {
    const dir = tempDir();
    await backup(dir);
    await expect(
      restoreBackup({ from: dir, key: PASSPHRASE, target: { ...hub.config }, node: NODE_OPTIONS }),
    ).rejects.toBeInstanceOf(RestoreError);
  });
});

describe('a hub whose store was edited directly', () => {
  it('backup refuses an edited payload and a deleted event, naming the event', async () => {
    const { hub: h, site: s } = await buildHub();
    try {
      const sqlite = h.store.sqliteHandle()!;
      sqlite
        .prepare(
          "update ledger_events set payload = replace(payload, 'note', 'NOTE') where node = 'hub-1' and seq = 9",
        )
        .run();
      const dir = tempDir();
      const error = await backup(dir, h).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChainFaultError);
      expect((error as ChainFaultError).message).toMatch(/node hub-1 seq 9: content does not match its hash/);
      expect(existsSync(join(dir, 'manifests'))).toBe(false);

      sqlite
        .prepare(
          "update ledger_events set payload = replace(payload, 'NOTE', 'note') where node = 'hub-1' and seq = 9",
        )
        .run();
      sqlite.prepare("delete from ledger_events where node = 'site-a' and seq = 12").run();
      const error2 = await backup(dir, h).catch((e: unknown) => e);
      expect((error2 as Error).message).toMatch(/node site-a seq 12: event missing/);
    } finally {
      await h.destroy();
      await s.destroy();
    }
  });

  it('restore catches a history rewritten with the hub key (re-hashed, re-signed) by the checkpoint the site witnessed', async () => {
    const { hub: h, site: s } = await buildHub();
    try {
      // The attacker holds the hub's node key and the backup key: edits seq 5, re-hashes the rest of
      // the chain, re-signs the hub's own checkpoints, and writes a backup without any checks.
      const { rewriteChain } = await import('./rewrite.ts');
      await rewriteChain(h, 'hub-1', 5);
      expect((await verifyStore(h.store, ledgerCrypto)).faults[0]).toMatchObject({ node: 'hub-1' });
      const dir = tempDir();
      await backup(dir, h, { trustSource: true });
      const target = sqliteTarget();
      const error = await restoreBackup({ from: dir, key: PASSPHRASE, target, node: NODE_OPTIONS }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RestoreError);
      expect((error as Error).message).toMatch(
        /node hub-1 seq \d+: checkpoint by site-a does not match .*rewritten/,
      );
      expect(existsSync(target.dataDir) ? readdirSync(target.dataDir) : []).toEqual([]);
      const verified = await verifyBackup(dir, PASSPHRASE);
      expect(verified.ok).toBe(false);
      expect(verified.firstProblem).toMatch(/checkpoint by site-a/);
    } finally {
      await h.destroy();
      await s.destroy();
    }
  });
});
