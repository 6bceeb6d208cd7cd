import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { totpCode } from '../../src/auth/totp.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';
import { newEs256KeyPair, SoftAuthenticator } from '../support/webauthn.ts';

// Not a test of password hashing: hashes at the smallest argon2id cost (support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The WebAuthn passkey second factor end to end, through the real HTTP application, with a software
 * authenticator producing the bytes a browser would post.
 */

const ADMIN = 'provider_admin@northshire';

interface SignInEvent {
  userId?: string;
  step: string;
  outcome: string;
}

describe.each(STORE_KINDS)('passkeys (%s)', (kind) => {
  let t: TestApp;
  let tenant: string;
  let adminId: string;

  beforeEach(async () => {
    t = await startTestApp(kind);
    tenant = t.providers[0]!.tenant;
    adminId = t.providers[0]!.users.provider_admin.userId;
  });
  afterEach(async () => {
    await t.close();
  });

  const client = () => new Client(t.app, t.clock);

  /** The password step; returns the `next` step the server asks for. */
  async function password(c: Client, username = ADMIN): Promise<string> {
    const res = await c.request('POST', '/api/v1/auth/sign-in', { username, password: PASSWORD });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { next: string }).next;
  }

  async function registerOptions(c: Client): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const res = await c.request('POST', '/api/v1/auth/passkey/register/options');
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  async function passkeyOptions(c: Client): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const res = await c.request('POST', '/api/v1/auth/passkey/options');
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  /** First sign-in of the admin: password, then a new passkey. Returns the authenticator. */
  async function enrolAdmin(): Promise<SoftAuthenticator> {
    const c = client();
    expect(await password(c)).toBe('enrol_passkey');
    const authenticator = new SoftAuthenticator();
    const res = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: authenticator.register(await registerOptions(c)),
      label: 'test key',
    });
    expect(res.statusCode, res.body).toBe(200);
    return authenticator;
  }

  async function verify(c: Client, response: AuthenticationResponseJSON) {
    return c.request('POST', '/api/v1/auth/passkey/verify', { response });
  }

  /** Admin routes need a full session: the proof that a sign-in did or did not complete. */
  async function adminUsersStatus(c: Client): Promise<number> {
    return (await c.request('GET', '/api/v1/admin/users')).statusCode;
  }

  /** The `audit.sign_in` events of the passkey step, in ledger order. */
  async function passkeyAudit(): Promise<SignInEvent[]> {
    const events = await t.node.ledger.readTenant(tenant, null, 10_000);
    return events
      .filter((e) => e.type === 'audit.sign_in')
      .map((e) => JSON.parse(e.payloadJson) as SignInEvent)
      .filter((p) => p.step === 'passkey');
  }

  async function adminPasskeyCount(c: Client): Promise<number> {
    const res = await c.request('GET', '/api/v1/admin/users');
    expect(res.statusCode, res.body).toBe(200);
    const users = (res.json() as { users: { userId: string; secondFactors: { passkeys: number } }[] }).users;
    return users.find((u) => u.userId === adminId)!.secondFactors.passkeys;
  }

  it("a provider admin's first sign-in enrols a passkey and completes the sign-in", async () => {
    const c = client();
    expect(await password(c)).toBe('enrol_passkey');
    const passwordCookie = c.cookie;
    const passwordCsrf = c.csrf;
    expect(passwordCookie).toMatch(/^hf_session=.+/);

    // The password alone reaches nothing, and the admin may not fall back to an authenticator app.
    expect(await adminUsersStatus(c)).toBe(401);
    const totp = await c.request('POST', '/api/v1/auth/totp/enrol');
    expect(totp.statusCode, totp.body).toBe(403);

    const options = await registerOptions(c);
    expect(options.rp.id).toBe('localhost');
    expect(options.user.name).toBe(ADMIN);
    expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(options.authenticatorSelection?.userVerification).toBe('required');
    expect(options.excludeCredentials ?? []).toEqual([]);

    const authenticator = new SoftAuthenticator();
    const res = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: authenticator.register(options),
      label: 'laptop',
    });
    expect(res.statusCode, res.body).toBe(200);
    const { csrfToken } = res.json() as { csrfToken: string };
    expect(csrfToken).toBe(c.csrf);
    expect(csrfToken).not.toBe(passwordCsrf);
    // A new session token at the completed sign-in: the password-step token is never upgraded.
    expect(c.cookie).toMatch(/^hf_session=.+/);
    expect(c.cookie).not.toBe(passwordCookie);

    expect(await adminUsersStatus(c)).toBe(200);
    expect(await adminPasskeyCount(c)).toBe(1);
    const stored = await t.accounts.passkeys(tenant, adminId);
    expect(stored.map((k) => k.credentialId)).toEqual([authenticator.id]);

    // The password-step token is dead.
    const stale = client();
    stale.cookie = passwordCookie;
    stale.csrf = passwordCsrf;
    expect(await adminUsersStatus(stale)).toBe(401);
    const again = await stale.request('POST', '/api/v1/auth/passkey/options');
    expect(again.statusCode).toBe(401);

    expect(await passkeyAudit()).toEqual([expect.objectContaining({ userId: adminId, outcome: 'success' })]);
  });

  it('the next sign-in asks for the passkey and completes with a signed challenge', async () => {
    const authenticator = await enrolAdmin();
    const c = client();
    expect(await password(c)).toBe('passkey');
    const passwordCookie = c.cookie;
    expect(await adminUsersStatus(c)).toBe(401);

    const options = await passkeyOptions(c);
    expect(options.rpId).toBe('localhost');
    expect(options.userVerification).toBe('required');
    expect(options.allowCredentials?.map((d) => d.id)).toEqual([authenticator.id]);

    const res = await verify(c, authenticator.assert(options));
    expect(res.statusCode, res.body).toBe(200);
    expect(c.cookie).not.toBe(passwordCookie);
    expect(await adminUsersStatus(c)).toBe(200);
    const session = await c.request('GET', '/api/v1/auth/session');
    expect(session.statusCode).toBe(200);
    expect((session.json() as { user: { userId: string } }).user.userId).toBe(adminId);

    // A third sign-in works the same way (the signature counter moves on).
    const d = client();
    expect(await password(d)).toBe('passkey');
    const third = await verify(d, authenticator.assert(await passkeyOptions(d)));
    expect(third.statusCode, third.body).toBe(200);
    expect(await adminUsersStatus(d)).toBe(200);
  });

  it('refuses a signature made by another key under the same credential id', async () => {
    const authenticator = await enrolAdmin();
    const c = client();
    expect(await password(c)).toBe('passkey');
    const passwordCookie = c.cookie;
    const forged = authenticator.assert(await passkeyOptions(c), {
      signWith: newEs256KeyPair().privateKey,
    });
    const res = await verify(c, forged);
    expect(res.statusCode, res.body).toBe(401);
    expect(c.cookie).toBe(passwordCookie); // no new session
    expect(await adminUsersStatus(c)).toBe(401);

    // The same session can still finish with the genuine key: the refusal was the signature.
    const genuine = await verify(c, authenticator.assert(await passkeyOptions(c)));
    expect(genuine.statusCode, genuine.body).toBe(200);
    expect(await adminUsersStatus(c)).toBe(200);
  });

  it('refuses an assertion for a credential the user does not have', async () => {
    await enrolAdmin();
    const c = client();
    expect(await password(c)).toBe('passkey');
    const stranger = new SoftAuthenticator();
    const res = await verify(c, stranger.assert(await passkeyOptions(c)));
    expect(res.statusCode, res.body).toBe(401);
    expect(await adminUsersStatus(c)).toBe(401);
  });

  it('refuses an assertion without user verification', async () => {
    const authenticator = await enrolAdmin();
    const c = client();
    expect(await password(c)).toBe('passkey');
    const res = await verify(c, authenticator.assert(await passkeyOptions(c), { flags: 0x01 }));
    expect(res.statusCode, res.body).toBe(401);
    expect(await adminUsersStatus(c)).toBe(401);
  });

  it('a challenge is single-use: a replayed assertion is refused', async () => {
    const authenticator = await enrolAdmin();

    // Within one session: a failed attempt spends the challenge, so even the genuine answer to it
    // is then refused.
    const c = client();
    expect(await password(c)).toBe('passkey');
    const options = await passkeyOptions(c);
    const genuine = authenticator.assert(options);
    const bad = await verify(c, authenticator.assert(options, { signWith: newEs256KeyPair().privateKey }));
    expect(bad.statusCode, bad.body).toBe(401);
    const replay = await verify(c, genuine);
    expect(replay.statusCode, replay.body).toBe(400); // no challenge is pending any more
    expect(await adminUsersStatus(c)).toBe(401);

    // A response captured from a completed sign-in, sent again in a new session, is refused too.
    const d = client();
    expect(await password(d)).toBe('passkey');
    const captured = authenticator.assert(await passkeyOptions(d));
    expect((await verify(d, captured)).statusCode).toBe(200);
    const e = client();
    expect(await password(e)).toBe('passkey');
    await passkeyOptions(e); // a fresh challenge is pending for e
    const replayed = await verify(e, captured);
    expect(replayed.statusCode, replayed.body).toBe(401);
    expect(await adminUsersStatus(e)).toBe(401);
    // And sent twice without asking again: nothing is pending.
    const twice = await verify(e, captured);
    expect(twice.statusCode, twice.body).toBe(400);
    expect(await adminUsersStatus(e)).toBe(401);
  });

  it('refuses an assertion made for another origin or another relying party', async () => {
    const authenticator = await enrolAdmin();
    const c = client();
    expect(await password(c)).toBe('passkey');
    const phished = await verify(
      c,
      authenticator.assert(await passkeyOptions(c), { origin: 'https://holdfast.example.net' }),
    );
    expect(phished.statusCode, phished.body).toBe(401);
    const otherRp = await verify(c, authenticator.assert(await passkeyOptions(c), { rpId: 'example.net' }));
    expect(otherRp.statusCode, otherRp.body).toBe(401);
    const wrongType = await verify(
      c,
      authenticator.assert(await passkeyOptions(c), { type: 'webauthn.create' }),
    );
    expect(wrongType.statusCode, wrongType.body).toBe(401);
    expect(await adminUsersStatus(c)).toBe(401);
  });

  it('refuses a registration made for another origin, and stores no passkey', async () => {
    const c = client();
    expect(await password(c)).toBe('enrol_passkey');
    const res = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: new SoftAuthenticator().register(await registerOptions(c), {
        origin: 'https://holdfast.example.net',
      }),
    });
    expect(res.statusCode, res.body).toBe(400);
    expect(await adminUsersStatus(c)).toBe(401);
    expect(await t.accounts.passkeys(tenant, adminId)).toEqual([]);
    expect(await password(client())).toBe('enrol_passkey');
  });

  it('refuses a challenge issued to another session', async () => {
    const authenticator = await enrolAdmin();
    const a = client();
    const b = client();
    expect(await password(a)).toBe('passkey');
    expect(await password(b)).toBe('passkey');
    const forA = await passkeyOptions(a);
    const forB = await passkeyOptions(b);
    expect(forA.challenge).not.toBe(forB.challenge);

    const crossed = await verify(b, authenticator.assert(forA));
    expect(crossed.statusCode, crossed.body).toBe(401);
    expect(await adminUsersStatus(b)).toBe(401);
    // The challenge was good, only for the other session.
    const own = await verify(a, authenticator.assert(forA));
    expect(own.statusCode, own.body).toBe(200);
    expect(await adminUsersStatus(a)).toBe(200);
  });

  it('refuses a registration that answers another session’s challenge', async () => {
    const a = client();
    const b = client();
    expect(await password(a)).toBe('enrol_passkey');
    expect(await password(b)).toBe('enrol_passkey');
    const forA = await registerOptions(a);
    await registerOptions(b);
    const res = await b.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: new SoftAuthenticator().register(forA),
    });
    expect(res.statusCode, res.body).toBe(400);
    expect(await adminUsersStatus(b)).toBe(401);
    expect(await t.accounts.passkeys(tenant, adminId)).toEqual([]);
  });

  it('refuses to add a passkey at the second-factor stage once one exists', async () => {
    const authenticator = await enrolAdmin();
    const c = client();
    expect(await password(c)).toBe('passkey');
    const options = await c.request('POST', '/api/v1/auth/passkey/register/options');
    expect(options.statusCode, options.body).toBe(403);

    // Nor by posting a registration straight away (with a challenge the session does hold).
    const challenge = (await passkeyOptions(c)).challenge;
    const intruder = new SoftAuthenticator();
    const res = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: intruder.register({
        rp: { id: 'localhost', name: 'Holdfast test' },
        user: { id: 'eA', name: ADMIN, displayName: ADMIN },
        challenge,
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
      }),
    });
    expect(res.statusCode, res.body).toBe(403);
    expect(await adminUsersStatus(c)).toBe(401);
    expect((await t.accounts.passkeys(tenant, adminId)).map((k) => k.credentialId)).toEqual([
      authenticator.id,
    ]);
    // Nor a fallback to an authenticator app.
    expect((await c.request('POST', '/api/v1/auth/totp/enrol')).statusCode).toBe(403);
    expect((await c.request('POST', '/api/v1/auth/totp/verify', { code: '123456' })).statusCode).toBe(403);
  });

  it('an admin without a passkey reaches no admin route after the password step', async () => {
    const c = client();
    expect(await password(c)).toBe('enrol_passkey');
    expect(await adminUsersStatus(c)).toBe(401);
    const create = await c.request('POST', '/api/v1/admin/users', {
      username: 'mallory@northshire',
      displayName: 'Mallory',
      roles: ['provider_admin'],
      siteIds: [],
      password: 'another long password',
    });
    expect(create.statusCode, create.body).toBe(401);
    expect((await c.request('GET', '/api/v1/auth/session')).statusCode).toBe(401);
    // The passkey step needs a passkey.
    expect((await c.request('POST', '/api/v1/auth/passkey/options')).statusCode).toBe(403);
    expect(await t.accounts.passkeys(tenant, adminId)).toEqual([]);
  });

  it('audits every success and failure at the passkey step', async () => {
    const authenticator = await enrolAdmin(); // success (registration)
    const c = client();
    expect(await password(c)).toBe('passkey');
    expect(
      (
        await verify(
          c,
          authenticator.assert(await passkeyOptions(c), { signWith: newEs256KeyPair().privateKey }),
        )
      ).statusCode,
    ).toBe(401); // failure: wrong key
    expect(
      (await verify(c, authenticator.assert(await passkeyOptions(c), { origin: 'https://evil.example' })))
        .statusCode,
    ).toBe(401); // failure: wrong origin
    expect((await verify(c, new SoftAuthenticator().assert(await passkeyOptions(c)))).statusCode).toBe(401); // failure: unknown credential
    expect((await verify(c, authenticator.assert(await passkeyOptions(c)))).statusCode).toBe(200); // success

    const events = await passkeyAudit();
    expect(events.map((e) => e.outcome)).toEqual(['success', 'failure', 'failure', 'failure', 'success']);
    for (const e of events) expect(e.userId).toBe(adminId);
  });

  it('audits a failed passkey registration at first sign-in', async () => {
    const c = client();
    expect(await password(c)).toBe('enrol_passkey');
    const res = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: new SoftAuthenticator().register(await registerOptions(c), {
        origin: 'https://evil.example',
      }),
    });
    expect(res.statusCode, res.body).toBe(400);
    const ok = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: new SoftAuthenticator().register(await registerOptions(c)),
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect((await passkeyAudit()).map((e) => e.outcome)).toEqual(['failure', 'success']);
  });

  it("refuses a registration reusing another user's credential id, and completes no sign-in", async () => {
    const admin = await enrolAdmin();
    const c = client();
    expect(await password(c, 'health_adviser@northshire')).toBe('enrol_totp');
    // Credential ids are not secrets: a second user presents the admin's id with a key of their own.
    const copycat = new SoftAuthenticator({ credentialId: admin.credentialId });
    const res = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: copycat.register(await registerOptions(c)),
    });
    expect(res.statusCode, res.body).toBe(400);
    expect((await c.request('GET', '/api/v1/auth/session')).statusCode).toBe(401);
    expect(await t.deps.sessions.sessionsWithoutSecondFactor()).toEqual([]);
    const adviserId = t.providers[0]!.users.health_adviser.userId;
    expect(await t.accounts.passkeys(tenant, adviserId)).toEqual([]);
    // The admin's passkey is untouched and still signs in.
    const d = client();
    expect(await password(d)).toBe('passkey');
    expect((await verify(d, admin.assert(await passkeyOptions(d)))).statusCode).toBe(200);
  });

  it('a user who has a passkey cannot replace it by a new authenticator app with the password alone', async () => {
    const c = client();
    expect(await password(c, 'clinician@northshire')).toBe('enrol_totp');
    const reg = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
      response: new SoftAuthenticator().register(await registerOptions(c)),
    });
    expect(reg.statusCode, reg.body).toBe(200);

    const attacker = client();
    await password(attacker, 'clinician@northshire');
    const enrol = await attacker.request('POST', '/api/v1/auth/totp/enrol');
    if (enrol.statusCode === 200) {
      const { secret } = enrol.json() as { secret: string };
      await attacker.request('POST', '/api/v1/auth/totp/confirm', {
        code: totpCode(secret, t.clock.nowMs()),
      });
    }
    expect((await attacker.request('GET', '/api/v1/auth/session')).statusCode).toBe(401);
  });

  it('stores the signature counter: an assertion whose counter goes backwards (a cloned authenticator) is refused', async () => {
    const authenticator = await enrolAdmin();
    const c = client();
    await password(c);
    expect((await verify(c, authenticator.assert(await passkeyOptions(c), { counter: 10 }))).statusCode).toBe(
      200,
    );
    // A clone of the authenticator, still at counter 3.
    const d = client();
    await password(d);
    const cloned = await verify(d, authenticator.assert(await passkeyOptions(d), { counter: 3 }));
    expect(cloned.statusCode, cloned.body).toBe(401);
  });
});
