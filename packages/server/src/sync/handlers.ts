import { storedChainHead } from '../ledger/rows.ts';
import { ImportRefusedError } from '@holdfast/core';
import { exportBatches } from '../ledger/export.ts';
import { importBatch } from '../ledger/import.ts';
import { parseInWorkers } from '../ledger/import-parallel.ts';
import type { ParsedBatch } from '../ledger/import-parse.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { NumberedLine } from '../ledger/ndjson.ts';
import type { HoldfastNode } from '../node/node.ts';
import { loadNodeKeys } from '../projections/node-keys.ts';
import {
  checkProtocol,
  mapToPositions,
  parseSyncBody,
  pullRequestSchema,
  pushRequestSchema,
  SYNC_PROTOCOL_VERSION,
  SyncRefusedError,
  type Positions,
  type PullRequest,
  type PullResponse,
  type PushRequest,
  type PushResponse,
  type SyncIssue,
} from './protocol.ts';

/** What sync needs of a node: its ledger (store, registry, keys and signer come with it). */
export type SyncNode = Pick<HoldfastNode, 'ledger'>;

/**
 * Highest seq held of every chain of the tenant, read per chain from the (tenant, node, seq) index:
 * cheap on a store of millions of events, unlike a grouped scan. Chains exist only for registered
 * nodes (import refuses the rest), so the key registry lists them.
 */
export async function localPositions(ledger: Ledger, tenant: string): Promise<Map<string, number>> {
  const nodes = new Set((await loadNodeKeys(ledger.store.db, tenant)).keys());
  nodes.add(ledger.node);
  const out = new Map<string, number>();
  for (const node of [...nodes].sort()) {
    const seq = await chainHead(ledger, tenant, node);
    if (seq > 0) out.set(node, seq);
  }
  return out;
}

function chainHead(ledger: Ledger, tenant: string, node: string): Promise<number> {
  return storedChainHead(ledger.store.db, tenant, node);
}

/** Event type -> highest schema version this node can read. */
export function readableEventTypes(ledger: Ledger): Record<string, number> {
  const out: Record<string, number> = {};
  for (const def of ledger.registry.all()) out[def.type] = Math.max(out[def.type] ?? 0, def.v);
  return out;
}

/** A batch's chain and seq range, read from its first and last event lines only (cheap). */
export interface BatchSpan {
  node: string;
  firstSeq: number;
  lastSeq: number;
  events: number;
}

const EVENT_PREFIX = '{"kind":"event"';

/**
 * The chain a batch extends and its range, from the first and last event lines (export writes a
 * batch as one chain's events in seq order, then its checkpoints). Null when the batch does not
 * look like that; importBatch then gives the precise reason.
 */
export function batchSpan(lines: readonly string[]): BatchSpan | null {
  let events = 0;
  let first: string | undefined;
  let last: string | undefined;
  for (const l of lines) {
    if (!l.startsWith(EVENT_PREFIX)) continue;
    events++;
    first ??= l;
    last = l;
  }
  if (!first || !last) return null;
  try {
    const a = JSON.parse(first) as { node?: unknown; seq?: unknown };
    const b = JSON.parse(last) as { node?: unknown; seq?: unknown };
    if (typeof a.node !== 'string' || typeof a.seq !== 'number' || typeof b.seq !== 'number') return null;
    if (b.node !== a.node) return null;
    return { node: a.node, firstSeq: a.seq, lastSeq: b.seq, events };
  } catch {
    return null;
  }
}

export type SyncImportOutcome =
  | { status: 'imported'; inserted: number; alreadyHeld: number; span: BatchSpan | null }
  /** Refused only because a chain's node or a checkpoint signer has no registered key here (yet). */
  | { status: 'unknown_node'; nodes: string[]; span: BatchSpan | null; error: SyncRefusedError }
  /** Starts after a gap in this node's copy of the chain: importing it would hide the gap. */
  | { status: 'gap'; span: BatchSpan; heldSeq: number };

/**
 * Imports one sync batch. Returns (does not throw) for the two outcomes a caller retries later:
 * an unknown node key, and a batch that would leave a gap below it. Throws SyncRefusedError for
 * everything else that is wrong with it (`schema_version` naming the type and version it cannot read,
 * `bad_history` naming each bad event's node and seq); nothing of a refused batch is stored.
 *
 * Gaps are refused because a node's positions are its highest held seqs: a chain with a hole below
 * its head would claim events it lacks, and nothing would ever resend them.
 */
