/**
 * The one way the browser talks to the API: JSON in and out, the session cookie sent by the browser,
 * the CSRF token (from the sign-in or session response) on every state-changing request, and
 * problem+json answers turned into an ApiError whose field messages forms show next to their fields.
 */

/** Header the server checks on POST/PUT/PATCH/DELETE (packages/server/src/http/app.ts CSRF_HEADER). */
export const CSRF_HEADER = 'x-csrf-token';

let csrfToken: string | null = null;
const unauthenticatedListeners = new Set<() => void>();

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when an authenticated request is answered 401: the session ended (timeout, signed out elsewhere). */
export function onSessionEnded(listener: () => void): () => void {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

/**
 * Whether this server is answering, as the last request to it found: every request through `api`
 * reports here, so the continuity line turns degraded at the first failure (no answer at all, or a
 * 5xx: the server is there but cannot do the work) and back only when a request succeeds. A 4xx is
 * an answer: the server works, it refused that one request.
 */
export interface Reachability {
  /** When requests started failing (ms since epoch, browser clock); null while they succeed. */
  failingSince: number | null;
  /** The HTTP status of the last failure; 0 when nothing answered. */
  lastFailureStatus: number | null;
  /** When a request last got an answer (ms since epoch, browser clock); null before the first. */
  lastAnswerAt: number | null;
}

let reachability: Reachability = { failingSince: null, lastFailureStatus: null, lastAnswerAt: null };
const reachabilityListeners = new Set<() => void>();

function setReachability(next: Reachability): void {
  reachability = next;
  for (const listener of reachabilityListeners) listener();
}

/** Records the outcome of one request: `status` 0 when nothing answered. */
export function reportRequestOutcome(status: number): void {
  const now = Date.now();
  if (status === 0 || status >= 500) {
    setReachability({
      failingSince: reachability.failingSince ?? now,
      lastFailureStatus: status,
      lastAnswerAt: reachability.lastAnswerAt,
    });
  } else if (reachability.failingSince !== null || reachability.lastAnswerAt === null) {
    setReachability({ failingSince: null, lastFailureStatus: null, lastAnswerAt: now });
  } else {
    // Steady state: no re-render of every subscriber for each successful request.
    reachability = { ...reachability, lastAnswerAt: now };
  }
}

export function currentReachability(): Reachability {
  return reachability;
}

export function onReachabilityChange(listener: () => void): () => void {
  reachabilityListeners.add(listener);
  return () => reachabilityListeners.delete(listener);
}

/** A failure that says nothing about the request itself: no answer, or the server failing (5xx). */
export function isServerUnavailable(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 0 || error.status >= 500);
}

export interface FieldIssue {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string | undefined,
    readonly issues: FieldIssue[],
    readonly body: Record<string, unknown>,
  ) {
    super(detail ?? title);
  }

  /**
   * Field messages keyed by the field's path in the request body, without the `body.` prefix
   * (`caller.name`, `observations.pulse`): what a form needs to answer next to each field.
   */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const issue of this.issues) {
      const key = issue.path.replace(/^(body|query|params)\.?/, '');
      if (!(key in out)) out[key] = issue.message;
    }
    return out;
  }

  /** The message in plain words for the top of a form when no field is named. */
  plain(): string {
    if (this.status === 0) return 'The server could not be reached. Check the connection and try again.';
    return this.detail ? `${this.title}: ${this.detail}` : this.title;
  }
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * A fresh Idempotency-Key for one create command. Sent again with a retry of the same request, it
 * lets the server answer with what the first attempt created instead of creating it twice (the
 * answer to the first may have been lost). getRandomValues works outside secure contexts too.
 */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function api<T>(
  method: Method,
  path: string,
  body?: unknown,
  /** `contentType`: the body is a file's text sent as it is (a CSV or JSON import), not JSON-encoded. */
  options: { idempotencyKey?: string; contentType?: string } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  if (method !== 'GET' && csrfToken) headers[CSRF_HEADER] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined
        ? { body: options.contentType && typeof body === 'string' ? body : JSON.stringify(body) }
        : {}),
    });
  } catch {
    reportRequestOutcome(0);
    throw new ApiError(0, 'unreachable', 'The server could not be reached', undefined, [], {});
  }
  reportRequestOutcome(response.status);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) {
    const problem = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    const error = new ApiError(
      response.status,
      typeof problem.code === 'string' ? problem.code : `http_${response.status}`,
      typeof problem.title === 'string' ? problem.title : `The request failed (${response.status})`,
      typeof problem.detail === 'string' ? problem.detail : undefined,
      Array.isArray(problem.errors) ? (problem.errors as FieldIssue[]) : [],
      problem,
    );
    if (response.status === 401 && !path.startsWith('/api/v1/auth/')) {
      for (const listener of unauthenticatedListeners) listener();
    }
    throw error;
  }
  return parsed as T;
}

/**
 * A GET of a file (a PDF): the body as a Blob. Reports to the continuity line like `api`; a refusal
 * becomes an ApiError with the problem's title.
 */
export async function apiBlob(path: string): Promise<Blob> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: 'same-origin' });
  } catch {
    reportRequestOutcome(0);
    throw new ApiError(0, 'unreachable', 'The server could not be reached', undefined, [], {});
  }
  reportRequestOutcome(response.status);
  if (!response.ok) {
    if (response.status === 401) for (const listener of unauthenticatedListeners) listener();
    throw new ApiError(
      response.status,
      `http_${response.status}`,
      `The request failed (${response.status})`,
      undefined,
      [],
      {},
    );
  }
  return response.blob();
}

/** A GET that answers null when the route does not exist on this server (optional features). */
export async function apiOptional<T>(path: string): Promise<T | null> {
  try {
    return await api<T>('GET', path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && error.code === 'no_such_route') return null;
    throw error;
  }
}

/** Does the server serve this route? (HEAD-free: the OpenAPI document lists what exists.) */
export async function routeExists(method: string, url: string): Promise<boolean> {
  const doc = await api<{ paths?: Record<string, Record<string, unknown>> }>('GET', '/openapi.json');
  const openApiPath = url.replace(/:([A-Za-z]+)/g, '{$1}');
  return Boolean(doc.paths?.[openApiPath]?.[method.toLowerCase()]);
}

/**
 * A POST whose answer is a file (an export): returned as a Blob with the server's file name. Errors
 * come back as problem+json and are thrown as ApiError like any other request's.
 */
export async function apiDownload(path: string, body: unknown): Promise<{ blob: Blob; fileName: string }> {
  const headers: Record<string, string> = {
    accept: 'text/csv, application/pdf, application/problem+json',
    'content-type': 'application/json',
  };
  if (csrfToken) headers[CSRF_HEADER] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method: 'POST',
      headers,
      credentials: 'same-origin',
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'The server could not be reached', undefined, [], {});
  }
  if (!response.ok) {
    let problem: Record<string, unknown> = {};
    try {
      problem = (await response.json()) as Record<string, unknown>;
    } catch {
      // not problem+json: the status says enough
    }
    throw new ApiError(
      response.status,
      typeof problem.code === 'string' ? problem.code : `http_${response.status}`,
      typeof problem.title === 'string' ? problem.title : `The request failed (${response.status})`,
      typeof problem.detail === 'string' ? problem.detail : undefined,
      Array.isArray(problem.errors) ? (problem.errors as FieldIssue[]) : [],
      problem,
    );
  }
  const disposition = response.headers.get('content-disposition') ?? '';
  const fileName = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'download';
  return { blob: await response.blob(), fileName };
}
