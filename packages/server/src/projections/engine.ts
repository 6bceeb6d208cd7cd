import { compareLedgerOrder, type StoredEvent } from '@holdfast/core';
import { sql, type Selectable } from 'kysely';
import type { LedgerEventsTable } from '../store/schema.ts';
import type { Store, Tx } from '../store/store.ts';
import { rowToStored } from '../ledger/rows.ts';
import { applyToFolding, toProjected, type ProjectedEvent, type Projection } from './projection.ts';

export type ProgressFn = (done: number, total: number) => void;

const REBUILD_PAGE = 5000;

/**
 * Keeps projections in step with the ledger: in the same transaction as each append or import, and
 * from scratch on `rebuild` or when a projection's version changed.
 */
export class ProjectionEngine {
  constructor(
    private readonly store: Store,
    readonly projections: readonly Projection[],
    private readonly now: () => string,
    /**
     * The subject an event is about, from its type and payload (the registry's `subjectOf`). The
     * stored `subject` column is outside the hash: refolds and rebuilds derive it instead of trusting
     * the column, so an edited column cannot steer an event into another subject's rows.
     */
    private readonly subjectOf: ((type: string, v: number, payload: unknown) => string | null) | null = null,
  ) {
    const names = new Set<string>();
    for (const p of projections) {
      if (names.has(p.name)) throw new Error(`projection ${p.name} is registered twice`);
      names.add(p.name);
    }
  }

  /** Creates missing projections and rebuilds those whose version changed. Returns the rebuilt names. */
  async ensureUpToDate(onProgress?: ProgressFn): Promise<string[]> {
    const state = new Map(
      (await this.store.db.selectFrom('projection_state').select(['name', 'version']).execute()).map((r) => [
        r.name,
        Number(r.version),
      ]),
    );
    const stale = this.projections.filter((p) => state.get(p.name) !== p.version);
    if (stale.length > 0) await this.rebuild(stale, onProgress);
    return stale.map((p) => p.name);
  }

  /**
   * The projections' side of one commit of local appends, whose events are always newer than
   * anything already applied on this node, so applied in order as they are inserted.
   */
  appending(trx: Tx): AppendedInCommit {
    return new AppendedInCommit(this.projections, trx);
  }

  /**
   * Events imported from other nodes, already inserted into the ledger in `trx`. A subject whose
   * stored events include one later in ledger order than an imported event is refolded from the
   * ledger in order; the rest are applied in ledger order.
   */
  async applyImported(
    trx: Tx,
    tenant: string,
    events: readonly ProjectedEvent[],
    latestBefore: ReadonlyMap<string, { hlc: string; node: string; seq: number }>,
  ): Promise<void> {
    const sorted = [...events].sort(compareLedgerOrder);
    const refold = new Set<string>();
    for (const e of sorted) {
      if (e.subject === null) continue;
      const latest = latestBefore.get(e.subject);
      if (latest && compareLedgerOrder(e, latest) < 0) refold.add(e.subject);
    }
    for (const e of sorted) {
      if (e.subject !== null && refold.has(e.subject)) continue;
      await applyToFolding(this.projections, trx, e);
    }
    for (const subject of refold) await this.refoldSubject(trx, tenant, subject);
  }

  /** The latest stored event (in ledger order) of each subject, read before an import inserts. */
  async latestPerSubject(
    trx: Tx,
    tenant: string,
    subjects: Iterable<string>,
  ): Promise<Map<string, { hlc: string; node: string; seq: number }>> {
    const result = new Map<string, { hlc: string; node: string; seq: number }>();
    for (const subject of subjects) {
      const row = await trx
        .selectFrom('ledger_events')
        .select(['hlc', 'node', 'seq'])
        .where('tenant', '=', tenant)
        .where('subject', '=', subject)
        .orderBy('hlc', 'desc')
        .orderBy('node', 'desc')
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (row) result.set(subject, { hlc: row.hlc, node: row.node, seq: Number(row.seq) });
    }
    return result;
  }

