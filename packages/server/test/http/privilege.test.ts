import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { totpCode } from '../../src/auth/totp.ts';
import { reauthenticateAdmin, signedInAdmin } from '../support/admin.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';
import { withRealPasswordHashing } from '../support/cheap-hashing.ts';

// Not a test of password hashing: hashes at the smallest argon2id cost (support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Issue 14, privilege and audit: nobody changes their own roles; a clinical role is granted only
 * with a recorded reason, shown to the other administrators and in the audit trail; administrators'
 * changes to accounts need a fresh re-authentication; every account event is in the auditor's trail;
 * after a second-factor reset the password alone enrols nothing; passwords are changed and reset
 * under the policy; a recovery code sent from five sessions at once gives exactly one session.
 */
describe.each(STORE_KINDS)('privilege and audit (%s)', (kind) => {
  let t: TestApp;
  let admin: Client;
  let tenant: string;
  const users = () => t.providers[0]!.users;

  beforeEach(async () => {
    t = await startTestApp(kind);
    tenant = t.providers[0]!.tenant;
    admin = await signedInAdmin(t.app, t.clock, users().provider_admin.username);
  });
  afterEach(async () => {
    await t.close();
  });

  const client = () => new Client(t.app, t.clock);

  it('an admin cannot change their own roles: no clinical role, no clinical notes', async () => {
    const self = users().provider_admin.userId;
    const res = await admin.request('PUT', `/api/v1/admin/users/${self}/roles`, {
      roles: ['provider_admin', 'clinician'],
      siteIds: [t.providers[0]!.sites[0]!],
      reason: 'I want to read notes',
    });
    expect(res.statusCode, res.body).toBe(403);
    expect(res.json()).toMatchObject({ detail: expect.stringMatching(/own roles/) });
    const me = (await admin.request('GET', '/api/v1/auth/session')).json() as { user: { roles: string[] } };
    expect(me.user.roles).toEqual(['provider_admin']);
    const roleEvents = (await t.node.ledger.readTenant(tenant, null, 10_000)).filter(
      (e) => e.type === 'user.roles_changed',
    );
    expect(roleEvents).toEqual([]);
  });

  it('granting a clinical role needs a reason; the grant is an alert for admins and a row of the trail', async () => {
    const target = users().receptionist.userId;
    const site = t.providers[0]!.sites[0]!;
    const noReason = await admin.request('PUT', `/api/v1/admin/users/${target}/roles`, {
      roles: ['clinician'],
      siteIds: [site],
    });
    expect(noReason.statusCode, noReason.body).toBe(400);
    expect(noReason.json()).toMatchObject({ errors: [{ path: 'body.reason' }] });
    // A dispatcher reads safeguarding text (core's rule for restricted notes): the same grant.
    const dispatcherNoReason = await admin.request('PUT', `/api/v1/admin/users/${target}/roles`, {
      roles: ['receptionist', 'dispatcher'],
      siteIds: [site],
    });
    expect(dispatcherNoReason.statusCode, dispatcherNoReason.body).toBe(400);
    expect(dispatcherNoReason.json()).toMatchObject({ errors: [{ path: 'body.reason' }] });
    // A non-clinical change needs none.
    const plain = await admin.request('PUT', `/api/v1/admin/users/${target}/roles`, {
      roles: ['receptionist', 'driver'],
      siteIds: [site],
    });
    expect(plain.statusCode, plain.body).toBe(200);
    const granted = await admin.request('PUT', `/api/v1/admin/users/${target}/roles`, {
      roles: ['clinician'],
      siteIds: [site],
      reason: 'qualified nurse joining the clinical rota',
    });
    expect(granted.statusCode, granted.body).toBe(200);

    // Another administrator sees the grant with who and why.
    const alerts = await admin.request('GET', '/api/v1/admin/alerts');
    expect(alerts.statusCode, alerts.body).toBe(200);
    const grants = (alerts.json() as { clinicalRoleGrants: Record<string, unknown>[] }).clinicalRoleGrants;
    expect(grants).toEqual([
      expect.objectContaining({
        user: { userId: target, name: 'receptionist of northshire' },
        roles: ['clinician'],
        reason: 'qualified nurse joining the clinical rota',
        grantedBy: 'provider_admin of northshire',
      }),
    ]);

    // The auditor's trail, filtered to account events, shows both changes, the grant with its reason.
    const auditor = client();
    expect((await auditor.signIn(users().auditor.username)).statusCode).toBe(200);
    const trail = await auditor.request('POST', '/api/v1/audit/search', { kinds: ['account'] });
    expect(trail.statusCode, trail.body).toBe(200);
    const rows = (trail.json() as { rows: { action: string; event: string; reason: string | null }[] }).rows;
    const roleRows = rows.filter((r) => r.action === 'account.roles_changed');
    expect(roleRows).toHaveLength(2);
    expect(roleRows[0]).toMatchObject({
      reason: 'qualified nurse joining the clinical rota',
      event: expect.stringMatching(/Changed roles of receptionist of northshire \(roles: clinician\)/),
    });
  });

  it('admin actions need a fresh re-authentication: 403 reauthentication_required, then the retry works', async () => {
    const target = users().dispatcher.userId;
    t.clock.advance(6 * 60_000); // past the five minutes a sign-in counts as a re-authentication
    const attempts: [string, string, unknown][] = [
      [
        'POST',
        '/api/v1/admin/users',
        {
          username: 'late@northshire',
          displayName: 'Late',
          roles: ['receptionist'],
          siteIds: [],
          password: PASSWORD,
        },
      ],
      ['PUT', `/api/v1/admin/users/${target}/roles`, { roles: ['receptionist'], siteIds: [] }],
      ['POST', `/api/v1/admin/users/${target}/disable`, { reason: 'left the service' }],
      ['POST', `/api/v1/admin/users/${target}/enable`, undefined],
      ['POST', `/api/v1/admin/users/${target}/reset-mfa`, { reason: 'lost their phone' }],
      ['POST', `/api/v1/admin/users/${target}/reset-password`, undefined],
    ];
    const accountEvents = async () =>
      (await t.node.ledger.readTenant(tenant, null, 10_000)).filter((e) => e.type.startsWith('user.')).length;
    const before = await accountEvents();
    for (const [method, url, body] of attempts) {
      const res = await admin.request(method, url, body);
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(403);
      expect(res.json()).toMatchObject({ code: 'reauthentication_required' });
    }
    // Nothing was changed by the refused requests.
    expect(await accountEvents()).toBe(before);
    await reauthenticateAdmin(admin);
    for (const [method, url, body] of attempts) {
      const res = await admin.request(method, url, body);
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
    }
  });

  it('every account event is in the trail, filterable by kind', async () => {
    const created = await admin.request('POST', '/api/v1/admin/users', {
      username: 'new.starter@northshire',
      displayName: 'New Starter',
      roles: ['receptionist'],
      siteIds: [t.providers[0]!.sites[0]!],
      password: PASSWORD,
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = (created.json() as { user: { userId: string } }).user.userId;
    expect(
      (await admin.request('POST', `/api/v1/admin/users/${id}/reset-mfa`, { reason: 'lost phone' }))
        .statusCode,
    ).toBe(200);
    expect((await admin.request('POST', `/api/v1/admin/users/${id}/reset-password`)).statusCode).toBe(200);
    expect(
      (await admin.request('POST', `/api/v1/admin/users/${id}/disable`, { reason: 'left' })).statusCode,
    ).toBe(204);
    const me = client();
    expect((await me.signIn(users().dispatcher.username)).statusCode).toBe(200);
    t.clock.advance(30_000);
    expect(
      (
        await me.request('POST', '/api/v1/auth/reauthenticate', {
          password: PASSWORD,
          code: totpCode(me.totpSecret!, t.clock.nowMs()),
        })
      ).statusCode,
    ).toBe(200);
    const changed = await me.request('POST', '/api/v1/me/password', {
      currentPassword: PASSWORD,
      newPassword: 'a different long passphrase',
    });
    expect(changed.statusCode, changed.body).toBe(204);

    const auditor = client();
    expect((await auditor.signIn(users().auditor.username)).statusCode).toBe(200);
    const search = async (kinds: string[]) => {
      const res = await auditor.request('POST', '/api/v1/audit/search', { kinds, limit: 500 });
      expect(res.statusCode, res.body).toBe(200);
      return (
        res.json() as {
          rows: { action: string; type: string; event: string; record: { id: string } | null }[];
        }
      ).rows;
    };
    const account = await search(['account']);
    const actions = account.map((r) => r.action);
    for (const a of [
      'account.created',
      'account.mfa_reset',
      'account.password_set',
      'account.disabled',
      'account.totp_enrolled',
    ])
      expect(actions, a).toContain(a);
    expect(account.every((r) => r.action.startsWith('account.'))).toBe(true);
    expect(account.find((r) => r.action === 'account.created' && r.record?.id === id)!.event).toMatch(
      /Created user New Starter \(roles: receptionist\)/,
    );
    // The two password changes: the admin's temporary one and the user's own.
    expect(account.filter((r) => r.action === 'account.password_set')).toHaveLength(2);
    // No secret or hash in any row.
    expect(JSON.stringify(account)).not.toMatch(/argon2|recoveryCodeHashes|secret/i);
    const signIns = await search(['sign_in']);
    expect(signIns.length).toBeGreaterThan(0);
    expect(signIns.every((r) => r.type === 'audit.sign_in')).toBe(true);
    const bad = await auditor.request('POST', '/api/v1/audit/search', { kinds: ['gossip'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ path: expect.stringMatching(/^body\.kinds/) }] });
  });

  it('after a second-factor reset, the password alone enrols nothing: the enrolment code or an old recovery code does', async () => {
    const user = users().clinician;
    const first = client();
    const enrolled = await first.signIn(user.username);
    expect(enrolled.statusCode).toBe(200);
    const reset = await admin.request('POST', `/api/v1/admin/users/${user.userId}/reset-mfa`, {
      reason: 'phone lost, identity checked',
    });
    expect(reset.statusCode, reset.body).toBe(200);
    const { enrolmentCode } = reset.json() as { enrolmentCode: string };
    expect(enrolmentCode).toMatch(/^[A-Z0-9]{4}(-[A-Z0-9]{4}){3}$/i);
    // The code is not in the ledger, only its hash.
    const ledgerText = JSON.stringify(await t.node.ledger.readTenant(tenant, null, 10_000));
    expect(ledgerText).not.toContain(enrolmentCode);

    // An attacker with the password: asked for the code; enrolment refused without it.
    const attacker = client();
    const pw = await attacker.request('POST', '/api/v1/auth/sign-in', {
      username: user.username,
      password: PASSWORD,
    });
    expect(pw.json()).toMatchObject({ next: 'enrolment_code' });
    const enrol = await attacker.request('POST', '/api/v1/auth/totp/enrol');
    expect(enrol.statusCode).toBe(403);
    expect(enrol.json()).toMatchObject({ code: 'enrolment_code_required' });
    const wrong = await attacker.request('POST', '/api/v1/auth/enrolment-code', {
      enrolmentCode: 'AAAA-BBBB-CCCC-DDDD',
    });
    expect(wrong.statusCode).toBe(401);
    expect((await attacker.request('POST', '/api/v1/auth/totp/enrol')).statusCode).toBe(403);

    // The user with the code handed over: enrols.
    const owner = client();
    await owner.request('POST', '/api/v1/auth/sign-in', { username: user.username, password: PASSWORD });
    const ok = await owner.request('POST', '/api/v1/auth/enrolment-code', {
      enrolmentCode: enrolmentCode.toLowerCase(),
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ next: 'enrol_totp' });
    const secret = ((await owner.request('POST', '/api/v1/auth/totp/enrol')).json() as { secret: string })
      .secret;
    t.clock.advance(30_000); // a step not used by the first enrolment
    const confirm = await owner.request('POST', '/api/v1/auth/totp/confirm', {
      code: totpCode(secret, t.clock.nowMs()),
    });
    expect(confirm.statusCode, confirm.body).toBe(200);
    // Enrolled: the code is spent (no more enrolment, the new factor is asked for).
    const again = client();
    const next = await again.request('POST', '/api/v1/auth/sign-in', {
      username: user.username,
      password: PASSWORD,
    });
    expect(next.json()).toMatchObject({ next: 'totp' });
    expect((await again.request('POST', '/api/v1/auth/enrolment-code', { enrolmentCode })).statusCode).toBe(
      403,
    );

    // A second reset: a recovery code of the factor it removed also unlocks enrolment.
    const newCodes = (confirm.json() as { recoveryCodes: string[] }).recoveryCodes;
    t.clock.advance(60_000);
    await reauthenticateAdmin(admin);
    expect(
      (await admin.request('POST', `/api/v1/admin/users/${user.userId}/reset-mfa`, { reason: 'again' }))
        .statusCode,
    ).toBe(200);
    const viaRecovery = client();
    await viaRecovery.request('POST', '/api/v1/auth/sign-in', {
      username: user.username,
      password: PASSWORD,
    });
    const recovered = await viaRecovery.request('POST', '/api/v1/auth/enrolment-code', {
      recoveryCode: newCodes[0],
    });
    expect(recovered.statusCode, recovered.body).toBe(200);
    expect((await viaRecovery.request('POST', '/api/v1/auth/totp/enrol')).statusCode).toBe(200);
  });

  it('password change: needs the current password and a fresh second factor; the policy refuses breached and own names', async () => {
    const c = client();
    expect((await c.signIn(users().dispatcher.username)).statusCode).toBe(200);
    t.clock.advance(6 * 60_000);
    const stale = await c.request('POST', '/api/v1/me/password', {
      currentPassword: PASSWORD,
      newPassword: 'a brand new passphrase',
    });
    expect(stale.statusCode).toBe(403);
    expect(stale.json()).toMatchObject({ code: 'reauthentication_required' });
    t.clock.advance(30_000);
    const re = await c.request('POST', '/api/v1/auth/reauthenticate', {
      password: PASSWORD,
      code: totpCode(c.totpSecret!, t.clock.nowMs()),
    });
    expect(re.statusCode, re.body).toBe(200);
    const wrongCurrent = await c.request('POST', '/api/v1/me/password', {
      currentPassword: 'not my password',
      newPassword: 'a brand new passphrase',
    });
    expect(wrongCurrent.statusCode).toBe(401);
    for (const refused of [
      'Northshire1',
      'qwertyuiop1',
      'Dispatcher2',
      'NORTHSHIRE',
      'password123',
      'Liverpool99',
    ]) {
      const res = await c.request('POST', '/api/v1/me/password', {
        currentPassword: PASSWORD,
        newPassword: refused,
      });
      expect(res.statusCode, `${refused}: ${res.body}`).toBe(400);
      expect(res.json()).toMatchObject({ errors: [{ path: 'body.newPassword' }] });
    }
    const ok = await c.request('POST', '/api/v1/me/password', {
      currentPassword: PASSWORD,
      newPassword: 'a brand new passphrase',
    });
    expect(ok.statusCode, ok.body).toBe(204);
    const old = await client().request('POST', '/api/v1/auth/sign-in', {
      username: users().dispatcher.username,
      password: PASSWORD,
    });
    expect(old.statusCode).toBe(401);
    const fresh = await client().request('POST', '/api/v1/auth/sign-in', {
      username: users().dispatcher.username,
      password: 'a brand new passphrase',
    });
    expect(fresh.statusCode).toBe(200);
  });

  it('the policy applies at user creation too', async () => {
    for (const password of ['Northshire1', 'qwertyuiop1', 'Newbie123', 'provider2026']) {
      const res = await admin.request('POST', '/api/v1/admin/users', {
        username: 'newbie@northshire',
        displayName: 'New Bie',
        roles: ['receptionist'],
        siteIds: [],
        password,
      });
      expect(res.statusCode, `${password}: ${res.body}`).toBe(400);
      expect(res.json()).toMatchObject({ errors: [{ path: 'body.password' }] });
    }
    const noReason = await admin.request('POST', '/api/v1/admin/users', {
      username: 'newdoc@northshire',
      displayName: 'New Doc',
      roles: ['clinician'],
      siteIds: [],
      password: PASSWORD,
    });
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json()).toMatchObject({ errors: [{ path: 'body.reason' }] });
  });

  it('admin reset: a one-time temporary password that must be changed before the second factor', async () => {
    const user = users().receptionist;
    const c = client();
    expect((await c.signIn(user.username)).statusCode).toBe(200);
    const reset = await admin.request('POST', `/api/v1/admin/users/${user.userId}/reset-password`);
    expect(reset.statusCode, reset.body).toBe(200);
    const { password } = reset.json() as { password: string };
    expect(password).toMatch(/^\S{16}$/);
    // Their sessions ended; the old password is gone.
    expect((await c.request('GET', '/api/v1/auth/session')).statusCode).toBe(401);
    expect(
      (
        await client().request('POST', '/api/v1/auth/sign-in', {
          username: user.username,
          password: PASSWORD,
        })
      ).statusCode,
    ).toBe(401);
    const s = client();
    s.totpSecret = c.totpSecret;
    const pw = await s.request('POST', '/api/v1/auth/sign-in', { username: user.username, password });
    expect(pw.json()).toMatchObject({ next: 'change_password' });
    // The second factor cannot complete the sign-in until the password is changed.
    t.clock.advance(30_000);
    const early = await s.request('POST', '/api/v1/auth/totp/verify', {
      code: totpCode(s.totpSecret!, t.clock.nowMs()),
    });
    expect(early.statusCode).toBe(403);
    const same = await s.request('POST', '/api/v1/auth/password/temporary', { newPassword: password });
    expect(same.statusCode).toBe(400);
    const weak = await s.request('POST', '/api/v1/auth/password/temporary', { newPassword: 'qwertyuiop1' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({ errors: [{ path: 'body.newPassword' }] });
    const changed = await s.request('POST', '/api/v1/auth/password/temporary', {
      newPassword: 'my own long passphrase',
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({ next: 'totp' });
    t.clock.advance(30_000);
    const done = await s.request('POST', '/api/v1/auth/totp/verify', {
      code: totpCode(s.totpSecret!, t.clock.nowMs()),
    });
    expect(done.statusCode, done.body).toBe(200);
    // The temporary password no longer signs in.
    expect(
      (await client().request('POST', '/api/v1/auth/sign-in', { username: user.username, password }))
        .statusCode,
    ).toBe(401);
  });

  it('one recovery code sent from five sessions at once gives exactly one session', async () => {
    const user = users().health_adviser;
    const first = client();
    // Recovery codes at the real argon2id cost, so the five checks overlap as they would in service.
    const codes = (
      (await withRealPasswordHashing(() => first.signIn(user.username))).json() as { recoveryCodes: string[] }
    ).recoveryCodes;
    const sessions = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const c = client();
        const pw = await c.request('POST', '/api/v1/auth/sign-in', {
          username: user.username,
          password: PASSWORD,
        });
        expect(pw.statusCode, pw.body).toBe(200);
        return c;
      }),
    );
    const results = await Promise.all(
      sessions.map((c) => c.request('POST', '/api/v1/auth/totp/verify', { recoveryCode: codes[3] })),
    );
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401, 401, 401, 401]);
    const used = (await t.node.ledger.readTenant(tenant, null, 10_000)).filter(
      (e) => e.type === 'user.recovery_code_used',
    );
    expect(used).toHaveLength(1);
  });
});
