import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signCheckpoint } from '@holdfast/core';
import { importBatch } from '../../src/ledger/import.ts';
import { openNode, type HoldfastNode } from '../../src/node/node.ts';
import type { KeySource } from '../../src/backup/keys.ts';
import { snapshotTestTables, testItemsProjection, testRegistry } from '../support/ledger-fixture.ts';
import {
  collectBatches,
  ledgerRows,
  registerPeer,
  startTestNode,
  toNumbered,
  type TestNode,
} from '../support/nodes.ts';

export const TENANT = 'prov-backup';
export const PASSPHRASE: KeySource = {
  kind: 'passphrase',
  passphrase: 'correct horse battery staple',
  from: 'test',
};
export const WRONG_PASSPHRASE: KeySource = {
  kind: 'passphrase',
  passphrase: 'incorrect horse battery',
  from: 'test',
};
export const NODE_OPTIONS = { registry: testRegistry(), projections: [testItemsProjection] };

const dirs: string[] = [];
export function tempDir(prefix = 'holdfast-backup-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export async function appendNotes(node: HoldfastNode, from: number, count: number): Promise<void> {
  const drafts = Array.from({ length: count }, (_, i) => ({
    tenant: TENANT,
    type: i % 4 === 3 ? 'test.item.status' : 'test.item.noted',
    actor: 'user:tester',
    payload:
      i % 4 === 3
        ? { item: `i${(from + i) % 7}`, status: (['open', 'waiting', 'closed'] as const)[(from + i) % 3] }
        : { item: `i${(from + i) % 7}`, text: `note ${from + i}\twith a tab, "quotes" and \\ a backslash` },
  }));
  for (let i = 0; i < drafts.length; i += 25) await node.ledger.append(drafts.slice(i, i + 25));
}

/**
 * A hub (SQLite) holding its own chain and a site's chain (imported as sync would), with checkpoints
 * the site witnessed on the hub's chain (what H4a's witness checkpoints put there).
 */
export async function buildHub(): Promise<{ hub: TestNode; site: TestNode; witness(): Promise<void> }> {
  const hub = await startTestNode(
    'sqlite',
    { node: 'hub-1', tenant: TENANT, role: 'hub' },
    { checkpointEvery: 20 },
  );
  const site = await startTestNode(
    'sqlite',
    { node: 'site-a', tenant: TENANT, role: 'site' },
    { checkpointEvery: 20 },
  );
  await registerPeer(hub, site, TENANT);
  await appendNotes(hub, 0, 60);
  await appendNotes(site, 1000, 45);
  await site.ledger.checkpointNow(TENANT);
  for (const batch of await collectBatches(site, TENANT, 1000))
    await importBatch(hub.ledger, TENANT, toNumbered(batch));
  const witness = async () => {
    await hub.ledger.checkpointNow(TENANT);
    const own = await hub.ledger.checkpoints(TENANT, 'hub-1');
    const last = own[own.length - 1]!;
    const events = await hub.ledger.readChain(TENANT, 'hub-1', last.seq, last.seq);
    const c = signCheckpoint(site.identity.signer, events[0]!);
    await hub.store.db
      .insertInto('checkpoints')
      .values(c)
      .onConflict((oc) => oc.doNothing())
      .execute();
  };
  await witness();
  return { hub, site, witness };
}

export async function snapshot(
  node: HoldfastNode,
): Promise<{ events: unknown[]; checkpoints: unknown[]; tables: unknown }> {
  const checkpoints = (
    await node.store.db
      .selectFrom('checkpoints')
      .selectAll()
      .where('tenant', '=', TENANT)
      .orderBy('node')
      .orderBy('seq')
      .orderBy('signer')
      .execute()
  ).map((c) => ({ ...c, seq: Number(c.seq) }));
  return {
    events: await ledgerRows(node, TENANT),
    checkpoints,
    tables: await snapshotTestTables(node.store.db),
  };
}

export async function openRestored(config: Parameters<typeof openNode>[0]): Promise<HoldfastNode> {
  return openNode(config, NODE_OPTIONS);
}

/** Every file under `dir` with the SHA-256 of its bytes and its mtime. */
export function fileHashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? join(rel, name) : name;
      if (statSync(join(dir, r)).isDirectory()) walk(r);
      else
        out.set(
          r,
          createHash('sha256')
            .update(readFileSync(join(dir, r)))
            .digest('hex'),
        );
    }
  };
  walk('');
  return out;
}

/** Flips one byte of a file in place. */
export function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  const i = at < 0 ? bytes.length + at : at;
  bytes[i] = bytes[i]! ^ 0x01;
  writeFileSync(path, bytes);
}
