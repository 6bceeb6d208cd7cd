import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '@holdfast/core';
import { sql, type Selectable } from 'kysely';
import { fullSessionsWithoutSecondFactor } from '../accounts/reads.ts';
import type { SessionsTable } from '../store/schema.ts';
import type { Db, Store, Tx } from '../store/store.ts';

export interface SessionPolicy {
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = {
  idleTimeoutMs: 30 * 60_000,
  absoluteTimeoutMs: 12 * 60 * 60_000,
};

export type Session = Selectable<SessionsTable>;

/** Opaque 256-bit session tokens; only their SHA-256 is stored, so a copy of the store signs nobody in. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** last_seen_at is written at most this often, so reading a page does not cost a durable write. */
const TOUCH_EVERY_MS = 60_000;

/**
 * The PostgreSQL channel on which a process says which sessions it changed (revoked, signed out,
 * updated), for the other hub processes over the same database to forget their copies. The notice
 * names session or user ids only.
 */
export const SESSION_CHANNEL = 'holdfast_sessions';

/** One session changed, or every session of one user; null: any session may have changed. */
type SessionChange = { session: string } | { tenant: string; user: string } | null;

/** Kept sessions at most (the oldest go first). */
const MAX_KEPT = 10_000;

/**
 * Fully signed-in sessions kept in this process by token hash, so that a signed-in request does not
 * read its session from the store (one round trip on every request to PostgreSQL). Shared by every
 * SessionStore over one Store in the process. Only on PostgreSQL, where the read is a round trip
 * to another process (on SQLite it is a read of the process's own file, microseconds, and keeping
 * would only add a way to be wrong), and there only while this process hears the other processes'
 * session notices (`sessionNotices`, on the commit fan-in's connection), and never before it first
 * does. Every change of a session row forgets the
 * copies it touches, here and, through its notice, in the other processes; a read of the store in
 * flight when anything was forgotten is not kept (so a copy read before a revocation never comes
 * back after it). A kept copy is used only until the session would be touched again (one minute
 * after its last_seen_at): then it is read from the store again, as before, and an idle or expired
 * session ends as it did; so a notice lost without the connection noticing (a silent network
 * fault) leaves another process's copy in use for a minute at most (H297).
 */
class KeptSessions {
  private readonly byHash = new Map<string, Session>();
  /** Counts forgets: a read that started before one is not kept. */
  generation = 0;

  /** Off until this process first hears the other processes' session notices (`hearing`). */
  private keeping = false;

  get(hash: string): Session | undefined {
    return this.keeping ? this.byHash.get(hash) : undefined;
  }

  keep(hash: string, session: Session, generation: number): void {
    if (!this.keeping || generation !== this.generation || session.stage !== 'full') return;
    this.byHash.delete(hash);
    this.byHash.set(hash, { ...session });
    if (this.byHash.size > MAX_KEPT) this.byHash.delete(this.byHash.keys().next().value!);
  }

  forget(change: SessionChange): void {
    this.generation++;
    if (change === null) {
      this.byHash.clear();
      return;
    }
    for (const [hash, kept] of this.byHash)
      if (
        'session' in change
          ? kept.id === change.session
          : kept.tenant === change.tenant && kept.user_id === change.user
      )
        this.byHash.delete(hash);
  }

