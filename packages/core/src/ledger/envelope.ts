import { z } from 'zod';
import { canonicalJson } from './canonical.ts';

/** prevHash of the first event of every chain. */
export const GENESIS_HASH = '0'.repeat(64);

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex characters');
const identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - only');

export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const HLC_PATTERN = /^\d{15}-\d{6}$/;

/**
 * The ledger envelope (docs/ARCHITECTURE.md). Every field but `hash` is covered by `hash`;
 * `hash` is SHA-256 over the RFC 8785 canonical JSON of the envelope without `hash`.
 */
export const ledgerEventSchema = z.strictObject({
  id: z.string().regex(UUID_V7, 'must be a UUIDv7'),
  tenant: identifier,
  node: identifier,
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  hlc: z.string().regex(HLC_PATTERN, 'must be a hybrid logical clock value like 000001764000000000-000000'),
  type: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'dotted lower-case name like case.opened'),
  v: z.number().int().min(1).max(1000),
  actor: z.string().min(1).max(200),
  payload: z.record(z.string(), z.unknown()),
  prevHash: hex64,
  hash: hex64,
});

export type LedgerEvent = z.infer<typeof ledgerEventSchema>;

/** The envelope fields that the hash covers. */
export type UnhashedEvent = Omit<LedgerEvent, 'hash'>;

/**
 * An event as a store keeps it: the payload is held as its canonical JSON text, so hashing a stored
 * event never needs to parse and re-serialise the payload.
 */
export interface StoredEvent {
  id: string;
  tenant: string;
  node: string;
  seq: number;
  hlc: string;
  type: string;
  v: number;
  actor: string;
  payloadJson: string;
  prevHash: string;
  hash: string;
}

/**
 * The canonical JSON of an envelope without its hash, built by concatenation from a stored event.
 * Keys appear in RFC 8785 order (UTF-16 code-unit order: actor, hlc, id, node, payload, prevHash,
 * seq, tenant, type, v); strings are serialised exactly as JSON.stringify does, which is what RFC 8785
 * prescribes. A property test checks this equals canonicalJson() of the same envelope.
 */
export function canonicalBody(e: Omit<StoredEvent, 'hash'>): string {
  return (
    '{"actor":' +
    jsonString(e.actor) +
    ',"hlc":' +
    jsonString(e.hlc) +
    ',"id":' +
    jsonString(e.id) +
    ',"node":' +
    jsonString(e.node) +
    ',"payload":' +
    e.payloadJson +
    ',"prevHash":' +
    jsonString(e.prevHash) +
    ',"seq":' +
    String(e.seq) +
    ',"tenant":' +
    jsonString(e.tenant) +
    ',"type":' +
    jsonString(e.type) +
    ',"v":' +
    String(e.v) +
    '}'
  );
}

/** Characters JSON.stringify escapes in a string: quote, backslash, controls, lone surrogate halves. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON.stringify of a string, without its cost for the usual case (ids, hashes, clocks, type names:
 * nothing to escape). Equal output by construction; the envelope property test checks it.
 */
function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

export function toStored(e: LedgerEvent): StoredEvent {
  const { payload, ...rest } = e;
  return { ...rest, payloadJson: canonicalJson(payload) };
}

export function fromStored(e: StoredEvent): LedgerEvent {
  const { payloadJson, ...rest } = e;
  return { ...rest, payload: JSON.parse(payloadJson) as Record<string, unknown> };
}
