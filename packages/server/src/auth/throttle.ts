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
  { allowed: true } | { allowed: false; reason: 'locked' | 'throttled'; retryAfterSeconds: number };

export class SignInThrottle {
  private readonly accounts = new Map<string, { failures: number; lockedUntil: number }>();
  private readonly addresses = new Map<string, number[]>();

  constructor(
    private readonly clock: Clock,
    private readonly options: ThrottleOptions = DEFAULT_THROTTLE,
  ) {}

  check(accountKey: string, address: string): ThrottleVerdict {
    const now = this.clock.nowMs();
    const account = this.accounts.get(accountKey);
    if (account && account.lockedUntil > now) {
      return {
        allowed: false,
        reason: 'locked',
        retryAfterSeconds: Math.ceil((account.lockedUntil - now) / 1000),
      };
    }
    const recent = this.recentFailures(address, now);
    if (recent.length >= this.options.perAddressPerMinute) {
      return {
        allowed: false,
        reason: 'throttled',
        retryAfterSeconds: Math.ceil((recent[0]! + 60_000 - now) / 1000),
      };
    }
    return { allowed: true };
  }

  recordFailure(accountKey: string, address: string): void {
    const now = this.clock.nowMs();
    const account = this.accounts.get(accountKey) ?? { failures: 0, lockedUntil: 0 };
    if (account.lockedUntil !== 0 && account.lockedUntil <= now) account.failures = 0;
    account.failures++;
    account.lockedUntil = account.failures >= this.options.maxFailures ? now + this.options.lockoutMs : 0;
    this.accounts.set(accountKey, account);
    const recent = this.recentFailures(address, now);
    recent.push(now);
    this.addresses.set(address, recent);
    this.prune(now);
  }

  recordSuccess(accountKey: string): void {
    this.accounts.delete(accountKey);
  }

  private recentFailures(address: string, now: number): number[] {
    return (this.addresses.get(address) ?? []).filter((t) => t > now - 60_000);
  }

  /** Keeps memory bounded under a spray of random names. */
  private prune(now: number): void {
    if (this.accounts.size > 100_000) {
      for (const [k, v] of this.accounts) if (v.lockedUntil < now) this.accounts.delete(k);
    }
    if (this.addresses.size > 100_000) {
      for (const [k, v] of this.addresses) if (!v.some((t) => t > now - 60_000)) this.addresses.delete(k);
    }
  }
}
