import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { ConflictError, ValidationError, type Clock } from '@holdfast/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { actorOf } from '../http/context.ts';
import { sendProblem, type Problem } from '../http/errors.ts';
import { authedRoute, publicRoute, type RouteSpec } from '../http/routes.ts';
import type { HoldfastNode } from '../node/node.ts';
import { loadNodeKeys } from '../projections/node-keys.ts';
import {
  enrolBodySchema,
  issueEnrolmentToken,
  issueTokenBodySchema,
  redeemEnrolmentToken,
} from './enrolment.ts';
import { handlePull, handlePush } from './handlers.ts';
import {
  pullRequestSchema,
  pushRequestSchema,
  SYNC_BODY_LIMIT,
  SYNC_PROTOCOL_VERSION,
  SYNC_PULL_PATH,
  SYNC_PUSH_PATH,
  SyncRefusedError,
  type SyncRefusalReason,
} from './protocol.ts';
import {
  HEADER,
  responseSigningText,
  sha256Hex,
  SignatureRefusedError,
  verifySignedRequest,
  type VerifiedCaller,
} from './signing.ts';
import { emptySyncStatus, SyncStatusStore, syncStatusReport } from './status.ts';

const SYNC_PATHS = new Set([SYNC_PULL_PATH, SYNC_PUSH_PATH]);

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
/** Callers whose signature over the body as sent was verified before the body was inflated or parsed. */
const verifiedCallers = new WeakMap<FastifyRequest, VerifiedCaller>();

/** How many sync bodies were inflated since start: a test shows a forged one never is. */
export const syncInflation = { runs: 0 };

const tooLarge = () =>
  Object.assign(new Error('the sync request body is too large'), {
    statusCode: 413,
    code: 'FST_ERR_CTP_BODY_TOO_LARGE',
  });

/**
 * Request bodies of the sync routes. The body as sent (gzip or not) is read, at most
 * SYNC_BODY_LIMIT bytes, and the caller's signature is checked over exactly those bytes before
 * anything else is done with them: a forged request costs one hash and one signature check, never
 * an inflation or a parse. A signed gzip body is then inflated to at most SYNC_BODY_LIMIT bytes
 * (more is refused with 413 as soon as it is reached). A sync request whose protocol header names
 * another version is refused before its body is read.
 */
export function installSyncBodyHandling(
  app: FastifyInstance,
  deps: { node: HoldfastNode; clock: Clock },
): void {
  app.addHook('preParsing', async (request, reply, payload) => {
    if (!SYNC_PATHS.has(request.routeOptions.url ?? '')) return payload;
    const encoding = String(request.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'gzip' && encoding !== 'identity') {
      throw Object.assign(new Error('unsupported content encoding'), {
        statusCode: 415,
        code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      });
    }
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > SYNC_BODY_LIMIT) throw tooLarge();
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of payload as Readable) {
      received += (chunk as Buffer).length;
      if (received > SYNC_BODY_LIMIT) throw tooLarge();
      chunks.push(chunk as Buffer);
    }
    const wire = Buffer.concat(chunks);
    try {
      verifiedCallers.set(
        request,
        await verifySignedRequest(deps.node.store, deps.clock, {
          method: 'POST',
          path: request.routeOptions.url ?? '',
          headers: request.headers,
          bodySha256: sha256Hex(wire),
        }),
      );
    } catch (error) {
      if (!(error instanceof SignatureRefusedError)) throw error;
      void sendProblem(reply, signatureProblem(error));
      return undefined;
    }
    let body = wire;
    if (encoding === 'gzip') {
      syncInflation.runs++;
      try {
        body = await gunzipAsync(wire, { maxOutputLength: SYNC_BODY_LIMIT });
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge();
        throw Object.assign(new Error('the gzip body could not be decompressed'), { statusCode: 400 });
      }
    }
    // Fastify compares Content-Length with the bytes received on the wire.
    const out = Readable.from([body]) as Readable & { receivedEncodedLength: number };
    out.receivedEncodedLength = received;
    return out;
  });
  app.addHook('preHandler', async (request, reply) => {
    if (!SYNC_PATHS.has(request.routeOptions.url ?? '')) return;
    const version = request.headers[HEADER.protocol];
    if (version !== undefined && version !== String(SYNC_PROTOCOL_VERSION)) {
      const refusal = new SyncRefusedError(
        'protocol_version',
        `the request speaks sync protocol ${String(version).slice(0, 20)}, this node speaks ${SYNC_PROTOCOL_VERSION}; install the same Holdfast version on both nodes`,
        [{ path: `headers.${HEADER.protocol}`, message: `is not ${SYNC_PROTOCOL_VERSION}` }],
      );
      await sendProblem(reply, refusalProblem(refusal));
    }
  });
}

