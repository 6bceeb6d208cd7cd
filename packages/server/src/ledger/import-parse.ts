import {
  ImportRefusedError,
  sealEvent,
  toStored,
  ValidationError,
  zodIssuesToFieldIssues,
  type Checkpoint,
  type EventRegistry,
  type FieldIssue,
  type LedgerCrypto,
  type StoredEvent,
} from '@holdfast/core';
import type { z } from 'zod';
import type { ProjectedEvent } from '../projections/projection.ts';
import { checkpointLineSchema, eventLineSchema, type NumberedLine, type ParsedLine } from './ndjson.ts';

/**
 * Import's first step, each line on its own (no store): JSON, envelope schema, tenant, event type and
 * payload schema, RFC 8785 canonical payload and SHA-256 hash. Pure, so a worker thread can run it
 * for the import (import-parallel.ts) while the calling thread writes the batch before.
 */

/** Stop collecting after this many problems: the first ones say what is wrong. */
export const MAX_ISSUES = 50;

export interface ImportedEvent {
  lineNo: number;
  event: ProjectedEvent;
}

export type LineCheckpoint = Checkpoint & { lineNo: number };

export interface ParsedBatch {
  events: ImportedEvent[];
  checkpoints: LineCheckpoint[];
}

/** What checking a line needs: the event types this node reads, and the hash function. */
export interface LineChecker {
  registry: EventRegistry;
  crypto: LedgerCrypto;
}

export function refuse(issues: FieldIssue[]): never {
  throw new ImportRefusedError(issues.slice(0, MAX_ISSUES));
}

/** Step 1: every line on its own: JSON, envelope schema, tenant, event type and payload schema, hash. */
export function parseLines(
  checker: LineChecker,
  tenant: string,
  lines: readonly NumberedLine[],
): ParsedBatch {
  const issues: FieldIssue[] = [];
  const events: ImportedEvent[] = [];
  const checkpoints: (Checkpoint & { lineNo: number })[] = [];
  for (const { lineNo, text } of lines) {
    if (issues.length >= MAX_ISSUES) break;
    const at = `line ${lineNo}`;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      issues.push({ path: at, message: 'not valid JSON' });
      continue;
    }
    const kind = typeof value === 'object' && value !== null ? (value as { kind?: unknown }).kind : undefined;
    let line: ParsedLine;
    if (kind === 'event') {
      const r = eventLineSchema.safeParse(value);
      if (!r.success) {
        issues.push(...prefixed(at, r.error));
        continue;
      }
      const { kind: _kind, ...event } = r.data;
      line = { lineNo, kind: 'event', event };
    } else if (kind === 'checkpoint') {
      const r = checkpointLineSchema.safeParse(value);
      if (!r.success) {
        issues.push(...prefixed(at, r.error));
        continue;
      }
      const { kind: _kind, ...checkpoint } = r.data;
      line = { lineNo, kind: 'checkpoint', checkpoint };
    } else {
      issues.push({ path: `${at}: kind`, message: 'must be "event" or "checkpoint"' });
      continue;
    }
    const lineTenant = line.kind === 'event' ? line.event.tenant : line.checkpoint.tenant;
    if (lineTenant !== tenant) {
      issues.push({
        path: `${at}: tenant`,
        message: `belongs to tenant ${lineTenant}, but this import is for tenant ${tenant}`,
      });
      continue;
    }
    if (line.kind === 'checkpoint') {
      checkpoints.push({ ...line.checkpoint, lineNo });
      continue;
    }
    const e = line.event;
    if (!checker.registry.has(e.type, e.v)) {
      issues.push({
        path: `${at}: type`,
        message: `event type ${e.type} version ${e.v} is not registered on this node`,
      });
      continue;
    }
    let subject: string | null;
    try {
      const payload = checker.registry.parsePayload(e.type, e.v, e.payload);
      subject = checker.registry.subjectOf(e.type, e.v, payload);
    } catch (error) {
      if (error instanceof ValidationError) {
        issues.push(...error.issues.map((i) => ({ path: `${at}: ${i.path}`, message: i.message })));
        continue;
      }
      throw error;
    }
    // The hash covers the payload exactly as the origin wrote it, so it is recomputed from that.
    let stored: StoredEvent;
    try {
      stored = toStored(e);
    } catch {
      issues.push({
        path: `${at}: payload`,
        message: 'cannot be canonicalised (lone surrogate or non-finite number)',
      });
      continue;
    }
    const { hash: claimedHash, ...unsealed } = stored;
    if (sealEvent(checker.crypto, unsealed).hash !== claimedHash) {
      issues.push({ path: `${at}: hash`, message: 'does not match the event content' });
      continue;
    }
    events.push({ lineNo, event: { ...stored, payload: e.payload, subject } });
  }
  if (issues.length > 0) refuse(issues);
  return { events, checkpoints };
}

function prefixed(at: string, error: z.ZodError): FieldIssue[] {
  return zodIssuesToFieldIssues(error, '').map((i) => ({
    path: i.path ? `${at}: ${i.path}` : at,
    message: i.message,
  }));
}

/**
 * A parsed batch as a worker thread sends it: each event's stored fields as strings and numbers
 * (cheap to copy between threads); the payload object is parsed again from its canonical JSON
 * here, which is a fraction of checking the line.
 */
export interface WireBatch {
  events: WireEvent[];
  checkpoints: LineCheckpoint[];
}

type WireEvent = [
  lineNo: number,
  id: string,
  node: string,
  seq: number,
  hlc: string,
  type: string,
  v: number,
  actor: string,
  payloadJson: string,
  prevHash: string,
  hash: string,
  subject: string | null,
];

export function toWire(batch: ParsedBatch): WireBatch {
  return {
    events: batch.events.map(({ lineNo, event: e }) => [
      lineNo,
      e.id,
      e.node,
      e.seq,
      e.hlc,
      e.type,
      e.v,
      e.actor,
      e.payloadJson,
      e.prevHash,
      e.hash,
      e.subject,
    ]),
    checkpoints: batch.checkpoints,
  };
}

export function fromWire(tenant: string, wire: WireBatch): ParsedBatch {
  return {
    events: wire.events.map(
      ([lineNo, id, node, seq, hlc, type, v, actor, payloadJson, prevHash, hash, subject]) => ({
        lineNo,
        event: {
          id,
          tenant,
          node,
          seq,
          hlc,
          type,
          v,
          actor,
          payloadJson,
          prevHash,
          hash,
          // Projections read it; parsed from the canonical JSON, as a rebuild does (toProjected).
          payload: JSON.parse(payloadJson) as Record<string, unknown>,
          subject,
        },
      }),
    ),
    checkpoints: wire.checkpoints,
  };
}
