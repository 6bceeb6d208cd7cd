import type { StoredEvent } from '@holdfast/core';

/** The tenant and type of each committed event: all a commit cache needs to know. */
export type CommittedEventKind = Pick<StoredEvent, 'tenant' | 'type'>;

/** What a commit cache subscribes to (a `Ledger`, or a test's stand-in). */
export interface CommitSource {
  subscribe(fn: (tenants: ReadonlySet<string>, events: readonly CommittedEventKind[]) => void): unknown;
}

/**
 * Values read from projections that only some events change, kept per tenant and key until a
 * commit (an append of this node or an import from another) brings such an event for the tenant.
 * The commit listener runs after the commit and before the appender is answered, and forgets the
 * tenant's values, reads in flight included: a read that may have seen the store before the commit
 * is never handed to a caller that asks after it. A read that fails is not kept.
 */
export class CommitCache<T> {
  private readonly values = new Map<string, Map<string, Promise<T>>>();

  constructor(
    ledger: CommitSource,
    /** Whether an event of this type can change a kept value. */
    changes: (type: string) => boolean,
    /** At most this many keys per tenant (the oldest go first). */
    private readonly maxKeys = 10_000,
  ) {
    ledger.subscribe((tenants, events) => {
      for (const tenant of tenants)
        if (events.some((e) => e.tenant === tenant && changes(e.type))) this.values.delete(tenant);
    });
  }

  get(tenant: string, key: string, read: () => Promise<T>): Promise<T> {
    let kept = this.values.get(tenant);
    const hit = kept?.get(key);
    if (hit) return hit;
    if (!kept) this.values.set(tenant, (kept = new Map()));
    const reading = read();
    kept.set(key, reading);
    if (kept.size > this.maxKeys) kept.delete(kept.keys().next().value!);
    const tenantValues = kept;
    reading.catch(() => {
      if (tenantValues.get(key) === reading) tenantValues.delete(key);
    });
    return reading;
  }
}
