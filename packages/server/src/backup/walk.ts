import { compareLedgerOrder, type Checkpoint } from '@holdfast/core';
import { nodeFileSchema } from '../node/identity.ts';
import {
  ChainFaultError,
  checkCheckpoints,
  detached,
  StreamingChainCheck,
  type CheckpointTally,
} from './chain-check.ts';
import {
  BackupFormatError,
  chunkPath,
  decodeCheckpointsChunk,
  decodeEventsChunk,
  identityChunkSchema,
  readChunk,
  type ChunkEvent,
  type IdentityChunk,
  type Manifest,
} from './format.ts';
import type { BackupKeys } from './keys.ts';

export interface WalkReport {
  events: number;
  chains: { node: string; lastSeq: number }[];
  checkpoints: CheckpointTally;
  chunks: number;
  bytes: number;
  /** The event types the backup holds (which projections a rebuild must read for). */
  types: string[];
}

export interface WalkSink {
  identity?(identity: IdentityChunk): Promise<void> | void;
  /** One events chunk, already checked (hashes, links, clocks); called in manifest order. */
  events?(events: ChunkEvent[]): Promise<void> | void;
  /** The same chunk's plaintext (for a reader in another thread, which decodes it again). */
  eventsPlaintext?(plaintext: Buffer, file: string): Promise<void> | void;
  /** Every checkpoint, once all of them were checked against the events and the registered keys. */
  checkpoints?(checkpoints: Checkpoint[]): Promise<void> | void;
  progress?(done: number, total: number): void;
}

/**
 * Reads everything one manifest lists and checks it all: every chunk decrypts and matches its
 * address; the identity matches the manifest's signer; every chain is contiguous from seq 1 with
 * every hash recomputed, every link and clock checked, and ends where the manifest says; every
 * checkpoint (own and witnessed) matches its event and carries a valid signature by a key that the
 * ledger itself registers, newest registration first as the node_keys projection folds them. The
 * manifest's signing key must be its node's registered key. The first problem is thrown, naming
 * the chunk file and, for an event, its chain and seq.
 */
