import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Clock, Role } from '@holdfast/core';
import { TOTP_PERIOD_S, TOTP_WINDOW, totpCode } from '../auth/totp.ts';

/**
 * A signed-in API user over real HTTP, as a browser would be: the session cookie, the CSRF token,
 * password then TOTP (enrolling the authenticator at first sign-in). Used by `holdfast simulate`
 * and by the flow benchmark. Only ever talks to the one base URL it is given.
 */

export interface Account {
  username: string;
  password: string;
}

/** A TOTP secret held for one account, and the last time step a code was used for (each is accepted once). */
export interface TotpEntry {
  secret: string;
  lastStep: number | null;
}

export interface TotpSecrets {
  get(key: string): TotpEntry | undefined;
  set(key: string, entry: TotpEntry): void;
}

/** Secrets kept in memory only (benchmarks, tests). */
export class MemoryTotpSecrets implements TotpSecrets {
  private readonly entries = new Map<string, TotpEntry>();
  get(key: string): TotpEntry | undefined {
    return this.entries.get(key);
  }
  set(key: string, entry: TotpEntry): void {
    this.entries.set(key, { ...entry });
  }
}

interface StateFileContent {
  version: 1;
  /** By `<origin> <username>`. */
  totp: Record<string, TotpEntry>;
}

/**
 * Secrets kept in a small JSON file (mode 0600, written atomically), so later runs sign in with
 * codes instead of enrolling again. The file holds second-factor secrets: it stays in the data
 * directory, readable by its owner only.
 */
export class FileTotpSecrets implements TotpSecrets {
  private content: StateFileContent;

  constructor(readonly file: string) {
    this.content = { version: 1, totp: {} };
    if (existsSync(file)) {
      chmodSync(file, 0o600);
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(file, 'utf8'));
      } catch (error) {
        throw new Error(
          `${file} is not valid JSON (${(error as Error).message}): move it away to start afresh`,
        );
      }
      if (
        typeof parsed !== 'object' ||
        parsed === null ||
        (parsed as StateFileContent).version !== 1 ||
        typeof (parsed as StateFileContent).totp !== 'object'
      )
        throw new Error(`${file} is not a simulator state file: move it away to start afresh`);
      this.content = parsed as StateFileContent;
    }
  }

  get(key: string): TotpEntry | undefined {
    const entry = this.content.totp[key];
    return entry ? { ...entry } : undefined;
  }

  set(key: string, entry: TotpEntry): void {
    this.content.totp[key] = { ...entry };
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(this.content, null, 2) + '\n', { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, this.file);
  }
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Called after every request: the route with ids replaced by `:caseId`, the status and the latency. */
export type RequestObserver = (sample: { method: string; route: string; status: number; ms: number }) => void;

