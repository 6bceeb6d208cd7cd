import type { z } from 'zod';
import { exportBatches } from '../ledger/export.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { HoldfastNode } from '../node/node.ts';
import { loadNodeKeys } from '../projections/node-keys.ts';
import {
  batchSpan,
  importSyncBatch,
  localPositions,
  readableEventTypes,
  type BatchSpan,
  type SyncNode,
} from './handlers.ts';
import {
  checkProtocol,
  mapToPositions,
  parseSyncBody,
  pullResponseSchema,
  pushResponseSchema,
  SYNC_PROTOCOL_VERSION,
  SyncRefusedError,
  type Positions,
  type PullRequest,
  type PullResponse,
  type PushRequest,
  type PushResponse,
  type SyncRefusal,
} from './protocol.ts';

/**
 * How a node reaches one peer. Implementations: HTTP (signed requests), in-memory (tests and the
 * simulation). A transport throws SyncRefusedError when the peer refused (rebuilt from the peer's
 * answer), anything else when the peer could not be reached or answered garbage.
 */
export interface SyncTransport {
  pull(req: PullRequest): Promise<PullResponse>;
  push(req: PushRequest): Promise<PushResponse>;
}

export interface SyncEngineOptions {
  /** Events asked for per pull and sent per push request. */
  maxEventsPerRequest: number;
  /** Events per exported batch (a batch always ends at a signed checkpoint, so may be longer). */
  batchEvents: number;
  /** Safety stop: at most this many pull (and, separately, push) requests in one round. */
  maxRequestsPerRound: number;
}

export const DEFAULT_SYNC_ENGINE_OPTIONS: SyncEngineOptions = {
  maxEventsPerRequest: 5_000,
  batchEvents: 1_000,
  maxRequestsPerRound: 10_000,
};

export interface SyncRoundResult {
  /** Events newly stored here from the peer. */
  pulled: number;
  /** Events newly stored by the peer from here. */
  pushed: number;
  /** Events sent either way that the receiver held already (replays after an interruption). */
  alreadyHeld: number;
  pullRequests: number;
  pushRequests: number;
  /** The peer's held positions after the round. */
  peerPositions: Positions;
  /** This node's held positions after the round. */
  positions: Positions;
  /** Events this node holds that the peer does not, after the round (0 when fully pushed). */
  unsentEvents: number;
  /** Events the peer holds that this node does not, after the round (0 when fully pulled). */
  unreceivedEvents: number;
  /**
   * Pulled batches left unimported because a node key is still unknown here, after retrying them
   * behind everything else of the round. They are asked for again next round.
   */
  refused: SyncRefusal[];
}

/**
 * Appends a `node.registered` event in this node's own chain vouching for a peer's key: how a site
 * pins its hub's key at enrolment and how a hub registers an enrolled site. Does nothing when the
 * same key is registered already; a different key is a later registration (key rotation).
 */
export async function registerPeerKey(
  node: SyncNode,
  tenant: string,
  peerNodeId: string,
  publicKey: string,
  role: 'hub' | 'site' | 'single',
  actor = `node:${node.ledger.node}`,
): Promise<boolean> {
  const keys = await loadNodeKeys(node.ledger.store.db, tenant);
  if (keys.get(peerNodeId) === publicKey) return false;
  await node.ledger.append([
    { tenant, type: 'node.registered', actor, payload: { node: peerNodeId, publicKey, role } },
  ]);
  return true;
}

/** Events held locally beyond the peer's positions, per chain (peer lacks them). */
export async function eventsBeyond(
  ledger: Ledger,
  tenant: string,
  mine: ReadonlyMap<string, number>,
  theirs: Positions,
): Promise<number> {
  let n = 0;
  for (const [node, seq] of mine) n += Math.max(0, seq - (theirs[node] ?? 0));
  return n;
}

/**
 * One node's sync with one peer: pull until the peer has nothing more, then push what the peer
 * lacks. Every position is derived from what is durably stored (chain heads), so a round cut
 * anywhere — transport error, crash — is resumed by simply running the next round: it re-asks from
 * what is held, and the receiver of a replay answers "already held".
 */
