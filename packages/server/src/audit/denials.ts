import { TooManyRequestsError, type Clock, type Permission } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';
import type { Auditor } from './auditor.ts';

/**
 * Denials of a route for want of a permission, audited without letting one client fill the ledger.
 * The first denial of a kind (provider, user, permission, route) in a window is written at once;
 * repeats inside the window are counted and written as one `audit.denied` event with the count and
 * the first and last times, when the window ends (the next such denial, or `flush`). A session
 * denied more than `perSessionPerWindow` times in a window is answered 429 instead: still counted
 * in the trail, but the client is told to slow down.
 */
export interface DenialLimits {
  windowMs: number;
  perSessionPerWindow: number;
}

export const DEFAULT_DENIAL_LIMITS: DenialLimits = { windowMs: 60_000, perSessionPerWindow: 30 };

interface Pending {
  ctx: RequestContext;
  permission: Permission;
  route: string;
  windowEnds: number;
  repeats: number;
  firstRepeatAt: number;
  lastRepeatAt: number;
}

export class DenialAudit {
  private readonly pending = new Map<string, Pending>();
  private readonly sessions = new Map<string, { windowEnds: number; count: number }>();

  constructor(
    private readonly auditor: Auditor,
    private readonly clock: Clock,
    private readonly limits: DenialLimits = DEFAULT_DENIAL_LIMITS,
  ) {}

  /** Records one denial; throws 429 for a session denied too often (after recording it). */
  async denied(ctx: RequestContext, permission: Permission, route: string): Promise<void> {
    const now = this.clock.nowMs();
    const key = JSON.stringify([ctx.tenant, ctx.userId, permission, route]);
    const entry = this.pending.get(key);
    if (entry && entry.windowEnds > now) {
      if (entry.repeats === 0) entry.firstRepeatAt = now;
      entry.repeats++;
      entry.lastRepeatAt = now;
    } else {
      // The new window is open before anything is awaited, so concurrent repeats count in it.
      this.pending.set(key, {
        ctx,
        permission,
        route,
        windowEnds: now + this.limits.windowMs,
        repeats: 0,
        firstRepeatAt: 0,
        lastRepeatAt: 0,
      });
      if (entry) await this.write(entry);
      await this.auditor.denied(ctx, permission, route);
    }
    const session = this.sessions.get(ctx.sessionId);
    if (!session || session.windowEnds <= now)
      this.sessions.set(ctx.sessionId, { windowEnds: now + this.limits.windowMs, count: 1 });
    else if (++session.count > this.limits.perSessionPerWindow)
      throw new TooManyRequestsError(
        `refused ${session.count} times in a row for want of permission: stop and check which account you are signed in with`,
        Math.max(1, Math.ceil((session.windowEnds - now) / 1000)),
      );
  }

  /** Writes the counted repeats of every window that has ended (all of them when `all`). */
  async flush(all = false): Promise<void> {
    const now = this.clock.nowMs();
    for (const [key, entry] of [...this.pending])
      if (all || entry.windowEnds <= now) {
        this.pending.delete(key);
        await this.write(entry);
      }
    for (const [id, s] of [...this.sessions]) if (s.windowEnds <= now) this.sessions.delete(id);
  }

  private async write(entry: Pending): Promise<void> {
    if (entry.repeats === 0) return;
    await this.auditor.denied(entry.ctx, entry.permission, entry.route, {
      count: entry.repeats,
      firstAt: new Date(entry.firstRepeatAt).toISOString(),
      lastAt: new Date(entry.lastRepeatAt).toISOString(),
    });
  }
}
