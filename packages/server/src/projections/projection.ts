import type { StoredEvent } from '@holdfast/core';
import type { StoreDialect, Tx } from '../store/store.ts';

/** An event as projections see it: the stored envelope plus its parsed payload and subject. */
export interface ProjectedEvent extends StoredEvent {
  payload: Record<string, unknown>;
  subject: string | null;
}

/**
 * A read model folded from the ledger. Projections are applied in the same transaction as the
 * append or import that produced their events, in ledger order (hlc, node, seq).
 *
 * Events with a subject may arrive out of ledger order from other nodes; the engine then calls
 * `resetSubject` and refolds that subject's events in order, so a projection's rows for one subject
 * must depend only on that subject's events. Events without a subject are folded in arrival order,
 * so what a projection derives from them must not depend on order (counts, sets).
 *
 * Raise `version` whenever `create` or `apply` changes: the node rebuilds the projection at start.
 */
export interface Projection {
  readonly name: string;
  readonly version: number;
  /** Tables this projection owns; dropped and re-created on rebuild. */
  readonly tables: readonly string[];
  /**
   * The event types `apply` acts on; it returns at once for any other (its first line says
   * `if (!folds(e.type)) return`), so a rebuild skips the rest without reading them. Absent: every type.
   */
  readonly folds?: (type: string) => boolean;
  create(trx: Tx, dialect: StoreDialect): Promise<void>;
  apply(trx: Tx, event: ProjectedEvent): Promise<void>;
  /**
   * Only for a projection whose rows each depend on their own event alone, and which nothing reads
   * while a commit of local appends is being written (no guard, no other projection): the engine
   * then hands it a commit's events together at the commit's end (`AppendedInCommit.finish`), one
   * call instead of one `apply` an event. It must store exactly what `apply` would for each.
   */
  applyBatch?(trx: Tx, events: readonly ProjectedEvent[]): Promise<void>;
  resetSubject(trx: Tx, tenant: string, subject: string): Promise<void>;
}

/**
 * A `folds` predicate: a pattern ending in '.' takes every type it begins (`'case.'`), any other
 * pattern one type exactly (`'node.registered'`).
 */
export function foldsTypes(...patterns: string[]): (type: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith('.')));
  const prefixes = patterns.filter((p) => p.endsWith('.'));
  return (type) => exact.has(type) || prefixes.some((p) => type.startsWith(p));
}

/**
 * One event to every projection that folds its type. The others' `apply` would return at once (the
 * `folds` contract, test/projections/folds.test.ts); not calling them spares a merge or a rebuild of
 * millions of events a few microseconds per event and projection.
 */
export async function applyToFolding(
  projections: readonly Projection[],
  trx: Tx,
  e: ProjectedEvent,
): Promise<void> {
  for (const p of projections) if (!p.folds || p.folds(e.type)) await p.apply(trx, e);
}

export function toProjected(e: StoredEvent, subject: string | null): ProjectedEvent {
  return { ...e, payload: JSON.parse(e.payloadJson) as Record<string, unknown>, subject };
}
