import { DomainError } from '@holdfast/core';
import { z } from 'zod';

/**
 * The sync protocol between nodes of one tenant: pull ("what do you hold after these per-chain
 * positions?") and push ("here are batches you lack"). Transport-agnostic: the HTTP routes and the
 * in-memory transport carry exactly these JSON bodies.
 *
 * Batches are the ledger's NDJSON batches as `exportBatches` produces them (one node's contiguous run
 * ending at a checkpoint signed by that node, plus every checkpoint of the run, own and witnessed),
 * so each batch authenticates itself and the receiver needs to trust no transport or relay.
 */
export const SYNC_PROTOCOL_VERSION = 1;

/** Upper bounds that keep one request or response to a size a node can hold and check at once. */
export const SYNC_LIMITS = {
  maxEventsPerRequest: 20_000,
  maxBatchesPerRequest: 2_000,
  maxLinesPerBatch: 50_000,
  /** One NDJSON line: an event envelope with its payload, or a checkpoint. */
  maxLineChars: 256 * 1024,
} as const;

const nodeId = z.string().min(1).max(128);
const tenantId = z.string().min(1).max(128);
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Highest seq held per chain (node id -> seq). A chain absent from the record is held up to 0. */
export const positionsSchema = z.record(nodeId, seq);
export type Positions = z.infer<typeof positionsSchema>;

const batchSchema = z
  .array(z.string().min(1).max(SYNC_LIMITS.maxLineChars))
  .min(1)
  .max(SYNC_LIMITS.maxLinesPerBatch);
const batchesSchema = z.array(batchSchema).max(SYNC_LIMITS.maxBatchesPerRequest);
/** Any integer here: a newer peer's version is read so it can be refused by name, not by schema. */
const protocolVersion = z.number().int().min(1).max(1_000_000);

export const pullRequestSchema = z.strictObject({
  protocol: protocolVersion,
  tenant: tenantId,
  /** The requesting node. */
  from: nodeId,
  /** The requester's held positions: the responder sends what lies after them. */
  positions: positionsSchema,
  /** Event type -> highest schema version the requester can read. */
  eventTypes: z.record(z.string().min(1).max(128), z.number().int().min(1).max(1_000_000)),
  /** Roughly how many events the response may carry (a batch is never split, so it may exceed this). */
  maxEvents: z.number().int().min(1).max(SYNC_LIMITS.maxEventsPerRequest),
});
export type PullRequest = z.infer<typeof pullRequestSchema>;

export const pullResponseSchema = z.strictObject({
  protocol: protocolVersion,
  /** The responder's held positions, every chain of the tenant. */
  positions: positionsSchema,
  batches: batchesSchema,
  /** True when the response was cut short: ask again with the new positions. */
  more: z.boolean(),
});
export type PullResponse = z.infer<typeof pullResponseSchema>;

export const pushRequestSchema = z.strictObject({
  protocol: protocolVersion,
  tenant: tenantId,
  from: nodeId,
  batches: batchesSchema,
});
export type PushRequest = z.infer<typeof pushRequestSchema>;

export const pushResponseSchema = z.strictObject({
  protocol: protocolVersion,
  /** Batches stored or already held (every event of them is now held by the responder). */
  accepted: z.number().int().min(0),
  /** Events newly stored. */
  inserted: z.number().int().min(0),
  /** Events the responder held already (a replayed push). */
  alreadyHeld: z.number().int().min(0),
  /**
   * Batches not taken because they start after a gap in the responder's copy of their chain (an
   * earlier batch was lost on the way); the pusher resends from `positions`. Not an error.
   */
  deferred: z.number().int().min(0),
  /** The responder's held positions after the push. */
  positions: positionsSchema,
});
export type PushResponse = z.infer<typeof pushResponseSchema>;

export type SyncRefusalReason =
  /** The peer speaks another protocol version. */
  | 'protocol_version'
  /** An event type or schema version one side cannot read. */
  | 'schema_version'
  /** The tenant is not one this node belongs to. */
  | 'tenant'
  /** A node (requester, event chain or checkpoint signer) whose key is not registered here. */
  | 'unknown_node'
  /** A batch failed its checks (hash, link, fork, signature, coverage): nothing of it was stored. */
  | 'bad_history'
  /** The request or response did not match the protocol's schema. */
  | 'bad_request';

