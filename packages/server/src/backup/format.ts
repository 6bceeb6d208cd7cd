import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, type Checkpoint, type StoredEvent } from '@holdfast/core';
import { z } from 'zod';
import type { NodeSigner } from '@holdfast/core';
import { ledgerCrypto } from '../node/crypto.ts';
import type { BackupKeys } from './keys.ts';
import { writeFileNoReplace } from './files.ts';

/**
 * The backup directory:
 *
 *   backup-key.json            the data key, wrapped by the passphrase or key file (keys.ts)
 *   chunks/ab/<address>        encrypted chunks, named by HMAC-SHA256(address key, plaintext)
 *   manifests/000001.json ...  signed manifests, each naming the hash of the previous one
 *
 * A chunk is `HFB1` | 12-byte IV | AES-256-GCM ciphertext | 16-byte tag, with the address as
 * associated data, so a chunk renamed or swapped for another fails to decrypt. Equal plaintext gets
 * the same address and is stored once (dedup across backups) but, the address being keyed, nobody
 * without the data key learns that two chunks are equal or can test a guess of their content.
 *
 * Every manifest lists all the chunks a restore needs (not only the new ones), so any manifest that
 * verifies restores on its own: an older clean backup stays restorable when a newer one is damaged.
 */
export const CHUNKS_DIR = 'chunks';
export const MANIFESTS_DIR = 'manifests';
const CHUNK_MAGIC = Buffer.from('HFB1');
export const MANIFEST_FORMAT = 'holdfast-backup-manifest/1';

/** Events per events chunk (about 5 MB of plaintext for typical events). */
export const CHUNK_EVENTS = 10_000;
/** Checkpoints are grouped by seq range; an unchanged range keeps its chunk (same address). */
export const CHECKPOINT_BUCKET = 100_000;

export class BackupFormatError extends Error {
  constructor(
    /** The file (relative to the backup directory) that is wrong. */
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

export function chunkPath(address: string): string {
  return join(CHUNKS_DIR, address.slice(0, 2), address);
}

export function chunkAddress(keys: BackupKeys, plaintext: Buffer): string {
  return createHmac('sha256', keys.addressKey).update(plaintext).digest('hex');
}

export function encryptChunk(keys: BackupKeys, plaintext: Buffer): { address: string; file: Buffer } {
  const address = chunkAddress(keys, plaintext);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.encryptionKey, iv);
  cipher.setAAD(Buffer.from(address));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { address, file: Buffer.concat([CHUNK_MAGIC, iv, body, cipher.getAuthTag()]) };
}

/** Writes a chunk unless one with its address exists (dedup). Returns true if it wrote a file. */
export function writeChunk(
  dir: string,
  keys: BackupKeys,
  plaintext: Buffer,
): { address: string; bytes: number; written: boolean } {
  const { address, file } = encryptChunk(keys, plaintext);
  const path = join(dir, chunkPath(address));
  const written = existsSync(path) ? false : writeFileNoReplace(path, file);
  return { address, bytes: file.length, written };
}

/** Reads, decrypts and authenticates a chunk; any problem is a BackupFormatError naming the file. */
export function readChunk(dir: string, keys: BackupKeys, address: string): Buffer {
  const rel = chunkPath(address);
  let file: Buffer;
  try {
    file = readFileSync(join(dir, rel));
  } catch {
    throw new BackupFormatError(rel, 'is missing or unreadable');
  }
  if (file.length < CHUNK_MAGIC.length + 12 + 16 || !file.subarray(0, 4).equals(CHUNK_MAGIC))
    throw new BackupFormatError(rel, 'is not a Holdfast backup chunk (bad header or truncated)');
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.encryptionKey, file.subarray(4, 16));
    decipher.setAAD(Buffer.from(address));
    decipher.setAuthTag(file.subarray(file.length - 16));
    plaintext = Buffer.concat([decipher.update(file.subarray(16, file.length - 16)), decipher.final()]);
  } catch {
    throw new BackupFormatError(
      rel,
      'does not decrypt: its bytes were changed (or it belongs to another backup)',
    );
  }
  if (chunkAddress(keys, plaintext) !== address)
    throw new BackupFormatError(rel, 'decrypts, but its content does not match its address');
  return plaintext;
}

// ---------------------------------------------------------------------------------------------
// Chunk contents

/**
 * An events chunk: a JSON header line, then one line per event in seq order, fields separated by
 * tabs: seq, id, hlc, type, v, actor, payload, prevHash, hash, subject. The payload is its canonical
 * JSON exactly as hashed (canonical JSON escapes every control character, so it holds no tab or
 * newline); text fields that hold a tab, newline or backslash are written as `\` + JSON string.
 * Parsing this is a split per line and no JSON per event, which is what makes restore fast.
 */
