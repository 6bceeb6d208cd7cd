import type { LedgerCrypto, NodeSigner } from '../ports.ts';
import { canonicalJson } from './canonical.ts';
import { canonicalBody, GENESIS_HASH, HLC_PATTERN, type StoredEvent } from './body.ts';

/** Fills in `hash` for an event whose other fields are final. */
export function sealEvent(crypto: LedgerCrypto, e: Omit<StoredEvent, 'hash'>): StoredEvent {
  return { ...e, hash: crypto.sha256Hex(canonicalBody(e)) };
}

/**
 * A signed statement by `signer` that node `node`'s chain had `hash` at `seq`. The chain's own node
 * signs its checkpoints; other nodes counter-sign (witness) the checkpoints they receive, so a history
 * rewritten later cannot match what others saw.
 */
export interface Checkpoint {
  tenant: string;
  node: string;
  seq: number;
  hash: string;
  hlc: string;
  signer: string;
  signature: string;
}

export function checkpointMessage(c: Pick<Checkpoint, 'tenant' | 'node' | 'seq' | 'hash' | 'hlc'>): string {
  return canonicalJson({ hash: c.hash, hlc: c.hlc, node: c.node, seq: c.seq, tenant: c.tenant });
}

export function signCheckpoint(
  signer: NodeSigner,
  head: Pick<StoredEvent, 'tenant' | 'node' | 'seq' | 'hash' | 'hlc'>,
): Checkpoint {
  const fields = { tenant: head.tenant, node: head.node, seq: head.seq, hash: head.hash, hlc: head.hlc };
  return { ...fields, signer: signer.node, signature: signer.sign(checkpointMessage(fields)) };
}

/** What is wrong with one checkpoint on its own (signature, signer), or null. */
export function checkpointSignatureProblem(
  crypto: LedgerCrypto,
  publicKeys: ReadonlyMap<string, string>,
  c: Checkpoint,
): string | null {
  const key = publicKeys.get(c.signer);
  if (!key) return `checkpoint signed by ${c.signer}, which is not a registered node of tenant ${c.tenant}`;
  let valid = false;
  try {
    valid = crypto.verifySignature(key, checkpointMessage(c), c.signature);
  } catch {
    valid = false;
  }
  return valid ? null : `checkpoint signature by ${c.signer} is not valid`;
}

export interface ChainFault {
  tenant: string;
  node: string;
  /** The first position in the chain where the stored history is known to be wrong. */
  seq: number;
  /**
   * The first seq that may be wrong. Equal to `seq` unless the fault is a checkpoint that no longer
   * matches a chain whose links still hold: the events were re-hashed without the node's key, and
   * the edit lies somewhere after the previous matching checkpoint, in `fromSeq`..`seq`.
   */
  fromSeq: number;
  problem: string;
}

export interface ChainReport {
  tenant: string;
  node: string;
  eventsChecked: number;
  checkpointsChecked: number;
  lastSeq: number;
  /** Highest seq covered by a valid checkpoint signed by the chain's own node. */
  sealedSeq: number;
  fault: ChainFault | null;
}

export interface ChainVerifierOptions {
  /**
   * The chain's node's key as the node itself holds it (its identity file), when the node checks its
   * own chain: a registration of this node in its own chain must name exactly this key. The key in
   * the store's registry is whatever the store says, and whoever can write the store can change it.
   */
  selfKey?: string;
  /**
   * Start after a position already trusted (the node's head mark): the first event pushed must be
   * the next seq and link to this hash. `lastMatchedCheckpointSeq` (default `seq`) is the last seq
   * before it whose checkpoints all matched, when the position is another range's end rather than
   * a mark: a re-hashed range is then named from there, exactly as one pass over the chain would.
   */
  resumeAfter?: { seq: number; hash: string; hlc: string; lastMatchedCheckpointSeq?: number };
}

/** An event as verify reads it when the store builds its canonical body: see `pushHashedBody`. */
export interface HashedBodyEvent {
  seq: number;
  hlc: string;
  prevHash: string;
  hash: string;
  /** The canonical body as the store built it from the event's columns, or null if it would not. */
  body: string | null;
  registeredPayload: string | null;
}

