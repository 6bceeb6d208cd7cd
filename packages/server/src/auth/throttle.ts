import type { Clock } from '@holdfast/core';

/**
 * Sign-in throttling, checked before any password is hashed, so a spray costs the attacker far more
 * than it costs the server. Built so that nobody can aim it at someone else:
 *
 * - Per name-and-address pair (the typed user name, whether or not it exists, so lockout reveals
 *   nothing): after `maxFailures` consecutive failures the pair is locked for `lockoutMs`. Someone
 *   guessing at a name from their own address locks only themselves out; the owner at their usual
 *   address still gets in.
 * - Per name, from addresses the name has not signed in from: after `nameSlowAfter` failures (from
 *   all addresses together, within `lockoutMs`) each further attempt waits a doubling delay, up to
 *   `nameMaxDelayMs`, so a spray from many addresses stays slow without locking the owner out.
 * - Per address: at most `perAddressPerMinute` failures a minute. A whole call centre behind one NAT
 *   address shares this, so the default is sized for one (about 300 people mistyping now and then);
 *   a name at an address it has signed in from before is not held back by the others' failures.
 *
 * The owner is told: the next successful password step answers with what was refused or failed
 * at their name meanwhile (`notice`), and the first refusal of each lock is audited for admins.
 * Held in memory: a node restart clears it, which an attacker cannot cause from outside. Several hub
 * processes over one PostgreSQL database tell each other every attempt they count and every
 * success (`shareWith`, `heard`; auth/throttle-notices.ts), so a guesser spreading attempts across
 * them behind a load balancer meets the same limits as at one.
 */
export interface ThrottleOptions {
  maxFailures: number;
  lockoutMs: number;
  perAddressPerMinute: number;
  nameSlowAfter?: number;
  nameMaxDelayMs?: number;
}

/** An attempt counted, or a success, at one process, for the others over the same database. */
export interface ThrottleNotice {
  kind: 'attempt' | 'success';
  accountKey: string;
  address: string;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  maxFailures: 5,
  lockoutMs: 15 * 60_000,
  perAddressPerMinute: 300,
  nameSlowAfter: 10,
  nameMaxDelayMs: 60_000,
};

export type ThrottleVerdict =
  | { allowed: true }
  | {
      allowed: false;
      reason: 'locked' | 'throttled';
      retryAfterSeconds: number;
      /** True for the first refusal of this pair (or name, or address) in its window: audit that one, count the rest. */
      firstRefusal: boolean;
    };

/** What happened at a name since its last successful sign-in, for telling its owner. */
export interface SignInNotice {
  failures: number;
  refused: number;
  addresses: number;
  since: number;
}

interface PairEntry {
  failures: number;
  lockedUntil: number;
  refusalAudited: boolean;
}
interface NameEntry {
  failures: number[];
  refusedUntilAudited: number;
  /** Addresses this name signed in from (most recent last, a handful). */
  known: string[];
  /** Since the last success: failures, refusals, and the addresses they came from. */
  notice: { failures: number; refused: number; addresses: Set<string>; since: number } | null;
}

const KNOWN_ADDRESSES = 8;

export class SignInThrottle {
  private readonly pairs = new Map<string, PairEntry>();
  private readonly names = new Map<string, NameEntry>();
  private readonly addresses = new Map<string, { failures: number[]; refusalAuditedUntil: number }>();
  private readonly options: Required<ThrottleOptions>;
  /** Refusals not audited one by one (after the first of each lock window). */
  refusalsCounted = 0;
  /** Where this process's attempts and successes are told (the other hub processes), if anywhere. */
  private tell: ((notice: ThrottleNotice) => void) | null = null;

  constructor(
    private readonly clock: Clock,
    options: ThrottleOptions = DEFAULT_THROTTLE,
  ) {
    this.options = {
      nameSlowAfter: DEFAULT_THROTTLE.nameSlowAfter!,
      nameMaxDelayMs: DEFAULT_THROTTLE.nameMaxDelayMs!,
      ...options,
    };
  }

  /**
   * Call before checking a credential. If allowed, the attempt is counted as a failure at once,
   * so attempts still being hashed count against the limits (otherwise a burst would all pass the
   * check before the first failure was recorded); `succeeded` takes it back.
   */
  begin(accountKey: string, address: string): ThrottleVerdict {
    const now = this.clock.nowMs();
    const pairKey = `${accountKey}\n${address}`;
    const pair = this.pairs.get(pairKey);
    const name = this.nameEntry(accountKey, now);
    const familiar = name.known.includes(address);
    if (pair && pair.lockedUntil > now) {
      const first = !pair.refusalAudited;
      pair.refusalAudited = true;
      return this.refuse(name, address, 'locked', pair.lockedUntil - now, first, now);
    }
    if (!familiar && name.failures.length >= this.options.nameSlowAfter) {
      const over = name.failures.length - this.options.nameSlowAfter;
      const delay = Math.min(1000 * 2 ** Math.min(over, 30), this.options.nameMaxDelayMs);
      const retryAt = name.failures[name.failures.length - 1]! + delay;
      if (retryAt > now) {
        const first = name.refusedUntilAudited <= now;
        if (first) name.refusedUntilAudited = now + this.options.lockoutMs;
        return this.refuse(name, address, 'throttled', retryAt - now, first, now);
      }
    }
    const entry = this.addressEntry(address, now);
    if (!familiar && entry.failures.length >= this.options.perAddressPerMinute) {
      const first = entry.refusalAuditedUntil <= now;
      const retryAt = entry.failures[0]! + 60_000;
      if (first) entry.refusalAuditedUntil = retryAt;
      return this.refuse(name, address, 'throttled', retryAt - now, first, now);
    }
    this.countFailure(pairKey, name, address, entry, now);
    this.tell?.({ kind: 'attempt', accountKey, address });
    return { allowed: true };
  }

