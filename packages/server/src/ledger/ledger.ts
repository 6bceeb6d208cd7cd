import type { ImportWorkers } from './import-parallel.ts';
import {
  assertInvariant,
  canonicalJson,
  ChainVerifier,
  GENESIS_HASH,
  HLC_PATTERN,
  HybridLogicalClock,
  sealEvent,
  signCheckpoint,
  type Checkpoint,
  type Clock,
  type EventRegistry,
  type IdGenerator,
  type LedgerCrypto,
  type NodeSigner,
  type ChainFault,
  type StoredEvent,
} from '@holdfast/core';
import { randomUUID } from 'node:crypto';
import {
  SelectQueryNode,
  sql,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryId,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
} from 'kysely';
import type { ProjectionEngine } from '../projections/engine.ts';
import { toProjected, type ProjectedEvent } from '../projections/projection.ts';
import type { Store, Tx } from '../store/store.ts';
import { announceCommit, lockTenantsForCommit } from './commit-notice.ts';
import { StoreUnavailableError } from '../store/primary.ts';
import type { HeadMark, MarkedHead } from './head-mark.ts';
import { rowToStored, storedToRow } from './rows.ts';
import { WriteHealth } from './write-health.ts';

/** What a caller asks to record; the ledger assigns id, seq, hlc and the hashes. */
export interface EventDraft {
  tenant: string;
  type: string;
  /** Schema version; the newest registered version when omitted. */
  v?: number;
  actor: string;
  payload: Record<string, unknown>;
}

export interface LedgerOptions {
  /** Sign a checkpoint after this many events of the node's own chain. */
  checkpointEvery: number;
  /** At most this many events go into one group commit. */
  maxGroupEvents: number;
  /** Import checks a pushed backlog's lines in these worker threads (none: in the calling thread). */
  importWorkers?: ImportWorkers;
}

export const DEFAULT_LEDGER_OPTIONS: LedgerOptions = { checkpointEvery: 100, maxGroupEvents: 1000 };

interface ChainHead {
  seq: number;
  hash: string;
  hlc: string;
  checkpointedSeq: number;
}

interface PreparedDraft {
  tenant: string;
  type: string;
  v: number;
  actor: string;
  payloadJson: string;
  payload: Record<string, unknown>;
  subject: string | null;
}

/**
 * A check run inside the commit transaction just before an append's events are inserted, after
 * everything committed before it in the same group (compare-and-set: "this case is still at the
 * version I decided on"). If it throws, that append fails with its error and nothing of it is stored.
 */
export type AppendGuard = (trx: Tx) => Promise<void>;

interface PendingAppend {
  drafts: PreparedDraft[];
  guard?: AppendGuard;
  resolve: (events: StoredEvent[]) => void;
  reject: (error: unknown) => void;
}

/**
 * The node will not sign or append: its own chain does not check out (an edit after the last
 * checkpoint, a clock that is not an HLC value), or a periodic integrity check found a fault. Signing
 * on top would seal the forgery with the node's key.
 */
export class LedgerIntegrityError extends Error {
  constructor(
    message: string,
    readonly fault: ChainFault | null = null,
  ) {
    super(message);
    this.name = 'LedgerIntegrityError';
  }
}

/** Told after each commit (local or imported) of the tenants with new events and those events. */
export type CommitListener = (tenants: ReadonlySet<string>, events: readonly StoredEvent[]) => void;

/** A stored event whose hybrid clock is not an HLC value, found while resuming the clock. */
export interface ClockFault {
  tenant: string;
  node: string;
  seq: number;
}

/** SQLite allows 32,766 bound parameters per statement; 12 columns a row stays well inside it. */
const INSERT_CHUNK = 500;

/**
 * The node's ledger: its own hash chain per tenant, group-committed appends, checkpoints, reads.
 *
 * Every write (append, checkpoint, import) runs under one lock, so heads and the hybrid clock
 * change in one order; concurrent appends wait for the running commit and then share the next one
 * (group commit). A caller's promise resolves only after the transaction holding its events has
 * committed durably.
 */
