import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_DENIAL_LIMITS } from '../../src/audit/denials.ts';
import { DEFAULT_FAIR_USE, FairUse } from '../../src/http/fair-use.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, OPERATOR_HEADERS, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

/**
 * Issue 14: lockout and throttling that cannot be aimed at someone else, fair use under load,
 * denials audited without flooding the trail, server limits (slow bodies, connections), and what
 * /health and /metrics tell whom.
 */
describe.each(STORE_KINDS)('lockout that cannot be aimed, on %s', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, {
      perAddressPerMinute: 20,
      httpLimits: {
        trustedProxies: ['10.9.9.9'],
        requestTimeoutMs: 60_000,
        idleTimeoutMs: 120_000,
        maxConnections: 100,
      },
    });
  });
  afterAll(async () => t?.close());

  const signInFrom = (address: string, username: string, password: string, headers = {}) =>
    new Client(t.app, t.clock, address).request(
      'POST',
      '/api/v1/auth/sign-in',
      { username, password },
      headers,
    );

  it('five wrong passwords from an attacker’s address leave the owner at their own address able to sign in, and the owner is told', async () => {
    const owner = t.providers[0]!.users.health_adviser.username;
    // The owner has signed in from their desk before.
    expect((await new Client(t.app, t.clock, '192.0.2.10').signIn(owner)).statusCode).toBe(200);
    for (let i = 0; i < 5; i++)
      expect((await signInFrom('198.51.100.66', owner, `guess ${i}`)).statusCode).toBe(401);
    // The attacker's pair is locked, even with the right password …
    const attacker = await signInFrom('198.51.100.66', owner, PASSWORD);
    expect(attacker.statusCode).toBe(429);
    expect(Number(attacker.headers['retry-after'])).toBeGreaterThan(0);
    // … the owner at their own address is not, and hears what happened at their name.
    const own = await signInFrom('192.0.2.10', owner, PASSWORD);
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json()).toMatchObject({ notice: { failedSignIns: 5, refusedSignIns: 1, addresses: 1 } });
    // Said once: the next sign-in has nothing to tell.
    expect((await signInFrom('192.0.2.10', owner, PASSWORD)).json()).not.toHaveProperty('notice');
    // The lock is in the audit trail admins and auditors read.
    const locked = (await t.node.ledger.readTenant(t.providers[0]!.tenant, null, 100_000)).filter(
      (e) =>
        e.type === 'audit.sign_in' &&
        e.payloadJson.includes('"outcome":"locked"') &&
        e.payloadJson.includes('198.51.100.66'),
    );
    expect(locked).toHaveLength(1);
  });

  it('a spray at one name from many addresses is slowed for unfamiliar addresses, not for the owner’s', async () => {
    t.clock.advance(20 * 60_000);
    const owner = t.providers[0]!.users.dispatcher.username;
    expect((await new Client(t.app, t.clock, '192.0.2.20').signIn(owner)).statusCode).toBe(200);
    for (let i = 0; i < 10; i++)
      expect((await signInFrom(`203.0.113.${i + 1}`, owner, `guess ${i}`)).statusCode).toBe(401);
    // An eleventh address is held back at once (the name is being sprayed) …
    const slowed = await signInFrom('203.0.113.200', owner, 'guess again');
    expect(slowed.statusCode).toBe(429);
    // … and again after the delay has passed, for a shorter while than the lockout.
    t.clock.advance(1_500);
    expect((await signInFrom('203.0.113.201', owner, 'and again')).statusCode).toBe(401);
    expect((await signInFrom('203.0.113.202', owner, 'and again')).statusCode).toBe(429);
    // The owner at their familiar address gets in throughout.
    expect((await signInFrom('192.0.2.20', owner, PASSWORD)).statusCode).toBe(200);
  });

  it('one address’s failures (a NAT) do not hold back a name that signs in from it routinely', async () => {
    t.clock.advance(20 * 60_000);
    const regular = t.providers[0]!.users.receptionist.username;
    expect((await new Client(t.app, t.clock, '192.0.2.30').signIn(regular)).statusCode).toBe(200);
    for (let i = 0; i < 20; i++)
      expect((await signInFrom('192.0.2.30', `nobody-${i}@northshire`, 'x')).statusCode).toBe(401);
    // The address has used its 20 failures this minute: a new name from it is held back …
    expect((await signInFrom('192.0.2.30', 'someone-new@northshire', 'x')).statusCode).toBe(429);
    // … the regular is not.
    expect((await signInFrom('192.0.2.30', regular, PASSWORD)).statusCode).toBe(200);
  });

  it('a trusted proxy’s X-Forwarded-For is honoured; an untrusted one’s is not', async () => {
    t.clock.advance(20 * 60_000);
    const name = t.providers[0]!.users.shift_manager.username;
    const addressOfLastSignIn = async () => {
      const events = (await t.node.ledger.readTenant(t.providers[0]!.tenant, null, 100_000)).filter(
        (e) => e.type === 'audit.sign_in' && e.actor === `user:${t.providers[0]!.users.shift_manager.userId}`,
      );
      return (JSON.parse(events.at(-1)!.payloadJson) as { address: string }).address;
    };
    const forwarded = { 'x-forwarded-for': '192.0.2.77' };
    expect((await signInFrom('10.9.9.9', name, PASSWORD, forwarded)).statusCode).toBe(200);
    expect(await addressOfLastSignIn()).toBe('192.0.2.77');
    expect((await signInFrom('10.9.9.8', name, PASSWORD, forwarded)).statusCode).toBe(200);
    expect(await addressOfLastSignIn()).toBe('10.9.9.8');
    // So a client cannot choose the address its failures count against: five from behind an
    // untrusted "proxy" lock that address's pair whatever it forwards.
    for (let i = 0; i < 5; i++)
      await signInFrom('10.9.9.8', name, `guess ${i}`, { 'x-forwarded-for': `192.0.2.${100 + i}` });
    expect(
      (await signInFrom('10.9.9.8', name, PASSWORD, { 'x-forwarded-for': '192.0.2.150' })).statusCode,
    ).toBe(429);
  });
});