  /** From now on every attempt counted here and every success is told to `send`. */
  shareWith(send: (notice: ThrottleNotice) => void): void {
    this.tell = send;
  }

  /**
   * An attempt or a success another process counted, applied as if it had happened here (at this
   * process's time): its failures count against the same pair, name and address limits, and its
   * success takes its attempt back. The owner was told there of the failures (every process hears
   * them all), so they are cleared from what the owner is to be told here; refusals are not sent
   * (each would cost a notice, and a spray is mostly refusals), so those made here are kept for the
   * owner's next sign-in through this process.
   */
  heard(notice: ThrottleNotice): void {
    const { accountKey, address } = notice;
    if (notice.kind === 'success') {
      const name = this.names.get(accountKey);
      const refusedHere = name?.notice && name.notice.refused > 0 ? name.notice : null;
      this.takeBack(accountKey, address);
      if (name && refusedHere) name.notice = { ...refusedHere, failures: 0 };
      return;
    }
    const now = this.clock.nowMs();
    const name = this.nameEntry(accountKey, now);
    this.countFailure(`${accountKey}\n${address}`, name, address, this.addressEntry(address, now), now);
  }

  /**
   * The credential was right: the attempt counted by `begin` is taken back, the pair's count
   * cleared, the address remembered as the name's own. Answers what happened at the name since its
   * last success (null if nothing), once.
   */
  succeeded(accountKey: string, address: string): SignInNotice | null {
    this.tell?.({ kind: 'success', accountKey, address });
    return this.takeBack(accountKey, address);
  }

  /**
   * `succeeded`, without telling anyone. After a success at another process (`heard`) the notice it
   * answers is dropped: what the owner is still to be told here is kept by the caller.
   */
  private takeBack(accountKey: string, address: string): SignInNotice | null {
    this.pairs.delete(`${accountKey}\n${address}`);
    const entry = this.addresses.get(address);
    if (entry) entry.failures.pop();
    const name = this.names.get(accountKey);
    if (!name) return null;
    name.failures.pop();
    name.known = [...name.known.filter((a) => a !== address), address].slice(-KNOWN_ADDRESSES);
    const notice = name.notice;
    name.notice = null;
    if (notice) {
      // The attempt that just succeeded is not news, nor is the owner's own address.
      notice.failures--;
      notice.addresses.delete(address);
    }
    return notice && notice.failures + notice.refused > 0
      ? {
          failures: notice.failures,
          refused: notice.refused,
          addresses: notice.addresses.size,
          since: notice.since,
        }
      : null;
  }

  private refuse(
    name: NameEntry,
    address: string,
    reason: 'locked' | 'throttled',
    waitMs: number,
    first: boolean,
    now: number,
  ): ThrottleVerdict {
    if (!first) this.refusalsCounted++;
    this.noteFor(name, address, now).refused++;
    return {
      allowed: false,
      reason,
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
      firstRefusal: first,
    };
  }

  private noteFor(name: NameEntry, address: string, now: number): NonNullable<NameEntry['notice']> {
    name.notice ??= { failures: 0, refused: 0, addresses: new Set(), since: now };
    if (name.notice.addresses.size < 1000) name.notice.addresses.add(address);
    return name.notice;
  }

  private countFailure(
    pairKey: string,
    name: NameEntry,
    address: string,
    entry: { failures: number[] },
    now: number,
  ): void {
    const pair = this.pairs.get(pairKey) ?? { failures: 0, lockedUntil: 0, refusalAudited: false };
    if (pair.lockedUntil !== 0 && pair.lockedUntil <= now) pair.failures = 0;
    pair.failures++;
    if (pair.failures >= this.options.maxFailures) {
      pair.lockedUntil = now + this.options.lockoutMs;
      pair.refusalAudited = false;
    } else {
      pair.lockedUntil = 0;
    }
    this.pairs.set(pairKey, pair);
    name.failures.push(now);
    this.noteFor(name, address, now).failures++;
    entry.failures.push(now);
    this.prune(now);
  }

  private nameEntry(accountKey: string, now: number): NameEntry {
    const entry = this.names.get(accountKey) ?? {
      failures: [],
      refusedUntilAudited: 0,
      known: [],
      notice: null,
    };
    entry.failures = entry.failures.filter((t) => t > now - this.options.lockoutMs);
    this.names.set(accountKey, entry);
    return entry;
  }

  private addressEntry(address: string, now: number): { failures: number[]; refusalAuditedUntil: number } {
    const entry = this.addresses.get(address) ?? { failures: [], refusalAuditedUntil: 0 };
    entry.failures = entry.failures.filter((t) => t > now - 60_000);
    this.addresses.set(address, entry);
    return entry;
  }

  /** Keeps memory bounded under a spray of random names. */
  private prune(now: number): void {
    if (this.pairs.size > 100_000) {
      for (const [k, v] of this.pairs) if (v.lockedUntil < now) this.pairs.delete(k);
    }
    if (this.names.size > 100_000) {
      for (const [k, v] of this.names)
        if (v.known.length === 0 && !v.failures.some((t) => t > now - this.options.lockoutMs))
          this.names.delete(k);
    }
    if (this.addresses.size > 100_000) {
      for (const [k, v] of this.addresses)
        if (!v.failures.some((t) => t > now - 60_000)) this.addresses.delete(k);
    }
  }
}