export class Ledger {
  private readonly heads = new Map<string, ChainHead>();
  private readonly queue: PendingAppend[] = [];
  private writeLock: Promise<void> = Promise.resolve();
  private draining = false;
  /** Set on a node opened beside its running writer: nothing may be appended or signed here. */
  private readOnlyReason: string | null = null;
  readonly hlc: HybridLogicalClock;
  /** Called after each commit with the events it made durable (metrics). */
  onCommitted: (events: readonly StoredEvent[]) => void = () => undefined;
  private readonly commitListeners = new Set<CommitListener>();
  /** Whether appends commit: /health turns unhealthy while they fail for the node's own reasons. */
  readonly writeHealth = new WriteHealth();
  /** Errors thrown by an append's own guard: a refusal of that append, not a failure of the node. */
  private readonly guardRefusals = new WeakSet<object>();
  /** Heads committed but not yet confirmed in the head mark (written after the callers are answered). */
  private readonly unconfirmedHeads = new Map<string, MarkedHead>();
  /** Why this node refuses to append or sign, or null (see `halt`). */
  private haltedBecause: string | null = null;
  /**
   * This ledger among the processes writing one PostgreSQL database: its commit notices carry it,
   * so its own fan-in (which has told the listeners already) passes them over.
   */
  readonly origin = randomUUID();
  /** `store.losses` when the heads were last settled (see settleHeadsAfterStoreLoss). */
  private storeLossesSettled = 0;
  /** The heads acknowledged before the store was lost, kept until they are settled. */
  private acknowledgedBeforeLoss: Map<string, MarkedHead> | null = null;

  /**
   * Live updates: `fn` hears which tenants got new events after every commit (local or imported),
   * and the tenant and type of each of those events.
   */
  subscribe(fn: CommitListener): () => void {
    this.commitListeners.add(fn);
    return () => this.commitListeners.delete(fn);
  }

  /** Tells subscribers that these tenants have these new durable events. */
  notifyCommitted(tenants: Iterable<string>, events: readonly StoredEvent[]): void {
    const set = new Set(tenants);
    if (set.size === 0) return;
    for (const fn of this.commitListeners) fn(set, events);
  }

  private constructor(
    readonly store: Store,
    readonly registry: EventRegistry,
    readonly crypto: LedgerCrypto,
    readonly signer: NodeSigner,
    readonly projections: ProjectionEngine,
    private readonly ids: IdGenerator,
    clock: Clock,
    lastHlc: string | undefined,
    readonly options: LedgerOptions,
    private readonly headMark: HeadMark | null,
    /** Events whose stored clock is garbage: skipped when resuming the clock; verify names them. */
    readonly clockFaults: readonly ClockFault[],
  ) {
    this.hlc = new HybridLogicalClock(clock, lastHlc);
  }

  static async open(deps: {
    store: Store;
    registry: EventRegistry;
    crypto: LedgerCrypto;
    signer: NodeSigner;
    projections: ProjectionEngine;
    ids: IdGenerator;
    clock: Clock;
    options?: Partial<LedgerOptions>;
    /** The node's head mark, written ahead of and after every commit that moves one of its chains. */
    headMark?: HeadMark;
  }): Promise<Ledger> {
    // The clock resumes after the newest event this store holds from any node, so a restarted node
    // (or one whose wall clock went back) never issues a timestamp that sorts before what it has seen.
    const { newest, faults } = await newestWellFormedHlc(deps.store);
    return new Ledger(
      deps.store,
      deps.registry,
      deps.crypto,
      deps.signer,
      deps.projections,
      deps.ids,
      deps.clock,
      newest,
      { ...DEFAULT_LEDGER_OPTIONS, ...deps.options },
      deps.headMark ?? null,
      faults,
    );
  }

  /**
   * Stops every append and checkpoint of this node until restart: an integrity check found a
   * fault, and anything signed now would vouch for tampered history.
   */
  halt(reason: string): void {
    this.haltedBecause ??= reason;
  }

  get halted(): string | null {
    return this.haltedBecause;
  }

  /** Throws while halted: appends, checkpoints and imports (which sign witnesses) all call it. */
  refuseIfHalted(): void {
    if (this.haltedBecause)
      throw new LedgerIntegrityError(`refusing to write or sign: ${this.haltedBecause}`);
  }