  /** PostgreSQL: whether the other processes' notices are heard now; either way, nothing kept stays. */
  hearing(on: boolean): void {
    this.forget(null);
    this.keeping = on;
  }
}

const keptByStore = new WeakMap<Store, KeptSessions>();

function keptSessions(store: Store): KeptSessions {
  let kept = keptByStore.get(store);
  if (!kept) keptByStore.set(store, (kept = new KeptSessions()));
  return kept;
}

/** A channel of notices the commit fan-in listens on besides its own (node/commit-fan-in.ts). */
export interface NoticeChannel {
  channel: string;
  heard(payload: string | undefined): void;
  /** The connection listens (true), or went (false): whatever was missed meanwhile is unknown. */
  listening(on: boolean): void;
}

/**
 * PostgreSQL: the session notices of the other processes over the database, for the commit fan-in
 * to listen to: this process keeps sessions only while it hears them.
 */
export function sessionNotices(store: Store): NoticeChannel {
  const kept = keptSessions(store);
  return {
    channel: SESSION_CHANNEL,
    heard: (payload) => kept.forget(parseSessionChange(payload)),
    listening: (on) => kept.hearing(on),
  };
}

/** A notice's change; null (forget everything) when it is not one. */
function parseSessionChange(payload: string | undefined): SessionChange {
  try {
    const raw = JSON.parse(payload ?? '') as { s?: unknown; t?: unknown; u?: unknown };
    if (typeof raw.s === 'string') return { session: raw.s };
    if (typeof raw.t === 'string' && typeof raw.u === 'string') return { tenant: raw.t, user: raw.u };
  } catch {
    // Not a notice of ours: forget everything rather than guess.
  }
  return null;
}

function sessionChangeText(change: Exclude<SessionChange, null>): string {
  return JSON.stringify('session' in change ? { s: change.session } : { t: change.tenant, u: change.user });
}

/**
 * Node-local sessions. A session starts at the password step (`stage: password`, good only for the
 * second-factor routes) and is replaced by a new token when the second factor passes.
 */
export class SessionStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    readonly policy: SessionPolicy = DEFAULT_SESSION_POLICY,
  ) {}

  async create(fields: {
    tenant: string;
    userId: string;
    stage: 'password' | 'full';
    address: string;
    reauthenticated?: boolean;
  }): Promise<{ token: string; session: Session }> {
    const token = newToken();
    const now = this.clock.nowMs();
    const session: Session = {
      id: randomUUID(),
      token_hash: hashToken(token),
      tenant: fields.tenant,
      user_id: fields.userId,
      stage: fields.stage,
      csrf_token: randomBytes(32).toString('base64url'),
      created_at: now,
      last_seen_at: now,
      absolute_expires_at: now + this.policy.absoluteTimeoutMs,
      revoked_at: null,
      address: fields.address,
      pending_totp_secret: null,
      webauthn_challenge: null,
      reauthenticated_at: fields.reauthenticated ? now : null,
    };
    await this.store.db.insertInto('sessions').values(session).execute();
    return { token, session };
  }

  /**
   * The live session for a presented token, or null (unknown, revoked, idle too long, or past its
   * absolute lifetime). Looked up by the token's hash: an unguessable key, so this is not scoped by
   * tenant; the session then fixes the tenant for the request.
   */
  async find(token: string): Promise<Session | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const hash = hashToken(token);
    const kept = keptSessions(this.store);
    const hit = kept.get(hash);
    if (hit) {
      const now = this.clock.nowMs();
      // Kept until it would be touched again (or be idle or expired): then read as below.
      if (
        now < hit.absolute_expires_at &&
        now - hit.last_seen_at < Math.min(TOUCH_EVERY_MS, this.policy.idleTimeoutMs)
      )
        return { ...hit };
    }
    const generation = kept.generation;
    const row = await this.store.db
      .selectFrom('sessions')
      .selectAll()
      .where('token_hash', '=', hash)
      .executeTakeFirst();
    if (!row) return null;
    const session = normalise(row);
    const now = this.clock.nowMs();
    if (session.revoked_at !== null) return null;
    if (now >= session.absolute_expires_at || now - session.last_seen_at >= this.policy.idleTimeoutMs) {
      await this.revoke(session.id);
      return null;
    }
    if (now - session.last_seen_at >= TOUCH_EVERY_MS) {
      await this.store.db
        .updateTable('sessions')
        .set({ last_seen_at: now })
        .where('id', '=', session.id)
        .execute();
      session.last_seen_at = now;
    }
    kept.keep(hash, session, generation);
    return session;
  }

  async update(
    id: string,
    fields: Partial<Pick<Session, 'pending_totp_secret' | 'webauthn_challenge' | 'reauthenticated_at'>>,
  ): Promise<void> {
    await this.change({ session: id }, (db) =>
      db.updateTable('sessions').set(fields).where('id', '=', id).execute(),
    );
  }

  async revoke(id: string): Promise<void> {
    await this.change({ session: id }, (db) =>
      db
        .updateTable('sessions')
        .set({ revoked_at: this.clock.nowMs() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute(),
    );
  }

  async revokeAllFor(tenant: string, userId: string): Promise<void> {
    await this.change({ tenant, user: userId }, (db) =>
      db
        .updateTable('sessions')
        .set({ revoked_at: this.clock.nowMs() })
        .where('tenant', '=', tenant)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute(),
    );
  }

  /**
   * Writes a change of session rows: the copies kept here are forgotten before it and again once
   * it committed, and on PostgreSQL its notice goes in the same transaction, so the other processes
   * hear of it when, and only if, it commits.
   */
  private async change(change: Exclude<SessionChange, null>, write: (db: Db | Tx) => Promise<unknown>) {
    const kept = keptSessions(this.store);
    kept.forget(change);
    try {
      if (this.store.dialect !== 'postgres') {
        await write(this.store.db);
        return;
      }
      await this.store.transaction(async (trx) => {
        await write(trx);
        await sql`select pg_notify(${SESSION_CHANNEL}, ${sessionChangeText(change)})`.execute(trx);
      });
    } finally {
      kept.forget(change);
    }
  }

  /** Live sessions of a provider, for its administrators. */
  async listLive(tenant: string): Promise<Session[]> {
    const now = this.clock.nowMs();
    const rows = await this.store.withTenant(tenant, (trx) =>
      trx
        .selectFrom('sessions')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('revoked_at', 'is', null)
        .where('absolute_expires_at', '>', now)
        .orderBy('created_at', 'desc')
        .execute(),
    );
    return rows.map(normalise).filter((s) => now - s.last_seen_at < this.policy.idleTimeoutMs);
  }

  /** Whether the user is fully signed in on this node (a live session past the second factor). */
  async hasLiveFullSession(tenant: string, userId: string): Promise<boolean> {
    const now = this.clock.nowMs();
    const row = await this.store.db
      .selectFrom('sessions')
      .select('id')
      .where('tenant', '=', tenant)
      .where('user_id', '=', userId)
      .where('stage', '=', 'full')
      .where('revoked_at', 'is', null)
      .where('absolute_expires_at', '>', now)
      .where('last_seen_at', '>', now - this.policy.idleTimeoutMs)
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * Users whose full sessions on this node ended (signed out, revoked, idle or past their lifetime)
   * at or after `sinceMs`, whether or not they have another session now.
   */
  async endedSince(sinceMs: number): Promise<{ tenant: string; userId: string }[]> {
    const now = this.clock.nowMs();
    const idle = this.policy.idleTimeoutMs;
    const rows = await this.store.db
      .selectFrom('sessions')
      .select(['tenant', 'user_id'])
      .distinct()
      .where('stage', '=', 'full')
      .where((eb) =>
        eb.or([
          eb('revoked_at', '>=', sinceMs),
          eb.and([eb('absolute_expires_at', '>=', sinceMs), eb('absolute_expires_at', '<=', now)]),
          eb.and([eb('last_seen_at', '>=', sinceMs - idle), eb('last_seen_at', '<=', now - idle)]),
        ]),
      )
      .execute();
    return rows.map((r) => ({ tenant: r.tenant, userId: r.user_id }));
  }

  /**
   * Start-up check: no live, fully signed-in session may belong to a user without a second factor
   * (which would mean a path around MFA existed). Returns the offending session ids.
   */
  sessionsWithoutSecondFactor(): Promise<string[]> {
    return fullSessionsWithoutSecondFactor(this.store.db);
  }

  /** Records a TOTP step as used; false if it was used already (a replay). */
  async useTotpStep(tenant: string, userId: string, step: number): Promise<boolean> {
    const result = await this.store.db
      .insertInto('totp_used')
      .values({ tenant, user_id: userId, step })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** True for the one caller that spends this recovery code; false for every other. */
  useRecoveryCodeOnce(tenant: string, userId: string, storedHash: string): Promise<boolean> {
    return this.useTotpStep(tenant, userId, recoveryCodeStep(storedHash));
  }
}

/**
 * A recovery code is accepted once, by compare-and-set in the same table as used TOTP steps: its
 * key is a negative number drawn from the code's stored hash (TOTP steps are positive), so of
 * several sessions sending one code at once exactly one inserts the row and wins, on either store.
 */
export function recoveryCodeStep(storedHash: string): number {
  return -1 - parseInt(createHash('sha256').update(storedHash).digest('hex').slice(0, 12), 16);
}

function normalise(row: Session): Session {
  return {
    ...row,
    created_at: Number(row.created_at),
    last_seen_at: Number(row.last_seen_at),
    absolute_expires_at: Number(row.absolute_expires_at),
    revoked_at: row.revoked_at === null ? null : Number(row.revoked_at),
    reauthenticated_at: row.reauthenticated_at === null ? null : Number(row.reauthenticated_at),
  };
}
