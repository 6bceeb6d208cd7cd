import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Clock, NodeSigner } from '@holdfast/core';
import type { z } from 'zod';
import type { SyncTransport } from './engine.ts';
import {
  pullResponseSchema,
  pushResponseSchema,
  SYNC_BODY_LIMIT,
  SYNC_PROTOCOL_VERSION,
  SYNC_PULL_PATH,
  SYNC_PUSH_PATH,
  SyncRefusedError,
  syncRefusalSchema,
  type PullRequest,
  type PullResponse,
  type PushRequest,
  type PushResponse,
} from './protocol.ts';
import { HEADER, sha256Hex, signRequest, SignatureRefusedError, verifySignedResponse } from './signing.ts';

const gzipAsync = promisify(gzip);

/** An answer larger than this (decompressed) is not read: a peer cannot make this node hold more. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** The peer answered, but not with a sync answer or refusal: signature refusals, 413, 5xx, garbage. */
export class SyncHttpError extends Error {
  constructor(
    readonly status: number,
    /** The problem code (`sync_bad_signature`, `sync_replayed_nonce`, …) or `http_<status>`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SyncHttpError';
  }
}

export interface HttpSyncTransportOptions {
  /** The hub's base URL, e.g. http://hub.example:8080 */
  url: string;
  /** The hub's node id and the key pinned at enrolment: every answer must be signed by it. */
  peerNode: string;
  peerPublicKey: string;
  signer: NodeSigner;
  tenant: string;
  clock: Clock;
  /**
   * The key of another hub process of the provider that answered (several hub processes behind one
   * load balancer), or null: a key counts only if the pinned hub registered it as a hub in its own
   * chain (see `loadEndorsedHubKey`). Without it, only the pinned hub is believed.
   */
  endorsedPeerKey?: (node: string) => Promise<string | null>;
  fetch?: typeof fetch;
  /** Per request; a slow peer counts as away. */
  timeoutMs?: number;
}

/**
 * The sync transport over HTTP(S): signed requests, gzip both ways, every answer's signature checked
 * against the pinned key of the peer. A push larger than the peer's body limit is sent as several
 * requests (batches are never split) and their answers added up.
 */
export class HttpSyncTransport implements SyncTransport {
  private readonly fetchImpl: typeof fetch;

  constructor(readonly options: HttpSyncTransportOptions) {
    this.fetchImpl = options.fetch ?? fetch;
  }

  pull(req: PullRequest): Promise<PullResponse> {
    return this.post(SYNC_PULL_PATH, req, pullResponseSchema);
  }

  async push(req: PushRequest): Promise<PushResponse> {
    const parts = splitBySize(req, Math.floor(SYNC_BODY_LIMIT * 0.9));
    let total: PushResponse | null = null;
    for (const part of parts) {
      const r = await this.post(SYNC_PUSH_PATH, part, pushResponseSchema);
      total = total
        ? {
            ...r,
            accepted: total.accepted + r.accepted,
            inserted: total.inserted + r.inserted,
            alreadyHeld: total.alreadyHeld + r.alreadyHeld,
            deferred: total.deferred + r.deferred,
          }
        : r;
    }
    return total!;
  }

  private async post<S extends z.ZodType>(path: string, body: unknown, schema: S): Promise<z.output<S>> {
    const o = this.options;
    const text = JSON.stringify(body);
    // The signature covers the body as sent (compressed), so the peer checks it before inflating.
    const wire = await gzipAsync(text);
    const signed = signRequest(o.signer, o.clock, { method: 'POST', path, tenant: o.tenant, body: wire });
    const url = new URL(path, o.url);
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method: 'POST',
        headers: {
          ...signed,
          'content-type': 'application/json',
          'content-encoding': 'gzip',
          'accept-encoding': 'gzip',
          [HEADER.protocol]: String(SYNC_PROTOCOL_VERSION),
        },
        body: wire,
        signal: AbortSignal.timeout(o.timeoutMs ?? 60_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      throw new Error(`cannot reach ${o.peerNode} at ${url.origin}: ${cause ?? (error as Error).message}`);
    }
    // fetch undoes the gzip; the signature covers the decompressed JSON.
    const answer = await readBounded(res, MAX_RESPONSE_BYTES);
    const nonce = signed[HEADER.nonce]!;
    const signedByPeer = res.headers.get(HEADER.signature) !== null;
    if (signedByPeer || res.ok) {
      const answeredBy = res.headers.get(HEADER.node);
      let peer = { node: o.peerNode, publicKey: o.peerPublicKey };
      if (answeredBy && answeredBy !== o.peerNode && o.endorsedPeerKey) {
        const publicKey = await o.endorsedPeerKey(answeredBy);
        if (publicKey) peer = { node: answeredBy, publicKey };
      }
      verifySignedResponse(
        { peerNode: peer.node, peerPublicKey: peer.publicKey, tenant: o.tenant, path, requestNonce: nonce },
        { status: res.status, headers: res.headers, bodySha256: sha256Hex(answer) },
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(answer.toString('utf8'));
    } catch {
      throw new SyncHttpError(
        res.status,
        `http_${res.status}`,
        `${o.peerNode} answered ${res.status} with a body that is not JSON`,
      );
    }
    if (!res.ok) {
      const p = json as { code?: string; detail?: string; reason?: string };
      if (p.code === 'sync_refused') {
        const refusal = syncRefusalSchema.safeParse({
          reason: p.reason,
          message: p.detail ?? 'refused',
          issues: (json as { issues?: unknown }).issues ?? [],
          refusedBy: (json as { refusedBy?: unknown }).refusedBy ?? o.peerNode,
        });
        if (refusal.success) throw SyncRefusedError.fromJSON(refusal.data);
      }
      throw new SyncHttpError(
        res.status,
        p.code ?? `http_${res.status}`,
        `${o.peerNode} refused the request (${res.status} ${p.code ?? ''}): ${p.detail ?? 'no detail'}`,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success)
      throw new SyncRefusedError(
        'bad_request',
        `${o.peerNode}'s answer does not match sync protocol ${SYNC_PROTOCOL_VERSION}`,
        parsed.error.issues
          .slice(0, 20)
          .map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
        o.signer.node,
      );
    return parsed.data;
  }
}

/** Reads a response body, refusing to hold more than `limit` bytes. */
async function readBounded(res: Response, limit: number): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new SyncHttpError(res.status, 'answer_too_large', `the answer is larger than ${limit} bytes`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

/** Splits a push into requests whose JSON stays under `limit` bytes; a batch is never split. */
export function splitBySize(req: PushRequest, limit: number): PushRequest[] {
  const envelope = Buffer.byteLength(JSON.stringify({ ...req, batches: [] }));
  const parts: PushRequest[] = [];
  let current: string[][] = [];
  let size = envelope;
  for (const batch of req.batches) {
    const bytes = Buffer.byteLength(JSON.stringify(batch)) + 1;
    if (current.length > 0 && size + bytes > limit) {
      parts.push({ ...req, batches: current });
      current = [];
      size = envelope;
    }
    current.push(batch);
    size += bytes;
  }
  parts.push({ ...req, batches: current });
  return parts;
}

export { SignatureRefusedError };
