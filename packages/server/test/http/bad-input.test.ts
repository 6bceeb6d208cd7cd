import { isFhirPath } from '../../src/fhir/outcome.ts';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RouteSpec } from '../../src/http/routes.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import {
  eventsAfter,
  firstPermittedRole,
  ledgerPosition,
  nhsNumberFor,
  fhirPathLeadsTo,
  ROUTE_SAMPLES,
  routeKey,
  send,
  setUpWorld,
  urlFor,
  type Caller,
  type SampleRequest,
  type World,
} from '../support/route-samples.ts';

// Not a test of password hashing: hashes at the smallest argon2id cost (support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The reference's bad inputs ("Bad inputs and attacks to try against our own API") against every
 * registered route, sent as a caller the route admits (anonymous for public routes, a session past
 * the password step for second-factor routes, else the first role holding the permission).
 *
 * Two kinds of case:
 * - `refuse`: the input is invalid; the answer must be a 4xx problem+json (with the offending field
 *   named in `errors[].path` where one is given), and no non-audit event may have been appended.
 * - `either`: hostile-looking but possibly legitimate text (O'Brien, a note quoting HTML); it may be
 *   accepted or refused, but never with a 5xx, a stack trace, or an effect beyond the field itself.
 */

type Outcome =
  { refuse: true; status?: number; path?: string } | { refuse: false; maxMs?: number; expectStatus?: number };

const REFUSE = (path?: string, status?: number): Outcome => ({ refuse: true, path, status });

/** Signs that a response leaks internals: stack frames, file paths, raw error names. */
const LEAK =
  /\n\s+at |\bat [\w$.<>]+ \(|file:\/\/|\/work\/|node_modules|\.[cm]?[jt]s:\d+|\b[A-Z]\w*Error:|\bError:/;

const TEN_MB = JSON.stringify({ x: 'a'.repeat(10 * 1024 * 1024) });
const DEEP = '{"a":'.repeat(100) + '1' + '}'.repeat(100);

/** A JSON value written as raw text in the body (numbers JSON.stringify cannot produce, escapes). */
class Raw {
  constructor(readonly text: string) {}
}

/** Paths of the string leaves of a sample body. */
function stringLeaves(value: unknown, path: string[] = []): string[][] {
  if (typeof value === 'string') return [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringLeaves(v, [...path, String(i)]));
  if (value && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => stringLeaves(v, [...path, k]));
  return [];
}

/** The body as JSON text with the value at `path` replaced (a Raw value is written verbatim). */
function withValue(body: unknown, path: string[], value: unknown): string {
  const marker = '\u0001RAW\u0001';
  const copy = structuredClone(body) as Record<string, unknown>;
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[path[path.length - 1]!] = value instanceof Raw ? marker : value;
  const text = JSON.stringify(copy);
  return value instanceof Raw ? text.replace(JSON.stringify(marker), value.text) : text;
}

/** The body's JSON text with raw members inserted first (duplicates and forbidden keys). */
function withLeadingMembers(body: unknown, members: string): string {
  const text = JSON.stringify(body ?? {});
  return text === '{}' ? `{${members}}` : `{${members},${text.slice(1)}`;
}

const LEAF_CASES: { label: string; value: unknown; outcome: 'refuse' | 'either'; maxMs?: number }[] = [
  { label: 'a number', value: 12345, outcome: 'refuse' },
  { label: 'a boolean', value: true, outcome: 'refuse' },
  { label: 'null', value: null, outcome: 'refuse' },
  { label: 'an object', value: { $gt: '' }, outcome: 'refuse' },
  { label: 'an array', value: ['x'], outcome: 'refuse' },
  { label: '1e309', value: new Raw('1e309'), outcome: 'refuse' },
  { label: 'a number over 2^53', value: new Raw('9007199254740993'), outcome: 'refuse' },
  { label: 'a 100,000-character string', value: 'a'.repeat(100_000), outcome: 'refuse' },
  { label: 'a NUL character', value: 'a\u0000b', outcome: 'refuse' },
  { label: 'a lone surrogate', value: new Raw('"a\\ud800b"'), outcome: 'refuse' },
  { label: 'SQL metacharacters', value: "x' OR '1'='1' --", outcome: 'either' },
  { label: 'a SQL statement', value: "x'); DROP TABLE patients; --", outcome: 'either' },
  { label: 'pg_sleep', value: "'||(SELECT pg_sleep(3))||'", outcome: 'either', maxMs: 2900 },
  { label: 'pg_sleep statement', value: '1; SELECT pg_sleep(3); --', outcome: 'either', maxMs: 2900 },
  { label: 'a script', value: '<script>alert(document.cookie)</script>', outcome: 'either' },
  { label: 'HTML', value: '<img src=x onerror=alert(1)>', outcome: 'either' },
  { label: 'CRLF', value: 'a\r\nSet-Cookie: hf_session=evil', outcome: 'either' },
  { label: 'zero-width and RTL characters', value: 'A\u200bB\u202eevil\u202c', outcome: 'either' },
  { label: 'a spreadsheet formula', value: '=HYPERLINK("http://evil.example")', outcome: 'either' },
];

describe.each(STORE_KINDS)('bad input on every route (%s)', (kind) => {
  let t: TestApp;
  let w: World;
  let routes: RouteSpec[];
  let failures: string[];
  const probed = new Set<string>();

  beforeAll(async () => {
    t = await startTestApp(kind);
    w = await setUpWorld(t);
    routes = t.registry.routes;
  });
  afterAll(async () => {
    await t?.close();
  });

  async function callerFor(spec: RouteSpec): Promise<Caller> {
    if ('public' in spec.access) return { role: 'clinician', client: new Client(t.app, t.clock) };
    if ('secondFactor' in spec.access) return { role: 'clinician', client: w.pending };
    const sample = ROUTE_SAMPLES[routeKey(spec)]!;
    const role = sample.badInputCaller ?? firstPermittedRole(spec);
    return { role, client: sample.endsSession ? await w.freshClient(role) : w.clients[role] };
  }

  /**
   * Building a route's sample (a case at the right step, a user, a message …) is most of this file's
   * time, so a sample is sent again where that cannot change what a probe checks:
   * - a sample only ever refused (4xx, nothing stored) left the world as it found it: the very next
   *   probe of the same route may be sent against it, whatever that probe expects;
   * - a sample that has been accepted is spent for probes that must be refused (the refusal could be
   *   the spent sample's rather than the input's), but a hostile-looking text that may be accepted is
   *   tried on it first: an answer there counts only if it was accepted and stored the text, else the
   *   probe is sent again with a fresh sample, whose answer is checked like any other.
   * A route that ends its caller's session gets a fresh sample (and session) for every probe.
   */
  let reusable: { route: string; caller: Caller; req: SampleRequest; spent: boolean } | null = null;
  async function admittedRequest(
    spec: RouteSpec,
    mayBeSpent: boolean,
  ): Promise<{ caller: Caller; req: SampleRequest; spent: boolean }> {
    const sample = ROUTE_SAMPLES[routeKey(spec)]!;
    const kept = reusable;
    reusable = null;
    if (kept?.route === routeKey(spec) && !sample.endsSession && (mayBeSpent || !kept.spent)) return kept;
    const caller = await callerFor(spec);
    return { caller, req: await sample.build(w, caller), spent: false };
  }

  /** Sends one bad request as an admitted caller and checks the answer against the outcome. */
  async function probe(
    spec: RouteSpec,
    label: string,
    outcome: Outcome,
    make: (caller: Caller, req: SampleRequest) => Promise<LightMyRequestResponse>,
  ): Promise<LightMyRequestResponse> {
    // A control (an input that must be accepted with a given status) is always sent as the sample was built.
    const mayBeSpent = !outcome.refuse && outcome.expectStatus === undefined;
    const { caller, req, spent } = await admittedRequest(spec, mayBeSpent);
    const before = await ledgerPosition(t);
    const started = performance.now();
    const res = await make(caller, req);
    const ms = performance.now() - started;
    probed.add(routeKey(spec));
    const where = `${routeKey(spec)} with ${label}`;
    const fail = (why: string) => failures.push(`${where}: ${why}`);
    const status = res.statusCode;
    if (status >= 500) fail(`${status} ${res.body}`);
    if (LEAK.test(res.body)) fail(`internals in the answer: ${res.body.slice(0, 300)}`);
    const type = String(res.headers['content-type'] ?? '');
    if (status >= 400 && res.body.length > 0) {
      // The FHIR API answers errors as OperationOutcomes (same status, fields in `expression`).
      const fhir = isFhirPath(urlOf(res));
      if (!type.startsWith(fhir ? 'application/fhir+json' : 'application/problem+json'))
        fail(`content-type ${type}: ${res.body.slice(0, 200)}`);
      const problem = parse(res.body, status);
      if (problem?.status !== status) fail(`problem status ${problem?.status} for ${status}`);
      if (res.body.length > 20_000) fail(`a ${res.body.length}-character answer echoes the input`);
    } else if (
      res.body.length > 0 &&
      !type.startsWith('application/json') &&
      !type.startsWith('text/plain') &&
      !type.startsWith('application/fhir+json')
    )
      fail(`content-type ${type}`);
    for (const c of [res.headers['set-cookie']].flat())
      if (c && /evil/.test(c)) fail(`a header was injected: ${c}`);
    if (!outcome.refuse && outcome.maxMs !== undefined && ms > outcome.maxMs)
      fail(`took ${Math.round(ms)} ms`);
    const stored = (await eventsAfter(t, before)).filter((e) => !e.type.startsWith('audit.'));
    const refusedUntouched = status >= 400 && status < 500 && stored.length === 0;
    if (spent && !(status < 300 && stored.length > 0)) {
      // Sent against a spent sample and not taken in: the answer may be the sample's, not the
      // input's. The checks above held for it too; the probe is now made with a fresh sample.
      return probe(spec, label, outcome, make);
    }
    // Only the very next probe of the same route may reuse this sample: as it was if it was refused
    // and stored nothing; as spent if it was accepted (see admittedRequest).
    if (refusedUntouched) reusable = { route: routeKey(spec), caller, req, spent };
    else if (status < 400) reusable = { route: routeKey(spec), caller, req, spent: true };
    if (outcome.refuse) {
      if (status < 400 || status >= 500) fail(`expected a 4xx, got ${status} ${res.body.slice(0, 200)}`);
      if (outcome.status !== undefined && status !== outcome.status)
        fail(`expected ${outcome.status}, got ${status} ${res.body.slice(0, 200)}`);
      if (outcome.path !== undefined) {
        const paths = (parse(res.body, status)?.errors ?? []).map((e) => e.path);
        const viaValidator =
          ROUTE_SAMPLES[routeKey(spec)]!.fhirValidatorPaths === true &&
          paths.some((p) => fhirPathLeadsTo(outcome.path!, p));
        if (!paths.includes(outcome.path) && !viaValidator)
          fail(`errors[].path should name ${outcome.path}, got ${JSON.stringify(paths)}`);
      }
      if (stored.length > 0) fail(`refused, yet stored ${stored.map((e) => e.type).join(', ')}`);
    } else {
      if (outcome.expectStatus !== undefined && status !== outcome.expectStatus)
        fail(`expected ${outcome.expectStatus}, got ${status} ${res.body.slice(0, 200)}`);
    }
    return res;
  }

  const bodyRoutes = () => routes.filter((r) => r.method !== 'GET');
  /** A sample's body, to shape the probes of the route by: the sample then serves the first probe. */
  const sampleBody = async (spec: RouteSpec) => {
    const admitted = await admittedRequest(spec, false);
    reusable = { route: routeKey(spec), ...admitted };
    return admitted.req.body;
  };

  beforeAll(() => {
    failures = [];
  });
  function expectNoFailures() {
    const found = failures;
    failures = [];
    expect(found).toEqual([]);
  }

  it('every registered route has a sample request', () => {
    for (const spec of routes) expect(ROUTE_SAMPLES[routeKey(spec)], routeKey(spec)).toBeDefined();
  });

  it('oversized, deeply nested, malformed and non-JSON bodies', async () => {
    for (const spec of bodyRoutes()) {
      const takesBody = spec.body !== undefined;
      const body = await sampleBody(spec);
      const text = JSON.stringify(body ?? {});
      const raw =
        (rawBody: string, headers: Record<string, string> = {}) =>
        (c: Caller, r: SampleRequest) =>
          send(c.client, spec, r, { rawBody, headers });
      await probe(spec, 'a 10 MB body', REFUSE(undefined, 413), raw(TEN_MB));
      await probe(spec, 'JSON nested 100 deep', REFUSE('body', 400), raw(DEEP));
      await probe(spec, 'malformed JSON', REFUSE('body', 400), raw('{"username": "a", '));
      await probe(spec, 'a NaN literal', REFUSE('body', 400), raw('{"x": NaN}'));
      if (takesBody) await probe(spec, 'an empty JSON body', REFUSE('body', 400), raw(''));
      await probe(spec, 'text/plain', REFUSE(undefined, 415), raw(text, { 'content-type': 'text/plain' }));
      await probe(
        spec,
        'a form',
        REFUSE(undefined, 415),
        raw('username=a&password=b', { 'content-type': 'application/x-www-form-urlencoded' }),
      );
      await probe(spec, 'XML', REFUSE(undefined, 415), raw('<a/>', { 'content-type': 'application/xml' }));
      await probe(spec, 'a top-level array', REFUSE('body', 400), raw(`[${text}]`));
      await probe(spec, 'a top-level string', REFUSE('body', 400), raw('"x"'));
      if (takesBody) await probe(spec, 'a null body', REFUSE('body', 400), raw('null'));
    }
    expectNoFailures();
  });

  it('__proto__ and constructor keys, duplicate keys, and unknown fields (mass assignment)', async () => {
    for (const spec of bodyRoutes()) {
      const body = await sampleBody(spec);
      const raw = (rawBody: string) => (c: Caller, r: SampleRequest) => send(c.client, spec, r, { rawBody });
      await probe(
        spec,
        'a __proto__ key',
        REFUSE('body', 400),
        raw(withLeadingMembers(body, '"__proto__":{"isAdmin":true,"roles":["provider_admin"]}')),
      );
      await probe(
        spec,
        'a constructor.prototype key',
        REFUSE('body', 400),
        raw(withLeadingMembers(body, '"constructor":{"prototype":{"isAdmin":true}}')),
      );
      const first = body && typeof body === 'object' ? Object.keys(body)[0] : undefined;
      if (first !== undefined) {
        // The first copy is hostile, the last valid: a reader keeping the last would accept it.
        await probe(
          spec,
          `a duplicate "${first}" key`,
          REFUSE(`body.${first}`, 400),
          raw(withLeadingMembers(body, `${JSON.stringify(first)}:"x' OR '1'='1"`)),
        );
      } else {
        await probe(spec, 'duplicate keys', REFUSE(undefined, 400), raw('{"a":1,"a":2}'));
      }
      const extra = { ...(body as object), isAdmin: true };
      await probe(
        spec,
        'an unknown field',
        REFUSE(spec.body ? 'body.isAdmin' : 'body', 400),
        raw(JSON.stringify(extra)),
      );
      await probe(
        spec,
        'a tenant field',
        REFUSE(spec.body ? 'body.tenant' : 'body', 400),
        raw(JSON.stringify({ ...(body as object), tenant: 'southshire' })),
      );
    }
    // Nested: a field only the server sets, smuggled into the patient record.
    const patients = routes.find((r) => routeKey(r) === 'POST /api/v1/patients')!;
    await probe(patients, 'an unknown field in the record', REFUSE('body.record.patientId', 400), (c, r) =>
      send(c.client, patients, r, {
        rawBody: withValue(r.body, ['record', 'patientId'], '00000000-0000-4000-8000-000000000000'),
      }),
    );
    await probe(patients, 'a nested __proto__ key', REFUSE('body', 400), (c, r) =>
      send(c.client, patients, r, {
        rawBody: JSON.stringify(r.body).replace('"record":{', '"record":{"__proto__":{"isAdmin":true},'),
      }),
    );
    expectNoFailures();
  });

  it('every string field: wrong types, huge numbers, long strings, NUL and lone surrogates, hostile text', async () => {
    let leaves = 0;
    for (const spec of bodyRoutes()) {
      const body = await sampleBody(spec);
      if (body === undefined) continue;
      for (const leaf of stringLeaves(body)) {
        leaves++;
        const field = `body.${leaf.join('.')}`;
        for (const c of LEAF_CASES) {
          const outcome: Outcome =
            c.outcome === 'refuse' ? REFUSE(field, 400) : { refuse: false, maxMs: c.maxMs };
          await probe(spec, `${c.label} in ${field}`, outcome, (caller, r) =>
            send(caller.client, spec, r, { rawBody: withValue(r.body, leaf, c.value) }),
          );
        }
      }
    }
    expect(leaves).toBeGreaterThan(20);
    expectNoFailures();
  });

  it('NHS numbers in other scripts, with hidden characters or a bad check digit', async () => {
    const register = routes.find((r) => routeKey(r) === 'POST /api/v1/patients')!;
    const search = routes.find((r) => routeKey(r) === 'POST /api/v1/patients/search')!;
    const valid = w.patientNhsNumber;
    const toDigits = (zero: number) => [...valid].map((d) => String.fromCodePoint(zero + Number(d))).join('');
    const bad: [string, string][] = [
      ['full-width digits', toDigits(0xff10)],
      ['Arabic-Indic digits', toDigits(0x0660)],
      ['Extended Arabic-Indic digits', toDigits(0x06f0)],
      ['Devanagari digits', toDigits(0x0966)],
      ['a zero-width space', `${valid.slice(0, 3)}\u200b${valid.slice(3)}`],
      ['a right-to-left mark', `\u200f${valid}`],
      ['a bad check digit', `${valid.slice(0, 9)}${(Number(valid[9]) + 1) % 10}`],
      ['nine digits', valid.slice(0, 9)],
      ['SQL', `${valid}' OR '1'='1`],
    ];
    for (const [label, nhsNumber] of bad) {
      await probe(register, `an NHS number with ${label}`, REFUSE('body.record.nhsNumber', 400), (c, r) =>
        send(c.client, register, r, { rawBody: withValue(r.body, ['record', 'nhsNumber'], nhsNumber) }),
      );
      await probe(search, `an NHS number with ${label}`, REFUSE('body.nhsNumber', 400), (c, r) =>
        send(c.client, search, r, { rawBody: JSON.stringify({ nhsNumber }) }),
      );
    }
    // Controls: the same number typed with spaces is accepted, and finds the patient.
    const spaced = `${valid.slice(0, 3)} ${valid.slice(3, 6)} ${valid.slice(6)}`;
    const found = await probe(search, 'a spaced NHS number', { refuse: false, expectStatus: 200 }, (c) =>
      c.client.request('POST', search.url, { nhsNumber: spaced }),
    );
    expect((found.json() as { patients: { patientId: string }[] }).patients.map((p) => p.patientId)).toEqual([
      w.patientId,
    ]);
    await probe(register, 'a spaced NHS number', { refuse: false, expectStatus: 201 }, (c, r) =>
      send(c.client, register, r, { rawBody: withValue(r.body, ['record', 'nhsNumber'], nhsNumberFor(77)) }),
    );
    expectNoFailures();
  });

  it('impossible dates and times: 29 February of a non-leap year, 23:59:60', async () => {
    const register = routes.find((r) => routeKey(r) === 'POST /api/v1/patients')!;
    const search = routes.find((r) => routeKey(r) === 'POST /api/v1/patients/search')!;
    const audit = routes.find((r) => routeKey(r) === 'GET /api/v1/audit')!;
    for (const date of ['2023-02-29', '2100-02-29', '1950-02-30', '1950-13-01', '1950-02-01T23:59:60']) {
      await probe(register, `date of birth ${date}`, REFUSE('body.record.dateOfBirth', 400), (c, r) =>
        send(c.client, register, r, { rawBody: withValue(r.body, ['record', 'dateOfBirth'], date) }),
      );
      await probe(search, `date of birth ${date}`, REFUSE('body.dateOfBirth', 400), (c, r) =>
        send(c.client, search, r, { rawBody: JSON.stringify({ familyName: 'Example', dateOfBirth: date }) }),
      );
    }
    for (const from of ['2026-06-30T23:59:60Z', '2023-02-29T10:00:00Z', '2026-03-29T01:30:00']) {
      await probe(audit, `from=${from}`, REFUSE('query.from', 400), (c, r) =>
        send(c.client, audit, { ...r, query: { from } }),
      );
    }
    // Controls: a real 29 February is a date.
    await probe(register, 'date of birth 2024-02-29', { refuse: false, expectStatus: 201 }, (c, r) =>
      send(c.client, register, r, { rawBody: withValue(r.body, ['record', 'dateOfBirth'], '2024-02-29') }),
    );
    await probe(audit, 'from=2024-02-29T10:00:00Z', { refuse: false, expectStatus: 200 }, (c, r) =>
      send(c.client, audit, { ...r, query: { from: '2024-02-29T10:00:00Z' } }),
    );
    expectNoFailures();
  });

  it('path parameters: invalid UUIDs, traversal, injection, bad encoding, other providers’ ids', async () => {
    let checked = 0;
    for (const spec of routes) {
      const names = [...spec.url.matchAll(/:(\w+)/g)].map((m) => m[1]!);
      for (const name of names) {
        checked++;
        const at = (value: string) => (c: Caller, r: SampleRequest) =>
          send(c.client, spec, r, {
            url: urlFor(spec, { ...r, params: { ...r.params, [name]: value } }, true),
          });
        const field = `params.${name}`;
        // Most ids are UUIDs; a few are names (a treatment centre's `northtown-tc`). A value the route's
        // own id format takes is an id it does not know: refused 404, nothing stored. Any other is a 400
        // naming the parameter.
        const shape = (
          spec.params as { shape?: Record<string, { safeParse(v: unknown): { success: boolean } }> }
        )?.shape;
        const refusal = (value: string) =>
          shape?.[name]?.safeParse(value).success === true ? REFUSE(undefined, 404) : REFUSE(field, 400);
        await probe(spec, 'an id that is not a UUID', refusal('not-a-uuid'), at('not-a-uuid'));
        await probe(
          spec,
          'a UUID with a trailing character',
          refusal(`${w.patientId}x`),
          at(`${w.patientId}x`),
        );
        await probe(spec, 'path traversal', REFUSE(field, 400), at('..%2F..%2F..%2Fetc%2Fpasswd'));
        await probe(spec, 'SQL', REFUSE(field, 400), at(encodeURIComponent("1' OR '1'='1")));
        await probe(spec, 'pg_sleep', REFUSE(field, 400), at(encodeURIComponent("1';SELECT pg_sleep(3)--")));
        await probe(spec, 'a NUL', REFUSE(field, 400), at('%00'));
        await probe(spec, 'a lone surrogate', REFUSE(undefined, 400), at('%ED%A0%80'));
        await probe(spec, 'bad percent-encoding', REFUSE(undefined, 400), at('%E0%A4%A'));
        await probe(spec, 'a 300-character id', REFUSE(undefined, 414), at('a'.repeat(300)));
        await probe(
          spec,
          'an unknown id',
          REFUSE(undefined, 404),
          at('00000000-0000-4000-8000-000000000000'),
        );
        const foreign = name === 'patientId' ? w.other.patientId : name === 'userId' ? w.other.userId : null;
        if (foreign) await probe(spec, 'another provider’s id', REFUSE(undefined, 404), at(foreign));
      }
    }
    expect(checked).toBeGreaterThan(0);
    expectNoFailures();
  });

  it('query strings: many parameters on every route; numbers and injection where numbers are expected', async () => {
    const many = Array.from({ length: 1000 }, (_, i) => `p${i}=${i}`).join('&');
    for (const spec of routes) {
      await probe(spec, '1,000 query parameters', REFUSE('query', 400), (c, r) =>
        send(c.client, spec, r, { url: `${urlFor(spec, { ...r, query: undefined })}?${many}` }),
      );
    }
    const audit = routes.find((r) => routeKey(r) === 'GET /api/v1/audit')!;
    const limits = ['NaN', '1e309', '9007199254740993', '-1', '0', '1.5', 'abc', "1' OR '1'='1"];
    for (const limit of limits) {
      await probe(audit, `limit=${limit}`, REFUSE('query.limit', 400), (c, r) =>
        send(c.client, audit, { ...r, query: { limit } }),
      );
    }
    await probe(audit, 'limit given twice', REFUSE('query.limit', 400), (c) =>
      c.client.request('GET', `${audit.url}?limit=1&limit=2`),
    );
    await probe(audit, 'an unknown parameter', REFUSE('query.tenant', 400), (c, r) =>
      send(c.client, audit, { ...r, query: { ...r.query, tenant: 'southshire' } }),
    );
    for (const [name, value] of [
      ['patientId', "' OR '1'='1"],
      ['userId', '1;SELECT pg_sleep(3)'],
      ['before', "999999999999999-000000' OR '1'='1"],
      ['breakGlass', 'yes'],
      ['from', 'a'.repeat(100_000)],
    ] as const) {
      await probe(audit, `${name}=${value.slice(0, 30)}`, REFUSE(`query.${name}`, 400), (c, r) =>
        send(c.client, audit, { ...r, query: { [name]: value } }),
      );
    }
    expectNoFailures();
  });

  it('hostile text is stored and returned verbatim, as JSON, and does not widen a search', async () => {
    const adviser = w.clients.health_adviser;
    const record = {
      givenName: 'A\u200bB\u202eevil\u202c',
      familyName: "O'Brien<script>alert(1)</script>",
      dateOfBirth: '1939-09-03',
      sex: 'unknown',
      specialNotes: [{ kind: 'other', text: 'line one\r\nline two <img src=x onerror=alert(1)>' }],
    };
    const created = await adviser.request('POST', '/api/v1/patients', { homeSiteId: w.site, record });
    expect(created.statusCode, created.body).toBe(201);
    const id = (created.json() as { patientId: string }).patientId;
    const read = await adviser.request('GET', `/api/v1/patients/${id}`);
    expect(read.statusCode).toBe(200);
    expect(read.headers['content-type']).toMatch(/^application\/json/);
    expect(read.headers['x-content-type-options']).toBe('nosniff');
    expect(read.headers['content-security-policy']).toContain("script-src 'self'");
    expect((read.json() as { record: typeof record }).record).toMatchObject(record);
    // A tautology in the name finds nothing; the name itself finds exactly the patient.
    const injected = await adviser.request('POST', '/api/v1/patients/search', {
      familyName: "x' OR '1'='1",
      dateOfBirth: '1939-09-03',
    });
    expect(injected.statusCode).toBe(200);
    expect((injected.json() as { patients: unknown[] }).patients).toEqual([]);
    const exact = await adviser.request('POST', '/api/v1/patients/search', {
      familyName: record.familyName,
      dateOfBirth: '1939-09-03',
    });
    expect((exact.json() as { patients: { patientId: string }[] }).patients.map((p) => p.patientId)).toEqual([
      id,
    ]);
  });

  it('probed every registered route', () => {
    expect([...probed].sort()).toEqual(routes.map(routeKey).sort());
  });
});

function parse(body: string, status?: number): { status?: number; errors?: { path: string }[] } | null {
  try {
    const json = JSON.parse(body) as {
      status?: number;
      errors?: { path: string }[];
      resourceType?: string;
      issue?: { expression?: string[] }[];
    };
    if (json.resourceType === 'OperationOutcome')
      return {
        status,
        errors: (json.issue ?? []).flatMap((i) => (i.expression ?? []).map((path) => ({ path }))),
      };
    return json;
  } catch {
    return null;
  }
}

function urlOf(res: LightMyRequestResponse): string {
  return (res.raw.req as { url?: string }).url ?? '';
}