export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly route: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${method} ${route}: ${status} ${describeBody(body)}`);
  }
}

function describeBody(body: string): string {
  try {
    const json = JSON.parse(body) as { detail?: string; title?: string; message?: string };
    return json.detail ?? json.message ?? json.title ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** The route pattern of a path: ids replaced, query dropped. */
export function routeOf(path: string): string {
  return path.split('?')[0]!.replace(UUID, ':caseId');
}

export interface SessionUser {
  userId: string;
  username: string;
  roles: Role[];
  siteIds: string[];
}

export interface ApiSessionOptions {
  /** The server's clock, for TOTP codes (default: this machine's wall clock). */
  clock?: Clock;
  secrets: TotpSecrets;
  /** Shared keep-alive agent (default: one of its own). */
  agent?: HttpAgent;
  observe?: RequestObserver;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Says what happened at sign-in (enrolment, waits). */
  log?: (line: string) => void;
}

const WALL_CLOCK: Clock = { nowMs: () => Date.now() };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ApiSession {
  private cookie: string | null = null;
  private csrf: string | null = null;
  private signingIn: Promise<SessionUser> | null = null;
  user: SessionUser | null = null;
  /** True when this session enrolled the authenticator (first sign-in of the account). */
  enrolled = false;
  readonly agent: HttpAgent;
  private readonly clock: Clock;
  private readonly send: typeof httpRequest;

  constructor(
    readonly baseUrl: URL,
    readonly account: Account,
    private readonly options: ApiSessionOptions,
  ) {
    if (baseUrl.protocol !== 'http:' && baseUrl.protocol !== 'https:')
      throw new Error(`${baseUrl.href}: only http:// and https:// URLs are supported`);
    const https = baseUrl.protocol === 'https:';
    this.send = https ? httpsRequest : httpRequest;
    this.agent =
      options.agent ??
      (https
        ? new HttpsAgent({ keepAlive: true, maxSockets: 16 })
        : new HttpAgent({ keepAlive: true, maxSockets: 16 }));
    this.clock = options.clock ?? WALL_CLOCK;
  }

  private get secretKey(): string {
    return `${this.baseUrl.origin} ${this.account.username.trim().toLowerCase()}`;
  }

  /**
   * One HTTP request with this session's cookie and CSRF token; no retry, no status check.
   * `headers` adds request headers (an Idempotency-Key).
   */
  async raw(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpAnswer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(path, this.baseUrl);
    if (url.origin !== this.baseUrl.origin) throw new Error(`refusing to leave ${this.baseUrl.origin}`);
    const started = performance.now();
    const answer = await new Promise<HttpAnswer>((resolve, reject) => {
      const req = this.send(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            ...headers,
            accept: 'application/json',
            ...(this.cookie ? { cookie: this.cookie } : {}),
            ...(this.csrf && method !== 'GET' ? { 'x-csrf-token': this.csrf } : {}),
            ...(payload !== undefined
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(this.options.timeoutMs ?? 30_000, () =>
        req.destroy(
          new Error(`${method} ${routeOf(path)}: no answer within ${this.options.timeoutMs ?? 30_000} ms`),
        ),
      );
      req.on('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code && ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(error.code)
            ? new Error(`cannot reach ${this.baseUrl.origin} (${error.code}): is the node running?`)
            : error,
        ),
      );
      if (payload !== undefined) req.write(payload);
      req.end();
    });
    this.options.observe?.({
      method,
      route: routeOf(path),
      status: answer.status,
      ms: performance.now() - started,
    });
    const setCookie = answer.headers['set-cookie'];
    for (const c of setCookie ?? []) {
      const m = /^hf_session=([^;]*)/.exec(c);
      if (m) this.cookie = m[1] ? `hf_session=${m[1]}` : null;
    }
    return answer;
  }

  /**
   * A request whose answer must have one of `ok` statuses (default 2xx); the JSON body comes back.
   * A 401 (the session ended: idle timeout, restart) signs in again once and repeats the request:
   * a 401 means nothing was done.
   */
  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    ok: (status: number) => boolean = (s) => s >= 200 && s < 300,
  ): Promise<{ status: number; json: T }> {
    let answer = await this.raw(method, path, body);
    if (answer.status === 401 && this.user) {
      this.user = null;
      await this.signIn();
      answer = await this.raw(method, path, body);
    }
    if (!ok(answer.status)) throw new ApiError(method, routeOf(path), answer.status, answer.body);
    return { status: answer.status, json: (answer.body ? JSON.parse(answer.body) : {}) as T };
  }

  /** Password, then the authenticator app (enrolled at first sign-in). Concurrent callers share one sign-in. */
  signIn(): Promise<SessionUser> {
    this.signingIn ??= this.doSignIn().finally(() => {
      this.signingIn = null;
    });
    return this.signingIn;
  }

  private async doSignIn(): Promise<SessionUser> {
    const { username, password } = this.account;
    this.cookie = null;
    this.csrf = null;
    const first = await this.raw('POST', '/api/v1/auth/sign-in', { username, password });
    if (first.status === 401)
      throw new ApiError('POST', '/api/v1/auth/sign-in', 401, `${username}: wrong user name or password`);
    if (first.status === 429)
      throw new ApiError(
        'POST',
        '/api/v1/auth/sign-in',
        429,
        `${username}: too many failed sign-ins, try again in ${String(first.headers['retry-after'] ?? 'a few')} s`,
      );
    if (first.status !== 200) throw new ApiError('POST', '/api/v1/auth/sign-in', first.status, first.body);
    const step = JSON.parse(first.body) as { next: string; csrfToken: string };
    this.csrf = step.csrfToken;
    let done: HttpAnswer;
    switch (step.next) {
      case 'enrol_totp':
        done = await this.enrolTotp();
        break;
      case 'totp':
        done = await this.verifyTotp();
        break;
      case 'enrol_passkey':
      case 'passkey':
        throw new Error(
          `${username} signs in with a passkey; use a health adviser or clinician account with an authenticator app`,
        );
      default:
        throw new Error(`${username}: unexpected sign-in step ${step.next}`);
    }
    this.csrf = (JSON.parse(done.body) as { csrfToken: string }).csrfToken;
    const session = await this.raw('GET', '/api/v1/auth/session');
    if (session.status !== 200)
      throw new ApiError('GET', '/api/v1/auth/session', session.status, session.body);
    const { user, csrfToken } = JSON.parse(session.body) as { user: SessionUser; csrfToken: string };
    this.csrf = csrfToken;
    this.user = user;
    return user;
  }

  private async enrolTotp(): Promise<HttpAnswer> {
    const enrol = await this.raw('POST', '/api/v1/auth/totp/enrol');
    if (enrol.status !== 200) throw new ApiError('POST', '/api/v1/auth/totp/enrol', enrol.status, enrol.body);
    const { secret } = JSON.parse(enrol.body) as { secret: string };
    // Kept before confirming: if the confirmation is lost, the server has no factor yet and the next
    // run enrols again; if it succeeds, the secret is already safe.
    this.options.secrets.set(this.secretKey, { secret, lastStep: null });
    const step = this.currentStep();
    const confirm = await this.raw('POST', '/api/v1/auth/totp/confirm', {
      code: totpCode(secret, step * TOTP_PERIOD_S * 1000),
    });
    if (confirm.status !== 200)
      throw new ApiError('POST', '/api/v1/auth/totp/confirm', confirm.status, confirm.body);
    this.options.secrets.set(this.secretKey, { secret, lastStep: step });
    this.enrolled = true;
    this.options.log?.(
      `${this.account.username}: enrolled an authenticator app; its secret is kept for later runs`,
    );
    return confirm;
  }

  private currentStep(): number {
    return Math.floor(this.clock.nowMs() / 1000 / TOTP_PERIOD_S);
  }

  /**
   * A code for a time step not used yet: the current one, or the next (the server accepts one step
   * either side of its time). When both are used, waits for the server's clock to move on.
   */
  private async freshStep(lastStep: number | null): Promise<number> {
    const waitUntil = Date.now() + 2 * TOTP_PERIOD_S * 1000 + 5_000;
    for (let logged = false; ;) {
      const now = this.currentStep();
      for (let step = now; step <= now + TOTP_WINDOW; step++)
        if (lastStep === null || step > lastStep) return step;
      if (Date.now() > waitUntil)
        throw new Error(
          `${this.account.username}: every code of the server's current time window was used already and its clock does not move on`,
        );
      if (!logged) this.options.log?.(`${this.account.username}: waiting for a fresh authenticator code`);
      logged = true;
      await sleep(1_000);
    }
  }

  private async verifyTotp(): Promise<HttpAnswer> {
    const entry = this.options.secrets.get(this.secretKey);
    if (!entry)
      throw new Error(
        `${this.account.username} has an authenticator enrolled, but not by this simulator (no secret for it in its state file); ` +
          `reset it with \`holdfast users reset-mfa --username ${this.account.username} --reason ...\` or use another account`,
      );
    let lastStep = entry.lastStep;
    for (let attempt = 0; attempt < 2; attempt++) {
      const step = await this.freshStep(lastStep);
      const answer = await this.raw('POST', '/api/v1/auth/totp/verify', {
        code: totpCode(entry.secret, step * TOTP_PERIOD_S * 1000),
      });
      if (answer.status === 200) {
        this.options.secrets.set(this.secretKey, { secret: entry.secret, lastStep: step });
        return answer;
      }
      if (answer.status !== 401)
        throw new ApiError('POST', '/api/v1/auth/totp/verify', answer.status, answer.body);
      // Used already (another run at the same moment?): one more try with a later step.
      lastStep = step;
    }
    throw new Error(
      `${this.account.username}: the server refused the authenticator codes: its secret may be stale ` +
        `(reset it with \`holdfast users reset-mfa\`) or the server's clock is far off this machine's`,
    );
  }

  close(): void {
    if (!this.options.agent) this.agent.destroy();
  }
}
