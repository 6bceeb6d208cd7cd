import cookie from '@fastify/cookie';
import {
  ForbiddenError,
  hasPermission,
  UnauthenticatedError,
  ValidationError,
  zodIssuesToFieldIssues,
  type Clock,
  type FieldIssue,
} from '@holdfast/core';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteOptions,
} from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AccountsService } from '../accounts/service.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { DenialAudit } from '../audit/denials.ts';
import type { FairUse, FairUseTicket } from './fair-use.ts';
import { hashToken, type SessionStore, type Session } from '../auth/sessions.ts';
import type { UserRecord } from '../accounts/projection.ts';
import type { HoldfastNode } from '../node/node.ts';
import type { RequestContext } from './context.ts';
import { errorHandler, sendProblem, toProblem, tooManyRequestsProblem } from './errors.ts';
import type { RouteSpec } from './routes.ts';

export const SESSION_COOKIE = 'hf_session';
export const CSRF_HEADER = 'x-csrf-token';
/** Request bodies larger than this are refused with 413. */
export const BODY_LIMIT = 1024 * 1024;
/** JSON nested deeper than this is refused before it is parsed. */
export const MAX_JSON_DEPTH = 32;
/** Query strings with more parameters than this are refused (no route takes more than a handful). */
export const MAX_QUERY_PARAMS = 50;

export interface AppDeps {
  node: HoldfastNode;
  accounts: AccountsService;
  sessions: SessionStore;
  auditor: Auditor;
  clock: Clock;
  logger: Logger;
  /** Set cookies with the Secure attribute (browsers accept it on http://localhost too). */
  secureCookies: boolean;
  /** Requests and live streams in flight per session, user and node (see fair-use.ts). */
  fairUse: FairUse;
  /** Denials audited with repeats coalesced, and a client denied again and again slowed (audit/denials.ts). */
  denials: DenialAudit;
}

/**
 * The HTTP server's own limits: which proxies' X-Forwarded-For is believed for the client address,
 * how long a client may take to send a request (a body sent a byte at a time is cut off), how long
 * a connection may stay silent, and how many connections are open at once.
 */
export interface HttpServerLimits {
  trustedProxies: readonly string[];
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  /** How often Node checks requests against requestTimeoutMs (tests shorten it). */
  timeoutCheckMs?: number;
}

export const DEFAULT_HTTP_LIMITS: HttpServerLimits = {
  trustedProxies: [],
  requestTimeoutMs: 60_000,
  // Above the live stream's 15 s heartbeat, with room for a slow report.
  idleTimeoutMs: 120_000,
  maxConnections: 4000,
};

/** Every route registered with `registerRoutes`, in order: the permission test walks this list. */
export interface RouteRegistry {
  routes: RouteSpec[];
}

/**
 * The Fastify instance with the cross-cutting parts every route gets: JSON limits, security headers,
 * one error mapper, and a registry of routes each declaring who may call it.
 */
