import { ForbiddenError, TooManyRequestsError, UnauthenticatedError, ValidationError } from '@holdfast/core';
import type {
  AuthenticationResponseJSON,
  RegistrationResponseJSON,
  WebAuthnCredential,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { UserRecord } from '../accounts/projection.ts';
import { passkeyOwner } from '../accounts/reads.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import {
  completeSignIn,
  REAUTH_WINDOW_MS,
  requireEnrolmentUnlocked,
  requireRecentReauthentication,
  type AuthDeps,
} from './routes.ts';

/**
 * The WebAuthn library, loaded at the first passkey request: it and its ASN.1 and CBOR libraries
 * took about 190 ms to load, paid by every start of the server (and every test app) whether or not
 * anyone uses a passkey. Node loads a module once; later calls get the same one.
 */
const webauthn = () => import('@simplewebauthn/server');

/**
 * WebAuthn passkeys: phishing-resistant second factor, required for provider admins. The relying
 * party id must be a host name (`localhost` in development, never an IP address).
 */
export interface PasskeyConfig {
  rpId: string;
  rpName: string;
  /** Origins the browser may report, e.g. http://localhost:8080. */
  origins: string[];
}

/** The browser's credential as JSON: checked in depth by the WebAuthn library, here only its shape. */
const credentialJson = z.looseObject({
  id: z.string().min(1).max(1400),
  rawId: z.string().min(1).max(1400),
  type: z.literal('public-key'),
  response: z.looseObject({ clientDataJSON: z.string().max(10_000) }),
});

function toBytes(b64url: string): Uint8Array<ArrayBuffer> {
  const buffer = Buffer.from(b64url, 'base64url');
  const out = new Uint8Array(new ArrayBuffer(buffer.length));
  out.set(buffer);
  return out;
}

