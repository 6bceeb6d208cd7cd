import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Store } from '../store/store.ts';
import type { NoticeChannel } from './sessions.ts';
import type { SignInThrottle, ThrottleNotice } from './throttle.ts';

/** The channel on which hub processes over one PostgreSQL database tell each other sign-in attempts. */
export const SIGN_IN_CHANNEL = 'holdfast_sign_ins';

/**
 * The sign-in throttles of one store's process and what it has told and heard. A process tells the
 * others of each attempt it counts and each success (`pg_notify`, not in any transaction: the
 * throttle counts an attempt before the password is checked, whatever becomes of the request), and
 * hears theirs through the commit fan-in's connection (node/commit-fan-in.ts), which LISTENs on
 * `SIGN_IN_CHANNEL` too. A notice carries the throttle's key (the typed user name, lower-cased, or
 * an account id) and the client address, never a password or anything about a patient.
 */
class SignInShare {
  /** Tells this process's notices apart from the others' (each process hears its own too). */
  readonly origin = randomUUID();
  readonly throttles = new Set<SignInThrottle>();
  /** Notices from other processes applied here (tests watch it). */
  heard = 0;
  /** The notices go one after another, so the others hear an attempt before its success. */
  sending: Promise<void> = Promise.resolve();
}

const shares = new WeakMap<Store, SignInShare>();

function shareOf(store: Store): SignInShare {
  let share = shares.get(store);
  if (!share) shares.set(store, (share = new SignInShare()));
  return share;
}

/**
 * On PostgreSQL: this process's attempts and successes at `throttle` are told to the other hub
 * processes over the same database, and theirs (heard through `signInNotices`) are applied to it.
 * On SQLite there is only ever one process: nothing is sent.
 */
export function shareSignInThrottle(store: Store, throttle: SignInThrottle): void {
  if (store.dialect !== 'postgres') return;
  const share = shareOf(store);
  share.throttles.add(throttle);
  throttle.shareWith((notice) => {
    const text = JSON.stringify({ o: share.origin, k: notice.kind, n: notice.accountKey, a: notice.address });
    // Not awaited: a sign-in never waits for the other processes. An attempt whose notice cannot be
    // sent (the database unreachable) is still counted here; the others miss it.
    share.sending = share.sending
      .then(() => sql`select pg_notify(${SIGN_IN_CHANNEL}, ${text})`.execute(store.db))
      .then(
        () => undefined,
        () => undefined,
      );
  });
}

/** The other processes' sign-in notices, for the commit fan-in to listen to (as `sessionNotices`). */
export function signInNotices(store: Store): NoticeChannel {
  const share = shareOf(store);
  return {
    channel: SIGN_IN_CHANNEL,
    heard: (payload) => {
      const notice = parseNotice(payload, share.origin);
      if (!notice) return;
      share.heard++;
      for (const throttle of share.throttles) throttle.heard(notice);
    },
    // Attempts made elsewhere while this process was not listening are not known here: each
    // process still holds every attempt made at it to the limits.
    listening: () => undefined,
  };
}

/** How many notices from other processes this store's process has applied (tests). */
export function signInNoticesHeard(store: Store): number {
  return shareOf(store).heard;
}

/** A notice from another process; null for this process's own, or anything that is not one. */
function parseNotice(payload: string | undefined, ownOrigin: string): ThrottleNotice | null {
  try {
    const raw = JSON.parse(payload ?? '') as { o?: unknown; k?: unknown; n?: unknown; a?: unknown };
    if (raw.o === ownOrigin || typeof raw.o !== 'string') return null;
    if (
      (raw.k !== 'attempt' && raw.k !== 'success') ||
      typeof raw.n !== 'string' ||
      typeof raw.a !== 'string'
    )
      return null;
    return { kind: raw.k, accountKey: raw.n, address: raw.a };
  } catch {
    return null;
  }
}
