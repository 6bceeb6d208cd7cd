import { createHash, randomBytes } from 'node:crypto';
import type { Clock, NodeSigner } from '@holdfast/core';
import { sql } from 'kysely';
import { ledgerCrypto } from '../node/crypto.ts';
import { loadCheckedNodeKeys } from '../projections/node-keys.ts';
import type { Store } from '../store/store.ts';

/**
 * Signed sync requests. A node signs each request with its Ed25519 key over what the request is and
 * does: method, path, tenant, node, timestamp, a nonce and the SHA-256 of the body as sent (compressed when gzip; checked before it is inflated).
 * The receiver accepts it only from a node registered for that tenant, within ±5 minutes of its own
 * clock, and only once (the nonce is remembered until the timestamp could no longer pass).
 *
 * Answers are signed too, over the request's nonce, so a client knows the answer came from the peer
 * whose key it pinned at enrolment and was made for this request (events and checkpoints carry their
 * own hashes and signatures as well; this covers the rest of the answer).
 */
export const HEADER = {
  node: 'x-holdfast-node',
  tenant: 'x-holdfast-tenant',
  timestamp: 'x-holdfast-timestamp',
  nonce: 'x-holdfast-nonce',
  signature: 'x-holdfast-signature',
  protocol: 'x-holdfast-sync-protocol',
} as const;

/** How far a request's timestamp may be from the receiver's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{40,200}$/;

export function sha256Hex(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('hex');
}

export interface SignedRequestFields {
  method: string;
  path: string;
  tenant: string;
  node: string;
  timestamp: number;
  nonce: string;
  bodySha256: string;
}

export function requestSigningText(f: SignedRequestFields): string {
  return [
    'holdfast-sync-request-v1',
    f.method.toUpperCase(),
    f.path,
    f.tenant,
    f.node,
    String(f.timestamp),
    f.nonce,
    f.bodySha256,
  ].join('\n');
}

export function responseSigningText(f: {
  path: string;
  tenant: string;
  node: string;
  requestNonce: string;
  status: number;
  bodySha256: string;
}): string {
  return [
    'holdfast-sync-response-v1',
    f.path,
    f.tenant,
    f.node,
    f.requestNonce,
    String(f.status),
    f.bodySha256,
  ].join('\n');
}

/** Headers that sign one request (the body exactly as sent, compressed if it is sent gzip). */
export function signRequest(
  signer: NodeSigner,
  clock: Clock,
  r: { method: string; path: string; tenant: string; body: Buffer | string },
): Record<string, string> {
  const fields: SignedRequestFields = {
    method: r.method,
    path: r.path,
    tenant: r.tenant,
    node: signer.node,
    timestamp: clock.nowMs(),
    nonce: randomBytes(18).toString('base64url'),
    bodySha256: sha256Hex(r.body),
  };
  return {
    [HEADER.node]: fields.node,
    [HEADER.tenant]: fields.tenant,
    [HEADER.timestamp]: String(fields.timestamp),
    [HEADER.nonce]: fields.nonce,
    [HEADER.signature]: signer.sign(requestSigningText(fields)),
  };
}

/** Why a signed request was refused; `code` is what the problem+json answer carries. */
export class SignatureRefusedError extends Error {
  constructor(
    readonly code:
      | 'unsigned'
      | 'unknown_node'
      | 'bad_signature'
      | 'stale_timestamp'
      | 'replayed_nonce'
      | 'unsupported_protocol',
    message: string,
  ) {
    super(message);
    this.name = 'SignatureRefusedError';
  }
}

export interface VerifiedCaller {
  tenant: string;
  node: string;
  nonce: string;
}

/**
 * Checks a signed request and spends its nonce. Order: well-formed headers, known node for that
 * tenant, signature, timestamp, then the nonce (remembered only for a request that passed the rest,
 * so garbage cannot fill the table).
 */