export async function importSyncBatch(
  ledger: Ledger,
  tenant: string,
  lines: readonly string[],
  /** The lines already checked on their own by a worker thread (see handlePush), if they were. */
  parsed: Promise<ParsedBatch> | null = null,
): Promise<SyncImportOutcome> {
  const span = batchSpan(lines);
  if (span && span.lastSeq - span.firstSeq + 1 !== span.events) refuseHoles(ledger, span, lines);
  if (span && span.firstSeq > 1) {
    const held = await chainHead(ledger, tenant, span.node);
    if (span.firstSeq > held + 1) return { status: 'gap', span, heldSeq: held };
  }
  const numbered: NumberedLine[] = lines.map((text, i) => ({ lineNo: i + 1, text }));
  try {
    const r = await importBatch(ledger, tenant, numbered, parsed);
    return { status: 'imported', inserted: r.inserted, alreadyHeld: r.alreadyHeld, span };
  } catch (error) {
    if (!(error instanceof ImportRefusedError)) throw error;
    const refusal = await explainRefusal(ledger, tenant, lines, error);
    if (refusal.reason === 'unknown_node') {
      const nodes = [...new Set(refusal.issues.map((i) => i.node).filter((n): n is string => !!n))];
      return { status: 'unknown_node', nodes, span, error: refusal };
    }
    throw refusal;
  }
}

/**
 * A batch whose events do not run without a hole from its first seq to its last. Import would
 * take it if a checkpoint sat just below the hole, leaving a chain with an event missing; a sender
 * whose store lost an event (deleted by hand) is named here instead. Batches of other shapes
 * (unordered, duplicated lines) go on to import, which says precisely what is wrong.
 */
function refuseHoles(ledger: Ledger, span: BatchSpan, lines: readonly string[]): void {
  const seqs = new Set<number>();
  let line = 0;
  const lineOf = new Map<number, number>();
  for (const text of lines) {
    line++;
    if (!text.startsWith(EVENT_PREFIX)) continue;
    const f = readLine(text);
    if (f.node !== span.node || f.seq === undefined) return;
    seqs.add(f.seq);
    lineOf.set(f.seq, line);
  }
  const lo = Math.min(...seqs);
  const hi = Math.max(...seqs);
  for (let seq = lo; seq <= hi; seq++) {
    if (seqs.has(seq)) continue;
    let next = seq + 1;
    while (!seqs.has(next)) next++;
    throw new SyncRefusedError(
      'bad_history',
      `${ledger.node} refused a batch: node ${span.node} seq ${seq} is missing between seq ${lo} and ${hi} ` +
        `(removed from the sender's store?); nothing of the batch was stored`,
      [
        {
          node: span.node,
          seq,
          line: lineOf.get(next),
          path: `line ${lineOf.get(next)}: seq`,
          message: `node ${span.node} seq ${seq} is missing before this event`,
        },
      ],
      ledger.node,
    );
  }
}

interface LineFacts {
  kind?: string;
  node?: string;
  seq?: number;
  signer?: string;
  type?: string;
  v?: number;
}

function readLine(text: string | undefined): LineFacts {
  if (text === undefined) return {};
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    return {
      kind: typeof o.kind === 'string' ? o.kind : undefined,
      node: typeof o.node === 'string' ? o.node : undefined,
      seq: typeof o.seq === 'number' ? o.seq : undefined,
      signer: typeof o.signer === 'string' ? o.signer : undefined,
      type: typeof o.type === 'string' ? o.type : undefined,
      v: typeof o.v === 'number' ? o.v : undefined,
    };
  } catch {
    return {};
  }
}

/**
 * Turns an import refusal into a sync refusal with a reason code, checked structurally (not from
 * message text): an event type/version not registered here -> schema_version; a chain node or
 * checkpoint signer with no key here -> unknown_node; anything else -> bad_history. Every issue is
 * placed at the node and seq of its line, so "which event" is answered without reading the batch.
 */