describe.each(STORE_KINDS)('fair use under load, on %s', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, { denialLimits: DEFAULT_DENIAL_LIMITS });
  });
  afterAll(async () => t?.close());

  it('200 searches in flight from one session are limited; another user’s session check stays fast', async () => {
    const flooder = new Client(t.app, t.clock);
    await flooder.signIn(t.providers[0]!.users.health_adviser.username);
    const other = new Client(t.app, t.clock);
    await other.signIn(t.providers[0]!.users.clinician.username);
    const lookups = vi.spyOn(t.deps.sessions, 'find');
    const floodStarted = performance.now();
    const flood = Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        flooder
          .request('POST', '/api/v1/patients/search', {
            familyName: `Smith${i % 7}`,
            dateOfBirth: '1980',
          })
          .then((r) => Object.assign(r, { ms: performance.now() - floodStarted })),
      ),
    );
    const started = performance.now();
    const check = await other.request('GET', '/api/v1/auth/session');
    const checkMs = performance.now() - started;
    const answers = await flood;
    const lookedUp = lookups.mock.calls.length;
    lookups.mockRestore();
    expect(check.statusCode).toBe(200);
    // A request over the session's limit is refused before its session is looked up: the store is
    // asked for the requests served (the flooder's and the other user's) and at most one session's
    // allowance refused after the lookup (the user's search limit), never for the rest …
    const served = answers.filter((r) => r.statusCode === 200).length;
    expect(lookedUp).toBeLessThanOrEqual(served + 1 + DEFAULT_FAIR_USE.requestsPerSession);
    // … whose 429s are held for a while, so a client that sends again at once is slowed.
    const held = answers.filter((r) => r.statusCode === 429 && r.ms >= DEFAULT_FAIR_USE.refusalDelayMs! - 20);
    expect(held.length).toBeGreaterThan(150);
    const statuses = answers.map((r) => r.statusCode);
    const limited = answers.filter((r) => r.statusCode === 429);
    // At most four of one user's searches run at once (searchesPerUser), the rest wait their turn.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(
      DEFAULT_FAIR_USE.searchesPerUser!,
    );
    expect(limited.length).toBeGreaterThan(100);
    expect(
      statuses.every((s) => s === 200 || s === 429),
      JSON.stringify(statuses),
    ).toBe(true);
    expect(limited[0]!.headers['retry-after']).toBe('1');
    expect(limited[0]!.json()).toMatchObject({
      detail: expect.stringMatching(/(requests|searches) in flight for one (session|user)/),
    });
    // Generous bound (a shared test machine); bench:login measures the p99.
    expect(checkMs).toBeLessThan(1_500);
    // Once the flood is over, the flooder is served again.
    expect(
      (await flooder.request('POST', '/api/v1/patients/search', { familyName: 'Smith', dateOfBirth: '1980' }))
        .statusCode,
    ).toBe(200);
  });

  it('2,000 denials give far fewer audit events whose counts sum to 2,000; the client is slowed', async () => {
    const c = new Client(t.app, t.clock);
    await c.signIn(t.providers[0]!.users.receptionist.username);
    const userId = t.providers[0]!.users.receptionist.userId;
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const r = await c.request('GET', '/api/v1/admin/users');
      statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
    }
    // The first 30 a minute are answered 403; after that the client is told to slow down.
    expect(statuses.get(403)).toBe(30);
    expect(statuses.get(429)).toBe(1970);
    t.clock.advance(61_000);
    await t.deps.denials.flush();
    const denied = (await t.node.ledger.readTenant(t.providers[0]!.tenant, null, 1_000_000)).filter(
      (e) => e.type === 'audit.denied' && e.payloadJson.includes(userId),
    );
    expect(denied.length).toBeLessThanOrEqual(3);
    const counts = denied.map((e) => (JSON.parse(e.payloadJson) as { count?: number }).count ?? 1);
    const total = counts.reduce((n, c) => n + c, 0);
    expect(total).toBe(2000);
    expect(JSON.parse(denied.at(-1)!.payloadJson)).toMatchObject({
      route: 'GET /api/v1/admin/users',
      permission: 'users.manage',
      count: 1999,
    });
  });

  it('anonymous /health says up or down only; operators and signed-in users get the detail; /metrics needs the token', async () => {
    const anonymous = await t.app.inject({ method: 'GET', url: '/health' });
    expect(anonymous.statusCode).toBe(200);
    expect(anonymous.json()).toEqual({ status: 'ok' });
    expect(anonymous.body).not.toContain(t.node.identity.node);
    expect(anonymous.body).not.toContain(t.node.identity.tenant);
    const operator = await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS });
    expect(operator.json()).toMatchObject({ status: 'ok', node: 'node-1', tenant: t.node.identity.tenant });
    const user = new Client(t.app, t.clock);
    await user.signIn(t.providers[0]!.users.dispatcher.username);
    expect((await user.request('GET', '/health')).json()).toMatchObject({ node: 'node-1' });
    // Another provider's user on this node learns up or down only.
    const stranger = new Client(t.app, t.clock);
    await stranger.signIn(t.providers[1]!.users.dispatcher.username);
    expect((await stranger.request('GET', '/health')).json()).toEqual({ status: 'ok' });
    // A wrong token is no token.
    const wrong = { authorization: 'Bearer not-the-token' };
    expect((await t.app.inject({ method: 'GET', url: '/health', headers: wrong })).json()).toEqual({
      status: 'ok',
    });
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/metrics', headers: wrong })).statusCode).toBe(401);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: OPERATOR_HEADERS });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('holdfast_ledger_head_seq');
  });
});

