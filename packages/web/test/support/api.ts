import { TotpDevice } from './browser.ts';

/**
 * A member of staff signed in over the real HTTP API from the test process (password, then TOTP,
 * enrolling the authenticator at first sign-in): to set things up or to change data behind a
 * browser's back. `cookie` can be handed to a browser context, which is then signed in as them.
 */
export class ApiUser {
  cookie = '';
  csrf = '';
  totp: TotpDevice | null = null;

  private constructor(
    readonly baseUrl: string,
    readonly username: string,
  ) {}

  static async signIn(baseUrl: string, username: string, password: string): Promise<ApiUser> {
    const user = new ApiUser(baseUrl, username);
    const first = await user.call<{ next: string }>('POST', '/api/v1/auth/sign-in', { username, password });
    if (first.next !== 'enrol_totp')
      throw new Error(
        `${username}: expected a first sign-in that enrols TOTP, the server says ${first.next}`,
      );
    const { secret } = await user.call<{ secret: string }>('POST', '/api/v1/auth/totp/enrol');
    user.totp = new TotpDevice(secret);
    await user.call('POST', '/api/v1/auth/totp/confirm', { code: user.totp.code() });
    return user;
  }

  /** The session token, for BrowserContext.addCookies. */
  get sessionToken(): string {
    return /hf_session=([^;]*)/.exec(this.cookie)?.[1] ?? '';
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method,
      headers: {
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(this.csrf && method !== 'GET' ? { 'x-csrf-token': this.csrf } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const m = /^hf_session=([^;]*)/.exec(c);
      if (m) this.cookie = `hf_session=${m[1]}`;
    }
    const text = await res.text();
    if (!res.ok)
      throw new Error(`${method} ${path} as ${this.username}: ${res.status} ${text.slice(0, 300)}`);
    const json = (text ? JSON.parse(text) : {}) as T & { csrfToken?: string };
    if (typeof json.csrfToken === 'string') this.csrf = json.csrfToken;
    return json;
  }
}
