import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { announceCommit, parseCommitNotice } from '../../src/ledger/commit-notice.ts';
import { COMMIT_CHANNEL } from '../../src/store/held-begin.ts';
import { freshStore } from '../support/databases.ts';

/**
 * PostgreSQL row-level security as the last line of defence: the application role sees only the
 * tenant of its transaction, and the start-up check refuses a setup that would not enforce it.
 */
describe('row-level security on postgres', () => {
  let node: HoldfastNode;
  let cleanup: () => Promise<void>;
  let databaseUrl = '';
  beforeAll(async () => {
    const fresh = await freshStore('postgres');
    cleanup = fresh.cleanup;
    databaseUrl = fresh.config.databaseUrl!;
    node = await initNode(fresh.config, { node: 'hub', tenant: 'north', role: 'hub' });
    await node.ledger.append([
      { tenant: 'south', type: 'tenant.created', actor: 'system:test', payload: { name: 'South' } },
    ]);
    await node.ledger.append([
      { tenant: 'north', type: 'tenant.created', actor: 'system:test', payload: { name: 'North' } },
    ]);
  });
  afterAll(async () => {
    await node?.close();
    await cleanup?.();
  });

  it('forces RLS on every table with a tenant column, and the check passes', async () => {
    await expect(node.store.checkTenantIsolation()).resolves.toBeUndefined();
    const tables = await sql<{ relname: string; forced: boolean }>`
      select c.relname, c.relforcerowsecurity as forced from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind = 'r'
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant')`.execute(
      node.store.db,
    );
    expect(tables.rows.map((r) => r.relname)).toEqual(
      expect.arrayContaining([
        'ledger_events',
        'checkpoints',
        'users',
        'patients',
        'patient_restricted',
        'audit_log',
        'sessions',
        'node_keys',
      ]),
    );
    expect(tables.rows.every((r) => r.forced)).toBe(true);
  });

  it('admits only the transaction tenant to the application role, even with no tenant condition in the query', async () => {
    const seen = await node.store.withTenant('north', (trx) =>
      trx.selectFrom('ledger_events').select('tenant').distinct().execute(),
    );
    expect(seen.map((r) => r.tenant)).toEqual(['north']);
    const names = await node.store.withTenant('south', (trx) =>
      trx
        .withTables<{ tenants: { tenant: string; name: string } }>()
        .selectFrom('tenants')
        .select('name')
        .execute(),
    );
    expect(names.map((r) => r.name)).toEqual(['South']);
    await expect(
      node.store.withTenant('north', (trx) =>
        trx
          .insertInto('checkpoints')
          .values({ tenant: 'south', node: 'x', seq: 1, hash: 'h', hlc: 'h', signer: 'x', signature: 's' })
          .execute(),
      ),
    ).rejects.toThrow(/row-level security/);
  });

  it('opens a request transaction and sets its tenant in one round trip, and still undoes it as a whole', async () => {
    const sent = vi.spyOn(pg.Client.prototype, 'query');
    onTestFinished(() => sent.mockRestore());
    const checkpoint = (tenant: string, node: string) => ({
      tenant,
      node,
      seq: 1,
      hash: 'h',
      hlc: 'h',
      signer: node,
      signature: 's',
    });
    const failed = await node.store
      .withTenant('north', async (trx) => {
        await trx.insertInto('checkpoints').values(checkpoint('north', 'undone')).execute();
        throw new Error('after the write');
      })
      .catch((e: unknown) => e);
    expect(String(failed)).toMatch(/after the write/);
    const texts = sent.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text: string }).text));
    expect(texts[0]).toBe("begin; select set_config('holdfast.tenant', 'north', true)");
    expect(texts).not.toContain('begin');
    expect(texts.at(-1)).toBe('rollback');
    const stored = await node.store.db
      .selectFrom('checkpoints')
      .select('node')
      .where('node', '=', 'undone')
      .execute();
    expect(stored).toEqual([]);
    // A tenant that is not one of Holdfast's ids travels as a parameter, after its own begin.
    sent.mockClear();
    const quoted = "o'brien";
    await node.store.withTenant(quoted, (trx) =>
      trx.insertInto('checkpoints').values(checkpoint(quoted, 'kept')).execute(),
    );
    const texts2 = sent.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text: string }).text));
    expect(texts2.slice(0, 2)).toEqual(['begin', "select set_config('holdfast.tenant', $1, true)"]);
    const seen = await node.store.withTenant(quoted, (trx) =>
      trx.selectFrom('checkpoints').select(['tenant', 'node']).execute(),
    );
    expect(seen).toEqual([{ tenant: quoted, node: 'kept' }]);
    // Any other first statement of a system transaction gets its begin on its own.
    sent.mockClear();
    await node.store.transaction(async (trx) => {
      await sql`savepoint other`.execute(trx);
      await sql`select 1`.execute(trx);
    });
    const texts3 = sent.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text: string }).text));
    expect(texts3).toEqual(['begin', 'savepoint other', 'select 1', 'commit']);
  });

  it('answers a request that only reads with its reads alone, under its own tenant, and begins at its first write', async () => {
    const sent = vi.spyOn(pg.Client.prototype, 'query');
    onTestFinished(() => sent.mockRestore());
    const texts = () =>
      sent.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text: string }).text));
    const tenantsSeen = (tenant: string) =>
      node.store.withTenant(tenant, (trx) =>
        trx.selectFrom('ledger_events').select('tenant').distinct().execute(),
      );
    for (const tenant of ['north', 'south', 'north', 'north'])
      expect((await tenantsSeen(tenant)).map((r) => r.tenant)).toEqual([tenant]);
    // No begin, commit or per-transaction setting: the connection's session is set when the tenant
    // changes (the pool hands the same idle connection back), not for every request.
    expect(texts().filter((t) => /^(begin|commit|rollback)/.test(t))).toEqual([]);
    expect(texts().filter((t) => t.includes('set_config'))).toEqual([
      "select set_config('holdfast.tenant', 'north', false)",
      "select set_config('holdfast.tenant', 'south', false)",
      "select set_config('holdfast.tenant', 'north', false)",
    ]);
    expect(texts().filter((t) => t.startsWith('select distinct'))).toHaveLength(4);
    // Reads, then a write: the transaction begins at the write, with its own tenant setting, and
    // is undone as a whole.
    sent.mockClear();
    const failed = await node.store
      .withTenant('north', async (trx) => {
        await trx.selectFrom('checkpoints').select('node').execute();
        await trx
          .insertInto('checkpoints')
          .values({
            tenant: 'north',
            node: 'undone-2',
            seq: 1,
            hash: 'h',
            hlc: 'h',
            signer: 'x',
            signature: 's',
          })
          .execute();
        await trx.selectFrom('checkpoints').select('node').execute();
        throw new Error('after the write');
      })
      .catch((e: unknown) => e);
    expect(String(failed)).toMatch(/after the write/);
    expect(texts().map((t) => t.split(' (')[0])).toEqual([
      'select "node" from "checkpoints"',
      "begin; select set_config('holdfast.tenant', 'north', true)",
      'insert into "checkpoints"',
      'select "node" from "checkpoints"',
      'rollback',
    ]);
    expect(
      await node.store.db.selectFrom('checkpoints').select('node').where('node', '=', 'undone-2').execute(),
    ).toEqual([]);
    // A statement that locks or acts is never sent outside the transaction.
    sent.mockClear();
    await node.store.withTenant('north', async (trx) => {
      await sql`select pg_advisory_xact_lock(1)`.execute(trx);
      await sql`select 1 from checkpoints for update`.execute(trx);
    });
    expect(texts()).toEqual([
      "begin; select set_config('holdfast.tenant', 'north', true)",
      'select pg_advisory_xact_lock(1)',
      'select 1 from checkpoints for update',
      'commit',
    ]);
    // After all that, each tenant still reads its own rows only.
    expect((await tenantsSeen('south')).map((r) => r.tenant)).toEqual(['south']);
    expect((await tenantsSeen('north')).map((r) => r.tenant)).toEqual(['north']);
  });

  it('sends a commit notice with its commit, in one round trip; a listener hears it, and nothing from a transaction undone', async () => {
    const listener = new pg.Client({ connectionString: databaseUrl });
    await listener.connect();
    onTestFinished(() => listener.end());
    const heard: string[] = [];
    listener.on('notification', (n) => {
      if (n.channel === COMMIT_CHANNEL) heard.push(n.payload ?? '');
    });
    await listener.query(`listen ${COMMIT_CHANNEL}`);
    const sent = vi.spyOn(pg.Client.prototype, 'query');
    onTestFinished(() => sent.mockRestore());
    const texts = () =>
      sent.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text: string }).text));

    // Held, then undone: the notice is never sent, so nobody hears of a commit that did not happen.
    const undone = await node.store
      .transaction(async (trx) => {
        await announceCommit(trx, 'postgres', 'hub', [
          { tenant: 'north', node: 'ghost', seq: 7, type: 'x.y' },
        ]);
        await trx.selectFrom('checkpoints').select('node').execute();
        throw new Error('undone after the notice');
      })
      .catch((e: unknown) => e);
    expect(String(undone)).toMatch(/undone after the notice/);
    expect(texts().some((t) => t.includes('pg_notify'))).toBe(false);
    expect(texts().at(-1)).toBe('rollback');

    // Committed: the notice travels with the commit, with a text (quotes and all) the listener reads.
    sent.mockClear();
    const [stored] = await node.ledger.append([
      { tenant: 'north', type: 'tenant.created', actor: 'system:test', payload: { name: "North's second" } },
    ]);
    const ends = texts().filter((t) => t === 'commit' || t.includes('pg_notify'));
    expect(ends, ends.join('\n')).toHaveLength(1);
    expect(ends[0]).toMatch(/^select pg_notify\('holdfast_commits', .*\); commit$/);
    // A text with quotes and a backslash arrives as it was written (the literal is escaped).
    const odd = `it's \\ "odd"`;
    await node.store.transaction((trx) =>
      announceCommit(trx, 'postgres', 'hub', [{ tenant: 'north', node: odd, seq: 3, type: 'x.y' }]),
    );
    const deadline = Date.now() + 10_000;
    while (heard.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Notices come in commit order on one connection: the undone transaction's never arrives.
    expect(heard.map((text) => parseCommitNotice(text))).toEqual([
      {
        origin: expect.any(String),
        chains: [{ tenant: 'north', node: 'hub', fromSeq: stored!.seq, toSeq: stored!.seq }],
        types: { north: ['tenant.created'] },
      },
      {
        origin: 'hub',
        chains: [{ tenant: 'north', node: odd, fromSeq: 3, toSeq: 3 }],
        types: { north: ['x.y'] },
      },
    ]);
  });

  it('refuses to run when a tenant table has RLS off, or the application role owns a table', async () => {
    await sql`alter table patients no force row level security`.execute(node.store.db);
    await expect(node.store.checkTenantIsolation()).rejects.toThrow(
      /table patients has a tenant column but row-level security is not forced/,
    );
    await sql`alter table patients force row level security`.execute(node.store.db);
    await expect(node.store.checkTenantIsolation()).resolves.toBeUndefined();
    await sql`alter table sites owner to holdfast_app`.execute(node.store.db);
    await expect(node.store.checkTenantIsolation()).rejects.toThrow(
      /the application role holdfast_app owns table sites/,
    );
    await sql`alter table sites owner to current_user`.execute(node.store.db);
    await expect(node.store.checkTenantIsolation()).resolves.toBeUndefined();
  });
});
