import { createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { ConflictError, UnauthenticatedError, ValidationError, type Clock } from '@holdfast/core';
import { z } from 'zod';
import { hashToken } from '../auth/sessions.ts';
import type { HoldfastConfig } from '../config.ts';
import { Ed25519Signer } from '../node/crypto.ts';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FILE, nodeFileSchema, type NodeFile } from '../node/identity.ts';
import { unwrapKeySet, wrapKeySet } from '../node/provider-keys.ts';
import { identityExists, initNode, type HoldfastNode } from '../node/node.ts';
import { registerPeerKey, SyncEngine, type SyncRoundResult } from './engine.ts';
import { HttpSyncTransport } from './http-transport.ts';
import type { Store } from '../store/store.ts';
import { SYNC_PROTOCOL_VERSION } from './protocol.ts';
import { DEFAULT_TOKEN_TTL_MINUTES, MAX_TOKEN_TTL_MINUTES } from './enrolment-limits.ts';

/**
 * Enrolment: how a site joins its provider's hub.
 *
 * 1. A provider admin issues a one-time token on the hub (`POST /api/v1/nodes/enrolment-tokens` or
 *    `holdfast nodes enrol-token`). It is shown once; the hub keeps only its SHA-256, an expiry and
 *    whether it was spent.
 * 2. The new site sends the token with its node id and public key (`POST /api/v1/nodes/enrol`, a
 *    route authenticated by the token alone). The hub spends the token, vouches for the site's key
 *    with a `node.registered` event in its own chain, and answers with the tenant and its own id and
 *    key.
 * 3. The site pins the hub's key (registers it in its own chain) and records the hub as its peer;
 *    the first sync then brings it the provider's whole ledger.
 */

export const ENROLMENT_TOKEN_PREFIX = 'hfe_';
export { DEFAULT_TOKEN_TTL_MINUTES, MAX_TOKEN_TTL_MINUTES } from './enrolment-limits.ts';

const nodeIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/,
    'must be 1-128 letters, digits or . _ : - (starting with a letter or digit)',
  );
const publicKeySchema = z.string().regex(/^[A-Za-z0-9_-]{40,120}$/, 'must be a base64url Ed25519 public key');

export const issueTokenBodySchema = z.strictObject({
  /** Minutes until the token expires (default a day, at most a week). */
  expiresInMinutes: z.number().int().min(1).max(MAX_TOKEN_TTL_MINUTES).optional(),
});

export const enrolBodySchema = z.strictObject({
  token: z.string().regex(/^hfe_[A-Za-z0-9_-]{43}$/, 'must be an enrolment token as issued (hfe_…)'),
  node: nodeIdSchema,
  publicKey: publicKeySchema,
});
export type EnrolBody = z.infer<typeof enrolBodySchema>;

export const enrolAnswerSchema = z.strictObject({
  tenant: z.string(),
  hub: z.strictObject({ node: z.string(), publicKey: z.string(), role: z.enum(['hub', 'site', 'single']) }),
  protocol: z.number().int(),
  /**
   * The provider's key set (it seals account secrets), AES-256-GCM under a key derived from the
   * one-time token: only the node that holds the token can open it. Absent from an older hub.
   */
  providerKey: z.string().max(4000).optional(),
});
export type EnrolAnswer = z.infer<typeof enrolAnswerSchema>;

export interface EnrolmentTokensTable {
  id: string;
  tenant: string;
  token_hash: string;
  role: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by_node: string | null;
}
type WithTokens = { enrolment_tokens: EnrolmentTokensTable };