export class SyncEngine {
  readonly options: SyncEngineOptions;

  constructor(
    readonly node: HoldfastNode | SyncNode,
    readonly tenant: string,
    readonly transport: SyncTransport,
    options: Partial<SyncEngineOptions> = {},
  ) {
    this.options = { ...DEFAULT_SYNC_ENGINE_OPTIONS, ...options };
  }

  private get ledger(): Ledger {
    return this.node.ledger;
  }

  /** This node's held positions (highest seq per chain), from the store. */
  async positions(): Promise<Positions> {
    return mapToPositions(await localPositions(this.ledger, this.tenant));
  }

  /** Events this node holds that a peer with these positions does not. */
  async unsentEvents(peerPositions: Positions): Promise<number> {
    return eventsBeyond(
      this.ledger,
      this.tenant,
      await localPositions(this.ledger, this.tenant),
      peerPositions,
    );
  }

  /**
   * One round. With `audit`, the pull first asks again for events this node already holds (every
   * event with `true`, or the last `lastEvents` of each chain) and compares what the peer sends
   * with its own copy: an event the peer's store changed or lost is refused naming its node and seq
   * (bad_history), the same as new bad history. Costs a re-read of that range on both sides.
   */
  async syncOnce(options: { audit?: boolean | { lastEvents: number } } = {}): Promise<SyncRoundResult> {
    const result: SyncRoundResult = {
      pulled: 0,
      pushed: 0,
      alreadyHeld: 0,
      pullRequests: 0,
      pushRequests: 0,
      peerPositions: {},
      positions: {},
      unsentEvents: 0,
      unreceivedEvents: 0,
      refused: [],
    };
    let peer = await this.pull(result, options.audit ?? false);
    peer = await this.push(result, peer);
    const mine = await localPositions(this.ledger, this.tenant);
    result.positions = mapToPositions(mine);
    result.peerPositions = peer;
    result.unsentEvents = await eventsBeyond(this.ledger, this.tenant, mine, peer);
    let lacking = 0;
    for (const [node, seq] of Object.entries(peer)) lacking += Math.max(0, seq - (mine.get(node) ?? 0));
    result.unreceivedEvents = lacking;
    return result;
  }

  /**
   * Pulls until the peer says there is no more. Positions asked with advance in memory over what
   * each response brought (imported, already held, or held back), so a batch held back is not sent
   * again in the same round; the next round starts again from the store.
   *
   * A batch refused only because a node key is unknown here (the peer's export put that node's
   * chain before the chain that registers its key) is held back with every later batch of its
   * chain — importing those would leave a gap — and retried after the rest, while that makes progress.
   */
  private async pull(result: SyncRoundResult, audit: boolean | { lastEvents: number }): Promise<Positions> {
    const asked = await localPositions(this.ledger, this.tenant);
    if (audit !== false) {
      for (const [chain, seq] of asked)
        asked.set(chain, audit === true ? 0 : Math.max(0, seq - audit.lastEvents));
    }
    const heldBack = new Map<string, string[][]>();
    const unknownErrors = new Map<string, SyncRefusedError>();
    const eventTypes = readableEventTypes(this.ledger);
    let peer: Positions = {};
    for (;;) {
      if (result.pullRequests >= this.options.maxRequestsPerRound) break;
      const req: PullRequest = {
        protocol: SYNC_PROTOCOL_VERSION,
        tenant: this.tenant,
        from: this.ledger.node,
        positions: mapToPositions(asked),
        eventTypes,
        maxEvents: this.options.maxEventsPerRequest,
      };
      result.pullRequests++;
      const res = readResponse(pullResponseSchema, await this.transport.pull(req), 'pull response');
      peer = res.positions;
      let progressed = false;
      for (const batch of res.batches) {
        const span = batchSpan(batch);
        if (span) {
          if (span.lastSeq > (asked.get(span.node) ?? 0)) progressed = true;
          asked.set(span.node, Math.max(asked.get(span.node) ?? 0, span.lastSeq));
          const behind = heldBack.get(span.node);
          if (behind) {
            behind.push(batch);
            continue;
          }
        }
        const outcome = await importSyncBatch(this.ledger, this.tenant, batch);
        if (outcome.status === 'imported') {
          result.pulled += outcome.inserted;
          result.alreadyHeld += outcome.alreadyHeld;
        } else if (span) {
          heldBack.set(span.node, [batch]);
          if (outcome.status === 'unknown_node') unknownErrors.set(span.node, outcome.error);
        } else if (outcome.status === 'unknown_node') {
          result.refused.push(outcome.error.toJSON());
        }
      }
      // A peer answering "more" without moving us on would loop forever: end the round instead.
      if (!res.more || !progressed) break;
    }
    await this.retryHeldBack(heldBack, unknownErrors, result);
    return peer;
  }