const REFUSAL_STATUS: Record<SyncRefusalReason, number> = {
  protocol_version: 400,
  bad_request: 400,
  schema_version: 422,
  bad_history: 422,
  tenant: 403,
  unknown_node: 403,
};

function refusalProblem(e: SyncRefusedError): Problem & Record<string, unknown> {
  return {
    type: `urn:holdfast:problem:sync_refused`,
    title: 'Sync refused',
    status: REFUSAL_STATUS[e.reason],
    code: 'sync_refused',
    detail: e.message,
    reason: e.reason,
    issues: e.issues.slice(0, 50),
    ...(e.refusedBy ? { refusedBy: e.refusedBy } : {}),
  };
}

const SIGNATURE_STATUS: Record<SignatureRefusedError['code'], number> = {
  unsigned: 401,
  bad_signature: 401,
  stale_timestamp: 401,
  replayed_nonce: 401,
  unknown_node: 403,
  unsupported_protocol: 400,
};

function signatureProblem(e: SignatureRefusedError): Problem & Record<string, unknown> {
  return {
    type: `urn:holdfast:problem:sync_${e.code}`,
    title: 'Sync request not authenticated',
    status: SIGNATURE_STATUS[e.code],
    code: `sync_${e.code}`,
    detail: e.message,
    reason: e.code,
  };
}

export interface SyncRouteDeps {
  node: HoldfastNode;
  clock: Clock;
  status: SyncStatusStore;
  /** What the hub said it held at the last exchange (a site's runner keeps it), for the status page. */
  peerPositions(): ReadonlyMap<string, number> | null;
}

/** Sends a JSON answer signed for the verified caller, gzipped when the caller accepts it. */
async function sendSigned(
  reply: FastifyReply,
  request: FastifyRequest,
  deps: SyncRouteDeps,
  caller: VerifiedCaller,
  path: string,
  status: number,
  value: unknown,
  contentType: string,
): Promise<FastifyReply> {
  const text = JSON.stringify(value);
  const signature = deps.node.identity.signer.sign(
    responseSigningText({
      path,
      tenant: caller.tenant,
      node: deps.node.identity.node,
      requestNonce: caller.nonce,
      status,
      bodySha256: sha256Hex(text),
    }),
  );
  reply
    .code(status)
    .header(HEADER.node, deps.node.identity.node)
    .header(HEADER.signature, signature)
    .header(HEADER.protocol, String(SYNC_PROTOCOL_VERSION))
    .type(contentType);
  if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) {
    reply.header('content-encoding', 'gzip');
    return reply.send(await gzipAsync(text));
  }
  return reply.send(text);
}

/**
 * One node-signed route: the body has passed its schema (so bad input names its field), then the
 * signed tenant and node must be the body's, the signature must verify, then the exchange runs.
 * Refusals are problem+json naming the reason; once the caller is verified they are signed too.
 */
function nodeSignedRoute<S extends typeof pullRequestSchema | typeof pushRequestSchema>(
  deps: SyncRouteDeps,
  path: string,
  summary: string,
  body: S,
  exchange: (body: z.output<S>) => Promise<unknown>,
): RouteSpec {
  return publicRoute({
    method: 'POST',
    url: path,
    summary: `${summary} (node-signed: no user session; see the sync headers)`,
    access: { public: true },
    body,
    bodyLimit: SYNC_BODY_LIMIT,
    async handler({ body: parsed, request, reply }) {
      const b = parsed as z.output<S>;
      const signedTenant = request.headers[HEADER.tenant];
      const signedNode = request.headers[HEADER.node];
      if (typeof signedTenant === 'string' && b.tenant !== signedTenant)
        throw new ValidationError([
          { path: 'body.tenant', message: `is not the tenant the request is signed for (${HEADER.tenant})` },
        ]);
      if (typeof signedNode === 'string' && b.from !== signedNode)
        throw new ValidationError([
          { path: 'body.from', message: `is not the node that signed the request (${HEADER.node})` },
        ]);
      // Verified over the body as sent before it was inflated or parsed (installSyncBodyHandling).
      const caller = verifiedCallers.get(request);
      if (!caller) throw new Error('a sync request reached its handler without a verified signature');
      try {
        const answer = await exchange(b);
        await deps.status.recordSuccess(caller.tenant, caller.node, 'inbound');
        return await sendSigned(reply, request, deps, caller, path, 200, answer, 'application/json');
      } catch (error) {
        if (!(error instanceof SyncRefusedError)) throw error;
        await deps.status.recordFailure(caller.tenant, caller.node, 'inbound', error.message);
        const p = refusalProblem(error);
        return sendSigned(reply, request, deps, caller, path, p.status, p, 'application/problem+json');
      }
    },
  });
}