export interface EventsChunkHeader {
  kind: 'events';
  tenant: string;
  node: string;
  fromSeq: number;
  toSeq: number;
  count: number;
}

const NEEDS_QUOTING = /[\t\n\r\\]/;
/** Canonical JSON holds backslashes (escapes) but never a raw tab or line break. */
const BREAKS_LINE = /[\t\n\r]/;

function field(s: string | null): string {
  if (s === null) return '\\null';
  return NEEDS_QUOTING.test(s) ? '\\' + JSON.stringify(s) : s;
}

function unfield(s: string): string | null {
  return s.charCodeAt(0) === 92 ? (JSON.parse(s.slice(1)) as string | null) : s;
}

export interface ChunkEvent extends StoredEvent {
  subject: string | null;
}

export function encodeEventsChunk(tenant: string, node: string, events: readonly ChunkEvent[]): Buffer {
  const header: EventsChunkHeader = {
    kind: 'events',
    tenant,
    node,
    fromSeq: events[0]!.seq,
    toSeq: events[events.length - 1]!.seq,
    count: events.length,
  };
  const lines = [JSON.stringify(header)];
  for (const e of events) {
    if (BREAKS_LINE.test(e.payloadJson))
      throw new Error(`payload of ${node} seq ${e.seq} is not canonical JSON`);
    lines.push(
      `${e.seq}\t${field(e.id)}\t${field(e.hlc)}\t${field(e.type)}\t${e.v}\t${field(e.actor)}\t${e.payloadJson}\t${field(e.prevHash)}\t${field(e.hash)}\t${field(e.subject)}`,
    );
  }
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}

const eventsHeaderSchema = z.strictObject({
  kind: z.literal('events'),
  tenant: z.string().min(1),
  node: z.string().min(1),
  fromSeq: z.number().int().min(1),
  toSeq: z.number().int().min(1),
  count: z.number().int().min(1),
});

/** Decodes an events chunk (already authenticated); `file` names it in errors. */
export function decodeEventsChunk(
  file: string,
  plaintext: Buffer,
): { header: EventsChunkHeader; events: ChunkEvent[] } {
  const text = plaintext.toString('utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let header: EventsChunkHeader;
  try {
    header = eventsHeaderSchema.parse(JSON.parse(lines[0] ?? ''));
  } catch {
    throw new BackupFormatError(file, 'is not an events chunk (bad header)');
  }
  if (lines.length - 1 !== header.count)
    throw new BackupFormatError(file, `holds ${lines.length - 1} events, its header says ${header.count}`);
  const events: ChunkEvent[] = new Array<ChunkEvent>(header.count);
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.split('\t');
    if (f.length !== 10) throw new BackupFormatError(file, `line ${i + 1} does not have 10 fields`);
    events[i - 1] = {
      id: unfield(f[1]!)!,
      tenant: header.tenant,
      node: header.node,
      seq: Number(f[0]),
      hlc: unfield(f[2]!)!,
      type: unfield(f[3]!)!,
      v: Number(f[4]),
      actor: unfield(f[5]!)!,
      payloadJson: f[6]!,
      prevHash: unfield(f[7]!)!,
      hash: unfield(f[8]!)!,
      subject: unfield(f[9]!),
    };
  }
  return { header, events };
}

const checkpointRowSchema = z.tuple([
  z.number().int().min(1),
  z.string(),
  z.string(),
  z.string().min(1),
  z.string(),
]);

/** A checkpoints chunk: a JSON header line, then `[seq, hash, hlc, signer, signature]` per line. */
export function encodeCheckpointsChunk(
  tenant: string,
  node: string,
  bucket: number,
  checkpoints: readonly Checkpoint[],
): Buffer {
  const lines = [JSON.stringify({ kind: 'checkpoints', tenant, node, bucket })];
  for (const c of checkpoints) lines.push(JSON.stringify([c.seq, c.hash, c.hlc, c.signer, c.signature]));
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}

export function decodeCheckpointsChunk(
  file: string,
  plaintext: Buffer,
): { tenant: string; node: string; checkpoints: Checkpoint[] } {
  const lines = plaintext
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '');
  try {
    const header = z
      .strictObject({
        kind: z.literal('checkpoints'),
        tenant: z.string(),
        node: z.string(),
        bucket: z.number().int(),
      })
      .parse(JSON.parse(lines[0] ?? ''));
    const checkpoints = lines.slice(1).map((l) => {
      const [seq, hash, hlc, signer, signature] = checkpointRowSchema.parse(JSON.parse(l));
      return { tenant: header.tenant, node: header.node, seq, hash, hlc, signer, signature };
    });
    return { tenant: header.tenant, node: header.node, checkpoints };
  } catch {
    throw new BackupFormatError(file, 'is not a checkpoints chunk');
  }
}

