import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/auth/sessions.ts';
import { hashRecoveryCodes, totpCode } from '../../src/auth/totp.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

/**
 * Acceptance (negative authentication): TOTP replayed inside its window; TOTP two steps off;
 * password only, then a protected route; expired, forged and revoked sessions; session fixation;
 * a missing CSRF token; brute force ending in lockout; unknown user and wrong password
 * indistinguishable. And: no usable account without a second factor.
 */
describe.each(STORE_KINDS)('authentication on %s', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, {
      idleTimeoutMs: 30 * 60_000,
      absoluteTimeoutMs: 12 * 3600_000,
      lockoutMs: 10 * 60_000,
    });
  });
  afterAll(async () => t?.close());

  const client = () => new Client(t.app, t.clock);
  const sessionRoute = '/api/v1/auth/session';

  it('enrols TOTP at first sign-in: secret, otpauth URI and QR code shown once, recovery codes once', async () => {
    const c = client();
    const pw = await c.request('POST', '/api/v1/auth/sign-in', {
      username: 'clinician@northshire',
      password: PASSWORD,
    });
    expect(pw.statusCode).toBe(200);
    expect(pw.json()).toMatchObject({ next: 'enrol_totp' });
    const enrol = await c.request('POST', '/api/v1/auth/totp/enrol');
    const body = enrol.json() as { secret: string; otpauthUri: string; qrSvg: string };
    expect(body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(body.otpauthUri).toMatch(/^otpauth:\/\/totp\/Holdfast:clinician%40northshire\?.*secret=/);
    expect(body.qrSvg).toMatch(/^<svg/);
    const confirm = await c.request('POST', '/api/v1/auth/totp/confirm', {
      code: totpCode(body.secret, t.clock.nowMs()),
    });
    expect(confirm.statusCode, confirm.body).toBe(200);
    const codes = (confirm.json() as { recoveryCodes: string[] }).recoveryCodes;
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    // The secret and codes are not retrievable afterwards: only hashes and the secret in the user record.
    const session = await c.request('GET', sessionRoute);
    expect(session.statusCode).toBe(200);
    expect(session.body).not.toContain(body.secret);
    // A second enrolment at the second-factor stage is refused once a factor exists.
    const again = client();
    await again.request('POST', '/api/v1/auth/sign-in', {
      username: 'clinician@northshire',
      password: PASSWORD,
    });
    expect((await again.request('POST', '/api/v1/auth/totp/enrol')).statusCode).toBe(403);
    // A recovery code works once.
    const r1 = await again.request('POST', '/api/v1/auth/totp/verify', { recoveryCode: codes[0] });
    expect(r1.statusCode, r1.body).toBe(200);
    const third = client();
    await third.request('POST', '/api/v1/auth/sign-in', {
      username: 'clinician@northshire',
      password: PASSWORD,
    });
    expect(
      (await third.request('POST', '/api/v1/auth/totp/verify', { recoveryCode: codes[0] })).statusCode,
    ).toBe(401);
  });

  it('accepts each TOTP code once: a replay inside its window is refused', async () => {
    const c = client();
    expect((await c.signIn('dispatcher@northshire')).statusCode).toBe(200);
    t.clock.advance(30_000);
    const code = totpCode(c.totpSecret!, t.clock.nowMs());
    const first = client();
    await first.request('POST', '/api/v1/auth/sign-in', {
      username: 'dispatcher@northshire',
      password: PASSWORD,
    });
    expect((await first.request('POST', '/api/v1/auth/totp/verify', { code })).statusCode).toBe(200);
    const replay = client();
    await replay.request('POST', '/api/v1/auth/sign-in', {
      username: 'dispatcher@northshire',
      password: PASSWORD,
    });
    const r = await replay.request('POST', '/api/v1/auth/totp/verify', { code });
    expect(r.statusCode).toBe(401);
    expect((await replay.request('GET', sessionRoute)).statusCode).toBe(401);
  });

  it('accepts a code one step off and refuses one two steps off', async () => {
    const c = client();
    expect((await c.signIn('receptionist@northshire')).statusCode).toBe(200);
    const attempt = async (offsetSteps: number) => {
      t.clock.advance(90_000); // well clear of every step used before
      const s = client();
      await s.request('POST', '/api/v1/auth/sign-in', {
        username: 'receptionist@northshire',
        password: PASSWORD,
      });
      return s.request('POST', '/api/v1/auth/totp/verify', {
        code: totpCode(c.totpSecret!, t.clock.nowMs() + offsetSteps * 30_000),
      });
    };
    expect((await attempt(-1)).statusCode).toBe(200);
    expect((await attempt(1)).statusCode).toBe(200);
    expect((await attempt(2)).statusCode).toBe(401);
    expect((await attempt(-2)).statusCode).toBe(401);
  });

  it('password only, then a protected route: refused', async () => {
    const c = client();
    const pw = await c.request('POST', '/api/v1/auth/sign-in', {
      username: 'shift_manager@northshire',
      password: PASSWORD,
    });
    expect(pw.statusCode).toBe(200);
    expect(c.cookie).not.toBeNull();
    for (const [method, url] of [
      ['GET', sessionRoute],
      ['POST', '/api/v1/patients/search'],
      ['GET', '/api/v1/audit'],
    ] as const) {
      const r = await c.request(method, url, method === 'POST' ? { nhsNumber: '9990000018' } : undefined);
      expect(r.statusCode, `${method} ${url}`).toBe(401);
      expect(r.json()).toMatchObject({ code: 'unauthenticated' });
    }
  });

  it('refuses forged, expired (idle and absolute) and revoked sessions', async () => {
    const forged = client();
    forged.cookie = `hf_session=${'A'.repeat(43)}`;
    expect((await forged.request('GET', sessionRoute)).statusCode).toBe(401);
    forged.cookie = 'hf_session=not-even-a-token';
    expect((await forged.request('GET', sessionRoute)).statusCode).toBe(401);

    const idle = client();
    expect((await idle.signIn('prescriber@northshire')).statusCode).toBe(200);
    expect((await idle.request('GET', sessionRoute)).statusCode).toBe(200);
    t.clock.advance(29 * 60_000);
    expect((await idle.request('GET', sessionRoute)).statusCode).toBe(200);
    t.clock.advance(30 * 60_000 + 1);
    expect((await idle.request('GET', sessionRoute)).statusCode).toBe(401);

    const long = client();
    long.totpSecret = idle.totpSecret;
    expect((await long.signIn('prescriber@northshire')).statusCode).toBe(200);
    for (let h = 0; h < 12; h++) {
      t.clock.advance(25 * 60_000); // active every 25 minutes: never idle
      const r = await long.request('GET', sessionRoute);
      if (h < 11) expect(r.statusCode, `after ${(h + 1) * 25} min`).toBe(200);
    }
    t.clock.advance(30 * 60_000); // past 12 h since sign-in
    expect((await long.request('GET', sessionRoute)).statusCode).toBe(401);

    const out = client();
    out.totpSecret = idle.totpSecret;
    expect((await out.signIn('prescriber@northshire')).statusCode).toBe(200);
    const kept = out.cookie;
    expect((await out.request('POST', '/api/v1/auth/sign-out')).statusCode).toBe(204);
    out.cookie = kept;
    expect((await out.request('GET', sessionRoute)).statusCode).toBe(401);
  });

  it('prevents session fixation: a token held before sign-in is never upgraded', async () => {
    const victim = client();
    await victim.request('POST', '/api/v1/auth/sign-in', {
      username: 'auditor@northshire',
      password: PASSWORD,
    });
    const planted = victim.cookie;
    const enrol = await victim.request('POST', '/api/v1/auth/totp/enrol');
    const secret = (enrol.json() as { secret: string }).secret;
    await victim.request('POST', '/api/v1/auth/totp/confirm', { code: totpCode(secret, t.clock.nowMs()) });
    expect(victim.cookie).not.toBe(planted);
    expect((await victim.request('GET', sessionRoute)).statusCode).toBe(200);
    const attacker = client();
    attacker.cookie = planted;
    attacker.csrf = victim.csrf;
    expect((await attacker.request('GET', sessionRoute)).statusCode).toBe(401);
    // The stored row holds the token's hash only.
    const token = victim.cookie!.split('=')[1]!;
    const rows = await t.node.store.db.selectFrom('sessions').select('token_hash').execute();
    expect(rows.some((r) => r.token_hash === hashToken(token))).toBe(true);
    expect(rows.some((r) => r.token_hash === token)).toBe(false);
  });

  it('refuses a state-changing request without the CSRF token', async () => {
    const c = client();
    expect((await c.signIn('health_adviser@northshire')).statusCode).toBe(200);
    const good = c.csrf;
    c.csrf = null;
    const r = await c.request('POST', '/api/v1/patients/search', { nhsNumber: '9990000018' });
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ code: 'forbidden' });
    c.csrf = 'x'.repeat(43);
    expect((await c.request('POST', '/api/v1/patients/search', { nhsNumber: '9990000018' })).statusCode).toBe(
      403,
    );
    c.csrf = good;
    expect((await c.request('POST', '/api/v1/patients/search', { nhsNumber: '9990000018' })).statusCode).toBe(
      200,
    );
  });

  it('locks an account after 5 failures, before hashing, with unknown and known users alike', async () => {
    const c = client();
    const bodies: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await c.request('POST', '/api/v1/auth/sign-in', {
        username: 'clinician@southshire',
        password: `wrong ${i}`,
      });
      expect(r.statusCode).toBe(401);
      bodies.push(r.body);
    }
    const locked = await c.request('POST', '/api/v1/auth/sign-in', {
      username: 'clinician@southshire',
      password: PASSWORD,
    });
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++)
      await c.request('POST', '/api/v1/auth/sign-in', {
        username: 'nobody@southshire',
        password: `wrong ${i}`,
      });
    const lockedUnknown = await c.request('POST', '/api/v1/auth/sign-in', {
      username: 'nobody@southshire',
      password: 'whatever it is',
    });
    expect(lockedUnknown.statusCode).toBe(429);
    expect(lockedUnknown.body).toBe(locked.body);
    // The lock ends after its time.
    t.clock.advance(10 * 60_000 + 1000);
    const after = await c.request('POST', '/api/v1/auth/sign-in', {
      username: 'clinician@southshire',
      password: PASSWORD,
    });
    expect(after.statusCode).toBe(200);
  });

  it('counts attempts still being hashed: a burst cannot get more than 5 guesses at one name', async () => {
    t.clock.advance(20 * 60_000);
    const c = client();
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        c.request('POST', '/api/v1/auth/sign-in', {
          username: 'prescriber@southshire',
          password: `guess ${i}`,
        }),
      ),
    );
    const statuses = burst.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(15);
    // Only the first refusal of the lock window is audited; the rest are counted.
    const refusals = (await t.node.ledger.readTenant('southshire', null, 100_000)).filter(
      (e) =>
        e.type === 'audit.sign_in' &&
        e.payloadJson.includes('"outcome":"locked"') &&
        e.actor === `user:${t.providers[1]!.users.prescriber.userId}`,
    );
    expect(refusals).toHaveLength(1);
    t.clock.advance(20 * 60_000);
  });

  it('answers an unknown user exactly like a wrong password: status, body and time', async () => {
    const c = client();
    const measure = async (username: string) => {
      const start = process.hrtime.bigint();
      const r = await c.request('POST', '/api/v1/auth/sign-in', { username, password: 'not the password' });
      return { r, ms: Number(process.hrtime.bigint() - start) / 1e6 };
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 4; i++) {
      const k = await measure('dispatcher@southshire');
      const u = await measure(`ghost-${i}@southshire`);
      expect(u.r.statusCode).toBe(k.r.statusCode);
      expect(u.r.body).toBe(k.r.body);
      expect(u.r.headers['content-type']).toBe(k.r.headers['content-type']);
      known.push(k.ms);
      unknown.push(u.ms);
      t.clock.advance(16 * 60_000); // keep both below the lockout
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // Both pay for one argon2id verification: the medians differ by far less than the hash costs.
    expect(Math.abs(median(known) - median(unknown))).toBeLessThan(Math.max(15, median(known) * 0.5));
    expect(median(unknown)).toBeGreaterThan(5);
  });

  it('applies disabling a user and changing roles at the next request; admins end sessions', async () => {
    const subject = client();
    expect((await subject.signIn('health_adviser@southshire')).statusCode).toBe(200);
    expect(
      (await subject.request('POST', '/api/v1/patients/search', { nhsNumber: '9990000018' })).statusCode,
    ).toBe(200);
    const south = t.providers[1]!;
    const userId = south.users.health_adviser.userId;
    // Role change (as the service does for an admin): the next request is judged by the new role.
    await t.accounts.changeRoles(
      {
        tenant: south.tenant,
        userId: south.users.provider_admin.userId,
        username: 'x',
        roles: ['provider_admin'],
        siteIds: [],
        sessionId: 'x',
        address: 'x',
      },
      userId,
      ['auditor'],
      [south.sites[0]!],
    );
    expect(
      (await subject.request('POST', '/api/v1/patients/search', { nhsNumber: '9990000018' })).statusCode,
    ).toBe(403);
    expect((await subject.request('GET', '/api/v1/audit')).statusCode).toBe(200);
    await t.accounts.disable({ tenant: south.tenant, actor: 'user:admin' }, userId, 'left the service');
    expect((await subject.request('GET', sessionRoute)).statusCode).toBe(401);
    await t.accounts.enable({ tenant: south.tenant, actor: 'user:admin' }, userId);
    // Disabling revoked the session itself, not only hid it.
    expect((await subject.request('GET', sessionRoute)).statusCode).toBe(401);

    // An administrator ends another user's session. (The admin's full session is created directly,
    // after giving the admin a second factor, because a real admin sign-in needs a passkey: see passkeys.test.ts.)
    const victim = client();
    expect((await victim.signIn('dispatcher@southshire')).statusCode).toBe(200);
    const admin = await t.accounts.get(south.tenant, south.users.provider_admin.userId);
    await t.accounts.enrolTotp(
      admin!,
      'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
      await hashRecoveryCodes(Array.from({ length: 10 }, (_, i) => `recovery-${i}`)),
    );
    const { token, session } = await t.deps.sessions.create({
      tenant: south.tenant,
      userId: admin!.userId,
      stage: 'full',
      address: '127.0.0.1',
    });
    const adminClient = client();
    adminClient.cookie = `hf_session=${token}`;
    adminClient.csrf = session.csrf_token;
    const list = await adminClient.request('GET', '/api/v1/admin/sessions');
    expect(list.statusCode).toBe(200);
    const victimSession = (
      list.json() as { sessions: { sessionId: string; userId: string }[] }
    ).sessions.find((s) => s.userId === south.users.dispatcher.userId);
    expect(victimSession).toBeDefined();
    expect(
      (await adminClient.request('DELETE', `/api/v1/admin/sessions/${victimSession!.sessionId}`)).statusCode,
    ).toBe(204);
    expect((await victim.request('GET', sessionRoute)).statusCode).toBe(401);
    // An admin cannot end another provider's sessions: the id is simply not found.
    const northSession = await t.deps.sessions.create({
      tenant: 'northshire',
      userId: t.providers[0]!.users.clinician.userId,
      stage: 'full',
      address: '127.0.0.1',
    });
    expect(
      (await adminClient.request('DELETE', `/api/v1/admin/sessions/${northSession.session.id}`)).statusCode,
    ).toBe(404);
    await t.deps.sessions.revoke(northSession.session.id);
  });

  it('needs re-authentication before changing the second factor', async () => {
    const c = client();
    expect((await c.signIn('shift_manager@southshire')).statusCode).toBe(200);
    t.clock.advance(6 * 60_000);
    await c.request('GET', sessionRoute);
    expect((await c.request('POST', '/api/v1/me/totp/replace')).statusCode).toBe(403);
    t.clock.advance(30_000);
    const wrong = await c.request('POST', '/api/v1/auth/reauthenticate', {
      password: 'not it at all',
      code: totpCode(c.totpSecret!, t.clock.nowMs()),
    });
    expect(wrong.statusCode).toBe(401);
    t.clock.advance(30_000);
    const ok = await c.request('POST', '/api/v1/auth/reauthenticate', {
      password: PASSWORD,
      code: totpCode(c.totpSecret!, t.clock.nowMs()),
    });
    expect(ok.statusCode, ok.body).toBe(200);
    const replace = await c.request('POST', '/api/v1/me/totp/replace');
    expect(replace.statusCode).toBe(200);
  });

  it('leaves no usable account without a second factor (and the start-up check enforces it)', async () => {
    // Every role's first sign-in ends at the second-factor stage: no route but MFA answers.
    for (const role of ['health_adviser', 'auditor', 'provider_admin'] as const) {
      const c = client();
      t.clock.advance(16 * 60_000);
      const pw = await c.request('POST', '/api/v1/auth/sign-in', {
        username: `${role}@southshire`,
        password: PASSWORD,
      });
      if (pw.statusCode !== 200) continue; // locked by an earlier test of this user: still no session
      expect(['enrol_totp', 'enrol_passkey', 'totp', 'passkey']).toContain(
        (pw.json() as { next: string }).next,
      );
      expect((await c.request('GET', sessionRoute)).statusCode).toBe(401);
    }
    // A full session for a user with no factor (only possible by writing the store directly) stops the node starting.
    const south = t.providers[1]!;
    const planted = await t.deps.sessions.create({
      tenant: south.tenant,
      userId: south.users.receptionist.userId,
      stage: 'full',
      address: '127.0.0.1',
    });
    expect(await t.deps.sessions.sessionsWithoutSecondFactor()).toEqual([planted.session.id]);
    await t.deps.sessions.revoke(planted.session.id);
    expect(await t.deps.sessions.sessionsWithoutSecondFactor()).toEqual([]);
  });
});
