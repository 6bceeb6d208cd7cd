import { CaseTransitionError, ConflictError, type Clock } from '@holdfast/core';
import type { SessionStore } from '../auth/sessions.ts';
import type { RequestContext } from '../http/context.ts';
import type { Store } from '../store/store.ts';
import type { DraftStore } from './drafts.ts';
import type { CaseService } from './service.ts';

export type SessionEndCause = 'signed_out' | 'session_expired';

/**
 * A case held by a clinician who is no longer signed in is put back in the queue, with a
 * `case.released_at_session_end` fact beside the `case.released` saying why (and whether they had
 * typed notes they did not save). Released rather than only flagged: a flagged case still cannot be
 * claimed by anyone else until a manager steps in, while its deadline runs; released, it is in the
 * queue in deadline order, where the next clinician sees it and takes it.
 *
 * Only holds that began on this node are released (the claim or transfer was recorded here): a
 * session is node-local, so this node cannot know whether the clinician is signed in elsewhere.
 */
export class HeldCaseRelease {
  /** Sessions that ended at or after this time are looked at by the next sweep. */
  private sweptUntil: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly sessions: SessionStore,
    private readonly cases: CaseService,
    private readonly drafts: DraftStore,
    private readonly nodeId: string,
  ) {
    // After a restart, look back over a whole session lifetime: sessions may have ended while down.
    this.sweptUntil = clock.nowMs() - sessions.policy.absoluteTimeoutMs;
  }

  /** After a sign-out: releases what the user holds unless they are still signed in on this node. */
  async afterSignOut(tenant: string, userId: string): Promise<string[]> {
    return this.releaseIfAway(tenant, userId, 'signed_out');
  }

  /**
   * Releases the cases of users whose sessions ended since the last sweep (idle, lifetime, revoked)
   * and who are not signed in again. Run every minute by the server; returns the cases released.
   */
  async sweep(): Promise<string[]> {
    const now = this.clock.nowMs();
    const ended = await this.sessions.endedSince(this.sweptUntil);
    const released: string[] = [];
    for (const { tenant, userId } of ended)
      released.push(...(await this.releaseIfAway(tenant, userId, 'session_expired')));
    this.sweptUntil = now;
    return released;
  }

  private async releaseIfAway(tenant: string, userId: string, cause: SessionEndCause): Promise<string[]> {
    if (await this.sessions.hasLiveFullSession(tenant, userId)) return [];
    const released: string[] = [];
    for (const row of await this.cases.heldBy(tenant, userId)) {
      if ((await this.holdBeganOn(tenant, row.case_id)) !== this.nodeId) continue;
      const unsavedDraft = (await this.drafts.get(tenant, userId, row.case_id)) !== null;
      // The release is done on the clinician's behalf: their hold ended with their session.
      const ctx: RequestContext = {
        tenant,
        userId,
        username: '',
        roles: [],
        siteIds: [],
        sessionId: '',
        system: true,
        address: '',
      };
      try {
        await this.cases.command(ctx, row.case_id, { type: 'release', clinicianId: userId }, () => [
          {
            tenant,
            type: 'case.released_at_session_end',
            actor: `user:${userId}`,
            payload: { caseId: row.case_id, clinicianId: userId, cause, unsavedDraft },
          },
        ]);
        released.push(row.case_id);
      } catch (error) {
        // Someone acted on the case meanwhile (closed, transferred): it is no longer theirs to release.
        if (error instanceof CaseTransitionError || error instanceof ConflictError) continue;
        throw error;
      }
    }
    return released;
  }

  /** The node that recorded the claim or transfer that gave the case to its current holder. */
  private async holdBeganOn(tenant: string, caseId: string): Promise<string | null> {
    const row = await this.store.withTenant(tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select('node')
        .where('tenant', '=', tenant)
        .where('subject', '=', `case:${caseId}`)
        .where('type', 'in', ['case.claimed', 'case.transferred'])
        .orderBy('hlc', 'desc')
        .orderBy('node', 'desc')
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst(),
    );
    return row?.node ?? null;
  }
}
