import { describe, expect, it } from 'vitest';
import { CommitCache, type CommittedEventKind } from '../../src/ledger/commit-cache.ts';

/** A ledger that only tells of commits, as Ledger.subscribe does after each append or import. */
function fakeLedger() {
  type Listener = (tenants: ReadonlySet<string>, events: readonly CommittedEventKind[]) => void;
  const listeners = new Set<Listener>();
  return {
    subscribe(fn: Listener) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    commit(events: CommittedEventKind[]) {
      for (const fn of listeners) fn(new Set(events.map((e) => e.tenant)), events);
    },
  };
}

describe('CommitCache (values kept until a commit brings an event that changes them)', () => {
  it('reads once until an event of a changing type commits for the tenant; other types and tenants keep it', async () => {
    const ledger = fakeLedger();
    const cache = new CommitCache<number>(ledger, (type) => type.startsWith('user.'));
    let reads = 0;
    const read = () => Promise.resolve(++reads);
    expect(await cache.get('a', 'u1', read)).toBe(1);
    expect(await cache.get('a', 'u1', read)).toBe(1);
    ledger.commit([{ tenant: 'a', type: 'booking.booked' }]);
    ledger.commit([{ tenant: 'b', type: 'user.disabled' }]);
    expect(await cache.get('a', 'u1', read)).toBe(1);
    ledger.commit([{ tenant: 'a', type: 'user.disabled' }]);
    expect(await cache.get('a', 'u1', read)).toBe(2);
  });

  it('a read in flight when such a commit lands is not handed to a later caller; a failed read is not kept', async () => {
    const ledger = fakeLedger();
    const cache = new CommitCache<string>(ledger, () => true);
    let finish!: (v: string) => void;
    const first = cache.get('a', 'k', () => new Promise((resolve) => (finish = resolve)));
    ledger.commit([{ tenant: 'a', type: 'user.roles_changed' }]);
    const second = cache.get('a', 'k', () => Promise.resolve('after the commit'));
    finish('before the commit');
    expect(await first).toBe('before the commit');
    expect(await second).toBe('after the commit');

    await expect(cache.get('a', 'bad', () => Promise.reject(new Error('store down')))).rejects.toThrow();
    expect(await cache.get('a', 'bad', () => Promise.resolve('read again'))).toBe('read again');
  });
});
