/**
 * Ports: what the pure core needs from the outside world, passed in rather than reached for.
 * Tests pass fixed clocks and seeded id generators; the server passes node:crypto and the wall clock.
 */

/** Milliseconds since the Unix epoch, UTC. */
export interface Clock {
  nowMs(): number;
}

export interface IdGenerator {
  /** A new UUIDv7 (time-ordered) identifier. */
  next(): string;
}

/** The hashing and signature primitives the ledger is built on. */
export interface LedgerCrypto {
  /** SHA-256 of the UTF-8 bytes of `text`, as 64 lower-case hex characters. */
  sha256Hex(text: string): string;
  /** Ed25519 verification of `signature` (base64url) over the UTF-8 bytes of `message`. */
  verifySignature(publicKey: string, message: string, signature: string): boolean;
}

/** Holds a node's private key; only the node itself can sign. */
export interface NodeSigner {
  readonly node: string;
  readonly publicKey: string;
  sign(message: string): string;
}

/** A clock that always says the same instant until told otherwise: for tests and simulations. */
export class FixedClock implements Clock {
  constructor(private ms: number) {}
  nowMs(): number {
    return this.ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