/** Issues a one-time enrolment token for `tenant`; the token itself is returned once and never stored. */
export async function issueEnrolmentToken(
  store: Store,
  clock: Clock,
  fields: { tenant: string; createdBy: string; expiresInMinutes?: number },
): Promise<{ token: string; tokenId: string; expiresAt: string }> {
  const token = `${ENROLMENT_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const now = clock.nowMs();
  const expiresAt = now + (fields.expiresInMinutes ?? DEFAULT_TOKEN_TTL_MINUTES) * 60_000;
  const id = randomUUID();
  await store.db
    .withTables<WithTokens>()
    .insertInto('enrolment_tokens')
    .values({
      id,
      tenant: fields.tenant,
      token_hash: hashToken(token),
      role: 'site',
      created_by: fields.createdBy,
      created_at: now,
      expires_at: expiresAt,
      used_at: null,
      used_by_node: null,
    })
    .execute();
  return { token, tokenId: id, expiresAt: new Date(expiresAt).toISOString() };
}

function isEd25519Key(publicKey: string): boolean {
  try {
    return (
      createPublicKey({ key: Buffer.from(publicKey, 'base64url'), format: 'der', type: 'spki' })
        .asymmetricKeyType === 'ed25519'
    );
  } catch {
    return false;
  }
}

function checkPublicKey(publicKey: string): void {
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey, 'base64url'), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType === 'ed25519') return;
  } catch {
    // fall through to the refusal
  }
  throw new ValidationError([
    { path: 'body.publicKey', message: 'is not an Ed25519 public key (SPKI DER, base64url)' },
  ]);
}

/**
 * The hub's side of step 2: spends the token and registers the site's key. A token that is unknown,
 * spent or expired is refused with the same answer (nothing tells a guesser which). The token is
 * spent before the key is registered, so two concurrent uses cannot both succeed.
 */
export async function redeemEnrolmentToken(node: HoldfastNode, body: EnrolBody): Promise<EnrolAnswer> {
  checkPublicKey(body.publicKey);
  const now = node.clock.nowMs();
  const db = node.store.db.withTables<WithTokens>();
  const tokenHash = hashToken(body.token);
  const row = await db
    .selectFrom('enrolment_tokens')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .executeTakeFirst();
  const refused = new UnauthenticatedError(
    'this enrolment token is unknown, expired or already used: ask a provider admin for a new one',
  );
  if (!row || row.used_at !== null || Number(row.expires_at) <= now) throw refused;
  const tenant = row.tenant;
  if (body.node === node.identity.node)
    throw new ConflictError(`node id ${body.node} is the hub's own: choose another id for the site`);
  const existing = await node.store.db
    .withTables<{ node_keys: { tenant: string; node: string; public_key: string } }>()
    .selectFrom('node_keys')
    .select('public_key')
    .where('tenant', '=', tenant)
    .where('node', '=', body.node)
    .executeTakeFirst();
  if (existing && existing.public_key !== body.publicKey)
    throw new ConflictError(
      `node id ${body.node} is registered already with another key: choose another id (a node's key is replaced only by rotating it)`,
    );
  const spent = await db
    .updateTable('enrolment_tokens')
    .set({ used_at: now, used_by_node: body.node })
    .where('id', '=', row.id)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  if (Number(spent.numUpdatedRows) !== 1) throw refused;
  try {
    if (!existing) {
      await registerPeerKey(node, tenant, body.node, body.publicKey, 'site');
      await node.ledger.checkpointNow(tenant);
    }
  } catch (error) {
    // Nothing was registered: the token may be used again.
    await db
      .updateTable('enrolment_tokens')
      .set({ used_at: null, used_by_node: null })
      .where('id', '=', row.id)
      .execute();
    throw error;
  }
  return {
    tenant,
    hub: { node: node.identity.node, publicKey: node.identity.signer.publicKey, role: node.identity.role },
    protocol: SYNC_PROTOCOL_VERSION,
    ...(node.providerKeys.has(tenant)
      ? { providerKey: wrapKeySet(node.providerKeys.keySet(tenant), body.token) }
      : {}),
  };
}

/**
 * The site's side of step 2, before its identity exists: asks the hub at `hubUrl` to enrol the key.
 * Throws with the hub's own words when it refuses.
 */
export async function requestEnrolment(
  hubUrl: string,
  body: EnrolBody,
  fetchImpl: typeof fetch = fetch,
): Promise<EnrolAnswer> {
  const url = new URL('/api/v1/nodes/enrol', hubUrl);
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new Error(`cannot reach the hub at ${url.origin}: ${(error as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let detail = text.slice(0, 300);
    try {
      const p = JSON.parse(text) as { detail?: string; title?: string };
      detail = p.detail ?? p.title ?? detail;
    } catch {
      // not problem+json: show the start of what came back
    }
    throw new Error(`the hub refused the enrolment (${res.status}): ${detail}`);
  }
  const parsed = enrolAnswerSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new Error(
      `the hub's answer to the enrolment is not understood: ${parsed.error.issues[0]?.message}`,
    );
  if (parsed.data.protocol !== SYNC_PROTOCOL_VERSION)
    throw new Error(
      `the hub speaks sync protocol ${parsed.data.protocol}, this node ${SYNC_PROTOCOL_VERSION}: install the same Holdfast version on both`,
    );
  return parsed.data;
}

/**
 * `holdfast init --role site --hub URL --token T`: makes this node's key, enrols it with the hub,
 * creates the node for the hub's tenant with the hub recorded as its peer, pins the hub's key in
 * its own chain, and runs a first sync so the site starts with the provider's ledger (its users,
 * sites and open cases). A failed first sync is reported, not fatal: `holdfast serve` keeps trying.
 */
