import type { Clock } from '@holdfast/core';

/**
 * Sign-in throttling, checked before any password is hashed, so a spray costs the attacker far more
 * than it costs the server.
 *
 * - Per account (by the typed user name, whether or not it exists, so lockout reveals nothing):
 *   after `maxFailures` consecutive failures the name is locked for `lockoutMs`.
 * - Per address: at most `perAddressPerMinute` failures a minute.
 *
 * Held in memory: a node restart clears it, which an attacker cannot cause from outside.
 */
export interface ThrottleOptions {
  maxFailures: number;
  lockoutMs: number;
  perAddressPerMinute: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  maxFailures: 5,
  lockoutMs: 15 * 60_000,
  perAddressPerMinute: 30,
};

export type ThrottleVerdict =
  | { allowed: true }
  | {
      allowed: false;
      reason: 'locked' | 'throttled';
      retryAfterSeconds: number;
      /** True for the first refusal of this name (or address) in its lock window: audit that one, count the rest. */
      firstRefusal: boolean;
    };

export class SignInThrottle {
  private readonly accounts = new Map<
    string,
    { failures: number; lockedUntil: number; refusalAudited: boolean }
  >();
  private readonly addresses = new Map<string, { failures: number[]; refusalAuditedUntil: number }>();
  /** Refusals not audited one by one (after the first of each lock window). */
  refusalsCounted = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: ThrottleOptions = DEFAULT_THROTTLE,
  ) {}

  /**
   * Call before checking a credential. If allowed, the attempt is counted as a failure at once,
   * so attempts still being hashed count against the limits (otherwise a burst would all pass the
   * check before the first failure was recorded); `succeeded` takes it back.
   */
  begin(accountKey: string, address: string): ThrottleVerdict {
    const now = this.clock.nowMs();
    const account = this.accounts.get(accountKey);
    if (account && account.lockedUntil > now) {
      const first = !account.refusalAudited;
      account.refusalAudited = true;
      if (!first) this.refusalsCounted++;
      return {
        allowed: false,
        reason: 'locked',
        retryAfterSeconds: Math.ceil((account.lockedUntil - now) / 1000),
        firstRefusal: first,
      };
    }
    const entry = this.addressEntry(address, now);
    if (entry.failures.length >= this.options.perAddressPerMinute) {
      const first = entry.refusalAuditedUntil <= now;
      const retryAt = entry.failures[0]! + 60_000;
      if (first) entry.refusalAuditedUntil = retryAt;
      else this.refusalsCounted++;
      return {
        allowed: false,
        reason: 'throttled',
        retryAfterSeconds: Math.max(1, Math.ceil((retryAt - now) / 1000)),
        firstRefusal: first,
      };
    }
    this.countFailure(accountKey, entry, now);
    return { allowed: true };
  }

  /** The credential was right: the attempt counted by `begin` is taken back and the name's count cleared. */
  succeeded(accountKey: string, address: string): void {
    this.accounts.delete(accountKey);
    const entry = this.addresses.get(address);
    if (entry) entry.failures.pop();
  }

  private countFailure(accountKey: string, entry: { failures: number[] }, now: number): void {
    const account = this.accounts.get(accountKey) ?? { failures: 0, lockedUntil: 0, refusalAudited: false };
    if (account.lockedUntil !== 0 && account.lockedUntil <= now) account.failures = 0;
    account.failures++;
    if (account.failures >= this.options.maxFailures) {
      account.lockedUntil = now + this.options.lockoutMs;
      account.refusalAudited = false;
    } else {
      account.lockedUntil = 0;
    }
    this.accounts.set(accountKey, account);
    entry.failures.push(now);
    this.prune(now);
  }

  private addressEntry(address: string, now: number): { failures: number[]; refusalAuditedUntil: number } {
    const entry = this.addresses.get(address) ?? { failures: [], refusalAuditedUntil: 0 };
    entry.failures = entry.failures.filter((t) => t > now - 60_000);
    this.addresses.set(address, entry);
    return entry;
  }

  /** Keeps memory bounded under a spray of random names. */
  private prune(now: number): void {
    if (this.accounts.size > 100_000) {
      for (const [k, v] of this.accounts) if (v.lockedUntil < now) this.accounts.delete(k);
    }
    if (this.addresses.size > 100_000) {
      for (const [k, v] of this.addresses)
        if (!v.failures.some((t) => t > now - 60_000)) this.addresses.delete(k);
    }
  }
}
