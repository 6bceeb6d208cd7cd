import {
  canonicalBody,
  checkpointSignatureProblem,
  GENESIS_HASH,
  type Checkpoint,
  type StoredEvent,
} from '@holdfast/core';
import { ledgerCrypto } from '../node/crypto.ts';
import type { ChainPosition } from './format.ts';

/** The first bad event found, named by chain and seq. */
export class ChainFaultError extends Error {
  constructor(
    readonly tenant: string,
    readonly node: string,
    readonly seq: number,
    readonly problem: string,
    /** Where it was read from (a store, or a backup chunk file). */
    readonly where: string,
  ) {
    super(`${where}: tenant ${tenant} node ${node} seq ${seq}: ${problem}`);
  }
}

/**
 * A copy of `s` that keeps no reference to the string it was cut from. V8 makes a substring of 13
 * characters or more point into its parent, so a hash split out of a decoded chunk keeps that
 * chunk's whole text alive: remembering one checkpointed head per chunk kept every chunk of a
 * restore in memory (a 10-million-event restore's checking worker ran out of heap at 6 million).
 */
export function detached(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/**
 * Checks one chain as it streams past, resumable from a known position (an incremental backup
 * starts after the last backed-up event): contiguous seqs, each hash recomputed from the content,
 * each prevHash linking to the previous hash, hybrid clocks strictly increasing. It remembers the
 * hash and clock at the seqs that checkpoints cover, so the checkpoints can be checked afterwards,
 * when every node's registered key is known.
 */
export class StreamingChainCheck {
  private expectedSeq: number;
  private prevHash: string;
  private prevHlc: string;
  events = 0;
  readonly heads = new Map<number, { hash: string; hlc: string }>();

  constructor(
    readonly tenant: string,
    readonly node: string,
    from: ChainPosition | undefined,
    /** Seqs whose hash and clock must be remembered (checkpointed seqs). */
    private readonly watch: ReadonlySet<number>,
  ) {
    this.expectedSeq = (from?.seq ?? 0) + 1;
    this.prevHash = from && from.seq > 0 ? from.hash : GENESIS_HASH;
    this.prevHlc = from && from.seq > 0 ? from.hlc : '';
  }

  get lastSeq(): number {
    return this.expectedSeq - 1;
  }

  get position(): ChainPosition {
    return { seq: this.expectedSeq - 1, hash: this.prevHash, hlc: this.prevHlc };
  }

  /** Throws ChainFaultError at the first bad event. */
  push(e: StoredEvent, where: string): void {
    const fail = (seq: number, problem: string): never => {
      throw new ChainFaultError(this.tenant, this.node, seq, problem, where);
    };
    if (e.seq !== this.expectedSeq) {
      if (e.seq > this.expectedSeq)
        fail(
          this.expectedSeq,
          `event missing: seq ${this.expectedSeq} is absent (the next present is ${e.seq})`,
        );
      fail(e.seq, `seq ${e.seq} appears more than once or out of order`);
    }
    if (e.tenant !== this.tenant || e.node !== this.node)
      fail(e.seq, `event belongs to tenant ${e.tenant} node ${e.node}, not to this chain`);
    if (ledgerCrypto.sha256Hex(canonicalBody(e)) !== e.hash)
      fail(e.seq, 'content does not match its hash (the event was changed after it was written)');
    if (e.prevHash !== this.prevHash)
      fail(e.seq, `prevHash does not match the hash of seq ${e.seq - 1} (the chain was broken or spliced)`);
    if (e.hlc <= this.prevHlc)
      fail(e.seq, `hybrid clock ${e.hlc} is not after the previous event's ${this.prevHlc}`);
    if (this.watch.has(e.seq)) this.heads.set(e.seq, { hash: detached(e.hash), hlc: detached(e.hlc) });
    this.events++;
    this.expectedSeq = e.seq + 1;
    this.prevHash = e.hash;
    this.prevHlc = e.hlc;
  }

  /** The chain must reach `toSeq` (events deleted at its end show here). */
  expectEnd(toSeq: number, where: string): void {
    if (this.lastSeq < toSeq)
      throw new ChainFaultError(
        this.tenant,
        this.node,
        this.lastSeq + 1,
        `event missing: seq ${this.lastSeq + 1} is absent (the chain should reach seq ${toSeq})`,
        where,
      );
  }
}

export interface CheckpointTally {
  own: number;
  witnessed: number;
}

/**
 * Checks checkpoints against the events they cover and against the tenant's registered keys:
 * the covered event must exist and have the signed hash and clock, and the signature must be valid.
 * A checkpoint signed by another node (a witness) that does not match catches a history rewritten by
 * the chain's own node, even one re-hashed and re-signed with its own key.
 */
export function checkCheckpoints(
  checkpoints: readonly Checkpoint[],
  eventAt: (c: Checkpoint) => { hash: string; hlc: string } | undefined,
  keys: ReadonlyMap<string, string>,
  where: string,
  tally: CheckpointTally,
): void {
  for (const c of checkpoints) {
    const e = eventAt(c);
    if (!e)
      throw new ChainFaultError(
        c.tenant,
        c.node,
        c.seq,
        `a checkpoint by ${c.signer} covers seq ${c.seq}, but that event is absent (events were removed)`,
        where,
      );
    if (e.hash !== c.hash || e.hlc !== c.hlc)
      throw new ChainFaultError(
        c.tenant,
        c.node,
        c.seq,
        `checkpoint by ${c.signer} does not match the event at this seq${c.signer !== c.node ? ' (a witness saw a different history: it was rewritten)' : ''}`,
        where,
      );
    const problem = checkpointSignatureProblem(ledgerCrypto, keys, c);
    if (problem) throw new ChainFaultError(c.tenant, c.node, c.seq, problem, where);
    if (c.signer === c.node) tally.own++;
    else tally.witnessed++;
  }
}