describe('fair use before the session is looked up', () => {
  const limits = { ...DEFAULT_FAIR_USE, requestsPerSession: 2, requestsPerUser: 3 };
  const refused = (answer: ReturnType<FairUse['admit']>): string | null =>
    'release' in answer ? null : answer.message;

  it('a session token over its limit is refused at once; its places come back when requests end', () => {
    const fairUse = new FairUse(limits);
    const a = fairUse.admit('token-a', false);
    const b = fairUse.admit('token-a', false);
    expect(refused(fairUse.admit('token-a', false))).toMatch(/requests in flight for one session: at most 2/);
    if (!('release' in a) || !('release' in b)) throw new Error('admitted');
    a.release();
    a.release();
    expect(refused(fairUse.admit('token-a', false))).toBeNull();
    expect(refused(fairUse.admit('token-a', false))).toMatch(/one session/);
    expect(fairUse.refused).toBe(2);
  });

  it('once a token’s user is known, the user’s limit refuses its next request before any lookup', () => {
    const fairUse = new FairUse(limits);
    const first = fairUse.admit('token-1', false);
    const second = fairUse.admit('token-2', false);
    const third = fairUse.admit('token-3', false);
    if (!('release' in first) || !('release' in second) || !('release' in third)) throw new Error('admitted');
    first.confirm('user-1');
    second.confirm('user-1');
    third.confirm('user-1');
    // token-1 is under its session limit, but its user has 3 in flight: refused without a lookup.
    expect(refused(fairUse.admit('token-1', false))).toMatch(/requests in flight for one user: at most 3/);
    // A fourth session of that user is not known yet: admitted, then refused once its user is.
    const fourth = fairUse.admit('token-4', false);
    if (!('release' in fourth)) throw new Error('admitted');
    expect(() => fourth.confirm('user-1')).toThrow(/one user: at most 3/);
    fourth.release();
    // A search is refused once the user has as many searches in flight as allowed, early when the
    // token tells whose it is; other requests of that user are not.
    const searches = new FairUse({
      ...limits,
      requestsPerSession: 10,
      requestsPerUser: 10,
      searchesPerUser: 2,
    });
    const s1 = searches.admit('token-s', false, true);
    const s2 = searches.admit('token-s', false, true);
    if (!('release' in s1) || !('release' in s2)) throw new Error('admitted');
    s1.confirm('user-s');
    s2.confirm('user-s');
    expect(refused(searches.admit('token-s', false, true))).toMatch(
      /searches in flight for one user: at most 2/,
    );
    const late = searches.admit('token-t', false, true);
    if (!('release' in late)) throw new Error('admitted');
    expect(() => late.confirm('user-s')).toThrow(/searches in flight for one user/);
    expect(refused(searches.admit('token-s', false, false))).toBeNull();
    s1.release();
    expect(refused(searches.admit('token-s', false, true))).toBeNull();
    // Another user is untouched.
    const other = fairUse.admit('token-9', false);
    if (!('release' in other)) throw new Error('admitted');
    expect(() => other.confirm('user-2')).not.toThrow();
    first.release();
    expect(refused(fairUse.admit('token-1', false))).toBeNull();
  });
});

