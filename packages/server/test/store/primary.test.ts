import { describe, expect, inject, it } from 'vitest';
import { freePort } from '../support/postgres.ts';
import { isConnectionLoss, PrimaryLocator, splitHosts } from '../../src/store/primary.ts';

/**
 * Which host the hub writes to (docs/OPERATIONS.md): libpq's multi-host URL split into one URL a
 * host, and the locator's choice among real servers: the one writable host, never a guess between
 * two. The failover itself is failover.test.ts.
 */
describe('the writable primary among several hosts', () => {
  it("splits libpq's multi-host URL into one URL a host, keeping user, database and parameters", () => {
    expect(splitHosts('postgres://hf:pw@db1:5432,db2:5433/holdfast?sslmode=require')).toEqual([
      'postgres://hf:pw@db1:5432/holdfast?sslmode=require',
      'postgres://hf:pw@db2:5433/holdfast?sslmode=require',
    ]);
    expect(splitHosts('postgres://hf@db1:5432/holdfast')).toEqual(['postgres://hf@db1:5432/holdfast']);
  });

  it('uses the one host that accepts writes, past one that does not answer', async () => {
    const admin = inject('pgAdminUrl');
    const dead = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`;
    const locator = new PrimaryLocator([dead, admin]);
    await locator.connect();
    expect(locator.current()).toBe(admin);
    expect(locator.unavailable).toBeNull();
    locator.close();
  });

  it('refuses to choose when two hosts accept writes, and says why', async () => {
    const admin = inject('pgAdminUrl');
    const locator = new PrimaryLocator([admin, admin.replace('127.0.0.1', 'localhost')]);
    await expect(locator.connect()).rejects.toThrow(/more than one host accepts writes/);
    expect(() => locator.current()).toThrow(/not reachable/);
    locator.close();
  });

  it('tells a lost or read-only connection from a refused statement', () => {
    expect(isConnectionLoss(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(
      true,
    );
    expect(isConnectionLoss(Object.assign(new Error('read-only'), { code: '25006' }))).toBe(true);
    expect(isConnectionLoss(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionLoss(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isConnectionLoss(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
  });
});
