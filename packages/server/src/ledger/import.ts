import {
  checkpointSignatureProblem,
  compareLedgerOrder,
  GENESIS_HASH,
  signCheckpoint,
  type Checkpoint,
  type FieldIssue,
} from '@holdfast/core';
import { loadNodeKeys } from '../projections/node-keys.ts';
import type { ProjectedEvent } from '../projections/projection.ts';
import type { Tx } from '../store/store.ts';
import {
  parseLines,
  refuse,
  type ImportedEvent,
  type LineCheckpoint,
  type ParsedBatch,
} from './import-parse.ts';
import { copyEvents } from './import-copy.ts';
import type { Ledger } from './ledger.ts';
import type { NumberedLine } from './ndjson.ts';

export interface ImportResult {
  /** Events stored by this batch. */
  inserted: number;
  /** Events already held (same hash): importing the same events again changes nothing. */
  alreadyHeld: number;
  checkpointsAdded: number;
  /** Witness checkpoints this node signed for the batch (see witnessCheckpoints). */
  witnessed: number;
}

/**
 * Imports one batch of another node's events into `tenant`, atomically: every line is parsed and
 * checked against its schema, every hash recomputed, every checkpoint signature checked against the
 * tenant's registered node keys, and every new event must link into its chain and be covered by a
 * signed checkpoint of its own node (directly, or through the hash links below one). Only then is
 * anything stored, in one transaction with the projections. Any problem refuses the whole batch
 * with errors naming the line and field.
 *
 * `parsed` is the first step's result when a worker thread already produced it from these lines
 * (import-parallel.ts); it refuses the batch the same way when the lines were bad.
 */
export async function importBatch(
  ledger: Ledger,
  tenant: string,
  lines: readonly NumberedLine[],
  parsed: Promise<ParsedBatch> | null = null,
): Promise<ImportResult> {
  const checked = parsed ? await parsed : parseLines(ledger, tenant, lines);
  return ledger
    .withWriteLock(async () => {
      ledger.refuseIfHalted();
      let ownChainMoved = false;
      let stored: ProjectedEvent[] = [];
      const result = await ledger.store.transaction(async (trx) => {
        // Another hub process importing the same batch waits here, then finds it held.
        await ledger.beginWrite(trx, [tenant]);
        const plan = await planImport(ledger, trx, tenant, checked);
        const subjects = new Set(
          plan.newEvents.map((e) => e.event.subject).filter((s): s is string => s !== null),
        );
        const latestBefore = await latestPerSubject(trx, tenant, plan.newEvents, subjects);
        const events = plan.newEvents
          .map((e) => e.event)
          .sort((a, b) => a.node.localeCompare(b.node) || a.seq - b.seq);
        await copyEvents(ledger.store, trx, events);
        stored = events;
        const witnesses = await witnessCheckpoints(ledger, trx, tenant, plan.newCheckpoints);
        const checkpoints = [...plan.newCheckpoints, ...witnesses];
        if (checkpoints.length > 0) {
          await trx
            .insertInto('checkpoints')
            .values(checkpoints)
            .onConflict((oc) => oc.doNothing())
            .execute();
        }
        await ledger.projections.applyImported(trx, tenant, events, latestBefore);
        for (const e of events) ledger.hlc.observe(e.hlc);
        // Events of this node's own chain (a restored node topping up from a peer) move its head:
        // the cached head would otherwise make the next append reuse a seq.
        ownChainMoved = events.some((e) => e.node === ledger.node);
        if (ownChainMoved) ledger.resetCache();
        await ledger.endWrite(trx, events);
        return {
          inserted: events.length,
          alreadyHeld: plan.alreadyHeld,
          checkpointsAdded: plan.newCheckpoints.length,
          witnessed: witnesses.length,
        };
      });
      if (ownChainMoved) await ledger.markStoredHead(tenant);
      return { result, stored };
    })
    .then(({ result, stored }) => {
      if (result.inserted > 0) ledger.notifyCommitted([tenant], stored);
      return result;
    });
}

/**
 * Counter-signs (witnesses) the highest checkpoint of each other node's chain that the batch brought,
 * once: a statement by this node that it saw that chain with that hash at that seq. The witness is
 * stored beside the original and exported with the chain, so a history rewritten later by its own
 * node (or by whoever holds its store) cannot match what others saw. One per chain and batch is
 * enough: the hash links carry the statement down to seq 1. Ed25519 signatures are deterministic, so a
 * replayed batch yields the same row and changes nothing.
 */
async function witnessCheckpoints(
  ledger: Ledger,
  trx: Tx,
  tenant: string,
  checkpoints: readonly Checkpoint[],
): Promise<Checkpoint[]> {
  const highest = new Map<string, Checkpoint>();
  for (const c of checkpoints) {
    if (c.signer !== c.node || c.node === ledger.node) continue;
    const seen = highest.get(c.node);
    if (!seen || c.seq > seen.seq) highest.set(c.node, c);
  }
  const out: Checkpoint[] = [];
  for (const c of highest.values()) {
    const already = await trx
      .selectFrom('checkpoints')
      .select('seq')
      .where('tenant', '=', tenant)
      .where('node', '=', c.node)
      .where('signer', '=', ledger.node)
      .where('seq', '>=', c.seq)
      .limit(1)
      .executeTakeFirst();
    if (already) continue;
    out.push(signCheckpoint(ledger.signer, c));
  }
  return out;
}

