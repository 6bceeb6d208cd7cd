import { z } from 'zod';
import { canonicalJson } from './canonical.ts';
import { HLC_PATTERN, type StoredEvent } from './body.ts';

// The stored form and its canonical body live in body.ts, which needs no schema library (verify's
// worker threads load it); they are part of this module's interface.
export { canonicalBody, GENESIS_HASH, HLC_PATTERN, type StoredEvent } from './body.ts';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex characters');
const identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - only');

export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

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

export function toStored(e: LedgerEvent): StoredEvent {
  const { payload, ...rest } = e;
  return { ...rest, payloadJson: canonicalJson(payload) };
}

export function fromStored(e: StoredEvent): LedgerEvent {
  const { payloadJson, ...rest } = e;
  return { ...rest, payload: JSON.parse(payloadJson) as Record<string, unknown> };
}
