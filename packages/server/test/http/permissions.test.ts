import { PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Role } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RouteSpec } from '../../src/http/routes.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import {
  eventsAfter,
  fastifyRoutes,
  ledgerPosition,
  ROUTE_SAMPLES,
  routeKey,
  send,
  setUpWorld,
  type SampleRequest,
  type World,
} from '../support/route-samples.ts';

// Not a test of password hashing: hashes at the smallest argon2id cost (support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Function-level access control, table-driven: every route the running app serves × every role.
 * The table is the registry the app built (not a hand list), checked against Fastify's own routes,
 * so a route added without a declared access rule fails here.
 */
describe.each(STORE_KINDS)('route permissions (%s)', (kind) => {
  let t: TestApp;
  let w: World;
  let routes: RouteSpec[];

  beforeAll(async () => {
    t = await startTestApp(kind);
    w = await setUpWorld(t);
    routes = t.registry.routes;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves exactly the registered routes, each with one access rule', () => {
    const registered = new Set(routes.map(routeKey));
    const served = fastifyRoutes(t.app);
    // Fastify answers HEAD for every GET route by itself.
    const own = served.filter(
      (r) => !(r.method === 'HEAD' && registered.has(routeKey({ ...r, method: 'GET' }))),
    );
    const unregistered = own.map(routeKey).filter((k) => !registered.has(k));
    expect(unregistered, 'routes served without a declared access rule').toEqual([]);
    expect(own.map(routeKey).sort()).toEqual([...registered].sort());
    expect(registered.size).toBe(routes.length);
    for (const spec of routes) {
      expect(t.app.hasRoute({ method: spec.method, url: spec.url }), routeKey(spec)).toBe(true);
      const rules = Object.keys(spec.access);
      expect(rules, routeKey(spec)).toHaveLength(1);
      expect(['public', 'secondFactor', 'permission']).toContain(rules[0]);
      if ('permission' in spec.access) expect(PERMISSIONS).toContain(spec.access.permission);
      expect(ROUTE_SAMPLES[routeKey(spec)], `a sample request for ${routeKey(spec)}`).toBeDefined();
    }
    // The table covers every kind of rule.
    expect(routes.some((r) => 'public' in r.access)).toBe(true);
    expect(routes.some((r) => 'secondFactor' in r.access)).toBe(true);
    expect(routes.some((r) => 'permission' in r.access)).toBe(true);
  });

  it('permission routes: allowed exactly for the roles holding the permission; denials are audited', async () => {
    const failures: string[] = [];
    let calls = 0;
    for (const spec of routes) {
      if (!('permission' in spec.access)) continue;
      const permission = spec.access.permission;
      const sample = ROUTE_SAMPLES[routeKey(spec)]!;
      // A role without the permission is refused before the route's handler runs, and a refusal
      // stores only its audit event, so one request built for the route serves every such role.
      // Building a sample (a case at the right step …) is most of this test's time.
      let forRolesWithout: SampleRequest | null = null;
      for (const role of ROLES) {
        const client = sample.endsSession ? await w.freshClient(role) : w.clients[role];
        const holds = ROLE_PERMISSIONS[role].includes(permission);
        const req = holds
          ? await sample.build(w, { role, client })
          : (forRolesWithout ??= await sample.build(w, { role, client }));
        const before = await ledgerPosition(t);
        const res = await send(client, spec, req);
        calls++;
        const denied = (await eventsAfter(t, before)).filter((e) => e.type === 'audit.denied');
        const where = `${role} → ${routeKey(spec)}`;
        const problem = parse(res.body);
        if (holds) {
          const own = sample.ownRefusal?.(role);
          const refusedByOwnRule =
            own !== undefined && res.statusCode === 403 && own.test(String(problem?.detail));
          const ok =
            (res.statusCode >= 200 && res.statusCode < 300) ||
            res.statusCode === sample.allowedStatus ||
            refusedByOwnRule;
          if (!ok) failures.push(`${where}: allowed by ${permission} but got ${res.statusCode} ${res.body}`);
          if (denied.length > 0) failures.push(`${where}: allowed but an audit.denied was appended`);
        } else {
          if (res.statusCode !== 403 || problem?.code !== 'forbidden')
            failures.push(`${where}: lacks ${permission}, expected 403, got ${res.statusCode} ${res.body}`);
          const mine = denied.filter(
            (e) =>
              e.tenant === w.provider.tenant &&
              e.payload.userId === w.provider.users[role].userId &&
              e.payload.permission === permission &&
              e.payload.route === routeKey(spec),
          );
          if (mine.length !== 1 || denied.length !== 1)
            failures.push(`${where}: expected one audit.denied event, found ${JSON.stringify(denied)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(0);
  });

  it('permission routes refuse a missing session and a session past the password step only', async () => {
    const failures: string[] = [];
    const anonymous = new Client(t.app, t.clock);
    for (const spec of routes) {
      if (!('permission' in spec.access)) continue;
      const sample = ROUTE_SAMPLES[routeKey(spec)]!;
      const role = 'clinician' satisfies Role;
      const req = await sample.build(w, { role, client: w.clients[role] });
      const none = await send(anonymous, spec, req);
      if (none.statusCode !== 401) failures.push(`no session → ${routeKey(spec)}: ${none.statusCode}`);
      const half = await send(w.pending, spec, req);
      if (half.statusCode !== 401)
        failures.push(`password step only → ${routeKey(spec)}: ${half.statusCode} ${half.body}`);
    }
    expect(failures).toEqual([]);
  });

  it('second-factor routes: refused with a full session, and without any session', async () => {
    const failures: string[] = [];
    const anonymous = new Client(t.app, t.clock);
    let checked = 0;
    for (const spec of routes) {
      if (!('secondFactor' in spec.access)) continue;
      const sample = ROUTE_SAMPLES[routeKey(spec)]!;
      for (const role of ROLES) {
        const client = w.clients[role];
        const res = await send(client, spec, await sample.build(w, { role, client }));
        checked++;
        if (res.statusCode !== 403 || !/second factor has been completed/.test(res.body))
          failures.push(`${role} (full session) → ${routeKey(spec)}: ${res.statusCode} ${res.body}`);
      }
      const none = await send(
        anonymous,
        spec,
        await sample.build(w, { role: 'clinician', client: anonymous }),
      );
      if (none.statusCode !== 401) failures.push(`no session → ${routeKey(spec)}: ${none.statusCode}`);
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(0);
  });

  it('public routes: reachable without a session', async () => {
    const failures: string[] = [];
    let checked = 0;
    for (const spec of routes) {
      if (!('public' in spec.access)) continue;
      const anonymous = new Client(t.app, t.clock);
      const sample = ROUTE_SAMPLES[routeKey(spec)]!;
      const res = await send(
        anonymous,
        spec,
        await sample.build(w, { role: 'clinician', client: anonymous }),
      );
      checked++;
      if (res.statusCode < 200 || res.statusCode >= 300)
        failures.push(`no session → ${routeKey(spec)}: ${res.statusCode} ${res.body}`);
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(0);
  });
});

function parse(body: string): { code?: string; detail?: string } | null {
  try {
    const json = JSON.parse(body) as {
      code?: string;
      detail?: string;
      resourceType?: string;
      issue?: { code: string; details?: { text?: string } }[];
    };
    // The FHIR API answers its errors as an OperationOutcome: the same code, in its first issue.
    if (json.resourceType === 'OperationOutcome')
      return { code: json.issue?.[0]?.code, detail: json.issue?.[0]?.details?.text };
    return json;
  } catch {
    return null;
  }
}
