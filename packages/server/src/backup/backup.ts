import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint } from '@holdfast/core';
import { KEY_FILE, NODE_FILE } from '../node/identity.ts';
import { PROVIDER_KEYS_FILE } from '../node/provider-keys.ts';
import type { HoldfastNode } from '../node/node.ts';
import { loadNodeKeys } from '../projections/node-keys.ts';
import type { Store } from '../store/store.ts';
import { checkCheckpoints, StreamingChainCheck, type CheckpointTally } from './chain-check.ts';
import {
  CHECKPOINT_BUCKET,
  CHUNK_EVENTS,
  chunkAddress,
  chunkPath,
  encodeCheckpointsChunk,
  encodeEventsChunk,
  listManifests,
  MANIFEST_FORMAT,
  manifestFileName,
  signManifest,
  writeChunk,
  type ChainPosition,
  type ChunkEntry,
  type ChunkEvent,
  type IdentityChunk,
  type Manifest,
  type ManifestFile,
} from './format.ts';
import { writeFileNoReplace } from './files.ts';
import { BackupKeyError, createBackupKeys, keyFileExists, openBackupKeys, type KeySource } from './keys.ts';

export interface BackupOptions {
  dir: string;
  key: KeySource;
  /** The node's data directory (its identity files go into the backup, encrypted). */
  dataDir: string;
  onProgress?: (done: number, total: number) => void;
  log?: (line: string) => void;
  now?: () => Date;
  /**
   * Tests only: write what the store holds without checking it, as a backup tool that did not
   * check (or an attacker holding the node key and the backup key) would, so that restore's own
   * checks can be shown to catch a rewritten history.
   */
  trustSource?: boolean;
}

export interface BackupReport {
  manifest: number;
  file: string;
  basedOn: number | null;
  newEvents: number;
  totalEvents: number;
  newChunks: number;
  reusedChunks: number;
  newBytes: number;
  checkpointsChecked: CheckpointTally;
  /** Newer manifests that were damaged and skipped (they stay in place, untouched). */
  skipped: string[];
  ms: number;
}

/** Rows per read and per events chunk. */
const READ_PAGE = CHUNK_EVENTS;

/**
 * `holdfast backup --to DIR`: an incremental, encrypted, signed backup of the node's tenant.
 * Only events after the previous manifest's positions are read, checked (hashes, links, clocks,
 * and every new checkpoint against its event and signature: a store edited directly is refused,
 * naming the event) and written as new chunks; unchanged chunks are reused by address. Each chain
 * is backed up to its last checkpoint signed by its own node (this node checkpoints its own chain
 * first), so every backed-up event is vouched for by its node. Nothing existing is ever overwritten.
 */
