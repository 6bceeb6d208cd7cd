import { createHash } from 'node:crypto';
import { FixedClock, ROLES, type Role } from '@holdfast/core';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { addProvider } from '../../src/accounts/providers.ts';
import { AccountsService } from '../../src/accounts/service.ts';
import { SessionStore } from '../../src/auth/sessions.ts';
import { totpCode } from '../../src/auth/totp.ts';
import { buildHoldfastApp, type HoldfastApp } from '../../src/http/holdfast-app.ts';
import { createLogger } from '../../src/http/logger.ts';
import type { InboundCredential } from '../../src/inbound/service.ts';
import type { TelephonyCredential } from '../../src/telephony/service.ts';
import type { ServiceLookup } from '../../src/referrals/service.ts';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import type { FairUseLimits } from '../../src/http/fair-use.ts';
import type { HttpServerLimits } from '../../src/http/app.ts';
import type { DenialLimits } from '../../src/audit/denials.ts';
import { freshStore, type StoreKind } from './databases.ts';

export const PASSWORD = 'correct horse battery staple';
/** The bearer token of the sample sending system every test app knows (endpoint `sample-ambulance`). */
export const SAMPLE_INBOUND_TOKEN = 'sample-ambulance-service-token-0123456789';
/** The operator token every test app knows: reads /metrics and the detail of /health. */
export const OPERATOR_TOKEN = 'test-operator-token-0123456789abcdef';
export const OPERATOR_HEADERS = { authorization: `Bearer ${OPERATOR_TOKEN}` };
/** The bearer token of the sample telephony every test app knows (system `sample-telephony`, first provider). */
export const SAMPLE_TELEPHONY_TOKEN = 'sample-telephony-token-0123456789abcdef';

export interface Provider {
  tenant: string;
  sites: string[];
  /** One user per role: username by role. */
  users: Record<Role, { username: string; userId: string }>;
}

export interface TestApp extends HoldfastApp {
  node: HoldfastNode;
  clock: FixedClock;
  providers: Provider[];
  /** What the node was opened with, to open it again after a restart. */
  config: Awaited<ReturnType<typeof freshStore>>['config'];
  close(): Promise<void>;
}

/**
 * A real node with the real HTTP application (requests through Fastify's inject: the full stack
 * without a socket), and providers seeded with one user per role.
 */