export async function walkManifest(
  dir: string,
  keys: BackupKeys,
  manifest: Manifest,
  sink: WalkSink = {},
): Promise<WalkReport> {
  const report: WalkReport = {
    events: 0,
    chains: [],
    checkpoints: { own: 0, witnessed: 0 },
    chunks: 0,
    bytes: 0,
    types: [],
  };
  const types = new Set<string>();
  const tenant = manifest.tenant;

  // 1. Identity.
  const idEntry = manifest.chunks.find((c) => c.kind === 'identity');
  if (!idEntry) throw new BackupFormatError('manifest', 'lists no identity chunk');
  const idFile = chunkPath(idEntry.address);
  let identity: IdentityChunk;
  try {
    identity = identityChunkSchema.parse(JSON.parse(readChunk(dir, keys, idEntry.address).toString('utf8')));
    const nodeFile = nodeFileSchema.parse(JSON.parse(identity.nodeJson));
    if (
      nodeFile.node !== manifest.node ||
      nodeFile.publicKey !== manifest.publicKey ||
      nodeFile.tenant !== tenant
    )
      throw new BackupFormatError(
        idFile,
        'holds the identity of another node than the one that signed the manifest',
      );
  } catch (error) {
    if (error instanceof BackupFormatError) throw error;
    throw new BackupFormatError(idFile, 'is not a valid identity chunk');
  }
  report.chunks++;
  report.bytes += idEntry.bytes;
  await sink.identity?.(identity);

  // 2. Checkpoints (small): which seqs each chain must remember while streaming.
  const checkpointsByChain = new Map<string, { checkpoints: Checkpoint[]; file: string }[]>();
  for (const c of manifest.chunks) {
    if (c.kind !== 'checkpoints') continue;
    const file = chunkPath(c.address);
    const decoded = decodeCheckpointsChunk(file, readChunk(dir, keys, c.address));
    if (decoded.tenant !== tenant || decoded.node !== c.node || decoded.checkpoints.length !== c.count)
      throw new BackupFormatError(file, 'does not hold what the manifest lists for it');
    const list = checkpointsByChain.get(c.node) ?? [];
    list.push({ checkpoints: decoded.checkpoints, file });
    checkpointsByChain.set(c.node, list);
    report.chunks++;
    report.bytes += c.bytes;
  }

  // 3. Events, chain by chain, in seq order.
  const total = manifest.totals.events;
  sink.progress?.(0, total);
  const checks = new Map<string, StreamingChainCheck>();
  const registrations = new Map<string, { publicKey: string; hlc: string; node: string; seq: number }>();
  for (const c of manifest.chunks) {
    if (c.kind !== 'events') continue;
    const file = chunkPath(c.address);
    if (c.tenant !== tenant)
      throw new BackupFormatError(file, `is listed for tenant ${c.tenant}, not ${tenant}`);
    let check = checks.get(c.node);
    if (!check) {
      const watch = new Set<number>();
      for (const part of checkpointsByChain.get(c.node) ?? [])
        for (const cp of part.checkpoints) watch.add(cp.seq);
      check = new StreamingChainCheck(tenant, c.node, undefined, watch);
      checks.set(c.node, check);
    }
    const plaintext = readChunk(dir, keys, c.address);
    const { header, events } = decodeEventsChunk(file, plaintext);
    if (
      header.tenant !== tenant ||
      header.node !== c.node ||
      header.fromSeq !== c.fromSeq ||
      header.toSeq !== c.toSeq ||
      header.count !== c.count
    )
      throw new BackupFormatError(file, 'does not hold what the manifest lists for it');
    for (const e of events) {
      check.push(e, file);
      // Kept for the whole walk: copies, not cuts of this chunk's text (see `detached`).
      if (!types.has(e.type)) types.add(detached(e.type));
      if (e.type === 'node.registered') {
        const p = JSON.parse(e.payloadJson) as { node?: unknown; publicKey?: unknown };
        if (typeof p.node === 'string' && typeof p.publicKey === 'string') {
          const held = registrations.get(p.node);
          if (!held || compareLedgerOrder(e, held) > 0)
            registrations.set(detached(p.node), {
              publicKey: detached(p.publicKey),
              hlc: detached(e.hlc),
              node: detached(e.node),
              seq: e.seq,
            });
        }
      }
    }
    await sink.events?.(events);
    await sink.eventsPlaintext?.(plaintext, file);
    report.events += events.length;
    report.chunks++;
    report.bytes += c.bytes;
    sink.progress?.(report.events, total);
  }

  // 4. Ends, checkpoints, keys.
  for (const [node, position] of Object.entries(manifest.positions)) {
    const check = checks.get(node);
    const last = check?.position ?? { seq: 0, hash: '', hlc: '' };
    if (position.seq > 0 && (last.seq !== position.seq || last.hash !== position.hash))
      throw new ChainFaultError(
        tenant,
        node,
        Math.min(last.seq + 1, position.seq),
        `the backed-up chain ends at seq ${last.seq}, but the manifest says seq ${position.seq}`,
        'manifest',
      );
  }
  const publicKeys = new Map([...registrations].map(([node, r]) => [node, r.publicKey]));
  const all: Checkpoint[] = [];
  for (const [node, parts] of checkpointsByChain) {
    const check = checks.get(node);
    for (const part of parts) {
      checkCheckpoints(
        part.checkpoints,
        (cp) => (cp.seq <= (check?.lastSeq ?? 0) ? check?.heads.get(cp.seq) : undefined),
        publicKeys,
        part.file,
        report.checkpoints,
      );
      all.push(...part.checkpoints);
    }
  }
  if (publicKeys.get(manifest.node) !== manifest.publicKey)
    throw new BackupFormatError(
      'manifest',
      `is signed by a key that the backed-up ledger does not register for node ${manifest.node}`,
    );
  await sink.checkpoints?.(all);
  report.types = [...types].sort();
  report.chains = [...checks]
    .map(([node, c]) => ({ node, lastSeq: c.lastSeq }))
    .sort((a, b) => a.node.localeCompare(b.node));
  return report;
}