export async function joinHub(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir' | 'checkpointEvery'>,
  fields: { node: string; hubUrl: string; token: string; tenant?: string },
  fetchImpl: typeof fetch = fetch,
): Promise<{ node: HoldfastNode; answer: EnrolAnswer; firstSync: SyncRoundResult | Error }> {
  if (identityExists(config.dataDir))
    throw new Error(`${config.dataDir} holds a node already: a site joins from an empty data directory`);
  let hubUrl: URL;
  try {
    hubUrl = new URL(fields.hubUrl);
  } catch {
    throw new Error(`--hub must be the hub's URL, such as https://hub.example:8080 (got ${fields.hubUrl})`);
  }
  const keyPair = Ed25519Signer.generate(fields.node);
  const answer = await requestEnrolment(
    hubUrl.origin,
    { token: fields.token, node: fields.node, publicKey: keyPair.signer.publicKey },
    fetchImpl,
  );
  if (fields.tenant && fields.tenant !== answer.tenant)
    throw new Error(
      `the token is for provider ${answer.tenant}, not ${fields.tenant}: the hub registered this key for ${answer.tenant}; start again with a token for the right provider`,
    );
  const hub = { url: hubUrl.origin, node: answer.hub.node, publicKey: answer.hub.publicKey };
  const node = await initNode(
    config,
    { node: fields.node, tenant: answer.tenant, role: 'site', hub },
    {
      keyPair,
      ...(answer.providerKey ? { providerKeySet: unwrapKeySet(answer.providerKey, fields.token) } : {}),
    },
  );
  try {
    await registerPeerKey(node, answer.tenant, hub.node, hub.publicKey, answer.hub.role);
    await node.ledger.checkpointNow(answer.tenant);
    const transport = new HttpSyncTransport({
      url: hub.url,
      peerNode: hub.node,
      peerPublicKey: hub.publicKey,
      signer: node.identity.signer,
      tenant: answer.tenant,
      clock: node.clock,
      fetch: fetchImpl,
    });
    let firstSync: SyncRoundResult | Error;
    try {
      firstSync = await new SyncEngine(node, answer.tenant, transport).syncOnce();
    } catch (error) {
      firstSync = error as Error;
    }
    return { node, answer, firstSync };
  } catch (error) {
    await node.close();
    throw error;
  }
}

/**
 * `holdfast nodes repin-hub`: the way on when a site's hub now signs with another key than the one
 * pinned at enrolment (see diagnosis.ts, `hub_key_changed`). Only after an operator has confirmed the
 * new key with the hub's operator out of band: a key taken from the network that answers is exactly
 * what an impersonator would hand over. Registers the key in this site's chain (a later registration
 * of the hub's node id replaces the earlier one; a new node id is a new registration) and rewrites
 * the `hub` of node.json (temporary file, then rename). Nothing else changes: the site keeps its key,
 * its data and its chain. A running `holdfast serve` picks it up when restarted.
 */
export async function repinHub(
  node: HoldfastNode,
  dataDir: string,
  next: { node?: string; publicKey: string; url?: string },
): Promise<{ before: NodeFile['hub']; after: NonNullable<NodeFile['hub']>; changed: boolean }> {
  const before = node.identity.hub;
  if (node.identity.role !== 'site' || !before)
    throw new ValidationError([
      { path: 'role', message: 'this node is not a site with a hub: nothing to re-pin' },
    ]);
  const hubNode = nodeIdSchema.safeParse(next.node ?? before.node);
  if (!hubNode.success)
    throw new ValidationError([{ path: '--node', message: hubNode.error.issues[0]!.message }]);
  if (!isEd25519Key(next.publicKey))
    throw new ValidationError([
      {
        path: '--public-key',
        message: 'is not an Ed25519 public key (SPKI DER, base64url, as `holdfast nodes list` prints it)',
      },
    ]);
  let url = before.url;
  if (next.url !== undefined) {
    try {
      url = new URL(next.url).origin;
    } catch {
      throw new ValidationError([
        { path: '--url', message: "must be the hub's URL, such as https://hub.example:8080" },
      ]);
    }
  }
  const after = { url, node: hubNode.data, publicKey: next.publicKey };
  const changed =
    after.url !== before.url || after.node !== before.node || after.publicKey !== before.publicKey;
  if (!changed) return { before, after, changed };
  const tenant = node.identity.tenant;
  await registerPeerKey(node, tenant, after.node, after.publicKey, 'hub');
  await node.ledger.checkpointNow(tenant);
  const path = join(dataDir, NODE_FILE);
  const file = nodeFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  const temporary = `${path}.repin-${process.pid}`;
  writeFileSync(temporary, JSON.stringify({ ...file, hub: after }, null, 2) + '\n', {
    flag: 'w',
    mode: 0o600,
  });
  renameSync(temporary, path);
  return { before, after, changed };
}