/**
 * Streams one node's chain, in seq order as read from a store, and finds the first bad event:
 * a gap, a duplicate, a changed byte (hash mismatch), a broken link, a clock going backwards, an event
 * from another chain, or a checkpoint that does not match or whose signature fails.
 *
 * Only the first fault is kept: everything after a fault is suspect and would only add noise.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private prevHlc = '';
  private eventsChecked = 0;
  private checkpointsChecked = 0;
  private sealedSeq = 0;
  /** The last seq whose every checkpoint matched: history up to here is vouched for by signatures. */
  private lastMatchedCheckpointSeq = 0;
  private fault: ChainFault | null = null;
  private readonly checkpointsBySeq = new Map<number, Checkpoint[]>();
  private readonly selfKey: string | undefined;

  constructor(
    private readonly crypto: LedgerCrypto,
    readonly tenant: string,
    readonly node: string,
    private readonly publicKeys: ReadonlyMap<string, string>,
    checkpoints: readonly Checkpoint[],
    options: ChainVerifierOptions = {},
  ) {
    this.selfKey = options.selfKey;
    if (options.resumeAfter) {
      this.expectedSeq = options.resumeAfter.seq + 1;
      this.prevHash = options.resumeAfter.hash;
      this.prevHlc = options.resumeAfter.hlc;
      this.lastMatchedCheckpointSeq = options.resumeAfter.lastMatchedCheckpointSeq ?? options.resumeAfter.seq;
    }
    for (const c of checkpoints) {
      const list = this.checkpointsBySeq.get(c.seq) ?? [];
      list.push(c);
      this.checkpointsBySeq.set(c.seq, list);
    }
  }

  /** Returns false once a fault has been found (the caller may stop reading). */
  push(e: StoredEvent): boolean {
    if (this.fault) return false;
    if (!this.inSequence(e.seq)) return false;
    if (e.tenant !== this.tenant || e.node !== this.node) {
      return this.fail(e.seq, `event belongs to tenant ${e.tenant} node ${e.node}, not to this chain`);
    }
    const recomputed = this.crypto.sha256Hex(canonicalBody(e));
    if (recomputed !== e.hash) {
      return this.fail(e.seq, 'content does not match its hash (the event was changed after it was written)');
    }
    return this.afterContent(
      e.seq,
      e.hlc,
      e.prevHash,
      e.hash,
      e.type === 'node.registered' ? e.payloadJson : null,
    );
  }

  /**
   * An event of this chain whose canonical body the store built itself from the event's columns
   * (verify's usual path: one string per row instead of nine columns, docs/ARCHITECTURE.md, Verify).
   * Returns 'rebuild' when `body` is null (the store would not build it: a column of the wrong type)
   * or does not hash to `hash`, having changed nothing: the caller then pushes the stored event
   * itself, whose body this verifier builds, and that decides. A body that hashes to the event's hash
   * vouches for every column it was built from, provided the store's encoding is injective (each
   * string a JSON string literal, each number its decimal digits), which verify's SQL ensures.
   *
   * `registeredPayload` is the payload of a `node.registered` event (null for any other type).
   */
  pushHashedBody(e: HashedBodyEvent): boolean | 'rebuild' {
    if (this.fault) return false;
    if (e.body === null || this.crypto.sha256Hex(e.body) !== e.hash) return 'rebuild';
    if (!this.inSequence(e.seq)) return false;
    return this.afterContent(e.seq, e.hlc, e.prevHash, e.hash, e.registeredPayload);
  }

  /** Checks that `seq` is the next one expected (recording the fault when it is not). */
  private inSequence(seq: number): boolean {
    if (seq !== this.expectedSeq) {
      if (seq > this.expectedSeq) {
        return this.fail(
          this.expectedSeq,
          `event missing: seq ${this.expectedSeq} is absent (the next present is ${seq})`,
        );
      }
      return this.fail(seq, `seq ${seq} appears more than once or out of order`);
    }
    return true;
  }

  /** The checks after an event's content matched its hash: link, clock, registration, checkpoints. */
  private afterContent(
    seq: number,
    hlc: string,
    prevHash: string,
    hash: string,
    registeredPayload: string | null,
  ): boolean {
    if (prevHash !== this.prevHash) {
      return this.fail(
        seq,
        `prevHash does not match the hash of seq ${seq - 1} (the chain was broken or spliced)`,
      );
    }
    // A clock that is not an HLC value at all is a fault at this event like any other (the hash
    // check above catches a changed byte unless the event was re-hashed too). Not always a string: a
    // store whose table was rebuilt without column types hands back a number as written.
    if (!HLC_PATTERN.test(hlc)) {
      return this.fail(seq, `hybrid clock ${JSON.stringify(String(hlc).slice(0, 40))} is not an HLC value`);
    }
    if (hlc <= this.prevHlc) {
      return this.fail(seq, `hybrid clock ${hlc} is not after the previous event's ${this.prevHlc}`);
    }
    if (this.selfKey !== undefined && registeredPayload !== null) {
      const registered = registeredKey(registeredPayload);
      if (registered && registered.node === this.node && registered.publicKey !== this.selfKey) {
        return this.fail(
          seq,
          `registers node ${this.node} with a key that is not the one in its identity file (node.json): the chain was re-signed with another key`,
        );
      }
    }
    const checkpoints = this.checkpointsBySeq.get(seq);
    if (checkpoints) {
      for (const c of checkpoints) {
        this.checkpointsChecked++;
        if (c.hash !== hash || c.hlc !== hlc) {
          if (checkpointSignatureProblem(this.crypto, this.publicKeys, c) !== null) {
            return this.fail(
              seq,
              `checkpoint by ${c.signer} does not match the event at this seq (and its signature fails)`,
            );
          }
          // An authentic checkpoint, and the links up to here held: every event since the last
          // matching checkpoint was re-hashed to fit, so the edit is somewhere in that range.
          const fromSeq = this.lastMatchedCheckpointSeq + 1;
          return this.fail(
            seq,
            `checkpoint by ${c.signer} does not match the event at this seq: the chain was rewritten and re-hashed somewhere in seq ${fromSeq}-${seq} (after the previous matching checkpoint)`,
            fromSeq,
          );
        }
        const problem = checkpointSignatureProblem(this.crypto, this.publicKeys, c);
        if (problem) return this.fail(seq, problem);
        if (c.signer === this.node) this.sealedSeq = seq;
      }
      this.lastMatchedCheckpointSeq = seq;
    }
    this.eventsChecked++;
    this.expectedSeq = seq + 1;
    this.prevHash = hash;
    this.prevHlc = hlc;
    return true;
  }

  finish(): ChainReport {
    if (!this.fault) {
      const lastSeq = this.expectedSeq - 1;
      const beyond = [...this.checkpointsBySeq.keys()].filter((s) => s > lastSeq).sort((a, b) => a - b);
      const first = beyond[0];
      if (first !== undefined) {
        this.fail(
          first,
          `a checkpoint covers seq ${first} but the chain ends at seq ${lastSeq} (events were removed)`,
        );
      }
    }
    return {
      tenant: this.tenant,
      node: this.node,
      eventsChecked: this.eventsChecked,
      checkpointsChecked: this.checkpointsChecked,
      lastSeq: this.expectedSeq - 1,
      sealedSeq: this.sealedSeq,
      fault: this.fault,
    };
  }

  private fail(seq: number, problem: string, fromSeq: number = seq): false {
    this.fault = { tenant: this.tenant, node: this.node, seq, fromSeq, problem };
    return false;
  }
}

function registeredKey(payloadJson: string): { node: string; publicKey: string } | null {
  try {
    const p = JSON.parse(payloadJson) as { node?: unknown; publicKey?: unknown };
    return typeof p.node === 'string' && typeof p.publicKey === 'string'
      ? { node: p.node, publicKey: p.publicKey }
      : null;
  } catch {
    return null;
  }
}