describe('server limits over real sockets (sqlite)', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp('sqlite', {
      httpLimits: {
        trustedProxies: [],
        requestTimeoutMs: 1_000,
        idleTimeoutMs: 30_000,
        maxConnections: 8,
        timeoutCheckMs: 200,
      },
      fairUse: {
        requestsPerSession: 12,
        requestsPerUser: 24,
        streamsPerSession: 2,
        streamsPerUser: 3,
        streamsPerNode: 4,
      },
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as { port: number }).port;
  });
  afterAll(async () => t?.close());

  const opened = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
  const closedWithin = (s: Socket, ms: number): Promise<number | null> =>
    new Promise((resolve) => {
      const started = performance.now();
      const timer = setTimeout(() => resolve(null), ms);
      s.once('close', () => {
        clearTimeout(timer);
        resolve(performance.now() - started);
      });
    });

  it('a body sent a byte at a time is cut off by the request timeout', async () => {
    const s = await opened();
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.on('error', () => undefined);
    s.write(
      'POST /api/v1/auth/sign-in HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    // One byte every 300 ms (the scaled-down form of one every ten seconds against a minute).
    const drip = setInterval(() => {
      if (!s.destroyed) s.write(' ');
    }, 300);
    const after = await closedWithin(s, 5_000);
    clearInterval(drip);
    expect(after, 'the connection was still open after 5 s').not.toBeNull();
    expect(after!).toBeLessThan(3_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('connections over the limit are closed at once', async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => opened()));
    await new Promise((r) => setTimeout(r, 100));
    const extra = await opened();
    expect(await closedWithin(extra, 2_000)).not.toBeNull();
    for (const s of held) s.destroy();
  });

  it('live streams are capped per session, per user and per node, with a 429 naming the limit', async () => {
    const signedIn = async (role: 'dispatcher' | 'health_adviser' | 'shift_manager') => {
      const c = new Client(t.app, t.clock);
      await c.signIn(t.providers[0]!.users[role].username);
      return c.cookie!;
    };
    const controllers: AbortController[] = [];
    const stream = async (cookie: string) => {
      const ac = new AbortController();
      controllers.push(ac);
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/queue/stream?follow=true`, {
        headers: { cookie },
        signal: ac.signal,
      });
      return {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        text: res.status === 200 ? '' : await res.text(),
      };
    };
    try {
      const a = await signedIn('dispatcher');
      expect((await stream(a)).status).toBe(200);
      expect((await stream(a)).status).toBe(200);
      const third = await stream(a);
      expect(third.status).toBe(429);
      expect(third.retryAfter).toBe('5');
      expect(third.text).toMatch(/live streams for one session: at most 2/);
      const b = await signedIn('health_adviser');
      expect((await stream(b)).status).toBe(200);
      expect((await stream(b)).status).toBe(200);
      const overNode = await stream(await signedIn('shift_manager'));
      expect(overNode.status).toBe(429);
      expect(overNode.text).toMatch(/streams per node/);
      expect(t.deps.fairUse.openStreams).toBe(4);
      // Closing streams gives their places back.
      for (const ac of controllers.splice(0)) ac.abort();
      const deadline = Date.now() + 3_000;
      while (t.deps.fairUse.openStreams > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(t.deps.fairUse.openStreams).toBe(0);
      expect((await stream(a)).status).toBe(200);
    } finally {
      for (const ac of controllers) ac.abort();
    }
  });
});