async function explainRefusal(
  ledger: Ledger,
  tenant: string,
  lines: readonly string[],
  error: ImportRefusedError,
): Promise<SyncRefusedError> {
  const facts = lines.map(readLine);
  const unreadable: SyncIssue[] = [];
  facts.forEach((f, i) => {
    if (
      f.kind === 'event' &&
      f.type !== undefined &&
      f.v !== undefined &&
      !ledger.registry.has(f.type, f.v)
    ) {
      unreadable.push({
        node: f.node,
        seq: f.seq,
        line: i + 1,
        path: `line ${i + 1}: type`,
        message: `event type ${f.type} version ${f.v} is not registered on this node`,
      });
    }
  });
  if (unreadable.length > 0) {
    const names = [...new Set(unreadable.map((u) => u.message.replace(/ is not registered.*$/, '')))];
    return new SyncRefusedError(
      'schema_version',
      `${ledger.node} cannot read ${names.join(', ')}; upgrade ${ledger.node} before it takes these events`,
      unreadable,
      ledger.node,
    );
  }
  const keys = await loadNodeKeys(ledger.store.db, tenant);
  const unknown: SyncIssue[] = [];
  facts.forEach((f, i) => {
    const who = f.kind === 'checkpoint' ? f.signer : f.kind === 'event' ? f.node : undefined;
    if (who !== undefined && !keys.has(who)) {
      unknown.push({
        node: who,
        seq: f.seq,
        line: i + 1,
        path: `line ${i + 1}: ${f.kind === 'checkpoint' ? 'signer' : 'node'}`,
        message: `${who} is not a registered node of tenant ${tenant} on ${ledger.node}`,
      });
    }
  });
  if (unknown.length > 0) {
    const nodes = [...new Set(unknown.map((u) => u.node))];
    return new SyncRefusedError(
      'unknown_node',
      `${ledger.node} has no registered key for ${nodes.join(', ')} in tenant ${tenant}`,
      unknown,
      ledger.node,
    );
  }
  const issues: SyncIssue[] = error.issues.map((issue) => {
    const m = /^line (\d+)/.exec(issue.path);
    const line = m ? Number(m[1]) : undefined;
    const f = line !== undefined ? facts[line - 1] : undefined;
    return { node: f?.node, seq: f?.seq, line, path: issue.path, message: issue.message };
  });
  const first = issues.find((i) => i.node !== undefined && i.seq !== undefined);
  return new SyncRefusedError(
    'bad_history',
    `${ledger.node} refused a batch: ` +
      (first ? `node ${first.node} seq ${first.seq}: ${first.message}` : error.message) +
      (issues.length > 1 ? ` (and ${issues.length - 1} more problem(s))` : '') +
      '; nothing of the batch was stored',
    issues,
    ledger.node,
  );
}

/** Checks the fields every request carries: protocol first (a newer peer's body may differ), tenant, requester. */
function admit(body: unknown): void {
  const protocol = (body as { protocol?: unknown } | null)?.protocol;
  const from = (body as { from?: unknown } | null)?.from;
  if (typeof protocol === 'number')
    checkProtocol(protocol, typeof from === 'string' ? from : 'the requester');
}

async function checkTenantAndPeer(ledger: Ledger, tenant: string, from: string): Promise<void> {
  if ((await chainHead(ledger, tenant, ledger.node)) === 0) {
    throw new SyncRefusedError(
      'tenant',
      `${ledger.node} is not a node of tenant ${tenant}`,
      [{ path: 'tenant', message: `not a tenant of ${ledger.node}` }],
      ledger.node,
    );
  }
  const keys = await loadNodeKeys(ledger.store.db, tenant);
  if (!keys.has(from)) {
    throw new SyncRefusedError(
      'unknown_node',
      `${from} is not a registered node of tenant ${tenant} on ${ledger.node}; enrol it first`,
      [{ node: from, path: 'from', message: 'not a registered node of the tenant' }],
      ledger.node,
    );
  }
}

/** Protocol version checked before the schema, so a newer peer is told "version", not "bad field". */
export async function readPullRequest(ledger: Ledger, body: unknown): Promise<PullRequest> {
  admit(body);
  return parseSyncBody(pullRequestSchema, body, 'pull request');
}

export async function readPushRequest(ledger: Ledger, body: unknown): Promise<PushRequest> {
  admit(body);
  return parseSyncBody(pushRequestSchema, body, 'push request');
}

/**
 * Serves a pull: every chain of the tenant (this node's own and every other node's it holds, so a
 * hub relays between sites) after the requester's positions, in self-authenticating batches, until
 * about `maxEvents`. `more` says the requester should ask again with its new positions.
 *
 * Refuses (schema_version) when a batch holds an event type or version the requester says it cannot
 * read: it could import nothing after that event of its chain, so it is told now, by name.
 */