  private async retryHeldBack(
    heldBack: Map<string, string[][]>,
    unknownErrors: Map<string, SyncRefusedError>,
    result: SyncRoundResult,
  ): Promise<void> {
    let progress = true;
    while (heldBack.size > 0 && progress) {
      progress = false;
      for (const [chain, batches] of [...heldBack]) {
        while (batches.length > 0) {
          const outcome = await importSyncBatch(this.ledger, this.tenant, batches[0]!);
          if (outcome.status !== 'imported') {
            if (outcome.status === 'unknown_node') unknownErrors.set(chain, outcome.error);
            break;
          }
          result.pulled += outcome.inserted;
          result.alreadyHeld += outcome.alreadyHeld;
          batches.shift();
          progress = true;
        }
        if (batches.length === 0) {
          heldBack.delete(chain);
          unknownErrors.delete(chain);
        }
      }
    }
    for (const chain of heldBack.keys()) {
      const e = unknownErrors.get(chain);
      if (e) result.refused.push(e.toJSON());
    }
  }

  /**
   * Pushes every chain's events beyond the peer's positions (the peer's own chain included: a
   * rebuilt hub gets its history back from the sites), in requests of about maxEventsPerRequest.
   * One export walk serves the whole round; each answer updates the peer's positions.
   */
  private async push(result: SyncRoundResult, peerAtStart: Positions): Promise<Positions> {
    let peer = peerAtStart;
    const afterSeq = new Map(Object.entries(peerAtStart));
    let pending: string[][] = [];
    let pendingEvents = 0;
    const send = async (): Promise<boolean> => {
      if (pending.length === 0) return true;
      const req: PushRequest = {
        protocol: SYNC_PROTOCOL_VERSION,
        tenant: this.tenant,
        from: this.ledger.node,
        batches: pending,
      };
      result.pushRequests++;
      const res = readResponse(pushResponseSchema, await this.transport.push(req), 'push response');
      peer = res.positions;
      result.pushed += res.inserted;
      result.alreadyHeld += res.alreadyHeld;
      pending = [];
      pendingEvents = 0;
      // The peer kept back batches that start after a gap on its side: the next round resends from
      // its positions; sending more now would only be kept back too.
      return res.deferred === 0;
    };
    for await (const batch of exportBatches(this.ledger, this.tenant, {
      afterSeq,
      maxEvents: this.options.batchEvents,
    })) {
      const span: BatchSpan | null = batchSpan(batch);
      pending.push(batch);
      pendingEvents += span?.events ?? batch.length;
      if (pendingEvents >= this.options.maxEventsPerRequest || pending.length >= 1_000) {
        if (!(await send())) return peer;
        if (result.pushRequests >= this.options.maxRequestsPerRound) return peer;
      }
    }
    await send();
    return peer;
  }
}

/** Checks a peer's answer: protocol version first (named), then shape. */
function readResponse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const protocol = (body as { protocol?: unknown } | null)?.protocol;
  if (typeof protocol === 'number') checkProtocol(protocol, 'the peer');
  return parseSyncBody(schema, body, what);
}
