import { z } from 'zod';
import { ledgerEventSchema, type Checkpoint, type LedgerEvent } from '@holdfast/core';

/**
 * The NDJSON interchange format for ledger events between nodes (export/import, and later sync):
 * one JSON object per line, `{"kind":"event", …envelope}` or `{"kind":"checkpoint", …checkpoint}`.
 */
export const checkpointLineSchema = z.strictObject({
  kind: z.literal('checkpoint'),
  tenant: z.string().min(1).max(128),
  node: z.string().min(1).max(128),
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex characters'),
  hlc: z.string().regex(/^\d{15}-\d{6}$/, 'must be a hybrid logical clock value'),
  signer: z.string().min(1).max(128),
  signature: z.string().regex(/^[A-Za-z0-9_-]{80,100}$/, 'must be a base64url Ed25519 signature'),
});

export const eventLineSchema = ledgerEventSchema.extend({ kind: z.literal('event') });

export type ParsedLine =
  | { lineNo: number; kind: 'event'; event: LedgerEvent }
  | { lineNo: number; kind: 'checkpoint'; checkpoint: Checkpoint };

export function eventLine(e: LedgerEvent): string {
  return JSON.stringify({ kind: 'event', ...e });
}

export function checkpointLine(c: Checkpoint): string {
  return JSON.stringify({ kind: 'checkpoint', ...c });
}

export interface NumberedLine {
  lineNo: number;
  text: string;
}

/** Splits NDJSON text into numbered, non-blank lines (line numbers count from 1, blank lines included). */
export function numberLines(text: string, firstLineNo = 1): NumberedLine[] {
  const out: NumberedLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() !== '') out.push({ lineNo: firstLineNo + i, text: line });
  });
  return out;
}