export async function createApp(
  deps: AppDeps,
  limits: HttpServerLimits = DEFAULT_HTTP_LIMITS,
): Promise<{ app: FastifyInstance; registry: RouteRegistry }> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // X-Forwarded-For is believed only from the listed proxies (none by default): from anyone else
    // it would let a client choose the address its sign-in failures count against.
    trustProxy: limits.trustedProxies.length > 0 ? [...limits.trustedProxies] : false,
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    // Node reads these when the server is made (headers must come within the request timeout too),
    // and checks every connection against them this often.
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: Math.min(60_000, limits.requestTimeoutMs),
      connectionsCheckingInterval: limits.timeoutCheckMs ?? Math.min(limits.requestTimeoutMs, 5_000),
    },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Query strings are parsed but never logged; how many parameters one request may carry is
    // bounded in registerRoutes (MAX_QUERY_PARAMS).
    routerOptions: { maxParamLength: 200 },
    // A path Fastify cannot decode, or an over-long path parameter, answers problem+json like the rest
    // (Fastify's own answer is plain JSON that quotes the path back).
    frameworkErrors: (error, _request, reply) => {
      void sendProblem(reply, toProblem(error));
    },
  });
  await app.register(cookie);
  // JSON only: text/plain is the one body type a cross-site page can send without a CORS preflight.
  app.removeContentTypeParser('text/plain');

  const defaultJson = app.getDefaultJsonParser('error', 'error');
  // FHIR's own media type (other systems post message Bundles as it) is read the same way.
  app.addContentTypeParser(
    ['application/json', 'application/fhir+json'],
    { parseAs: 'string', bodyLimit: BODY_LIMIT },
    (request, body, done) => {
      const text = body as string;
      if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
        done(
          new ValidationError([
            { path: 'body', message: `is nested more than ${MAX_JSON_DEPTH} levels deep` },
          ]),
          undefined,
        );
        return;
      }
      // The default parser (secure-json-parse, refusing __proto__ and constructor keys) answers
      // through its callback; its return value carries nothing.
      void defaultJson(request, text, (error, value) => {
        if (error)
          done(
            new ValidationError([
              {
                path: 'body',
                message: /proto|constructor/i.test(error.message)
                  ? 'contains a forbidden key (__proto__ or constructor)'
                  : 'is not valid JSON',
              },
            ]),
            undefined,
          );
        else {
          // JSON.parse keeps the last of repeated member names; another reader of the same text
          // may keep the first, so a body with repeats is ambiguous and refused (RFC 7493 §2.3).
          const repeated = repeatedMemberPath(text);
          if (repeated)
            done(
              new ValidationError([
                {
                  path: ['body', ...repeated].join('.'),
                  message: 'appears more than once in the same object',
                },
              ]),
              undefined,
            );
          else done(null, value);
        }
      });
    },
  );

  app.addHook('onSend', async (request, reply, payload) => {
    // The web app (packages/web) runs under this policy: its scripts are files from this origin (no
    // inline script, no eval). Styles allow 'unsafe-inline' because Mantine sets style attributes and
    // injects its CSS variables in a <style> element at run time; images allow data: for the TOTP QR
    // code (an SVG shown as a data: URL). Nothing else is loosened.
    reply.header(
      'content-security-policy',
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    if (request.protocol === 'https')
      reply.header('strict-transport-security', 'max-age=63072000; includeSubDomains');
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((error, request, reply) => errorHandler(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, {
      type: 'urn:holdfast:problem:no_such_route',
      title: 'No such route',
      status: 404,
      code: 'no_such_route',
      detail: `${request.method} is not served at this path`,
    }),
  );

  // Connections over the limit are closed as they arrive (Node drops them before any request).
  app.server.maxConnections = limits.maxConnections;
  return { app, registry: { routes: [] } };
}

/** Counts nesting without parsing, so a hostile body cannot exhaust the stack. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/**
 * The path of the first member name repeated within one JSON object, or null. Runs on text that
 * parsed as JSON (so strings and nesting are well-formed); names are compared after unescaping.
 */
export function repeatedMemberPath(text: string): string[] | null {
  // One frame per open object (`keys`) or array (`keys` null); `at` is the member or index being read.
  const stack: { keys: Set<string> | null; at: string; index: number }[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
      const top = stack[stack.length - 1];
      if (expectName && top?.keys) {
        const name = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(name)) return [...stack.slice(0, -1).map((f) => f.at), name];
        top.keys.add(name);
        top.at = name;
        expectName = false;
      }
    } else if (c === 123) {
      stack.push({ keys: new Set(), at: '', index: 0 });
      expectName = true;
    } else if (c === 91) {
      stack.push({ keys: null, at: '0', index: 0 });
      expectName = false;
    } else if (c === 125 || c === 93) {
      stack.pop();
    } else if (c === 44) {
      const top = stack[stack.length - 1];
      if (top?.keys) expectName = true;
      else if (top) top.at = String(++top.index);
    }
  }
  return null;
}

function clientAddress(request: FastifyRequest): string {
  return request.ip.slice(0, 64);
}

const STATE_CHANGING = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/**
 * Registers routes. Each request to an authenticated route: session from the cookie (never a
 * tenant from the request), idle and absolute timeouts, the user re-read (so disabling or changing
 * roles applies at once), CSRF token on state-changing methods, the route's permission (a denial
 * is audited), then params, query and body checked by their schemas.
 */