export function passkeyRoutes(deps: AuthDeps, config: PasskeyConfig): RouteSpec[] {
  const registrationOptions = async (user: {
    userId: string;
    username: string;
    displayName: string;
    tenant: string;
  }) => {
    const existing = await deps.accounts.passkeys(user.tenant, user.userId);
    const { generateRegistrationOptions } = await webauthn();
    return generateRegistrationOptions({
      rpName: config.rpName,
      rpID: config.rpId,
      userName: user.username,
      userDisplayName: user.displayName,
      userID: new TextEncoder().encode(user.userId),
      attestationType: 'none',
      excludeCredentials: existing.map((k) => ({ id: k.credentialId, transports: k.transports })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    });
  };

  const verifyRegistration = async (response: unknown, challenge: string | null, tenant: string) => {
    if (!challenge)
      throw new ValidationError([{ path: 'body', message: 'ask for registration options first' }]);
    let credential: WebAuthnCredential;
    const { verifyRegistrationResponse } = await webauthn();
    try {
      const result = await verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: config.origins,
        expectedRPID: config.rpId,
        requireUserVerification: true,
      });
      if (!result.verified) throw new Error('not verified');
      credential = result.registrationInfo.credential;
    } catch {
      throw new ValidationError([
        { path: 'body', message: 'the passkey could not be verified: try again from this site' },
      ]);
    }
    // Credential ids are unique per tenant (the projection keeps the first and drops a repeat):
    // accepting a repeat would complete a sign-in with no passkey stored for this user.
    const taken = await deps.node.store.withTenant(tenant, (trx) => passkeyOwner(trx, tenant, credential.id));
    if (taken) throw new ValidationError([{ path: 'body', message: 'this passkey is registered already' }]);
    return credential;
  };

  const storePasskey = (user: UserRecord, credential: WebAuthnCredential, label: string) =>
    deps.accounts.registerPasskey(user, {
      credentialId: credential.id,
      publicKey: Buffer.from(credential.publicKey).toString('base64url'),
      counter: credential.counter,
      transports: credential.transports ?? [],
      label,
    });

  /** Every success and failure at the passkey step is an audit event. */
  const auditPasskey = (user: UserRecord, address: string, outcome: 'success' | 'failure') =>
    deps.auditor.signIn({ tenant: user.tenant, userId: user.userId, step: 'passkey', outcome, address });

  /** Options for an assertion by one of the user's passkeys; the challenge is kept in the session. */
  const assertionOptions = async (user: { tenant: string; userId: string }, sessionId: string) => {
    const keys = await deps.accounts.passkeys(user.tenant, user.userId);
    if (keys.length === 0) throw new ForbiddenError('you have no passkey: enrol one first');
    const { generateAuthenticationOptions } = await webauthn();
    const options = await generateAuthenticationOptions({
      rpID: config.rpId,
      allowCredentials: keys.map((k) => ({ id: k.credentialId, transports: k.transports })),
      userVerification: 'required',
    });
    await deps.sessions.update(sessionId, { webauthn_challenge: options.challenge });
    return options;
  };

  /** Checks an assertion against the session's challenge, which is good for one attempt only. */
  const verifyAssertion = async (
    user: UserRecord,
    sessionId: string,
    challenge: string | null,
    response: z.infer<typeof credentialJson>,
  ): Promise<boolean> => {
    if (!challenge) throw new ValidationError([{ path: 'body', message: 'ask for passkey options first' }]);
    await deps.sessions.update(sessionId, { webauthn_challenge: null });
    const key = (await deps.accounts.passkeys(user.tenant, user.userId)).find(
      (k) => k.credentialId === response.id,
    );
    if (!key) return false;
    const { verifyAuthenticationResponse } = await webauthn();
    try {
      const result = await verifyAuthenticationResponse({
        response: response as unknown as AuthenticationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: config.origins,
        expectedRPID: config.rpId,
        credential: {
          id: key.credentialId,
          publicKey: toBytes(key.publicKey),
          counter: key.counter,
          transports: key.transports as never,
        },
        requireUserVerification: true,
      });
      if (!result.verified) return false;
      // Authenticators that count signatures must count upwards; storing the count lets the next
      // verification refuse a clone that is behind.
      if (result.authenticationInfo.newCounter > key.counter) {
        await deps.accounts.recordPasskeyCounter(
          user,
          key.credentialId,
          result.authenticationInfo.newCounter,
        );
      }
      return true;
    } catch {
      return false;
    }
  };

  return [
    authedRoute({
      method: 'POST',
      url: '/api/v1/me/reauthenticate/passkey/options',
      summary: 'Re-authenticate with a passkey before changing a second factor: the challenge',
      access: { permission: 'session.self' },
      async handler({ user, session }) {
        return assertionOptions(user, session.id);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/me/reauthenticate/passkey/verify',
      summary: 'Re-authenticate with a passkey: the signed challenge (counts for 5 minutes)',
      access: { permission: 'session.self' },
      body: z.strictObject({ response: credentialJson }),
      async handler({ user, session, body, ctx }) {
        const key = `reauth:${user.tenant}:${user.userId}`;
        const verdict = deps.throttle.begin(key, ctx.address);
        if (!verdict.allowed)
          throw new TooManyRequestsError('too many attempts: wait and try again', verdict.retryAfterSeconds);
        if (!(await verifyAssertion(user, session.id, session.webauthn_challenge, body.response))) {
          throw new UnauthenticatedError('the passkey could not be verified');
        }
        deps.throttle.succeeded(key, ctx.address);
        await deps.sessions.update(session.id, { reauthenticated_at: deps.clock.nowMs() });
        return { reauthenticatedUntil: new Date(deps.clock.nowMs() + REAUTH_WINDOW_MS).toISOString() };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/passkey/register/options',
      summary: 'First sign-in: options to create a passkey (only while no second factor is enrolled)',
      access: { secondFactor: true },
      async handler({ user, session }) {
        if (user.totpSecret || user.passkeys > 0)
          throw new ForbiddenError('a second factor is enrolled already: use it to sign in');
        requireEnrolmentUnlocked(user, session);
        const options = await registrationOptions(user);
        await deps.sessions.update(session.id, { webauthn_challenge: options.challenge });
        return options;
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/passkey/register/verify',
      summary: 'First sign-in: stores the new passkey and completes the sign-in',
      access: { secondFactor: true },
      body: z.strictObject({
        response: credentialJson,
        label: z.string().trim().max(100).default('passkey'),
      }),
      async handler({ user, session, body, reply, ctx }) {
        if (user.totpSecret || user.passkeys > 0)
          throw new ForbiddenError('a second factor is enrolled already: use it to sign in');
        requireEnrolmentUnlocked(user, session);
        let credential: WebAuthnCredential;
        try {
          credential = await verifyRegistration(body.response, session.webauthn_challenge, user.tenant);
        } catch (error) {
          // A failed first-sign-in passkey is a failed sign-in at the passkey step: audited like one.
          if (session.webauthn_challenge) await auditPasskey(user, ctx.address, 'failure');
          throw error;
        }
        await storePasskey(user, credential, body.label);
        await auditPasskey(user, ctx.address, 'success');
        return completeSignIn(deps, session, user, reply);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/passkey/options',
      summary: 'Second factor: a challenge for one of your passkeys',
      access: { secondFactor: true },
      async handler({ user, session }) {
        return assertionOptions(user, session.id);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/passkey/verify',
      summary: 'Second factor: the signed challenge; completes the sign-in',
      access: { secondFactor: true },
      body: z.strictObject({ response: credentialJson }),
      async handler({ user, session, body, reply, ctx }) {
        const verified = await verifyAssertion(user, session.id, session.webauthn_challenge, body.response);
        if (!verified) {
          await auditPasskey(user, ctx.address, 'failure');
          throw new UnauthenticatedError('the passkey could not be verified');
        }
        await auditPasskey(user, ctx.address, 'success');
        return completeSignIn(deps, session, user, reply);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/me/passkeys/options',
      summary: 'Add another passkey (needs re-authentication in the last 5 minutes)',
      access: { permission: 'session.self' },
      async handler({ user, session }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        const options = await registrationOptions(user);
        await deps.sessions.update(session.id, { webauthn_challenge: options.challenge });
        return options;
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/me/passkeys',
      summary: 'Stores an added passkey',
      access: { permission: 'session.self' },
      body: z.strictObject({
        response: credentialJson,
        label: z.string().trim().max(100).default('passkey'),
      }),
      async handler({ user, session, body, reply }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        const credential = await verifyRegistration(body.response, session.webauthn_challenge, user.tenant);
        await deps.sessions.update(session.id, { webauthn_challenge: null });
        await storePasskey(user, credential, body.label);
        return reply.code(201).send({ credentialId: credential.id });
      },
    }),
  ];
}
