import { z } from 'zod';
import { defineEventType, EventRegistry } from './registry.ts';

/**
 * `node.registered`: a node of the tenant vouches for another node's Ed25519 public key (or, for the
 * first node of a tenant, for its own). Imports accept events only from nodes registered this way.
 */
export const nodeRegistered = defineEventType({
  type: 'node.registered',
  v: 1,
  schema: z.strictObject({
    node: z.string().min(1).max(128),
    /** Ed25519 public key, SPKI DER, base64url. */
    publicKey: z.string().regex(/^[A-Za-z0-9_-]{40,120}$/, 'must be a base64url Ed25519 public key'),
    role: z.enum(['hub', 'site', 'single']),
  }),
  subjectOf: (p) => `node:${p.node}`,
  description: 'A node public key registered for the tenant',
});

export const SYSTEM_EVENT_TYPES = [nodeRegistered];

/** A registry holding the system event types; modules add their own. */
export function createEventRegistry(): EventRegistry {
  return new EventRegistry().register(...SYSTEM_EVENT_TYPES);
}

/** Ledger order used by every projection: (hlc, node, seq). */
export function compareLedgerOrder(
  a: { hlc: string; node: string; seq: number },
  b: { hlc: string; node: string; seq: number },
): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return a.seq - b.seq;
}