/** The node's identity files, so a restored hub continues as the same node. */
export const identityChunkSchema = z.strictObject({
  kind: z.literal('identity'),
  nodeJson: z.string(),
  nodeKey: z.string(),
  /** provider-keys.json (the keys that seal account secrets); absent from backups made before it. */
  providerKeys: z.string().optional(),
});
export type IdentityChunk = z.infer<typeof identityChunkSchema>;

// ---------------------------------------------------------------------------------------------
// Manifests

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const chunkEntrySchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('identity'), address: hex64, bytes: z.number().int() }),
  z.strictObject({
    kind: z.literal('events'),
    address: hex64,
    bytes: z.number().int(),
    tenant: z.string(),
    node: z.string(),
    fromSeq: z.number().int().min(1),
    toSeq: z.number().int().min(1),
    count: z.number().int().min(1),
  }),
  z.strictObject({
    kind: z.literal('checkpoints'),
    address: hex64,
    bytes: z.number().int(),
    tenant: z.string(),
    node: z.string(),
    bucket: z.number().int().min(0),
    count: z.number().int().min(0),
  }),
]);
export type ChunkEntry = z.infer<typeof chunkEntrySchema>;

const positionSchema = z.strictObject({ seq: z.number().int().min(0), hash: z.string(), hlc: z.string() });
export type ChainPosition = z.infer<typeof positionSchema>;

export const manifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  number: z.number().int().min(1),
  /** SHA-256 of the previous manifest file's bytes, and its number; null for the first. */
  previous: z.strictObject({ number: z.number().int().min(1), sha256: hex64 }).nullable(),
  createdAt: z.string(),
  tenant: z.string(),
  node: z.string(),
  publicKey: z.string(),
  keyId: z.string(),
  /** Per chain (node id): the last backed-up event. */
  positions: z.record(z.string(), positionSchema),
  chunks: z.array(chunkEntrySchema),
  totals: z.strictObject({
    events: z.number().int(),
    checkpoints: z.number().int(),
    newEvents: z.number().int(),
    newChunks: z.number().int(),
  }),
});
export type Manifest = z.infer<typeof manifestSchema>;

const manifestFileSchema = z.strictObject({ manifest: manifestSchema, signature: z.string() });

export function manifestFileName(number: number): string {
  return join(MANIFESTS_DIR, `${String(number).padStart(6, '0')}.json`);
}

export function signManifest(signer: NodeSigner, manifest: Manifest): string {
  return JSON.stringify({ manifest, signature: signer.sign(canonicalJson(manifest)) }, null, 1) + '\n';
}

export interface ManifestFile {
  number: number;
  /** Relative to the backup directory. */
  file: string;
  sha256: string;
  manifest: Manifest | null;
  /** Why this manifest cannot be used on its own, or null. */
  problem: string | null;
}

/** Every manifest file in the directory, newest first, each parsed and its signature checked. */
export function listManifests(dir: string): ManifestFile[] {
  const mdir = join(dir, MANIFESTS_DIR);
  if (!existsSync(mdir)) return [];
  const out: ManifestFile[] = [];
  for (const name of readdirSync(mdir)) {
    const m = /^(\d{6,})\.json$/.exec(name);
    if (!m) continue;
    const file = join(MANIFESTS_DIR, name);
    const bytes = readFileSync(join(dir, file));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const number = Number(m[1]);
    let parsed: z.infer<typeof manifestFileSchema>;
    try {
      parsed = manifestFileSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch {
      out.push({ number, file, sha256, manifest: null, problem: 'is damaged: not a readable manifest' });
      continue;
    }
    let problem: string | null = null;
    let valid = false;
    try {
      valid = ledgerCrypto.verifySignature(
        parsed.manifest.publicKey,
        canonicalJson(parsed.manifest),
        parsed.signature,
      );
    } catch {
      valid = false;
    }
    if (!valid) problem = 'signature is not valid (the manifest was changed after it was signed)';
    else if (parsed.manifest.number !== number) problem = `says it is manifest ${parsed.manifest.number}`;
    out.push({ number, file, sha256, manifest: parsed.manifest, problem });
  }
  return out.sort((a, b) => b.number - a.number);
}

/** A chain-link problem of `m` against the manifests present, or null. */
export function linkProblem(m: ManifestFile, all: readonly ManifestFile[]): string | null {
  const prev = m.manifest?.previous;
  if (!m.manifest) return null;
  if (prev === null || prev === undefined) {
    return all.some((o) => o.number < m.number) ? 'names no previous manifest, but earlier ones exist' : null;
  }
  const p = all.find((o) => o.number === prev.number);
  if (!p) return `names previous manifest ${prev.number}, which is missing`;
  if (p.sha256 !== prev.sha256)
    return `names previous manifest ${prev.number} by a hash that does not match its file`;
  return null;
}