export function registerRoutes(
  app: FastifyInstance,
  deps: AppDeps,
  registry: RouteRegistry,
  routes: readonly RouteSpec[],
): void {
  for (const spec of routes) {
    if (
      !spec.access ||
      !('public' in spec.access || 'secondFactor' in spec.access || 'permission' in spec.access)
    ) {
      throw new Error(`route ${spec.method} ${spec.url} declares no access rule`);
    }
    registry.routes.push(spec);
    app.route({
      method: spec.method,
      url: spec.url,
      ...(spec.bodyLimit !== undefined ? { bodyLimit: spec.bodyLimit } : {}),
      ...('public' in spec.access
        ? {}
        : fairUseHooks(deps.fairUse, spec.stream === true, spec.search === true)),
      handler: async (request, reply) => {
        if (Object.keys(request.query as object).length > MAX_QUERY_PARAMS)
          throw new ValidationError([
            { path: 'query', message: `has more than ${MAX_QUERY_PARAMS} parameters` },
          ]);
        const params = parsePart(spec.params, request.params, 'params');
        const query = parsePart(spec.query, request.query, 'query');
        if ('public' in spec.access) {
          const body = parsePart(spec.body, request.body, 'body');
          const result = await spec.handler({ body, query, params, request, reply });
          return reply.sent ? reply : result;
        }
        // The session's place was taken before the request was read (fairUseHooks); now that the
        // session is found, the user's (and for a live stream the node's) is taken too.
        const ticket = fairUseTickets.get(request);
        try {
          const auth = await authenticate(deps, request, spec);
          ticket?.confirm(auth.user.userId);
          const body = parsePart(spec.body, request.body, 'body');
          const result = await spec.handler({ ...auth, body, query, params, request, reply });
          return reply.sent ? reply : result;
        } finally {
          // A live stream holds its place until the client goes.
          if (!spec.stream || !reply.raw.headersSent) ticket?.release();
        }
      },
    });
  }
}

const fairUseTickets = new WeakMap<FastifyRequest, FairUseTicket>();

/**
 * Fair use, first of all for a signed-in route: the session token's place is taken as the request
 * arrives, before its body is read or its session looked up, and a request over the limit is
 * answered 429 there and then (no exception, no store work). The place is given back when the
 * answer is sent or the client goes, whichever comes first.
 */
function fairUseHooks(
  fairUse: FairUse,
  stream: boolean,
  search: boolean,
): Pick<RouteOptions, 'onRequest' | 'onResponse' | 'onRequestAbort'> {
  const release = (request: FastifyRequest): void => fairUseTickets.get(request)?.release();
  return {
    onRequest: (request, reply, done) => {
      const token = request.cookies[SESSION_COOKIE];
      if (!token) return done();
      const admitted = fairUse.admit(hashToken(token), stream, search);
      if ('release' in admitted) {
        fairUseTickets.set(request, admitted);
        if (stream) reply.raw.once('close', admitted.release);
        return done();
      }
      // Held before it is answered, so a client that sends again at once is slowed (fair-use.ts).
      const answer = (): void =>
        void sendProblem(reply, tooManyRequestsProblem(admitted.message), admitted.retryAfterSeconds);
      const delayMs = fairUse.limits.refusalDelayMs ?? 0;
      if (delayMs <= 0) return answer();
      const timer = setTimeout(answer, delayMs);
      reply.raw.once('close', () => clearTimeout(timer));
    },
    onResponse: (request, _reply, done) => {
      release(request);
      done();
    },
    onRequestAbort: (request, done) => {
      release(request);
      done();
    },
  };
}

/** Checks one part of a request against its schema: a ValidationError naming each field at fault. */
export function parsePart(
  schema: z.ZodType | undefined,
  value: unknown,
  part: 'params' | 'query' | 'body',
): unknown {
  if (!schema) {
    if (
      part === 'body' &&
      value !== undefined &&
      value !== null &&
      !(typeof value === 'object' && Object.keys(value).length === 0)
    ) {
      throw new ValidationError([{ path: 'body', message: 'this route takes no body' }]);
    }
    return undefined;
  }
  const badText = unstorableTextPath(value);
  if (badText)
    throw new ValidationError([
      {
        path: [part, ...badText].join('.'),
        message: 'contains a character that cannot be stored (NUL or an unpaired surrogate)',
      },
    ]);
  const result = schema.safeParse(value ?? (part === 'body' ? undefined : {}));
  if (!result.success) throw new ValidationError(fieldIssues(result.error, part));
  return result.data;
}