export async function runBackup(node: HoldfastNode, options: BackupOptions): Promise<BackupReport> {
  const started = performance.now();
  const { dir } = options;
  const log = options.log ?? (() => undefined);
  const tenant = node.identity.tenant;
  mkdirSync(dir, { recursive: true });
  const keys = keyFileExists(dir)
    ? openBackupKeys(dir, options.key)
    : createBackupKeys(dir, options.key, tenant);
  if (keys.tenant !== tenant)
    throw new BackupKeyError(
      `${dir} holds backups of tenant ${keys.tenant}, not ${tenant}: use another directory`,
    );

  const manifests = listManifests(dir);
  const skipped: string[] = [];
  let base: ManifestFile | null = null;
  for (const m of manifests) {
    const problem = m.problem ?? baseProblem(dir, m, node.identity.node, keys.keyId);
    if (problem) {
      skipped.push(`${m.file} ${problem}`);
      log(`${m.file} ${problem}: it is left as it is, and this backup builds on an earlier manifest`);
      continue;
    }
    base = m;
    break;
  }
  const baseManifest = base?.manifest ?? null;

  await node.ledger.checkpointNow(tenant);
  const store = node.store;
  const chainNodes = await chainsOf(store, tenant);
  const storeKeys = await loadNodeKeys(store.db, tenant);

  // Work out each chain's range first, for the progress total.
  const plans: { chain: string; from: ChainPosition | undefined; end: number }[] = [];
  let total = 0;
  for (const chain of chainNodes) {
    const row = await store.db
      .selectFrom('checkpoints')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('tenant', '=', tenant)
      .where('node', '=', chain)
      .where('signer', '=', chain)
      .executeTakeFirst();
    const end = Number(row?.seq ?? 0);
    const from = baseManifest?.positions[chain];
    plans.push({ chain, from, end });
    total += Math.max(0, end - (from?.seq ?? 0));
  }

  const entries: ChunkEntry[] = baseManifest ? baseManifest.chunks.filter((c) => c.kind === 'events') : [];
  const baseCheckpointChunks = new Map(
    (baseManifest?.chunks ?? []).flatMap((c) =>
      c.kind === 'checkpoints' ? [[`${c.node}\u0000${c.bucket}`, c] as const] : [],
    ),
  );
  const positions: Record<string, ChainPosition> = { ...(baseManifest?.positions ?? {}) };
  const tally: CheckpointTally = { own: 0, witnessed: 0 };
  let done = 0;
  let newChunks = 0;
  let newBytes = 0;
  let reusedChunks = 0;
  options.onProgress?.(0, total);

  for (const { chain, from, end } of plans) {
    const where = `the store (tenant ${tenant}, node ${chain})`;
    const check = new StreamingChainCheck(tenant, chain, from, new Set());
    for (let s = (from?.seq ?? 0) + 1; s <= end; s += READ_PAGE) {
      const to = Math.min(end, s + READ_PAGE - 1);
      const events = await readEvents(store, tenant, chain, s, to);
      if (!options.trustSource) for (const e of events) check.push(e, where);
      if (events.length === 0) continue;
      const written = writeChunk(dir, keys, encodeEventsChunk(tenant, chain, events));
      entries.push({
        kind: 'events',
        address: written.address,
        bytes: written.bytes,
        tenant,
        node: chain,
        fromSeq: events[0]!.seq,
        toSeq: events[events.length - 1]!.seq,
        count: events.length,
      });
      if (written.written) {
        newChunks++;
        newBytes += written.bytes;
      } else reusedChunks++;
      done += events.length;
      options.onProgress?.(done, total);
      if (options.trustSource) {
        const last = events[events.length - 1]!;
        positions[chain] = { seq: last.seq, hash: last.hash, hlc: last.hlc };
      }
    }
    if (!options.trustSource && end > (from?.seq ?? 0)) {
      check.expectEnd(end, where);
      positions[chain] = check.position;
    }
  }

  // Checkpoints, per chain and seq bucket: an unchanged bucket keeps its chunk; a changed one is
  // checked against the events it covers and the registered keys before it is written.
  const checkpointEntries: ChunkEntry[] = [];
  let totalCheckpoints = 0;
  for (const chain of chainNodes) {
    const upTo = positions[chain]?.seq ?? 0;
    if (upTo === 0) continue;
    const rows = await store.db
      .selectFrom('checkpoints')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('node', '=', chain)
      .where('seq', '<=', upTo)
      .orderBy('seq')
      .orderBy('signer')
      .execute();
    const byBucket = new Map<number, Checkpoint[]>();
    for (const r of rows) {
      const c = { ...r, seq: Number(r.seq) };
      const b = Math.floor((c.seq - 1) / CHECKPOINT_BUCKET);
      const list = byBucket.get(b) ?? [];
      list.push(c);
      byBucket.set(b, list);
    }
    for (const [bucket, list] of byBucket) {
      const plaintext = encodeCheckpointsChunk(tenant, chain, bucket, list);
      const previous = baseCheckpointChunks.get(`${chain}\u0000${bucket}`);
      if (!options.trustSource) {
        if (previous?.address !== chunkAddress(keys, plaintext)) {
          const heads = await eventHeads(
            store,
            tenant,
            chain,
            list.map((c) => c.seq),
          );
          checkCheckpoints(
            list,
            (c) => heads.get(c.seq),
            storeKeys,
            `the store (tenant ${tenant}, node ${chain})`,
            tally,
          );
        }
      }
      const written = writeChunk(dir, keys, plaintext);
      if (written.written) {
        newChunks++;
        newBytes += written.bytes;
      } else reusedChunks++;
      totalCheckpoints += list.length;
      checkpointEntries.push({
        kind: 'checkpoints',
        address: written.address,
        bytes: written.bytes,
        tenant,
        node: chain,
        bucket,
        count: list.length,
      });
    }
  }

  const identity: IdentityChunk = {
    kind: 'identity',
    nodeJson: readFileSync(join(options.dataDir, NODE_FILE), 'utf8'),
    nodeKey: readFileSync(join(options.dataDir, KEY_FILE), 'utf8'),
    ...(existsSync(join(options.dataDir, PROVIDER_KEYS_FILE))
      ? { providerKeys: readFileSync(join(options.dataDir, PROVIDER_KEYS_FILE), 'utf8') }
      : {}),
  };
  const id = writeChunk(dir, keys, Buffer.from(JSON.stringify(identity), 'utf8'));
  if (id.written) {
    newChunks++;
    newBytes += id.bytes;
  } else reusedChunks++;

  const eventEntries = entries
    .filter((c): c is Extract<ChunkEntry, { kind: 'events' }> => c.kind === 'events')
    .sort((a, b) => a.node.localeCompare(b.node) || a.fromSeq - b.fromSeq);
  const number = (manifests[0]?.number ?? 0) + 1;
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    number,
    previous: base ? { number: base.number, sha256: base.sha256 } : null,
    createdAt: (options.now?.() ?? new Date()).toISOString(),
    tenant,
    node: node.identity.node,
    publicKey: node.identity.signer.publicKey,
    keyId: keys.keyId,
    positions,
    chunks: [
      { kind: 'identity', address: id.address, bytes: id.bytes },
      ...checkpointEntries,
      ...eventEntries,
    ],
    totals: {
      events: eventEntries.reduce((n, c) => n + c.count, 0),
      checkpoints: totalCheckpoints,
      newEvents: done,
      newChunks,
    },
  };
  const file = manifestFileName(number);
  if (!writeFileNoReplace(join(dir, file), signManifest(node.identity.signer, manifest)))
    throw new Error(
      `${join(dir, file)} appeared while this backup ran (another backup into the same directory?); nothing was replaced`,
    );
  return {
    manifest: number,
    file,
    basedOn: base?.number ?? null,
    newEvents: done,
    totalEvents: manifest.totals.events,
    newChunks,
    reusedChunks,
    newBytes,
    checkpointsChecked: tally,
    skipped,
    ms: performance.now() - started,
  };
}