/** One problem in a refused batch, placed by chain position when the line could be read. */
export interface SyncIssue {
  /** The chain the offending line belongs to, when the line could be read. */
  node?: string;
  seq?: number;
  /** Line number within the batch (from 1). */
  line?: number;
  path: string;
  message: string;
}

export const syncRefusalSchema = z.strictObject({
  reason: z.enum([
    'protocol_version',
    'schema_version',
    'tenant',
    'unknown_node',
    'bad_history',
    'bad_request',
  ]),
  message: z.string(),
  issues: z.array(
    z.strictObject({
      node: z.string().optional(),
      seq: z.number().int().optional(),
      line: z.number().int().optional(),
      path: z.string(),
      message: z.string(),
    }),
  ),
  /** Which node refused (the responder, or this node refusing a response). */
  refusedBy: z.string().optional(),
});
export type SyncRefusal = z.infer<typeof syncRefusalSchema>;

/**
 * A node refusing sync traffic it cannot or must not take, saying why. Nothing of the refused
 * request or batch was stored. Crosses transports as `toJSON()` / `SyncRefusedError.fromJSON()`.
 * Messages name nodes, seqs, lines, event types and versions, never payload content.
 */
export class SyncRefusedError extends DomainError {
  readonly code = 'sync_refused';
  constructor(
    readonly reason: SyncRefusalReason,
    message: string,
    readonly issues: SyncIssue[] = [],
    readonly refusedBy?: string,
  ) {
    super(message);
  }

  toJSON(): SyncRefusal {
    return {
      reason: this.reason,
      message: this.message,
      issues: this.issues,
      ...(this.refusedBy !== undefined ? { refusedBy: this.refusedBy } : {}),
    };
  }

  static fromJSON(value: unknown): SyncRefusedError {
    const r = syncRefusalSchema.parse(value);
    return new SyncRefusedError(r.reason, r.message, r.issues, r.refusedBy);
  }
}

/** Refuses any protocol version but ours, naming both. */
export function checkProtocol(theirs: number, who: string): void {
  if (theirs !== SYNC_PROTOCOL_VERSION) {
    throw new SyncRefusedError(
      'protocol_version',
      `${who} speaks sync protocol version ${theirs}, this node speaks version ${SYNC_PROTOCOL_VERSION}; ` +
        (theirs > SYNC_PROTOCOL_VERSION ? 'upgrade this node' : `upgrade ${who}`),
      [{ path: 'protocol', message: `version ${theirs} is not ${SYNC_PROTOCOL_VERSION}` }],
    );
  }
}

/** Parses a body against a protocol schema; a mismatch is refused naming the fields. */
export function parseSyncBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  throw new SyncRefusedError(
    'bad_request',
    `${what} does not match sync protocol ${SYNC_PROTOCOL_VERSION}`,
    r.error.issues
      .slice(0, 20)
      .map((i) => ({ path: i.path.map(String).join('.') || what, message: i.message })),
  );
}

export function positionsToMap(p: Positions): Map<string, number> {
  return new Map(Object.entries(p));
}

export function mapToPositions(m: ReadonlyMap<string, number>): Positions {
  const out: Positions = {};
  for (const [k, v] of [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[k] = v;
  return out;
}

/** Where a hub serves sync: the HTTP transport posts to these, the routes serve them. */
export const SYNC_PULL_PATH = '/api/v1/sync/pull';
export const SYNC_PUSH_PATH = '/api/v1/sync/push';

/**
 * Sync request bodies may be larger than a user's (1 MiB), but stay bounded: 8 MiB of JSON after
 * decompression (about ten thousand events; the HTTP transport splits a larger push). It is checked
 * on the decompressed bytes, so a small compressed body cannot expand without limit.
 */
export const SYNC_BODY_LIMIT = 8 * 1024 * 1024;
