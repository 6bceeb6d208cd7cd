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
  /** The failure's kind (see diagnosis.ts), null after a good round. */
  problem: string | null;
  /** The way on from that failure. */
  advice: string | null;
}

/** A lasting alarm (one row per tenant and kind): raised by the runner, cleared only by an operator. */
export interface SyncAlarmsTable {
  tenant: string;
  kind: string;
  raised_at: number;
  last_seen_at: number;
  message: string;
  advice: string;
  cleared_at: number | null;
  cleared_by: string | null;
  cleared_reason: string | null;
}
type WithPeerState = { sync_peer_state: SyncPeerStateTable; sync_alarms: SyncAlarmsTable };

export interface SyncAlarm {
  kind: string;
  raisedAt: string;
  lastSeenAt: string;
  message: string;
  advice: string;
}

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
    if (ownRoundsWin(before, direction)) return;
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
      problem: null,
      advice: null,
    });
  }

  /** A sync with `peer` failed: unreachable, or refused (`error` says which and why). */
  async recordFailure(
    tenant: string,
    peer: string,
    direction: 'outbound' | 'inbound',
    error: string,
    url: string | null = null,
    diagnosis: { problem: string; advice: string } | null = null,
  ): Promise<void> {
    const now = this.clock.nowMs();
    const before = await this.get(tenant, peer);
    if (ownRoundsWin(before, direction)) return;
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
      problem: diagnosis?.problem ?? null,
      advice: diagnosis?.advice ?? null,
    });
  }

  /**
   * Raises (or keeps raised) a lasting alarm. A cleared alarm raised again starts afresh: the
   * operator's clearing said it was dealt with, and it is back.
   */
  async raiseAlarm(tenant: string, kind: string, message: string, advice: string): Promise<void> {
    const now = this.clock.nowMs();
    const before = await this.db
      .selectFrom('sync_alarms')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('kind', '=', kind)
      .executeTakeFirst();
    const active = before && before.cleared_at === null;
    const row: SyncAlarmsTable = {
      tenant,
      kind,
      raised_at: active ? Number(before.raised_at) : now,
      last_seen_at: now,
      message: message.slice(0, MAX_ERROR_CHARS),
      advice,
      cleared_at: null,
      cleared_by: null,
      cleared_reason: null,
    };
    const { tenant: _t, kind: _k, ...rest } = row;
    await this.db
      .insertInto('sync_alarms')
      .values(row)
      .onConflict((oc) => oc.columns(['tenant', 'kind']).doUpdateSet(rest))
      .execute();
  }

  /** The alarms not yet cleared, oldest first. */
  async activeAlarms(tenant: string): Promise<SyncAlarm[]> {
    const rows = await this.db
      .selectFrom('sync_alarms')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('cleared_at', 'is', null)
      .orderBy('raised_at')
      .execute();
    return rows.map((r) => ({
      kind: r.kind,
      raisedAt: iso(Number(r.raised_at))!,
      lastSeenAt: iso(Number(r.last_seen_at))!,
      message: r.message,
      advice: r.advice,
    }));
  }

  /** An operator has dealt with the alarm; the reason is kept with it. Returns how many were cleared. */
  async clearAlarm(tenant: string, kind: string, by: string, reason: string): Promise<number> {
    const r = await this.db
      .updateTable('sync_alarms')
      .set({ cleared_at: this.clock.nowMs(), cleared_by: by, cleared_reason: reason })
      .where('tenant', '=', tenant)
      .where('kind', '=', kind)
      .where('cleared_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
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

/**
 * A site's status says how its own rounds with its hub went. A request from that hub (a restored hub
 * topping up from this site calls it) must not overwrite that: the hub reaching this site says
 * nothing of whether this site's own sync works.
 */
function ownRoundsWin(before: SyncPeerStateTable | undefined, direction: 'outbound' | 'inbound'): boolean {
  return direction === 'inbound' && before?.direction === 'outbound';
}

function normalise(row: SyncPeerStateTable): SyncPeerStateTable {
  const n = (v: number | string | null) => (v === null ? null : Number(v));
  return {
    ...row,
    connected: Number(row.connected),
    since: n(row.since),
    last_attempt_at: n(row.last_attempt_at),
    last_success_at: n(row.last_success_at),
    problem: row.problem ?? null,
    advice: row.advice ?? null,
  };
}

const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export type SyncRoundState = 'ok' | 'failed' | 'refused' | 'never';

export interface SyncStatusReport {
  node: string;
  role: string;
  tenant: string;
  /** The hub this node calls, or null (a hub or a single node calls nobody). */
  peer: { node: string; url: string } | null;
  /** The last round with the hub went through (`state` is 'ok'). */
  connected: boolean;
  /**
   * How this node's last round with its hub ended: ok; failed (no answer); refused (an answer, but
   * a refusal or one this node could not accept); never (no round yet).
   */
  state: SyncRoundState;
  /** The last failure's kind (hub_unreachable, hub_key_changed, history_refused, …); null when ok. */
  problem: string | null;
  /** The way on from that failure. */
  advice: string | null;
  /** Connected, or disconnected, since this time. */
  since: string | null;
  lastAttemptAt: string | null;
  /** Seconds since the last round (how old this status is); null before the first. */
  lastAttemptAgeSeconds: number | null;
  lastSuccessAt: string | null;
  lastSuccessAgeSeconds: number | null;
  lastError: string | null;
  /**
   * Lasting alarms (until an operator clears them), e.g. `history_refused`: the hub will take none
   * of this node's events, including those recorded from now on.
   */
  alarms: SyncAlarm[];
  /** False while an alarm says this node's new work will not reach the hub. */
  writesReachHub: boolean;
  /** Events of this node's own chain the peer is not known to hold. */
  unsentEvents: number;
  /** How long the oldest unsent event has waited (0 when nothing waits). */
  lagSeconds: number;
  positions: { local: Record<string, number>; peer: Record<string, number> | null };
  /** On a hub: the sites that call it and when each was last seen. */
  sites: { node: string; lastSeenAt: string | null; connected: boolean; lastError: string | null }[];
}

/** What another provider's user on a shared node is told: nothing of this node's sync. */
export function emptySyncStatus(node: string, role: string, tenant: string): SyncStatusReport {
  return {
    node,
    role,
    tenant,
    peer: null,
    connected: false,
    state: 'never',
    problem: null,
    advice: null,
    since: null,
    lastAttemptAt: null,
    lastAttemptAgeSeconds: null,
    lastSuccessAt: null,
    lastSuccessAgeSeconds: null,
    lastError: null,
    alarms: [],
    writesReachHub: true,
    unsentEvents: 0,
    lagSeconds: 0,
    positions: { local: {}, peer: null },
    sites: [],
  };
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
  const alarms = await statusStore.activeAlarms(tenant);
  const writesReachHub = !alarms.some((a) => a.kind === 'history_refused');
  if (!hub) {
    return {
      ...emptySyncStatus(node.identity.node, node.identity.role, tenant),
      alarms,
      writesReachHub,
      positions: { local, peer: null },
      sites,
    };
  }
  const found = await statusStore.get(tenant, hub.node);
  // Only this node's own rounds say how its sync goes (see ownRoundsWin).
  const row = found?.direction === 'outbound' ? found : undefined;
  const own = heads.get(node.identity.node) ?? 0;
  const theirs = peerPositions?.get(node.identity.node) ?? 0;
  const unsentEvents = Math.max(0, own - theirs);
  let lagSeconds = 0;
  if (unsentEvents > 0) {
    const oldest = await node.ledger.readChain(tenant, node.identity.node, theirs + 1, theirs + 1);
    const wall = oldest[0] ? hlcWallMs(oldest[0].hlc) : null;
    if (wall !== null) lagSeconds = Math.max(0, Math.round((now - wall) / 1000));
  }
  const ageSeconds = (ms: number | null | undefined) =>
    ms === null || ms === undefined ? null : Math.max(0, Math.round((now - ms) / 1000));
  const state: SyncRoundState = !row
    ? 'never'
    : row.connected === 1
      ? 'ok'
      : row.problem === 'hub_unreachable' || row.problem === null
        ? 'failed'
        : 'refused';
  return {
    node: node.identity.node,
    role: node.identity.role,
    tenant,
    peer: { node: hub.node, url: hub.url },
    connected: state === 'ok',
    state,
    problem: state === 'ok' ? null : (row?.problem ?? null),
    advice: state === 'ok' ? null : (row?.advice ?? null),
    since: iso(row?.since),
    lastAttemptAt: iso(row?.last_attempt_at),
    lastAttemptAgeSeconds: ageSeconds(row?.last_attempt_at),
    lastSuccessAt: iso(row?.last_success_at),
    lastSuccessAgeSeconds: ageSeconds(row?.last_success_at),
    lastError: row?.last_error ?? null,
    alarms,
    writesReachHub,
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