/** Why manifest `m` cannot be built on (cheap checks: owner, key, chunk files present at their size). */
function baseProblem(dir: string, m: ManifestFile, node: string, keyId: string): string | null {
  const manifest = m.manifest!;
  if (manifest.keyId !== keyId) return 'was made with another data key';
  if (manifest.node !== node) return `belongs to node ${manifest.node}, not ${node}`;
  for (const c of manifest.chunks) {
    const path = join(dir, chunkPath(c.address));
    if (!existsSync(path)) return `lists ${chunkPath(c.address)}, which is missing`;
    if (statSync(path).size !== c.bytes)
      return `lists ${chunkPath(c.address)}, whose size is wrong (damaged)`;
  }
  return null;
}

async function chainsOf(store: Store, tenant: string): Promise<string[]> {
  const a = await store.db
    .selectFrom('ledger_events')
    .select('node')
    .distinct()
    .where('tenant', '=', tenant)
    .execute();
  const b = await store.db
    .selectFrom('checkpoints')
    .select('node')
    .distinct()
    .where('tenant', '=', tenant)
    .execute();
  return [...new Set([...a, ...b].map((r) => r.node))].sort();
}

/** One chain's events with seq in [from, to], in seq order. */
async function readEvents(
  store: Store,
  tenant: string,
  node: string,
  from: number,
  to: number,
): Promise<ChunkEvent[]> {
  const sqlite = store.sqliteHandle();
  if (sqlite) {
    const rows = sqlite
      .prepare(
        'select seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject from ledger_events where tenant = ? and node = ? and seq >= ? and seq <= ? order by seq',
      )
      .raw(true)
      .all(tenant, node, from, to) as [
      number,
      string,
      string,
      string,
      number,
      string,
      string,
      string,
      string,
      string | null,
    ][];
    return rows.map((r) => ({
      id: r[1],
      tenant,
      node,
      seq: r[0],
      hlc: r[2],
      type: r[3],
      v: r[4],
      actor: r[5],
      payloadJson: r[6],
      prevHash: r[7],
      hash: r[8],
      subject: r[9],
    }));
  }
  const rows = await store.db
    .selectFrom('ledger_events')
    .select(['seq', 'id', 'hlc', 'type', 'v', 'actor', 'payload', 'prev_hash', 'hash', 'subject'])
    .where('tenant', '=', tenant)
    .where('node', '=', node)
    .where('seq', '>=', from)
    .where('seq', '<=', to)
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    tenant,
    node,
    seq: Number(r.seq),
    hlc: r.hlc,
    type: r.type,
    v: Number(r.v),
    actor: r.actor,
    payloadJson: r.payload,
    prevHash: r.prev_hash,
    hash: r.hash,
    subject: r.subject,
  }));
}

async function eventHeads(
  store: Store,
  tenant: string,
  node: string,
  seqs: number[],
): Promise<Map<number, { hash: string; hlc: string }>> {
  const out = new Map<number, { hash: string; hlc: string }>();
  const unique = [...new Set(seqs)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await store.db
      .selectFrom('ledger_events')
      .select(['seq', 'hash', 'hlc'])
      .where('tenant', '=', tenant)
      .where('node', '=', node)
      .where('seq', 'in', unique.slice(i, i + 500))
      .execute();
    for (const r of rows) out.set(Number(r.seq), { hash: r.hash, hlc: r.hlc });
  }
  return out;
}
