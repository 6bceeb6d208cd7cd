import type { PublicKeyCredentialCreationOptionsJSON } from '@simplewebauthn/server';
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
  const first = await c.request('POST', '/api/v1/auth/sign-in', { username, password: PASSWORD });
  if ((first.json() as { next?: string }).next !== 'enrol_passkey')
    throw new Error(`${username}: ${first.body}`);
  const options = await c.request('POST', '/api/v1/auth/passkey/register/options');
  const done = await c.request('POST', '/api/v1/auth/passkey/register/verify', {
    response: new SoftAuthenticator().register(options.json() as PublicKeyCredentialCreationOptionsJSON),
    label: 'test key',
  });
  if (done.statusCode !== 200) throw new Error(`${username}: ${done.body}`);
  return c;
}