export async function handlePull(node: SyncNode, body: unknown): Promise<PullResponse> {
  const ledger = node.ledger;
  const req = await readPullRequest(ledger, body);
  await checkTenantAndPeer(ledger, req.tenant, req.from);
  const readable = (type: string, v: number) => (req.eventTypes[type] ?? 0) >= v;
  // Fast path: the requester reads everything this node can hold, so no line needs reading.
  const mayHoldUnreadable = ledger.registry.all().some((d) => !readable(d.type, d.v));

  const theirs = new Map(Object.entries(req.positions));
  const sentUpTo = new Map(theirs);
  const batches: string[][] = [];
  let events = 0;
  const batchTarget = Math.min(req.maxEvents, 5_000);
  for await (const batch of exportBatches(ledger, req.tenant, { afterSeq: theirs, maxEvents: batchTarget })) {
    const span = batchSpan(batch);
    if (mayHoldUnreadable) checkReadable(ledger, req, batch, readable);
    batches.push(batch);
    if (span) {
      events += span.events;
      sentUpTo.set(span.node, Math.max(sentUpTo.get(span.node) ?? 0, span.lastSeq));
    }
    if (events >= req.maxEvents) break;
  }
  const heads = await localPositions(ledger, req.tenant);
  // More to come when some chain's head (always sealed: own chains were just checkpointed by the
  // export, imported chains end at a checkpoint) lies beyond what the requester will then hold.
  const more = [...heads].some(([n, seq]) => seq > (sentUpTo.get(n) ?? 0));
  return { protocol: SYNC_PROTOCOL_VERSION, positions: mapToPositions(heads), batches, more };
}

function checkReadable(
  ledger: Ledger,
  req: PullRequest,
  batch: readonly string[],
  readable: (type: string, v: number) => boolean,
): void {
  const issues: SyncIssue[] = [];
  batch.forEach((text) => {
    if (!text.startsWith(EVENT_PREFIX)) return;
    const f = readLine(text);
    if (f.type !== undefined && f.v !== undefined && !readable(f.type, f.v)) {
      issues.push({
        node: f.node,
        seq: f.seq,
        path: 'eventTypes',
        message: `event type ${f.type} version ${f.v} is not readable by ${req.from} (it reads ${
          req.eventTypes[f.type] !== undefined
            ? `up to version ${req.eventTypes[f.type]}`
            : 'no version of it'
        })`,
      });
    }
  });
  if (issues.length > 0) {
    const first = issues[0]!;
    throw new SyncRefusedError(
      'schema_version',
      `${ledger.node} holds events ${req.from} cannot read: ${first.message}; upgrade ${req.from}`,
      issues.slice(0, 50),
      ledger.node,
    );
  }
}

/**
 * Takes a push: each batch is imported on its own (atomically). Batches refused only because a key
 * is not yet known, or that start after a gap, are retried after the rest while that makes
 * progress (the pusher may send the hub's registration of a site after that site's own events).
 * Replaying a push changes nothing. Batches stored before a refusal stay stored; the refusal names
 * the first bad batch's events.
 */
export async function handlePush(node: SyncNode, body: unknown): Promise<PushResponse> {
  const ledger = node.ledger;
  const req = await readPushRequest(ledger, body);
  await checkTenantAndPeer(ledger, req.tenant, req.from);
  let accepted = 0;
  let inserted = 0;
  let alreadyHeld = 0;
  let pending = req.batches;
  const parsed = parseAhead(ledger, req.tenant, pending);
  let lastUnknown: SyncRefusedError | null = null;
  for (;;) {
    const retry: string[][] = [];
    lastUnknown = null;
    for (const batch of pending) {
      const r = await importSyncBatch(ledger, req.tenant, batch, parsed.get(batch) ?? null);
      if (r.status === 'imported') {
        accepted++;
        inserted += r.inserted;
        alreadyHeld += r.alreadyHeld;
      } else {
        if (r.status === 'unknown_node') lastUnknown = r.error;
        retry.push(batch);
      }
    }
    if (retry.length === 0 || retry.length === pending.length) {
      pending = retry;
      break;
    }
    pending = retry;
  }
  if (lastUnknown) {
    throw new SyncRefusedError(
      'unknown_node',
      `${lastUnknown.message}; ${accepted} other batch(es) of the push were stored`,
      lastUnknown.issues,
      ledger.node,
    );
  }
  const heads = await localPositions(ledger, req.tenant);
  return {
    protocol: SYNC_PROTOCOL_VERSION,
    accepted,
    inserted,
    alreadyHeld,
    deferred: pending.length,
    positions: mapToPositions(heads),
  };
}

/**
 * A push of several batches (a backlog) has each batch's lines checked in worker threads ahead of
 * its turn, while this thread writes the batches before it; a single batch is checked here, as
 * starting a worker would cost more than it saves.
 */
function parseAhead(
  ledger: Ledger,
  tenant: string,
  batches: readonly string[][],
): Map<readonly string[], Promise<ParsedBatch>> {
  const out = new Map<readonly string[], Promise<ParsedBatch>>();
  const workers = ledger.options.importWorkers;
  if (!workers || batches.length < 2) return out;
  parseInWorkers(workers, ledger, tenant, batches).forEach((p, i) => {
    if (p) out.set(batches[i]!, p);
  });
  return out;
}

export type { Positions };
