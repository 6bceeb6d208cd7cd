import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../../server/src/triage/packs.ts';
import { answersTo } from '../../../server/test/support/cases.ts';
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

type Disposition = { dxCode: string; kind: string };
let samplePack: ReturnType<typeof requireProtocolPack> | null = null;

/**
 * A call taken over the API by an adviser: the call opened for a patient of the index, the shipped
 * pack's pathway walked (answers found by the engine itself) to a disposition `want` accepts, and
 * confirmed, which queues or routes the case as the adviser's screen would. For a test whose subject
 * comes after the call, in a file that takes such a call through the adviser's screens elsewhere.
 * Returns the case id.
 */
export async function callToDispositionOverApi(
  adviser: ApiUser,
  call: {
    siteId: string;
    patientId: string;
    caller: { name: string; relationship: string; callbackNumber: string };
    location: string;
    presentingComplaint: string;
    pathwayId: string;
    want: (disposition: Disposition) => boolean;
  },
): Promise<string> {
  const { caseId } = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
    siteId: call.siteId,
    caller: { ...call.caller, callbackNumberReadBack: true },
    patientId: call.patientId,
    location: call.location,
    presentingComplaint: call.presentingComplaint,
  });
  const protocol = (await (samplePack ??= requireProtocolPack(SAMPLE_PACK_DIR))).protocols.get(
    call.pathwayId,
  );
  if (!protocol) throw new Error(`the sample pack has no pathway ${call.pathwayId}`);
  const answers = answersTo(protocol, call.want);
  if (!answers) throw new Error(`no walk of ${call.pathwayId} reaches the disposition wanted`);
  await adviser.call('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId: protocol.content.pathwayId });
  let last: { status: string; disposition?: Disposition } = { status: 'question' };
  for (const a of answers) last = await adviser.call('POST', `/api/v1/cases/${caseId}/triage/answers`, a);
  if (last.status !== 'disposition' || !call.want(last.disposition!))
    throw new Error(`triage of ${call.pathwayId} over the API did not reach the disposition wanted`);
  await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
    dxCode: last.disposition!.dxCode,
  });
  return caseId;
}
