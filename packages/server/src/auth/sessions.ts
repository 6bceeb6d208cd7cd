import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '@holdfast/core';
import type { Selectable } from 'kysely';
import { fullSessionsWithoutSecondFactor } from '../accounts/reads.ts';
import type { SessionsTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';

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
    const row = await this.store.db
      .selectFrom('sessions')
      .selectAll()
      .where('token_hash', '=', hashToken(token))
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
    return session;
  }

  async update(
    id: string,
    fields: Partial<Pick<Session, 'pending_totp_secret' | 'webauthn_challenge' | 'reauthenticated_at'>>,
  ): Promise<void> {
    await this.store.db.updateTable('sessions').set(fields).where('id', '=', id).execute();
  }

  async revoke(id: string): Promise<void> {
    await this.store.db
      .updateTable('sessions')
      .set({ revoked_at: this.clock.nowMs() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
  }

  async revokeAllFor(tenant: string, userId: string): Promise<void> {
    await this.store.db
      .updateTable('sessions')
      .set({ revoked_at: this.clock.nowMs() })
      .where('tenant', '=', tenant)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
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
