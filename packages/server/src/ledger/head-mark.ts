import { closeSync, existsSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { canonicalJson, GENESIS_HASH, type LedgerCrypto, type NodeSigner } from '@holdfast/core';
import { z } from 'zod';

/**
 * The head mark: this node's own record, kept beside its key and outside the database, of how far
 * each of its own chains reaches. Whoever can write the database (but not the data directory) can
 * delete the newest events, append events with correct hashes, or re-hash a tail no checkpoint seals
 * yet; the mark is what such a store no longer matches. It is signed with the node key, so a mark
 * copied in from elsewhere or edited by hand does not pass either.
 *
 * It is written ahead of every commit that moves an own chain (`pending`: the head the commit will
 * make) and again after it (`committed`). So after a crash the store's head is either `committed`
 * (the commit did not happen) or `pending` (it did): anything else was done to the store from outside.
 *
 * The file holds two fixed-size slots written alternately, each a signed JSON document padded with
 * spaces: a write overwrites the older slot in place and is made durable with one fdatasync (no
 * rename, no directory sync), and a write torn by a power cut leaves the other slot whole. The
 * reader takes the valid slot with the higher counter.
 */
export const HEAD_MARK_FILE = 'chain-head.json';
const SLOT_BYTES = 32 * 1024;
const FORMAT = 'holdfast-chain-head/1';

export interface MarkedHead {
  seq: number;
  hash: string;
}

export interface HeadMarkEntry {
  /** The head a finished commit left. */
  committed: MarkedHead;
  /** The head a commit under way will leave, written before that commit. */
  pending?: MarkedHead;
}

const markedHeadSchema = z.strictObject({
  seq: z.number().int().nonnegative(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});
const slotSchema = z.strictObject({
  format: z.literal(FORMAT),
  node: z.string(),
  counter: z.number().int().nonnegative(),
  chains: z.record(
    z.string(),
    z.strictObject({ committed: markedHeadSchema, pending: markedHeadSchema.optional() }),
  ),
  signature: z.string(),
});
type Slot = z.infer<typeof slotSchema>;

/** A head mark that exists but cannot be trusted: neither slot is whole and signed by this node. */
export class HeadMarkUnreadable extends Error {}

function parseSlot(
  text: string,
  node: string,
  publicKey: string,
  crypto: LedgerCrypto,
): { slot: Slot | null; problem?: string } {
  const trimmed = text.trim();
  if (trimmed === '') return { slot: null, problem: 'empty' };
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return { slot: null, problem: 'not JSON (a torn write?)' };
  }
  const parsed = slotSchema.safeParse(json);
  if (!parsed.success) return { slot: null, problem: 'not a head mark' };
  const { signature, ...body } = parsed.data;
  if (body.node !== node) return { slot: null, problem: `written by node ${body.node}` };
  let valid = false;
  try {
    valid = crypto.verifySignature(publicKey, canonicalJson(body), signature);
  } catch {
    valid = false;
  }
  return valid ? { slot: parsed.data } : { slot: null, problem: 'signature is not valid for this node key' };
}

/** Reads and checks the mark; null when the data directory has none yet. */
export function readHeadMark(
  dataDir: string,
  signer: Pick<NodeSigner, 'node' | 'publicKey'>,
  crypto: LedgerCrypto,
): { counter: number; chains: Map<string, HeadMarkEntry> } | null {
  const path = join(dataDir, HEAD_MARK_FILE);
  if (!existsSync(path)) return null;
  const bytes = readFileSync(path);
  const problems: string[] = [];
  let best: Slot | null = null;
  for (let at = 0; at < bytes.length; at += SLOT_BYTES) {
    const { slot, problem } = parseSlot(
      bytes.subarray(at, at + SLOT_BYTES).toString('utf8'),
      signer.node,
      signer.publicKey,
      crypto,
    );
    if (slot && (!best || slot.counter > best.counter)) best = slot;
    if (problem) problems.push(`slot ${at / SLOT_BYTES + 1}: ${problem}`);
  }
  if (!best)
    throw new HeadMarkUnreadable(
      `${path} holds no whole head mark signed by this node (${problems.join('; ')})`,
    );
  return { counter: best.counter, chains: new Map(Object.entries(best.chains)) };
}

/**
 * The writer. One per open node; every write happens under the ledger's write lock, so writes never
 * overlap.
 */
export class HeadMark {
  private file: FileHandle | null = null;

  private constructor(
    readonly path: string,
    private readonly signer: NodeSigner,
    private counter: number,
    private readonly chains: Map<string, HeadMarkEntry>,
    /** Whether the file exists on disk yet (it is created at the first write). */
    private created: boolean,
  ) {}

  static open(dataDir: string, signer: NodeSigner, crypto: LedgerCrypto): HeadMark {
    const read = readHeadMark(dataDir, signer, crypto);
    return new HeadMark(
      join(dataDir, HEAD_MARK_FILE),
      signer,
      read?.counter ?? 0,
      read?.chains ?? new Map(),
      read !== null,
    );
  }

  /** Whether the node has a mark at all (a store from before marks, or a node that never wrote). */
  get exists(): boolean {
    return this.created;
  }

  entries(): ReadonlyMap<string, HeadMarkEntry> {
    return this.chains;
  }

  /**
   * Before a commit: these chains will reach these heads. `committed`: heads earlier commits left
   * that were not confirmed yet (the ledger folds their confirmation into this write while appends
   * keep coming); their pending heads are settled with them.
   */
  async writeAhead(
    heads: ReadonlyMap<string, MarkedHead>,
    committed: ReadonlyMap<string, MarkedHead> = new Map(),
  ): Promise<void> {
    for (const [tenant, head] of committed) this.chains.set(tenant, { committed: head });
    for (const [tenant, head] of heads) {
      const entry = this.chains.get(tenant);
      this.chains.set(tenant, {
        committed: entry?.committed ?? { seq: 0, hash: GENESIS_HASH },
        pending: head,
      });
    }
    await this.write();
  }

  /** After a commit (or at start, once the store has been checked): these chains are at these heads. */
  async confirm(heads: ReadonlyMap<string, MarkedHead>): Promise<void> {
    let changed = !this.created;
    for (const [tenant, head] of heads) {
      const entry = this.chains.get(tenant);
      if (entry && !entry.pending && entry.committed.seq === head.seq && entry.committed.hash === head.hash)
        continue;
      this.chains.set(tenant, { committed: head });
      changed = true;
    }
    if (changed) await this.write();
  }

  async close(): Promise<void> {
    const file = this.file;
    this.file = null;
    await file?.close();
  }

  private async write(): Promise<void> {
    this.counter++;
    const body = {
      format: FORMAT,
      node: this.signer.node,
      counter: this.counter,
      chains: Object.fromEntries([...this.chains].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    };
    const text = JSON.stringify({ ...body, signature: this.signer.sign(canonicalJson(body)) });
    const bytes = Buffer.byteLength(text);
    if (bytes >= SLOT_BYTES)
      throw new Error(
        `the head mark of ${this.chains.size} chains needs ${bytes} bytes, more than a slot holds (${SLOT_BYTES})`,
      );
    const slot = Buffer.alloc(SLOT_BYTES, ' ');
    slot.write(text, 0, 'utf8');
    slot.write('\n', SLOT_BYTES - 1, 'utf8');
    if (!this.file) {
      if (!this.created) {
        // Created once: a whole file of two slots, then the directory entry made durable.
        const fd = openSync(this.path, 'wx', 0o600);
        closeSync(fd);
      }
      this.file = await open(this.path, 'r+');
      if (!this.created) {
        await this.file.write(Buffer.alloc(SLOT_BYTES * 2, ' '), 0, SLOT_BYTES * 2, 0);
        await this.file.sync();
        syncDirectory(dirname(this.path));
        this.created = true;
      }
    }
    await this.file.write(slot, 0, SLOT_BYTES, (this.counter % 2) * SLOT_BYTES);
    await this.file.datasync();
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