  private async refoldSubject(trx: Tx, tenant: string, subject: string): Promise<void> {
    for (const p of this.projections) await p.resetSubject(trx, tenant, subject);
    const rows = await trx
      .selectFrom('ledger_events')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('subject', '=', subject)
      .orderBy('hlc')
      .orderBy('node')
      .orderBy('seq')
      .execute();
    for (const row of rows) {
      const e = this.toProjectedRow(row);
      // Found through the (unhashed) subject column but about another subject: not this fold's.
      if (e.subject !== subject) continue;
      await applyToFolding(this.projections, trx, e);
    }
  }

  private toProjectedRow(row: Selectable<LedgerEventsTable>): ProjectedEvent {
    return this.projectStored(rowToStored(row), row.subject);
  }

  /**
   * A stored event as projections see it: its payload parsed and its subject derived from its type
   * and payload (the stored column only where the engine has no registry).
   */
  projectStored(stored: StoredEvent, storedSubject: string | null): ProjectedEvent {
    if (!this.subjectOf) return toProjected(stored, storedSubject);
    const payload = JSON.parse(stored.payloadJson) as Record<string, unknown>;
    return { ...stored, payload, subject: this.subjectOf(stored.type, stored.v, payload) };
  }

  /** Drops and re-creates the given projections (all by default) and folds the whole ledger into them. */
  async rebuild(which: readonly Projection[] = this.projections, onProgress?: ProgressFn): Promise<number> {
    const db = this.store.db;
    await this.store.transaction(async (trx) => {
      for (const p of which) {
        for (const table of p.tables) await sql`drop table if exists ${sql.table(table)}`.execute(trx);
        await p.create(trx, this.store.dialect);
        await trx.deleteFrom('projection_state').where('name', '=', p.name).execute();
      }
    });
    // New tables get row-level security and grants like every other tenant table.
    await this.store.secureTables();
    const totalRow = await db
      .selectFrom('ledger_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const total = Number(totalRow.n);
    let done = 0;
    let after: (StoredEvent & { tenantKey: string }) | null = null;
    onProgress?.(0, total);
    for (;;) {
      let q = db.selectFrom('ledger_events').selectAll();
      if (after) {
        const a: { tenantKey: string; hlc: string; node: string; seq: number } = after;
        q = q.where(sql<boolean>`(tenant, hlc, node, seq) > (${a.tenantKey}, ${a.hlc}, ${a.node}, ${a.seq})`);
      }
      const rows = await q
        .orderBy('tenant')
        .orderBy('hlc')
        .orderBy('node')
        .orderBy('seq')
        .limit(REBUILD_PAGE)
        .execute();
      if (rows.length === 0) break;
      await this.store.transaction(async (trx) => {
        for (const row of rows) {
          const e = this.toProjectedRow(row);
          await applyToFolding(which, trx, e);
        }
      });
      done += rows.length;
      const last = rows[rows.length - 1]!;
      after = { ...rowToStored(last), tenantKey: last.tenant };
      onProgress?.(done, total);
    }
    await this.store.transaction(async (trx) => {
      for (const p of which) {
        await trx.deleteFrom('projection_state').where('name', '=', p.name).execute();
        await trx
          .insertInto('projection_state')
          .values({ name: p.name, version: p.version, rebuilt_at: this.now() })
          .execute();
      }
    });
    return done;
  }
}

/**
 * One commit of local appends, as the projections see it: `apply` folds each event into the
 * projections that fold it in order, as the ledger inserts it (a guard later in the commit sees the
 * result), except those with `applyBatch`, which `finish` hands the commit's events together before
 * the commit ends.
 */
export class AppendedInCommit {
  private readonly inOrder: readonly Projection[];
  private readonly batched: readonly Projection[];
  private readonly held: ProjectedEvent[] = [];

  constructor(
    projections: readonly Projection[],
    private readonly trx: Tx,
  ) {
    this.inOrder = projections.filter((p) => !p.applyBatch);
    this.batched = projections.filter((p) => p.applyBatch);
  }

  async apply(events: readonly ProjectedEvent[]): Promise<void> {
    for (const e of events) {
      await applyToFolding(this.inOrder, this.trx, e);
      if (this.batched.some((p) => !p.folds || p.folds(e.type))) this.held.push(e);
    }
  }

  async finish(): Promise<void> {
    const held = this.held.splice(0);
    for (const p of this.batched) {
      const folded = p.folds ? held.filter((e) => p.folds!(e.type)) : held;
      if (folded.length > 0) await p.applyBatch!(this.trx, folded);
    }
  }
}