/** Sync, enrolment, the node registry and the sync status. */
export function syncRoutes(deps: SyncRouteDeps): RouteSpec[] {
  const { node } = deps;
  return [
    nodeSignedRoute(
      deps,
      SYNC_PULL_PATH,
      'Pull: the events this node holds after the caller’s per-chain positions, in signed batches',
      pullRequestSchema,
      (body) => handlePull(node, body),
    ),
    nodeSignedRoute(
      deps,
      SYNC_PUSH_PATH,
      'Push: batches of events this node lacks; each batch is checked and stored atomically',
      pushRequestSchema,
      (body) => handlePush(node, body),
    ),
    publicRoute({
      method: 'POST',
      url: '/api/v1/nodes/enrol',
      summary:
        'A new site joins with a one-time enrolment token: its key is registered; the answer names the tenant and the hub’s key',
      access: { public: true },
      body: enrolBodySchema,
      async handler({ body }) {
        return redeemEnrolmentToken(node, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/nodes/enrolment-tokens',
      summary: 'Issue a one-time enrolment token for a new site (shown once; expires)',
      access: { permission: 'sites.manage' },
      body: issueTokenBodySchema,
      async handler({ ctx, body, reply }) {
        if (node.identity.role === 'site')
          throw new ConflictError('this node is a site: issue enrolment tokens on the provider’s hub');
        const issued = await issueEnrolmentToken(node.store, deps.clock, {
          tenant: ctx.tenant,
          createdBy: actorOf(ctx),
          expiresInMinutes: body.expiresInMinutes,
        });
        reply.code(201);
        return {
          token: issued.token,
          expiresAt: issued.expiresAt,
          hub: node.identity.node,
          use: 'holdfast init --role site --hub <this hub’s URL> --token <token> --node <new site id>',
        };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/nodes',
      summary: 'The provider’s registered nodes: ids, roles, public keys, and when each last synced here',
      access: { permission: 'sites.manage' },
      async handler({ ctx }) {
        const rows = await node.store.db
          .withTables<{
            node_keys: {
              tenant: string;
              node: string;
              public_key: string;
              role: string;
              registered_by: string;
            };
          }>()
          .selectFrom('node_keys')
          .select(['node', 'public_key', 'role', 'registered_by'])
          .where('tenant', '=', ctx.tenant)
          .orderBy('node')
          .execute();
        const seen = new Map((await deps.status.list(ctx.tenant)).map((s) => [s.peer, s]));
        return {
          nodes: rows.map((r) => ({
            node: r.node,
            role: r.role,
            publicKey: r.public_key,
            registeredBy: r.registered_by,
            self: r.node === node.identity.node,
            lastSyncAt: seen.get(r.node)?.last_success_at
              ? new Date(seen.get(r.node)!.last_success_at!).toISOString()
              : null,
          })),
        };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/sync/status',
      summary:
        'Sync status: how the last round with the hub ended (ok, failed, refused) and why, its age, the way on, lasting alarms, unsent events, lag; on a hub, its sites',
      access: { permission: 'session.self' },
      async handler({ ctx }) {
        const report = await syncStatusReport(node, deps.status, deps.peerPositions());
        // Another provider's user on a shared node learns nothing of this node's sync.
        if (ctx.tenant !== report.tenant) return emptySyncStatus(report.node, report.role, ctx.tenant);
        return report;
      },
    }),
  ];
}

export { loadNodeKeys };
