import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/passwords.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp, OPERATOR_HEADERS } from '../support/http.ts';

type UsersRow = { tenant: string; user_id: string; roles: string; password_hash: string; disabled: number };

/**
 * Security decisions come from the ledger, not from the `users` read model: a row edited directly in
 * the store grants nothing. (Issue 19: an adviser given `auditor` in the table read the audit trail.)
 */
describe.each(STORE_KINDS)('accounts edited in the store on %s', (kind) => {
  let t: TestApp;
  const users = () => t.node.store.db.withTables<{ users: UsersRow }>();

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
  });
  afterAll(async () => t?.close());

  it('an adviser given auditor in the users table is still refused the audit trail', async () => {
    const north = t.providers[0]!;
    const adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    const auditor = new Client(t.app, t.clock);
    expect((await auditor.signIn('auditor@northshire')).statusCode).toBe(200);
    expect((await auditor.request('GET', '/api/v1/audit')).statusCode).toBe(200);
    expect((await adviser.request('GET', '/api/v1/audit')).statusCode).toBe(403);

    await users()
      .updateTable('users')
      .set({ roles: JSON.stringify(['health_adviser', 'auditor']) })
      .where('user_id', '=', north.users.health_adviser.userId)
      .execute();
    const stored = await users()
      .selectFrom('users')
      .select('roles')
      .where('user_id', '=', north.users.health_adviser.userId)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(stored.roles)).toContain('auditor');

    const refused = await adviser.request('GET', '/api/v1/audit');
    expect(refused.statusCode).toBe(403);
    // A fresh sign-in reads the same checked state.
    const again = new Client(t.app, t.clock);
    again.totpSecret = adviser.totpSecret;
    expect((await again.signIn('health_adviser@northshire')).statusCode).toBe(200);
    expect((await again.request('GET', '/api/v1/audit')).statusCode).toBe(403);
  });

  it('a password hash swapped in the users table does not let its author sign in', async () => {
    const north = t.providers[0]!;
    await users()
      .updateTable('users')
      .set({ password_hash: await hashPassword('an attacker chose this one') })
      .where('user_id', '=', north.users.clinician.userId)
      .execute();
    const attacker = new Client(t.app, t.clock);
    const res = await attacker.request('POST', '/api/v1/auth/sign-in', {
      username: 'clinician@northshire',
      password: 'an attacker chose this one',
    });
    expect(res.statusCode).toBe(401);
  });

  it('a disabled user re-enabled in the table stays disabled', async () => {
    const north = t.providers[0]!;
    await t.accounts.disable(
      { tenant: 'northshire', actor: 'system:test' },
      north.users.dispatcher.userId,
      'left the service',
    );
    await users()
      .updateTable('users')
      .set({ disabled: 0 })
      .where('user_id', '=', north.users.dispatcher.userId)
      .execute();
    const res = await new Client(t.app, t.clock).request('POST', '/api/v1/auth/sign-in', {
      username: 'dispatcher@northshire',
      password: 'correct horse battery staple',
    });
    expect(res.statusCode).toBe(401);
  });

  it('/health answers 503 integrity_fault when an unsealed event of the node was edited under it', async () => {
    expect(
      (await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS })).statusCode,
    ).toBe(200);
    const siteId = await t.accounts.createSite('northshire', 'Annex', 'system:test');
    const [event] = await t.node.ledger
      .readTenant('northshire', null, 100_000)
      .then((all) => all.filter((e) => e.type === 'site.created' && e.payloadJson.includes(siteId)));
    await t.node.store.db
      .updateTable('ledger_events')
      .set({ payload: event!.payloadJson.replace('Annex', 'Anne') })
      .where('tenant', '=', 'northshire')
      .where('node', '=', event!.node)
      .where('seq', '=', event!.seq)
      .execute();
    t.node.ledger.resetCache(); // as after a restart: the head is read from the store again
    const res = await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      status: 'integrity_fault',
      problem: expect.stringContaining(
        `is bad at seq ${event!.seq}: content does not match its hash`,
      ) as string,
    });
  });

  it('/health answers 503 naming the fault once an integrity check has halted the ledger', async () => {
    t.node.ledger.halt('integrity check failed: projection accounts, table users, column roles');
    const res = await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({
      status: 'integrity_fault',
      problem: 'integrity check failed: projection accounts, table users, column roles',
    });
  });
});