/**
 * Text no store can keep as sent: NUL (PostgreSQL text refuses it; SQLite keeps it) and unpaired
 * UTF-16 surrogates (canonical JSON refuses them, so the ledger cannot hash them). Refused up front,
 * the same on both stores, instead of failing deep inside a write.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorable = (text: string) => text.includes('\u0000') || LONE_SURROGATE.test(text);

function unstorableTextPath(value: unknown): string[] | null {
  if (typeof value === 'string') return unstorable(value) ? [] : null;
  if (value === null || typeof value !== 'object') return null;
  for (const [key, item] of Object.entries(value)) {
    if (unstorable(key)) return [key];
    const inner = unstorableTextPath(item);
    if (inner) return [key, ...inner];
  }
  return null;
}

/**
 * Field issues that name the field at fault: a failed union reports the issues of the alternative
 * that came closest (fewest issues) rather than one "invalid input" for the whole body, and each
 * unknown member is reported at its own path.
 */
function fieldIssues(error: z.ZodError, part: 'params' | 'query' | 'body'): FieldIssue[] {
  const focus = (issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[]): z.core.$ZodIssue[] =>
    issues.flatMap((issue) => {
      const path = [...prefix, ...issue.path];
      if (issue.code === 'invalid_union' && issue.errors.length > 0) {
        const closest = issue.errors.reduce((a, b) => (b.length < a.length ? b : a));
        return focus(closest, path);
      }
      if (issue.code === 'unrecognized_keys')
        return issue.keys.map((key) => ({ ...issue, path: [...path, key], message: 'is not a known field' }));
      return [{ ...issue, path }];
    });
  return zodIssuesToFieldIssues(new z.ZodError(focus(error.issues, [])), part);
}

async function authenticate(
  deps: AppDeps,
  request: FastifyRequest,
  spec: RouteSpec,
): Promise<{ ctx: RequestContext; session: Session; user: UserRecord }> {
  const token = request.cookies[SESSION_COOKIE];
  const session = token ? await deps.sessions.find(token) : null;
  if (!session) throw new UnauthenticatedError('your session is missing or has ended: sign in again');
  const user = await deps.accounts.get(session.tenant, session.user_id);
  if (!user || user.disabled) {
    await deps.sessions.revoke(session.id);
    throw new UnauthenticatedError('your session is missing or has ended: sign in again');
  }
  if (STATE_CHANGING.has(request.method)) {
    const sent = request.headers[CSRF_HEADER];
    if (typeof sent !== 'string' || !constantTimeEqual(sent, session.csrf_token)) {
      throw new ForbiddenError(
        `missing or wrong ${CSRF_HEADER} header: send the token from the sign-in response`,
      );
    }
  }
  const ctx: RequestContext = {
    tenant: session.tenant,
    userId: user.userId,
    username: user.username,
    roles: user.roles,
    siteIds: user.siteIds,
    sessionId: session.id,
    address: clientAddress(request),
  };
  if ('secondFactor' in spec.access) {
    if (session.stage !== 'password')
      throw new ForbiddenError('the second factor has been completed for this session already');
    return { ctx, session, user };
  }
  if (session.stage !== 'full') throw new UnauthenticatedError('complete the second factor first');
  if ('permission' in spec.access && !hasPermission(user.roles, spec.access.permission)) {
    await deps.denials.denied(ctx, spec.access.permission, `${spec.method} ${spec.url}`);
    throw new ForbiddenError();
  }
  return { ctx, session, user };
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export function setSessionCookie(
  reply: FastifyReply,
  token: string,
  deps: Pick<AppDeps, 'secureCookies' | 'sessions'>,
): void {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    secure: deps.secureCookies,
    sameSite: 'strict',
    path: '/',
    maxAge: Math.floor(deps.sessions.policy.absoluteTimeoutMs / 1000),
  });
}

export function clearSessionCookie(reply: FastifyReply, deps: Pick<AppDeps, 'secureCookies'>): void {
  reply.clearCookie(SESSION_COOKIE, {
    httpOnly: true,
    secure: deps.secureCookies,
    sameSite: 'strict',
    path: '/',
  });
}

export { toProblem };
