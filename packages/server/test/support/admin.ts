import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import type { FastifyInstance } from 'fastify';
import type { FixedClock } from '@holdfast/core';
import { Client, PASSWORD } from './http.ts';
import { SoftAuthenticator } from './webauthn.ts';

/**
 * A provider admin signed in: admins must use a passkey, so the first sign-in enrols one with a
 * software authenticator (as test/http/passkeys.test.ts does step by step) and completes the session.
 */
export async function signedInAdmin(
  app: FastifyInstance,
  clock: FixedClock,
  username: string,
): Promise<Client> {
  const c = new Client(app, clock);
  const authenticator = new SoftAuthenticator();
  const first = await c.request('POST', '/api/v1/auth/sign-in', { username, password: PASSWORD });
  if ((first.json() as { next?: string }).next !== 'enrol_passkey')
    throw new Error(`${username}: ${first.body}`);
  const options = await c.request('POST', '/api/v1/auth/passkey/register/options');
  const done = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
    response: authenticator.register(options.json() as PublicKeyCredentialCreationOptionsJSON),
    label: 'test key',
  });
  if (done.statusCode !== 200) throw new Error(`${username}: ${done.body}`);
  adminAuthenticators.set(c, authenticator);
  return c;
}

/** The passkey each signed-in admin client enrolled. */
export const adminAuthenticators = new WeakMap<Client, SoftAuthenticator>();

/**
 * Re-authenticates a signed-in admin with their passkey: administrators' changes to accounts need a
 * re-authentication with the second factor in the last five minutes.
 */
export async function reauthenticateAdmin(c: Client): Promise<void> {
  const authenticator = adminAuthenticators.get(c);
  if (!authenticator) throw new Error('not a client signed in by signedInAdmin');
  const options = await c.request('POST', '/api/v1/me/reauthenticate/passkey/options');
  if (options.statusCode !== 200) throw new Error(options.body);
  const res = await c.request('POST', '/api/v1/me/reauthenticate/passkey/verify', {
    response: authenticator.assert(options.json() as PublicKeyCredentialRequestOptionsJSON),
  });
  if (res.statusCode !== 200) throw new Error(res.body);
}
