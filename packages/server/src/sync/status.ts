import { parseHlc, type Clock } from '@holdfast/core';
import type { HoldfastNode } from '../node/node.ts';
import { loadNodeKeys } from '../projections/node-keys.ts';
import type { Store } from '../store/store.ts';

/**
 * What this node knows of its sync peers, kept in the node-local `sync_peer_state` table so that a
 * restarted node still says when it last reached its hub:
 * - `outbound`: the hub a site calls (its runner records every attempt);
 * - `inbound`: a site that calls this hub (recorded on every verified request from it).
 *
 * Errors are stored as the refusal's or the network's message, which name nodes, seqs and reasons,
 * never payload content.
 */
export interface SyncPeerStateTable {
  tenant: string;
  peer: string;
  direction: 'outbound' | 'inbound';
  url: string | null;
  connected: number;
  since: number | null;
  last_attempt_at: number | null;
  last_success_at: number | null;
  last_error: string | null;
}
type WithPeerState = { sync_peer_state: SyncPeerStateTable };

const MAX_ERROR_CHARS = 1000;

export class SyncStatusStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  private get db() {
    return this.store.db.withTables<WithPeerState>();
  }

  async get(tenant: string, peer: string): Promise<SyncPeerStateTable | undefined> {
    const row = await this.db
      .selectFrom('sync_peer_state')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('peer', '=', peer)
      .executeTakeFirst();
    return row ? normalise(row) : undefined;
  }

  async list(tenant: string): Promise<SyncPeerStateTable[]> {
    const rows = await this.db
      .selectFrom('sync_peer_state')
      .selectAll()
      .where('tenant', '=', tenant)
      .orderBy('peer')
      .execute();
    return rows.map(normalise);
  }

  /** A sync with `peer` succeeded (either direction). */
  async recordSuccess(
    tenant: string,
    peer: string,
    direction: 'outbound' | 'inbound',
    url: string | null = null,
  ): Promise<void> {
    const now = this.clock.nowMs();
    const before = await this.get(tenant, peer);
    const since = before && before.connected === 1 && before.since !== null ? before.since : now;
    await this.upsert({
      tenant,
      peer,
      direction,
      url: url ?? before?.url ?? null,
      connected: 1,
      since,
      last_attempt_at: now,
      last_success_at: now,
      last_error: null,
    });
  }

  /** A sync with `peer` failed: unreachable, or refused (`error` says which and why). */
  async recordFailure(
    tenant: string,
    peer: string,
    direction: 'outbound' | 'inbound',
    error: string,
    url: string | null = null,
  ): Promise<void> {
    const now = this.clock.nowMs();
    const before = await this.get(tenant, peer);
    const since = before && before.connected === 0 && before.since !== null ? before.since : now;
    await this.upsert({
      tenant,
      peer,
      direction,
      url: url ?? before?.url ?? null,
      connected: 0,
      since,
      last_attempt_at: now,
      last_success_at: before?.last_success_at ?? null,
      last_error: error.slice(0, MAX_ERROR_CHARS),
    });
  }

  private async upsert(row: SyncPeerStateTable): Promise<void> {
    const { tenant: _t, peer: _p, ...rest } = row;
    await this.db
      .insertInto('sync_peer_state')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant', 'peer']).doUpdateSet(rest))
      .execute();
  }
}

function normalise(row: SyncPeerStateTable): SyncPeerStateTable {
  const n = (v: number | string | null) => (v === null ? null : Number(v));
  return {
    ...row,
    connected: Number(row.connected),
    since: n(row.since),
    last_attempt_at: n(row.last_attempt_at),
    last_success_at: n(row.last_success_at),
  };
}

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export interface SyncStatusReport {
  node: string;
  role: string;
  tenant: string;
  /** The hub this node calls, or null (a hub or a single node calls nobody). */
  peer: { node: string; url: string } | null;
  connected: boolean;
  /** Connected, or disconnected, since this time. */
  since: string | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  /** Events of this node's own chain the peer is not known to hold. */
  unsentEvents: number;
  /** How long the oldest unsent event has waited (0 when nothing waits). */
  lagSeconds: number;
  positions: { local: Record<string, number>; peer: Record<string, number> | null };
  /** On a hub: the sites that call it and when each was last seen. */
  sites: { node: string; lastSeenAt: string | null; connected: boolean; lastError: string | null }[];
}

/**
 * The status report of `GET /api/v1/sync/status`. `peerPositions` is what the peer said it held at
 * the last successful exchange (the runner keeps it); without it nothing is known to be sent.
 */
export async function syncStatusReport(
  node: HoldfastNode,
  statusStore: SyncStatusStore,
  peerPositions: ReadonlyMap<string, number> | null,
): Promise<SyncStatusReport> {
  const tenant = node.identity.tenant;
  const heads = await node.ledger.chainHeads(tenant);
  const local = Object.fromEntries([...heads].sort(([a], [b]) => (a < b ? -1 : 1)));
  const hub = node.identity.hub;
  const now = node.clock.nowMs();
  const rows = await statusStore.list(tenant);
  const keys = await loadNodeKeys(node.store.db, tenant);
  const sites = rows
    .filter((r) => r.direction === 'inbound')
    .map((r) => ({
      node: r.peer,
      lastSeenAt: iso(r.last_success_at),
      connected: r.connected === 1,
      lastError: r.last_error,
    }));
  // Registered sites never seen yet are listed too: "never" is an answer an operator needs.
  if (node.identity.role !== 'site') {
    for (const [id] of keys) {
      if (id !== node.identity.node && !sites.some((s) => s.node === id))
        sites.push({ node: id, lastSeenAt: null, connected: false, lastError: null });
    }
    sites.sort((a, b) => (a.node < b.node ? -1 : 1));
  }
  if (!hub) {
    return {
      node: node.identity.node,
      role: node.identity.role,
      tenant,
      peer: null,
      connected: false,
      since: null,
      lastSuccessAt: null,
      lastError: null,
      unsentEvents: 0,
      lagSeconds: 0,
      positions: { local, peer: null },
      sites,
    };
  }
  const row = await statusStore.get(tenant, hub.node);
  const own = heads.get(node.identity.node) ?? 0;
  const theirs = peerPositions?.get(node.identity.node) ?? 0;
  const unsentEvents = Math.max(0, own - theirs);
  let lagSeconds = 0;
  if (unsentEvents > 0) {
    const oldest = await node.ledger.readChain(tenant, node.identity.node, theirs + 1, theirs + 1);
    const wall = oldest[0] ? hlcWallMs(oldest[0].hlc) : null;
    if (wall !== null) lagSeconds = Math.max(0, Math.round((now - wall) / 1000));
  }
  return {
    node: node.identity.node,
    role: node.identity.role,
    tenant,
    peer: { node: hub.node, url: hub.url },
    connected: row?.connected === 1,
    since: iso(row?.since),
    lastSuccessAt: iso(row?.last_success_at),
    lastError: row?.last_error ?? null,
    unsentEvents,
    lagSeconds,
    positions: { local, peer: peerPositions ? Object.fromEntries(peerPositions) : null },
    sites,
  };
}

/** The wall-clock part of a hybrid logical clock value. */
function hlcWallMs(hlc: string): number | null {
  try {
    return parseHlc(hlc).wallMs;
  } catch {
    return null;
  }
}