/** Subjects per grouped query: well inside both stores' limits on bound parameters. */
const SUBJECT_CHUNK = 500;

/**
 * What the projections need to know before imported events are applied: for each subject, the
 * latest stored event in ledger order, so that an imported event older than it refolds the subject.
 * Read in a few grouped queries instead of one per subject (a batch of a busy site touches about as
 * many cases as it has events). The grouped query gives each subject's highest hybrid clock; only a
 * subject where an imported event has that very clock (another node's event at the same instant)
 * needs the exact (node, seq) tiebreak, read on its own. When every imported event is later than
 * everything the tenant holds (a site catching up), one query answers for all.
 */
async function latestPerSubject(
  trx: Tx,
  tenant: string,
  newEvents: readonly ImportedEvent[],
  subjects: ReadonlySet<string>,
): Promise<Map<string, { hlc: string; node: string; seq: number }>> {
  const result = new Map<string, { hlc: string; node: string; seq: number }>();
  if (subjects.size === 0) return result;
  let minHlc: string | null = null;
  for (const { event } of newEvents) if (minHlc === null || event.hlc < minHlc) minHlc = event.hlc;
  const newest = await trx
    .selectFrom('ledger_events')
    .select('hlc')
    .where('tenant', '=', tenant)
    .orderBy('hlc', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!newest || (minHlc !== null && newest.hlc < minHlc)) return result;
  const list = [...subjects];
  for (let i = 0; i < list.length; i += SUBJECT_CHUNK) {
    const rows = await trx
      .selectFrom('ledger_events')
      .select(['subject', (eb) => eb.fn.max('hlc').as('hlc')])
      .where('tenant', '=', tenant)
      .where('subject', 'in', list.slice(i, i + SUBJECT_CHUNK))
      .groupBy('subject')
      .execute();
    // node '' and seq 0: the hybrid clock alone decides unless the clocks are equal (handled below).
    for (const r of rows)
      if (r.subject !== null && r.hlc !== null) result.set(r.subject, { hlc: r.hlc, node: '', seq: 0 });
  }
  const ties = new Set<string>();
  for (const { event } of newEvents) {
    if (event.subject !== null && result.get(event.subject)?.hlc === event.hlc) ties.add(event.subject);
  }
  for (const subject of ties) {
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

interface ImportPlan {
  newEvents: ImportedEvent[];
  newCheckpoints: Checkpoint[];
  alreadyHeld: number;
}

/** Step 2: against the store: keys, signatures, duplicates and forks, chain links, checkpoint coverage. */
async function planImport(ledger: Ledger, trx: Tx, tenant: string, parsed: ParsedBatch): Promise<ImportPlan> {
  const issues: FieldIssue[] = [];
  const keys = await loadNodeKeys(trx, tenant);

  // Checkpoint signatures first: a checkpoint is what makes events trustworthy.
  const validCheckpoints: LineCheckpoint[] = [];
  for (const c of parsed.checkpoints) {
    const problem = checkpointSignatureProblem(ledger.crypto, keys, c);
    if (problem) issues.push({ path: `line ${c.lineNo}: signature`, message: problem });
    else validCheckpoints.push(c);
  }
  for (const { lineNo, event } of parsed.events) {
    if (!keys.has(event.node)) {
      issues.push({
        path: `line ${lineNo}: node`,
        message: `${event.node} is not a registered node of tenant ${tenant}`,
      });
    }
  }
  if (issues.length > 0) refuse(issues);

  const byNode = new Map<string, ImportedEvent[]>();
  for (const ie of parsed.events) {
    const list = byNode.get(ie.event.node) ?? [];
    list.push(ie);
    byNode.set(ie.event.node, list);
  }

  const newEvents: ImportedEvent[] = [];
  let alreadyHeld = 0;
  for (const [node, list] of byNode) {
    list.sort((a, b) => a.event.seq - b.event.seq);
    const minSeq = list[0]!.event.seq;
    const maxSeq = list[list.length - 1]!.event.seq;
    const storedRows = await trx
      .selectFrom('ledger_events')
      .select(['seq', 'hash', 'prev_hash', 'hlc'])
      .where('tenant', '=', tenant)
      .where('node', '=', node)
      .where('seq', '>=', minSeq - 1)
      .where('seq', '<=', maxSeq + 1)
      .execute();
    const stored = new Map(
      storedRows.map((r) => [Number(r.seq), { hash: r.hash, prevHash: r.prev_hash, hlc: r.hlc }]),
    );
    const storedCheckpoints = await trx
      .selectFrom('checkpoints')
      .select(['seq', 'hash'])
      .where('tenant', '=', tenant)
      .where('node', '=', node)
      .where('signer', '=', node)
      .where('seq', '>=', minSeq)
      .where('seq', '<=', maxSeq)
      .execute();
    // Hashes vouched for by the chain's own node, from this batch or already stored.
    const sealed = new Map<number, string>(storedCheckpoints.map((c) => [Number(c.seq), c.hash]));
    for (const c of validCheckpoints) if (c.node === node && c.signer === node) sealed.set(c.seq, c.hash);

    const incoming = new Map<number, ImportedEvent>();
    for (const ie of list) {
      const at = `line ${ie.lineNo}`;
      const seen = incoming.get(ie.event.seq);
      if (seen) {
        if (seen.event.hash !== ie.event.hash) {
          issues.push({
            path: `${at}: seq`,
            message: `two different events claim node ${node} seq ${ie.event.seq} (a fork)`,
          });
        }
        continue;
      }
      const held = stored.get(ie.event.seq);
      if (held) {
        if (held.hash !== ie.event.hash) {
          issues.push({
            path: `${at}: hash`,
            message: `differs from the event already held at node ${node} seq ${ie.event.seq} (a fork or a rewritten history)`,
          });
        } else {
          alreadyHeld++;
        }
        continue;
      }
      incoming.set(ie.event.seq, ie);
    }

    // Links: every new event must agree with its neighbours, whether they are new or already held.
    const hashAt = (seq: number): string | undefined =>
      incoming.get(seq)?.event.hash ?? stored.get(seq)?.hash;
    const hlcAt = (seq: number): string | undefined => incoming.get(seq)?.event.hlc ?? stored.get(seq)?.hlc;
    for (const [seq, ie] of incoming) {
      const at = `line ${ie.lineNo}`;
      const e = ie.event;
      const prev = seq === 1 ? GENESIS_HASH : hashAt(seq - 1);
      if (prev !== undefined && e.prevHash !== prev) {
        issues.push({
          path: `${at}: prevHash`,
          message: `does not match the hash of node ${node} seq ${seq - 1}`,
        });
      }
      const prevHlc = hlcAt(seq - 1);
      if (prevHlc !== undefined && e.hlc <= prevHlc) {
        issues.push({
          path: `${at}: hlc`,
          message: `is not after the hybrid clock of node ${node} seq ${seq - 1}`,
        });
      }
      const nextStored = stored.get(seq + 1);
      if (nextStored && nextStored.prevHash !== e.hash) {
        issues.push({
          path: `${at}: hash`,
          message: `does not match the prevHash of the held event node ${node} seq ${seq + 1}`,
        });
      }
      const seal = sealed.get(seq);
      if (seal !== undefined && seal !== e.hash) {
        issues.push({
          path: `${at}: hash`,
          message: `does not match node ${node}'s signed checkpoint at seq ${seq}`,
        });
      }
    }

    // Coverage: walk down from the top. An event is authentic if its own node signed its hash, or
    // the next event (authentic, new or held) names it as prevHash.
    const seqs = [...incoming.keys()].sort((a, b) => b - a);
    let authenticBelow: number | null = null; // seq of the lowest authentic event in the current run
    for (const seq of seqs) {
      const ie = incoming.get(seq)!;
      const linkedFromAbove =
        (authenticBelow === seq + 1 && incoming.get(seq + 1)?.event.prevHash === ie.event.hash) ||
        stored.get(seq + 1)?.prevHash === ie.event.hash;
      const signed = sealed.get(seq) === ie.event.hash;
      if (signed || linkedFromAbove) {
        authenticBelow = seq;
        newEvents.push(ie);
      } else {
        authenticBelow = null;
        issues.push({
          path: `line ${ie.lineNo}`,
          message: `node ${node} seq ${seq} is not covered by a checkpoint signed by ${node}; send the checkpoint with the batch`,
        });
      }
    }
  }
  if (issues.length > 0) refuse(issues);

  // Keep every valid checkpoint (own or witness) whose event is held or arrives now and matches it.
  const arriving = new Map(newEvents.map((ie) => [`${ie.event.node}#${ie.event.seq}`, ie.event.hash]));
  const newCheckpoints: Checkpoint[] = [];
  for (const c of validCheckpoints) {
    const { lineNo, ...checkpoint } = c;
    let hash = arriving.get(`${c.node}#${c.seq}`);
    if (hash === undefined) {
      const held = await trx
        .selectFrom('ledger_events')
        .select('hash')
        .where('tenant', '=', tenant)
        .where('node', '=', c.node)
        .where('seq', '=', c.seq)
        .executeTakeFirst();
      hash = held?.hash;
    }
    if (hash === undefined) {
      issues.push({
        path: `line ${lineNo}: seq`,
        message: `checkpoint for node ${c.node} seq ${c.seq}, an event neither held nor in this batch`,
      });
    } else if (hash !== c.hash) {
      issues.push({
        path: `line ${lineNo}: hash`,
        message: `checkpoint does not match node ${c.node} seq ${c.seq}`,
      });
    } else {
      newCheckpoints.push(checkpoint);
    }
  }
  if (issues.length > 0) refuse(issues);
  newEvents.sort((a, b) => compareLedgerOrder(a.event, b.event));
  return { newEvents, newCheckpoints, alreadyHeld };
}
