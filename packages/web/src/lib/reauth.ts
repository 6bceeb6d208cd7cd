import { startAuthentication } from '@simplewebauthn/browser';
import { api, ApiError } from './api.ts';

/**
 * Administrators' changes to accounts need a re-authentication with the second factor in the last
 * five minutes: the server answers 403 `reauthentication_required`. Then this asks for the passkey
 * (administrators sign in with one), and sends the same request once more.
 */
export async function withReauthentication<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== 'reauthentication_required') throw error;
    const optionsJSON = await api<Parameters<typeof startAuthentication>[0]['optionsJSON']>(
      'POST',
      '/api/v1/me/reauthenticate/passkey/options',
    );
    const response = await startAuthentication({ optionsJSON });
    await api('POST', '/api/v1/me/reauthenticate/passkey/verify', { response });
    return send();
  }
}