export async function startTestApp(
  kind: StoreKind,
  options: {
    providers?: string[];
    tenantFilter?: boolean;
    idleTimeoutMs?: number;
    absoluteTimeoutMs?: number;
    lockoutMs?: number;
    /** Capture the node's structured logs (info level) here instead of discarding them. */
    logLines?: string[];
    /** The node's data directory (kept at close); a new temporary directory when omitted. */
    dataDir?: string;
    /** PostgreSQL: create the database in this tablespace. */
    pgTablespace?: string;
    /** Systems that may post messages in, given the providers (their sites) once seeded. */
    inboundCredentials?: (providers: readonly Provider[]) => InboundCredential[];
    /** Telephony systems that may post call events (default: the sample telephony of the first provider). */
    telephonyCredentials?: TelephonyCredential[];
    /** Where referrals find services (default: the node's directory). */
    serviceLookup?: ServiceLookup;
    /** Sign-in failures a minute from one address (default: high enough never to be reached). */
    perAddressPerMinute?: number;
    fairUse?: FairUseLimits;
    denialLimits?: DenialLimits;
    httpLimits?: HttpServerLimits;
  } = {},
): Promise<TestApp> {
  const fresh = await freshStore(kind, { dataDir: options.dataDir, pgTablespace: options.pgTablespace });
  const clock = new FixedClock(Date.UTC(2026, 10, 29, 9, 0, 0));
  const tenants = options.providers ?? ['northshire', 'southshire'];
  const node = await initNode(
    { ...fresh.config, checkpointEvery: 100 },
    { node: 'node-1', tenant: tenants[0]!, role: 'single' },
    { clock },
  );
  const accounts = new AccountsService(
    node.store,
    node.ledger,
    new SessionStore(node.store, clock),
    node.providerKeys,
  );
  const providers: Provider[] = [];
  for (const tenant of tenants) {
    // The first provider is the node's own (made at init); the others are added as `holdfast
    // providers add` does: their own chain begun with the node's key, their own secrets key.
    if (tenant === tenants[0]) await accounts.createTenant(tenant, `${tenant} provider`, 'system:test');
    else await addProvider(node, accounts, { tenant, name: `${tenant} provider`, actor: 'system:test' });
    const sites = [
      await accounts.createSite(tenant, `${tenant} site A`, 'system:test'),
      await accounts.createSite(tenant, `${tenant} site B`, 'system:test'),
    ];
    const users = {} as Provider['users'];
    for (const role of ROLES) {
      const username = `${role}@${tenant}`;
      const user = await accounts.create(
        tenant,
        {
          username,
          displayName: `${role} of ${tenant}`,
          roles: [role],
          siteIds: [sites[0]!],
          password: PASSWORD,
        },
        'system:test',
      );
      users[role] = { username, userId: user.userId };
    }
    providers.push({ tenant, sites, users });
  }
  const built = await buildHoldfastApp(node, {
    logger: options.logLines
      ? createLogger('info', { write: (line: string) => void options.logLines!.push(line) })
      : createLogger('silent'),
    tenantFilter: options.tenantFilter,
    sessionPolicy: {
      idleTimeoutMs: options.idleTimeoutMs ?? 30 * 60_000,
      absoluteTimeoutMs: options.absoluteTimeoutMs ?? 12 * 3600_000,
    },
    throttle: {
      maxFailures: 5,
      lockoutMs: options.lockoutMs ?? 15 * 60_000,
      perAddressPerMinute: options.perAddressPerMinute ?? 10_000,
    },
    operatorTokenSha256: createHash('sha256').update(OPERATOR_TOKEN).digest('hex'),
    ...(options.fairUse ? { fairUse: options.fairUse } : {}),
    // Route-walking tests are denied many times a minute on purpose: no 429 for them unless asked.
    denialLimits: options.denialLimits ?? { windowMs: 60_000, perSessionPerWindow: 1_000_000 },
    ...(options.httpLimits ? { httpLimits: options.httpLimits } : {}),
    passkeys: { rpId: 'localhost', rpName: 'Holdfast test', origins: ['http://localhost:8080'] },
    inboundCredentials: options.inboundCredentials
      ? options.inboundCredentials(providers)
      : [
          {
            tenant: providers[0]!.tenant,
            endpointId: 'sample-ambulance',
            siteId: providers[0]!.sites[0]!,
            tokenSha256: createHash('sha256').update(SAMPLE_INBOUND_TOKEN).digest('hex'),
          },
        ],
    ...(options.serviceLookup ? { serviceLookup: options.serviceLookup } : {}),
    telephonyCredentials: options.telephonyCredentials ?? [
      {
        tenant: providers[0]!.tenant,
        systemId: 'sample-telephony',
        tokenSha256: createHash('sha256').update(SAMPLE_TELEPHONY_TOKEN).digest('hex'),
      },
    ],
  });
  await built.app.ready();
  return {
    ...built,
    node,
    clock,
    providers,
    config: fresh.config,
    async close() {
      await built.app.close();
      await node.close();
      await fresh.cleanup();
    },
  };
}

/** A browser-like client: keeps the session cookie and the CSRF token. */
export class Client {
  cookie: string | null = null;
  csrf: string | null = null;
  totpSecret: string | null = null;

  constructor(
    readonly app: FastifyInstance,
    readonly clock: FixedClock,
    readonly address = '127.0.0.1',
  ) {}

  async request(
    method: string,
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method: method as 'GET',
      url,
      remoteAddress: this.address,
      headers: {
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(this.csrf && method !== 'GET' ? { 'x-csrf-token': this.csrf } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const setCookie = res.headers['set-cookie'];
    for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const m = /^hf_session=([^;]*)/.exec(c);
      if (m) this.cookie = m[1] ? `hf_session=${m[1]}` : null;
    }
    const json = safeJson(res.body);
    if (json && typeof json === 'object' && 'csrfToken' in json && typeof json.csrfToken === 'string')
      this.csrf = json.csrfToken;
    return res;
  }

  /** Password step, then TOTP (enrolling at first sign-in). Returns the final response. */
  async signIn(username: string, password = PASSWORD): Promise<LightMyRequestResponse> {
    const first = await this.request('POST', '/api/v1/auth/sign-in', { username, password });
    if (first.statusCode !== 200) return first;
    const next = (first.json() as { next: string }).next;
    if (next === 'enrol_totp') {
      const enrol = await this.request('POST', '/api/v1/auth/totp/enrol');
      this.totpSecret = (enrol.json() as { secret: string }).secret;
      return this.request('POST', '/api/v1/auth/totp/confirm', {
        code: totpCode(this.totpSecret, this.clock.nowMs()),
      });
    }
    if (next === 'totp' && this.totpSecret) {
      this.clock.advance(30_000); // a fresh step: each code is accepted once
      return this.request('POST', '/api/v1/auth/totp/verify', {
        code: totpCode(this.totpSecret, this.clock.nowMs()),
      });
    }
    return first;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