  get node(): string {
    return this.signer.node;
  }

  /**
   * Makes this ledger a reader: appends and imports fail, and checkpoints are not signed (the
   * writer that holds the node's lock seals its own tail).
   */
  makeReadOnly(reason: string): void {
    this.readOnlyReason = reason;
  }

  get readOnly(): boolean {
    return this.readOnlyReason !== null;
  }

  private refuseIfReadOnly(): void {
    if (this.readOnlyReason !== null)
      throw new Error(`this node is open read-only (${this.readOnlyReason}): nothing can be written`);
  }

  /**
   * Appends events to this node's chain. Payloads are checked before anything is queued, so a bad
   * draft fails alone. Resolves with the sealed events once they are durably committed.
   */
  append(drafts: readonly EventDraft[], options: { guard?: AppendGuard } = {}): Promise<StoredEvent[]> {
    if (drafts.length === 0) return Promise.resolve([]);
    let prepared: PreparedDraft[];
    try {
      this.refuseIfReadOnly();
      this.refuseIfHalted();
      prepared = drafts.map((d) => this.prepare(d));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ drafts: prepared, resolve, reject, guard: options.guard });
      if (!this.draining) {
        this.draining = true;
        void this.withWriteLock(() => this.drain());
      }
    });
  }

  /** Runs `fn` when no other write is running. Import and checkpoint use it too. */
  withWriteLock<T>(fn: () => Promise<T>): Promise<T> {
    try {
      this.refuseIfReadOnly();
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.writeLock.then(fn);
    this.writeLock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private prepare(d: EventDraft): PreparedDraft {
    const v = d.v ?? this.registry.latestVersion(d.type);
    const payload = this.registry.parsePayload(d.type, v, d.payload);
    return {
      tenant: d.tenant,
      type: d.type,
      v,
      actor: d.actor,
      payload,
      payloadJson: canonicalJson(payload),
      subject: this.registry.subjectOf(d.type, v, payload),
    };
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const group: PendingAppend[] = [];
        let count = 0;
        while (
          this.queue.length > 0 &&
          (group.length === 0 || count + this.queue[0]!.drafts.length <= this.options.maxGroupEvents)
        ) {
          const next = this.queue.shift()!;
          group.push(next);
          count += next.drafts.length;
        }
        await this.commitGroupOrSingly(group);
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * One transaction for the group; an append whose guard refuses it is left out of that transaction
   * (the others go on), and if the transaction fails, each append is retried alone so one bad append
   * fails alone.
   */
  private async commitGroupOrSingly(group: PendingAppend[]): Promise<void> {
    try {
      const results = await this.commitGroup(group);
      group.forEach((g, i) => {
        const r = results[i]!;
        if ('refused' in r) this.rejectAppend(g, r.refused);
        else g.resolve(r);
      });
    } catch (error) {
      // After a lost connection nothing is retried here: a commit whose outcome is unknown may have
      // landed, and committing its appends again would record them twice.
      if (group.length === 1 || error instanceof StoreUnavailableError) {
        for (const g of group) this.rejectAppend(g, error);
        return;
      }
      for (const g of group) {
        try {
          const [r] = await this.commitGroup([g]);
          if ('refused' in r!) this.rejectAppend(g, r.refused);
          else g.resolve(r!);
        } catch (singleError) {
          this.rejectAppend(g, singleError);
        }
      }
    } finally {
      // With more appends waiting, their commit's write-ahead records these heads as committed: one
      // write (and one fdatasync) of the mark per commit instead of two, while appends keep coming.
      if (this.queue.length === 0) await this.confirmHeadMark();
    }
  }

  private rejectAppend(append: PendingAppend, error: unknown): void {
    // A lost database is the store's to report (/health asks it), and clears when it is found again.
    const refused = typeof error === 'object' && error !== null && this.guardRefusals.has(error);
    if (!refused && !(error instanceof StoreUnavailableError)) this.writeHealth.appendFailed(error);
    append.reject(error);
  }

  /**
   * Records the committed heads in the head mark, still under the write lock but after the callers
   * were answered (when no other append is waiting: see `commitGroupOrSingly`). If it fails the mark
   * keeps the write-ahead (`pending`) head, which the start-up check accepts as well, and the next
   * commit writes everything again.
   */
  private async confirmHeadMark(): Promise<void> {
    if (!this.headMark || this.unconfirmedHeads.size === 0) return;
    const heads = new Map(this.unconfirmedHeads);
    try {
      await this.headMark.confirm(heads);
      for (const [tenant, head] of heads)
        if (this.unconfirmedHeads.get(tenant) === head) this.unconfirmedHeads.delete(tenant);
    } catch {
      // Kept in unconfirmedHeads: tried again after the next commit.
    }
  }

  /**
   * After the store lost its database connection (a failover to a standby, a restart), the chain
   * heads kept in memory may be wrong either way: a commit whose answer was lost may have landed
   * after all (its commit record reached the disk and the synchronous standby), and a database
   * promoted from a standby that was not synchronous may lack commits that were acknowledged.
   * Appending on a wrong head either collides on seq (every later save fails, as with a second
   * writer) or forks the chain. So before the next write each chain this node writes is read again
   * from the store (its unsealed tail re-checked) and compared with what the node knows it
   * committed: the store must still hold the last acknowledged head, and may be beyond it only by
   * the commit written ahead in the head mark (the one whose outcome was unknown, which is then
   * known: landed). Anything else halts the ledger. Landed events are told to the commit listeners
   * (caches, live updates), as a commit would have. Call under the write lock.
   */
  private async settleHeadsAfterStoreLoss(): Promise<void> {
    const losses = this.store.losses;
    if (losses === this.storeLossesSettled) return;
    // Kept across attempts: if the store goes again mid-way, the next attempt checks the same heads.
    const acknowledged = (this.acknowledgedBeforeLoss ??= new Map([
      ...[...(this.headMark?.entries() ?? [])].map(([t, e]) => [t, e.committed] as const),
      ...this.unconfirmedHeads,
      ...markedHeads(this.heads),
    ]));
    const marked = this.headMark?.entries();
    this.heads.clear();
    const landed: StoredEvent[] = [];
    for (const [tenant, known] of acknowledged) {
      const stored = await this.store.transaction((trx) => this.loadHead(trx, tenant));
      const atKnown =
        known.seq === 0 ? known : (await this.readChain(tenant, this.node, known.seq, known.seq))[0];
      const pending = marked?.get(tenant)?.pending;
      const holdsAcknowledged = atKnown?.hash === known.hash;
      const beyondIsOurs =
        stored.seq === known.seq ||
        (pending ? pending.seq === stored.seq && pending.hash === stored.hash : !this.headMark);
      if (!holdsAcknowledged || !beyondIsOurs || stored.seq < known.seq) {
        const reason = `after the database connection was lost, the store's chain ${tenant} / ${this.node} is at seq ${stored.seq}, but this node had committed up to seq ${known.seq}${holdsAcknowledged ? ' and did not write what lies beyond it' : ' and the store does not hold it'}: the database it reconnected to is not the one it wrote to (a standby that was not synchronous promoted?). Nothing more is written or signed; run holdfast verify and see docs/OPERATIONS.md`;
        this.halt(reason);
        throw new LedgerIntegrityError(`refusing to write or sign: ${reason}`);
      }
      if (stored.seq > known.seq) landed.push(...(await this.readChain(tenant, this.node, known.seq + 1)));
      this.unconfirmedHeads.set(tenant, { seq: stored.seq, hash: stored.hash });
    }
    await this.confirmHeadMark();
    this.acknowledgedBeforeLoss = null;
    this.storeLossesSettled = losses;
    if (landed.length > 0) this.notifyCommitted(new Set(landed.map((e) => e.tenant)), landed);
  }

  /**
   * Makes the head mark follow the store after events of this node's own chain arrived other than by
   * append: an import (a restored node pulling back from its peers what its backup missed) or a
   * verified restore. Such events are sealed by this node's checkpoints, which the import or restore
   * checked, so no write-ahead is needed. Call under the write lock.
   */
  async markStoredHead(tenant: string): Promise<void> {
    if (!this.headMark) return;
    this.heads.delete(tenant);
    const head = await this.store.transaction((trx) => this.loadHead(trx, tenant));
    this.unconfirmedHeads.set(tenant, { seq: head.seq, hash: head.hash });
    await this.confirmHeadMark();
  }

  /**
   * Commits the group's appends in one transaction, each after everything before it. A guard sees
   * the appends before its own. When the group has more than one append, a guard that throws leaves
   * its append out (`{ refused }` in its place, exactly as if it had been committed alone at that
   * point and refused) and the transaction goes on, provided the guard only read and every read
   * finished: then there is nothing to undo. A refusing guard that wrote, or whose statement failed
   * (which spoils the transaction on PostgreSQL), abandons the whole transaction instead
   * (`GuardLeftWork`), and `commitGroupOrSingly` commits each append of the group alone. Guards only
   * read, so that path is for mistakes; in exchange no append pays a savepoint's round trip. Alone, a
   * guard's refusal fails the transaction.
   */
  private async commitGroup(
    groups: readonly Pick<PendingAppend, 'drafts' | 'guard'>[],
  ): Promise<(StoredEvent[] | { refused: unknown })[]> {
    await this.settleHeadsAfterStoreLoss();
    const workingHeads = new Map<string, ChainHead>();
    const results: (StoredEvent[] | { refused: unknown })[] = [];
    const all: StoredEvent[] = [];
    const checkpoints: Checkpoint[] = [];
    await this.store.transaction(async (trx) => {
      // Other hub processes over the same PostgreSQL database commit these providers in turn with us.
      await this.beginWrite(
        trx,
        groups.flatMap((g) => g.drafts.map((d) => d.tenant)),
      );
      // Unguarded appends are inserted and projected together; a guard first sees everything before it.
      let projected: ProjectedEvent[] = [];
      const projecting = this.projections.appending(trx);
      const flush = async () => {
        if (projected.length === 0) return;
        await insertEvents(trx, projected);
        await projecting.apply(projected);
        projected = [];
      };
      for (const { drafts, guard } of groups) {
        if (guard) {
          await flush();
          const alone = groups.length === 1;
          const watch = new ReadWatch();
          const refused = await guard(alone ? trx : trx.withPlugin(watch)).then(
            () => null,
            (refusal: unknown) => {
              if (typeof refusal === 'object' && refusal !== null) this.guardRefusals.add(refusal);
              if (alone) throw refusal;
              return { refusal };
            },
          );
          if (refused) {
            // A lost database is not retried (see commitGroupOrSingly): it is reported as it is.
            if (refused.refusal instanceof StoreUnavailableError) throw refused.refusal;
            if (!watch.nothingToUndo) throw new GuardLeftWork();
            results.push({ refused: refused.refusal });
            continue;
          }
        }
        const sealedOfAppend: StoredEvent[] = [];
        for (const d of drafts) {
          const head = workingHeads.get(d.tenant) ?? { ...(await this.loadHead(trx, d.tenant)) };
          const sealed = sealEvent(this.crypto, {
            id: this.ids.next(),
            tenant: d.tenant,
            node: this.node,
            seq: head.seq + 1,
            hlc: this.hlc.tick(),
            type: d.type,
            v: d.v,
            actor: d.actor,
            payloadJson: d.payloadJson,
            prevHash: head.hash,
          });
          workingHeads.set(d.tenant, { ...head, seq: sealed.seq, hash: sealed.hash, hlc: sealed.hlc });
          sealedOfAppend.push(sealed);
          projected.push({ ...sealed, payload: d.payload, subject: d.subject });
        }
        results.push(sealedOfAppend);
        all.push(...sealedOfAppend);
      }
      // The heads are final once every append is sealed. Write-ahead: the node's own record of where
      // its chains will be, durable before the commit. If the commit then fails or the process dies,
      // the store stays at the head the mark had before, which it accepts too. Heads earlier commits
      // left and no confirmation recorded yet are recorded as committed in the same write. It is
      // written while the last appends' rows go in (both before the commit).
      const markWritten = this.writeAheadMark(workingHeads);
      const rowsWritten = (async () => {
        await flush();
        await projecting.finish();
        for (const [tenant, head] of workingHeads) {
          if (head.seq - head.checkpointedSeq >= this.options.checkpointEvery) {
            checkpoints.push(this.checkpointOf(tenant, head));
            head.checkpointedSeq = head.seq;
          }
        }
        if (checkpoints.length > 0) await trx.insertInto('checkpoints').values(checkpoints).execute();
        // Last: tell the other hub processes over this database what commits (PostgreSQL only).
        await this.endWrite(trx, all);
      })();
      await Promise.all([markWritten, rowsWritten]);
    });
    for (const [tenant, head] of markedHeads(workingHeads)) this.unconfirmedHeads.set(tenant, head);
    for (const [tenant, head] of workingHeads) this.heads.set(tenant, head);
    this.writeHealth.committed();
    this.onCommitted(all);
    this.notifyCommitted(workingHeads.keys(), all);
    return results;
  }

  /**
   * First in every transaction that adds events (append, import): on PostgreSQL, waits for the other
   * processes committing these providers (see `commit-notice.ts`).
   */
  beginWrite(trx: Tx, tenants: Iterable<string>): Promise<void> {
    return lockTenantsForCommit(trx, this.store.dialect, tenants);
  }

  /** Last in every such transaction: on PostgreSQL, tells the other processes what commits. */
  endWrite(trx: Tx, events: readonly StoredEvent[]): Promise<void> {
    return announceCommit(trx, this.store.dialect, this.origin, events);
  }

  /** See `commitGroup`: the write-ahead of these heads, with the unconfirmed ones as committed. */
  private async writeAheadMark(heads: ReadonlyMap<string, ChainHead>): Promise<void> {
    if (!this.headMark || heads.size === 0) return;
    const confirmed = new Map(this.unconfirmedHeads);
    await this.headMark.writeAhead(markedHeads(heads), confirmed);
    for (const [tenant, head] of confirmed)
      if (this.unconfirmedHeads.get(tenant) === head) this.unconfirmedHeads.delete(tenant);
  }

  /** This node's signed checkpoint over its chain's head. */
  private checkpointOf(tenant: string, head: ChainHead): Checkpoint {
    return signCheckpoint(this.signer, {
      tenant,
      node: this.node,
      seq: head.seq,
      hash: head.hash,
      hlc: head.hlc,
    });
  }

  private async loadHead(trx: Tx, tenant: string): Promise<ChainHead> {
    const cached = this.heads.get(tenant);
    if (cached) return cached;
    const last = await trx
      .selectFrom('ledger_events')
      .select(['seq', 'hash', 'hlc'])
      .where('tenant', '=', tenant)
      .where('node', '=', this.node)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const cp = await trx
      .selectFrom('checkpoints')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('tenant', '=', tenant)
      .where('node', '=', this.node)
      .where('signer', '=', this.node)
      .executeTakeFirst();
    const head: ChainHead = last
      ? { seq: Number(last.seq), hash: last.hash, hlc: last.hlc, checkpointedSeq: Number(cp?.seq ?? 0) }
      : { seq: 0, hash: GENESIS_HASH, hlc: '', checkpointedSeq: 0 };
    if (head.seq > 0) await this.checkUnsealedTail(trx, tenant, head);
    this.heads.set(tenant, head);
    return head;
  }

  /**
   * Before the first append or checkpoint on a head read from the store, re-checks this node's own
   * events from its last checkpoint to the head: the checkpoint's signature and hash, then every
   * hash, link and clock. A store edited while the node was down (an event changed and the rest
   * re-hashed to fit) would otherwise be sealed by the next checkpoint with the node's own key.
   * At most `checkpointEvery` events, once per chain per start.
   */
  private async checkUnsealedTail(trx: Tx, tenant: string, head: ChainHead): Promise<void> {
    const from = Math.max(1, head.checkpointedSeq);
    const checkpoints =
      head.checkpointedSeq > 0
        ? (
            await trx
              .selectFrom('checkpoints')
              .selectAll()
              .where('tenant', '=', tenant)
              .where('node', '=', this.node)
              .where('signer', '=', this.node)
              .where('seq', '=', head.checkpointedSeq)
              .execute()
          ).map((c) => ({ ...c, seq: Number(c.seq) }))
        : [];
    const rows = await trx
      .selectFrom('ledger_events')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('node', '=', this.node)
      .where('seq', '>=', from)
      .orderBy('seq')
      .execute();
    const first = rows[0];
    const resume = first && from > 1 ? { seq: from - 1, hash: first.prev_hash, hlc: '' } : undefined;
    const verifier = new ChainVerifier(
      this.crypto,
      tenant,
      this.node,
      new Map([[this.node, this.signer.publicKey]]),
      checkpoints,
      { ...(resume ? { resumeAfter: resume } : {}), selfKey: this.signer.publicKey },
    );
    for (const row of rows) if (!verifier.push(rowToStored(row))) break;
    const report = verifier.finish();
    const fault =
      report.fault ??
      (report.lastSeq < head.seq
        ? { tenant, node: this.node, seq: from, fromSeq: from, problem: `seq ${from} is missing` }
        : null);
    if (fault) {
      throw new LedgerIntegrityError(
        `refusing to write or sign: this node's chain ${tenant} / ${this.node} is bad at seq ${fault.seq}: ${fault.problem} (run holdfast verify)`,
        fault,
      );
    }
  }

  /**
   * Signs the head of this node's chain for `tenant` if events were added since the last
   * checkpoint (the "every T seconds" half of the checkpoint rule, and before an export).
   */
  checkpointNow(tenant: string): Promise<Checkpoint | null> {
    if (this.readOnly) return Promise.resolve(null);
    return this.withWriteLock(async () => {
      this.refuseIfHalted();
      await this.settleHeadsAfterStoreLoss();
      return this.store.transaction(async (trx) => {
        const head = await this.loadHead(trx, tenant);
        if (head.seq === 0 || head.checkpointedSeq >= head.seq) return null;
        const c = this.checkpointOf(tenant, head);
        await trx
          .insertInto('checkpoints')
          .values(c)
          .onConflict((oc) => oc.doNothing())
          .execute();
        this.heads.set(tenant, { ...head, checkpointedSeq: head.seq });
        return c;
      });
    });
  }

  /** Forgets cached chain heads; used after a rebuild or when the store changed underneath. */
  resetCache(): void {
    this.heads.clear();
  }

  async head(tenant: string): Promise<{ seq: number; hash: string; checkpointedSeq: number }> {
    const read = () => this.store.transaction((trx) => this.loadHead(trx, tenant));
    // A reader has no writes to wait for (and must not cache a head the writer moves on from).
    if (this.readOnly) {
      this.heads.delete(tenant);
      return read();
    }
    return this.withWriteLock(async () => {
      await this.settleHeadsAfterStoreLoss();
      return read();
    });
  }

  /** One node's events with seq in [fromSeq, toSeq], in seq order. */
  async readChain(
    tenant: string,
    node: string,
    fromSeq: number,
    toSeq: number = Number.MAX_SAFE_INTEGER,
  ): Promise<StoredEvent[]> {
    const rows = await this.store.db
      .selectFrom('ledger_events')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('node', '=', node)
      .where('seq', '>=', fromSeq)
      .where('seq', '<=', toSeq)
      .orderBy('seq')
      .execute();
    return rows.map(rowToStored);
  }

  /** A tenant's events in ledger order (hlc, node, seq), after the given position. */
  async readTenant(
    tenant: string,
    after: { hlc: string; node: string; seq: number } | null,
    limit: number,
  ): Promise<StoredEvent[]> {
    let q = this.store.db.selectFrom('ledger_events').selectAll().where('tenant', '=', tenant);
    if (after) q = q.where(sql<boolean>`(hlc, node, seq) > (${after.hlc}, ${after.node}, ${after.seq})`);
    const rows = await q.orderBy('hlc').orderBy('node').orderBy('seq').limit(limit).execute();
    return rows.map(rowToStored);
  }

  /** Highest stored seq of every node's chain for a tenant. */
  async chainHeads(tenant: string): Promise<Map<string, number>> {
    const rows = await this.store.db
      .selectFrom('ledger_events')
      .select(['node', (eb) => eb.fn.max('seq').as('seq')])
      .where('tenant', '=', tenant)
      .groupBy('node')
      .execute();
    return new Map(rows.map((r) => [r.node, Number(r.seq)]));
  }

  async checkpoints(
    tenant: string,
    node: string,
    fromSeq = 0,
    toSeq = Number.MAX_SAFE_INTEGER,
  ): Promise<Checkpoint[]> {
    const rows = await this.store.db
      .selectFrom('checkpoints')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('node', '=', node)
      .where('seq', '>=', fromSeq)
      .where('seq', '<=', toSeq)
      .orderBy('seq')
      .orderBy('signer')
      .execute();
    return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
  }

  /** Registers this node's own key as the first event of its chain for `tenant`, if not yet done. */
  async registerSelf(tenant: string, role: 'hub' | 'site' | 'single'): Promise<void> {
    const head = await this.head(tenant);
    if (head.seq > 0) return;
    await this.append([
      {
        tenant,
        type: 'node.registered',
        actor: `node:${this.node}`,
        payload: { node: this.node, publicKey: this.signer.publicKey, role },
      },
    ]);
    await this.checkpointNow(tenant);
  }

  toProjected(e: StoredEvent): ProjectedEvent {
    const payload = JSON.parse(e.payloadJson) as Record<string, unknown>;
    return toProjected(e, this.registry.subjectOf(e.type, e.v, payload));
  }
}

function markedHeads(heads: ReadonlyMap<string, ChainHead>): Map<string, MarkedHead> {
  return new Map([...heads].map(([tenant, h]) => [tenant, { seq: h.seq, hash: h.hash }]));
}

/**
 * The newest well-formed hybrid clock in the store, and the events whose clock is garbage (letters
 * sort after digits, so a garbage value is usually the maximum). A garbage clock must not stop the
 * node from opening: verify has to run to name the event.
 */
async function newestWellFormedHlc(
  store: Store,
): Promise<{ newest: string | undefined; faults: ClockFault[] }> {
  const faults: ClockFault[] = [];
  let below: string | null = null;
  // Bounded: a store with this many garbage clocks is reported, and the wall clock carries on.
  for (let step = 0; step < 1000; step++) {
    let q = store.db.selectFrom('ledger_events').select(['tenant', 'node', 'seq', 'hlc']);
    if (below !== null) q = q.where('hlc', '<', below);
    const row = await q.orderBy('hlc', 'desc').limit(1).executeTakeFirst();
    if (!row) return { newest: undefined, faults };
    if (HLC_PATTERN.test(row.hlc)) return { newest: row.hlc, faults };
    faults.push({ tenant: row.tenant, node: row.node, seq: Number(row.seq) });
    below = row.hlc;
  }
  return { newest: undefined, faults };
}

export async function insertEvents(trx: Tx, events: readonly ProjectedEvent[]): Promise<void> {
  assertInvariant(
    events.every((e) => e.hash.length === 64),
    'every inserted event is sealed',
  );
  for (let i = 0; i < events.length; i += INSERT_CHUNK) {
    const chunk = events.slice(i, i + INSERT_CHUNK);
    await trx
      .insertInto('ledger_events')
      .values(chunk.map((e) => storedToRow(e, e.subject)))
      .execute();
  }
}

/**
 * A refusing guard of a group commit left something to undo (a write, or a failed or unfinished
 * statement): the group's transaction is abandoned and each append committed alone.
 */
class GuardLeftWork extends Error {
  constructor() {
    super('a refusing guard left work to undo: the group is committed append by append');
  }
}

/**
 * Watches a guard's statements: whether each was a plain read (a select without a `with`, which
 * could hold a write) that finished. Then a refusal leaves nothing to undo.
 */
class ReadWatch implements KyselyPlugin {
  private readonly running = new Set<QueryId>();
  private onlyReads = true;

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    if (!(SelectQueryNode.is(node) && !node.with)) this.onlyReads = false;
    this.running.add(queryId);
    return node;
  }

  transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    // A result for a statement not seen starting (a precompiled query): not known to be a read.
    if (!this.running.delete(queryId)) this.onlyReads = false;
    return Promise.resolve(result);
  }

  get nothingToUndo(): boolean {
    return this.onlyReads && this.running.size === 0;
  }
}