export async function verifySignedRequest(
  store: Store,
  clock: Clock,
  r: {
    method: string;
    path: string;
    headers: Record<string, string | string[] | undefined>;
    bodySha256: string;
  },
): Promise<VerifiedCaller> {
  const header = (name: string) => {
    const v = r.headers[name];
    return typeof v === 'string' ? v : undefined;
  };
  const node = header(HEADER.node);
  const tenant = header(HEADER.tenant);
  const timestampText = header(HEADER.timestamp);
  const nonce = header(HEADER.nonce);
  const signature = header(HEADER.signature);
  if (!node || !tenant || !timestampText || !nonce || !signature)
    throw new SignatureRefusedError(
      'unsigned',
      `a sync request must carry ${Object.values(HEADER)
        .filter((h) => h !== HEADER.protocol)
        .join(', ')}`,
    );
  if (!ID_PATTERN.test(node) || !ID_PATTERN.test(tenant))
    throw new SignatureRefusedError(
      'unsigned',
      `${HEADER.node} and ${HEADER.tenant} must be node and tenant ids`,
    );
  if (!/^\d{1,16}$/.test(timestampText))
    throw new SignatureRefusedError('unsigned', `${HEADER.timestamp} must be milliseconds since 1970`);
  if (!NONCE_PATTERN.test(nonce))
    throw new SignatureRefusedError('unsigned', `${HEADER.nonce} must be 16-64 base64url characters`);
  if (!SIGNATURE_PATTERN.test(signature))
    throw new SignatureRefusedError('bad_signature', `${HEADER.signature} is not a base64url signature`);

  // Whom to trust comes from the ledger itself, never from the node_keys read model.
  const keys = await loadCheckedNodeKeys(store.db, tenant);
  const publicKey = keys.get(node);
  if (!publicKey)
    throw new SignatureRefusedError(
      'unknown_node',
      `node ${node} is not registered for tenant ${tenant} on this node: enrol it with a token from a provider admin`,
    );
  const timestamp = Number(timestampText);
  const text = requestSigningText({
    method: r.method,
    path: r.path,
    tenant,
    node,
    timestamp,
    nonce,
    bodySha256: r.bodySha256,
  });
  let good = false;
  try {
    good = ledgerCrypto.verifySignature(publicKey, text, signature);
  } catch {
    good = false;
  }
  if (!good)
    throw new SignatureRefusedError(
      'bad_signature',
      `the signature does not verify against the registered key of node ${node}`,
    );
  const now = clock.nowMs();
  if (Math.abs(now - timestamp) > MAX_CLOCK_SKEW_MS)
    throw new SignatureRefusedError(
      'stale_timestamp',
      `the request's timestamp is ${Math.round((timestamp - now) / 1000)} s from this node's clock (at most ±${MAX_CLOCK_SKEW_MS / 1000} s): check both clocks`,
    );
  await spendNonce(store, { tenant, node, nonce, expiresAt: timestamp + MAX_CLOCK_SKEW_MS, now });
  return { tenant, node, nonce };
}

async function spendNonce(
  store: Store,
  n: { tenant: string; node: string; nonce: string; expiresAt: number; now: number },
): Promise<void> {
  const db = store.db.withTables<{ sync_nonces: SyncNoncesTable }>();
  // Forget nonces whose timestamps could no longer pass the skew check: the table stays small.
  await db
    .deleteFrom('sync_nonces')
    .where('expires_at', '<', n.now - MAX_CLOCK_SKEW_MS)
    .execute();
  const inserted = await db
    .insertInto('sync_nonces')
    .values({ tenant: n.tenant, node: n.node, nonce: n.nonce, expires_at: n.expiresAt })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0)
    throw new SignatureRefusedError(
      'replayed_nonce',
      `this request (nonce from node ${n.node}) was seen before: a replay is refused`,
    );
}

export interface SyncNoncesTable {
  tenant: string;
  node: string;
  nonce: string;
  expires_at: number;
}

/** Checks a signed answer against the peer's pinned key; throws naming what is wrong. */
export function verifySignedResponse(
  expect: { peerNode: string; peerPublicKey: string; tenant: string; path: string; requestNonce: string },
  r: { status: number; headers: Headers; bodySha256: string },
): void {
  const node = r.headers.get(HEADER.node);
  const signature = r.headers.get(HEADER.signature);
  if (!node || !signature)
    throw new SignatureRefusedError('unsigned', `the answer from ${expect.path} is not signed by a node`);
  if (node !== expect.peerNode)
    throw new SignatureRefusedError(
      'unknown_node',
      `the answer is signed by node ${node}, but this node's peer is ${expect.peerNode}`,
    );
  const text = responseSigningText({
    path: expect.path,
    tenant: expect.tenant,
    node,
    requestNonce: expect.requestNonce,
    status: r.status,
    bodySha256: r.bodySha256,
  });
  let good = false;
  try {
    good = ledgerCrypto.verifySignature(expect.peerPublicKey, text, signature);
  } catch {
    good = false;
  }
  if (!good)
    throw new SignatureRefusedError(
      'bad_signature',
      `the answer's signature does not verify against the pinned key of ${expect.peerNode}`,
    );
}

/** Forgets expired nonces (also done on every verification). */
export async function pruneNonces(store: Store, now: number): Promise<void> {
  await sql`delete from sync_nonces where expires_at < ${now - MAX_CLOCK_SKEW_MS}`.execute(store.db);
}
