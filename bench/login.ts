/**
 * Login benchmark (`npm run bench:login`, `npm run bench:login -- --quick`).
 *
 * A real Holdfast node (embedded SQLite store in a temporary directory, the real HTTP application,
 * the real system clock, the default sign-in throttle, request logs at `info` to a file) listens on
 * a free loopback port in a child process of its own. One legitimate user signs in over HTTP with
 * password + TOTP (enrolling the authenticator app at first sign-in) and keeps the session.
 *
 * Then, for 20 s (`--quick`: 5 s), two loads run at once, on loopback only:
 *
 *  - a spray of failed sign-ins paced at 1,000/s from a second child process: random user names
 *    and, one request in ten (`--real-share 0..1` changes the share), the real user's name, always
 *    with a wrong password.
 *    Every request comes from 127.0.0.1 (the server takes the address from the socket, so spoofed
 *    X-Forwarded-For headers would change nothing): the per-address throttle (30 failures a minute)
 *    should answer almost all of them 429 before any password is hashed;
 *  - the legitimate client, in this process, making authenticated GET /api/v1/auth/session requests
 *    at a steady 50/s (open loop: each request is sent on schedule whether or not the previous one
 *    has been answered) over 16 connections it opened before the spray, recording each latency.
 *
 * Then fair use, for as long again: a second user (in a child process of its own, as a misbehaving
 * client is another machine) keeps 200 patient searches in flight, sending each refused one again at
 * once, and tries to hold 1,000 live streams open, while the legitimate client carries on as above;
 * its p99 is the figure issue 14 sets (< 100 ms).
 *
 * Before the spray, the legitimate client runs alone for 5 s (`--quick`: 2 s) as a baseline.
 * `--warm-throttle` uses up the address's allowance just before the spray (30 failed sign-ins one
 * at a time), so the spray meets a throttled address from its first request: the steady state,
 * without the burst of password hashing at the start of a spray.
 * Progress goes to stderr; stdout gets the report and, as its last line, one JSON object.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';

import { loadavg } from 'node:os';

import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { AccountsService } from '../packages/server/src/accounts/service.ts';
import { DEFAULT_THROTTLE } from '../packages/server/src/auth/throttle.ts';
import { SessionStore } from '../packages/server/src/auth/sessions.ts';
import { totpCode } from '../packages/server/src/auth/totp.ts';
import { CONFIG_DEFAULTS } from '../packages/server/src/config.ts';

import { initNode } from '../packages/server/src/node/node.ts';
import {
  describeMachine,
  formatRate,
  formatTable,
  machineInfo,
  note,
  onExit,
  parseBenchArgs,
  round,
  tempDir,
  serveBenchNode,
  type ServerCommand,
  type ServerPhaseStats,
} from './support.ts';

const ROLE_ENV = 'HOLDFAST_BENCH_LOGIN_ROLE';
const CONFIG_ENV = 'HOLDFAST_BENCH_LOGIN_CONFIG';

const TENANT = 'benchshire';
const USERNAME = `clinician@${TENANT}`;
/** A second user who misbehaves: floods searches and live streams (the fair-use phase). */
const FLOODER = `adviser@${TENANT}`;
/** Searches the flooder keeps in flight, and live streams it tries to hold open. */
const FLOOD_SEARCHES_IN_FLIGHT = 200;
const FLOOD_STREAMS = 1000;
const PASSWORD = 'correct horse battery staple';

interface Plan {
  sprayPerS: number;
  sprayMs: number;
  baselineMs: number;
  legitPerS: number;
  /** Share of spray requests that use the real user's name (the rest use random names). */
  realShare: number;
  /** How long the spray may wait for answers after it stops sending. */
  drainMs: number;
}

const FULL: Omit<Plan, 'realShare'> = {
  sprayPerS: 1_000,
  sprayMs: 20_000,
  baselineMs: 5_000,
  legitPerS: 50,
  drainMs: 60_000,
};
const QUICK: Omit<Plan, 'realShare'> = {
  sprayPerS: 1_000,
  sprayMs: 5_000,
  baselineMs: 2_000,
  legitPerS: 50,
  drainMs: 30_000,
};

/** The spray keeps at most this many requests open; beyond it a due request is skipped (counted). */
const SPRAY_MAX_IN_FLIGHT = 4_096;
const SPRAY_SOCKETS = 512;
/** The legitimate client's figures are also given for the requests sent after this many seconds. */
const STEADY_AFTER_S = 2;
/** Connections the legitimate client keeps alive (opened before measuring). */
const LEGIT_SOCKETS = 16;

// ---------------------------------------------------------------------------------------------
// Messages between the processes.

type ServerMessage =
  { type: 'ready'; port: number } | { type: 'phase'; stats: ServerPhaseStats } | { type: 'stopped' };

interface SprayConfig {
  port: number;
  ratePerS: number;
  durationMs: number;
  drainMs: number;
  realShare: number;
  realUser: string;
}

interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

interface SprayResult {
  /** Requests handed to the HTTP agent while sending. */
  sent: number;
  /** Due requests not sent because SPRAY_MAX_IN_FLIGHT were open. */
  skipped: number;
  sendMs: number;
  /** From the first send until the last answer (or the drain timeout). */
  totalMs: number;
  realUserSent: number;
  status429: number;
  status401: number;
  /** 401s for the real user's name: wrong passwords hashed against the real hash. */
  realUser401: number;
  otherStatus: Record<string, number>;
  errors: number;
  unanswered: number;
  maxInFlight: number;
  latency429: LatencySummary;
  latency401: LatencySummary;
  /** When the 401s were answered, in seconds from the first send (first, last). */
  first401S: number | null;
  last401S: number | null;
  /** 401 answers by the second of the spray they were sent in. */
  sent401BySecond: number[];
}

type SprayMessage = { type: 'started' } | { type: 'result'; result: SprayResult };

// ---------------------------------------------------------------------------------------------
// Small helpers.

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** True when the request had to open a new connection (rather than use a kept-alive one). */
  newConnection: boolean;
}

function send(
  agent: Agent,
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: {
          ...headers,
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
            newConnection,
          }),
        );
        res.on('error', reject);
      },
    );
    let newConnection = false;
    req.on('socket', (socket) => {
      newConnection = socket.connecting;
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summariseLatency(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : '-';
}

function sessionCookie(answer: Answer): string | null {
  const raw = answer.headers['set-cookie'];
  for (const c of Array.isArray(raw) ? raw : raw ? [raw] : []) {
    const m = /^hf_session=([^;]+)/.exec(c);
    if (m) return `hf_session=${m[1]}`;
  }
  return null;
}

function expect(answer: Answer, status: number, what: string): Record<string, unknown> {
  if (answer.status !== status)
    throw new Error(`${what}: expected ${status}, got ${answer.status}: ${answer.body.slice(0, 300)}`);
  return answer.body ? (JSON.parse(answer.body) as Record<string, unknown>) : {};
}

// ---------------------------------------------------------------------------------------------
// The server child: a real node, the real app, on a free loopback port.

async function runServer(dataDir: string): Promise<void> {
  const toParent = (m: ServerMessage): void => void process.send?.(m);
  const node = await initNode(
    { store: 'sqlite', dataDir, checkpointEvery: CONFIG_DEFAULTS.checkpointEvery },
    { node: 'bench-node-1', tenant: TENANT, role: 'single' },
  );
  const accounts = new AccountsService(
    node.store,
    node.ledger,
    new SessionStore(node.store, node.clock),
    node.providerKeys,
  );
  await accounts.createTenant(TENANT, 'Benchshire urgent care', 'system:bench');
  const site = await accounts.createSite(TENANT, 'Benchshire hub', 'system:bench');
  await accounts.create(
    TENANT,
    {
      username: USERNAME,
      displayName: 'Bench clinician',
      roles: ['clinician'],
      siteIds: [site],
      password: PASSWORD,
    },
    'system:bench',
  );
  await accounts.create(
    TENANT,
    {
      username: FLOODER,
      displayName: 'Bench adviser who floods',
      roles: ['health_adviser'],
      siteIds: [site],
      password: PASSWORD,
    },
    'system:bench',
  );
  const port = await serveBenchNode(node, TENANT, dataDir);
  toParent({ type: 'ready', port });
}

// ---------------------------------------------------------------------------------------------
// The spray child: failed sign-ins paced to a target rate, from one address.

async function runSpray(config: SprayConfig): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: SPRAY_SOCKETS });
  const r: SprayResult = {
    sent: 0,
    skipped: 0,
    sendMs: 0,
    totalMs: 0,
    realUserSent: 0,
    status429: 0,
    status401: 0,
    realUser401: 0,
    otherStatus: {},
    errors: 0,
    unanswered: 0,
    maxInFlight: 0,
    latency429: summariseLatency([]),
    latency401: summariseLatency([]),
    first401S: null,
    last401S: null,
    sent401BySecond: [],
  };
  const lat429: number[] = [];
  const lat401: number[] = [];
  let inFlight = 0;
  let lastAnswer = 0;
  const realEvery = config.realShare > 0 ? Math.max(1, Math.round(1 / config.realShare)) : 0;

  const fire = (start: number): void => {
    const real = realEvery > 0 && r.sent % realEvery === 0;
    if (real) r.realUserSent++;
    const username = real ? config.realUser : `${randomBytes(6).toString('hex')}@${TENANT}`;
    const password = randomBytes(12).toString('base64url');
    r.sent++;
    inFlight++;
    r.maxInFlight = Math.max(r.maxInFlight, inFlight);
    const sentAt = performance.now();
    send(agent, config.port, 'POST', '/api/v1/auth/sign-in', {}, { username, password }).then(
      (answer) => {
        inFlight--;
        const now = performance.now();
        lastAnswer = now;
        if (answer.status === 429) {
          r.status429++;
          lat429.push(now - sentAt);
        } else if (answer.status === 401) {
          r.status401++;
          if (real) r.realUser401++;
          lat401.push(now - sentAt);
          const s = (now - start) / 1000;
          r.first401S ??= s;
          r.last401S = s;
          const bucket = Math.floor((sentAt - start) / 1000);
          r.sent401BySecond[bucket] = (r.sent401BySecond[bucket] ?? 0) + 1;
        } else {
          r.otherStatus[answer.status] = (r.otherStatus[answer.status] ?? 0) + 1;
        }
      },
      () => {
        inFlight--;
        r.errors++;
      },
    );
  };

  process.send?.({ type: 'started' } satisfies SprayMessage);
  const start = performance.now();
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= config.durationMs) break;
    const due = Math.floor((elapsed * config.ratePerS) / 1000) - (r.sent + r.skipped);
    for (let i = 0; i < due; i++) {
      if (inFlight >= SPRAY_MAX_IN_FLIGHT) r.skipped++;
      else fire(start);
    }
    await sleep(1);
  }
  r.sendMs = performance.now() - start;
  const drainUntil = performance.now() + config.drainMs;
  while (inFlight > 0 && performance.now() < drainUntil) await sleep(5);
  r.unanswered = inFlight;
  r.totalMs = (inFlight > 0 ? performance.now() : Math.max(lastAnswer, start + r.sendMs)) - start;
  r.latency429 = summariseLatency(lat429);
  r.latency401 = summariseLatency(lat401);
  for (let i = 0; i < r.sent401BySecond.length; i++) r.sent401BySecond[i] ??= 0;
  agent.destroy();
  process.send?.({ type: 'result', result: r } satisfies SprayMessage, () => process.disconnect());
}

// ---------------------------------------------------------------------------------------------
// The legitimate client (this process).

interface LegitResult {
  latencies: number[];
  errors: number;
  statuses: Record<string, number>;
  ms: number;
  /** Requests that had to open a connection (the agent keeps up to 16 alive). */
  newConnections: number;
  /** The five slowest requests: when they were sent (s into the phase), latency, new connection? */
  slowest: { atS: number; ms: number; newConnection: boolean }[];
  /** Latencies of the successful requests sent after the first STEADY_AFTER_S seconds. */
  steadyLatencies: number[];
}

/** GET /api/v1/auth/session at a steady rate (open loop), latency of each from its send. */
async function legitLoad(
  agent: Agent,
  port: number,
  cookie: string,
  ratePerS: number,
  durationMs: number,
): Promise<LegitResult> {
  const result: LegitResult = {
    latencies: [],
    errors: 0,
    statuses: {},
    ms: 0,
    newConnections: 0,
    slowest: [],
    steadyLatencies: [],
  };
  const all: LegitResult['slowest'] = [];
  const pending: Promise<void>[] = [];
  const interval = 1000 / ratePerS;
  const count = Math.round((durationMs / 1000) * ratePerS);
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = start + i * interval - performance.now();
    if (wait > 0) await sleep(wait);
    const sentAt = performance.now();
    pending.push(
      send(agent, port, 'GET', '/api/v1/auth/session', { cookie }).then(
        (answer) => {
          const latency = performance.now() - sentAt;
          result.statuses[answer.status] = (result.statuses[answer.status] ?? 0) + 1;
          if (answer.newConnection) result.newConnections++;
          if (answer.status === 200) {
            result.latencies.push(latency);
            all.push({ atS: (sentAt - start) / 1000, ms: latency, newConnection: answer.newConnection });
          } else result.errors++;
        },
        () => {
          result.errors++;
        },
      ),
    );
  }
  await Promise.all(pending);
  result.ms = performance.now() - start;
  result.steadyLatencies = all.filter((x) => x.atS >= STEADY_AFTER_S).map((x) => x.ms);
  result.slowest = all.sort((a, b) => b.ms - a.ms).slice(0, 5);
  return result;
}

interface FloodResult {
  searches: number;
  statuses: Record<number, number>;
  streamsOpened: number;
  streamsRefused: number;
}

/**
 * One user misbehaving: keeps FLOOD_SEARCHES_IN_FLIGHT patient searches in flight for the whole
 * phase, and tries to open FLOOD_STREAMS live streams and hold them. The fair-use limits should
 * answer most of it 429 at once.
 */
async function flood(
  port: number,
  session: { cookie: string; csrf: string },
  durationMs: number,
): Promise<FloodResult> {
  const result: FloodResult = { searches: 0, statuses: {}, streamsOpened: 0, streamsRefused: 0 };
  const agent = new Agent({ keepAlive: true, maxSockets: FLOOD_SEARCHES_IN_FLIGHT });
  const headers = { cookie: session.cookie, 'x-csrf-token': session.csrf };
  const held: ReturnType<typeof httpRequest>[] = [];
  const opened = await Promise.all(
    Array.from(
      { length: FLOOD_STREAMS },
      () =>
        new Promise<boolean>((resolve) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port,
              path: '/api/v1/queue/stream?follow=true',
              headers: { cookie: session.cookie },
              agent: false,
            },
            (res) => {
              if (res.statusCode === 200) held.push(req);
              else res.resume();
              resolve(res.statusCode === 200);
            },
          );
          req.on('error', () => resolve(false));
          req.end();
        }),
    ),
  );
  result.streamsOpened = opened.filter(Boolean).length;
  result.streamsRefused = opened.length - result.streamsOpened;
  const end = performance.now() + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const answer = await send(agent, port, 'POST', '/api/v1/patients/search', headers, {
        familyName: 'Smith',
        dateOfBirth: '1980',
      }).catch(() => null);
      result.searches++;
      const status = answer?.status ?? 0;
      result.statuses[status] = (result.statuses[status] ?? 0) + 1;
      // A refused search is sent again at once: the client does not back off.
    }
  };
  await Promise.all(Array.from({ length: FLOOD_SEARCHES_IN_FLIGHT }, () => worker()));
  for (const req of held) req.destroy();
  agent.destroy();
  return result;
}

interface FloodConfig {
  port: number;
  session: { cookie: string; csrf: string };
  durationMs: number;
}

type FloodMessage = { type: 'ready' } | { type: 'result'; result: FloodResult };

/**
 * The flood child: the misbehaving user is another client, on another machine in life. In the
 * legitimate client's process its 200 workers and 1,000 connections held that process's event loop
 * (up to 235 ms at once), which was timed as the server's latency; here it only shares the cores.
 */
async function runFlood(config: FloodConfig): Promise<void> {
  process.send?.({ type: 'ready' } satisfies FloodMessage);
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  const result = await flood(config.port, config.session, config.durationMs);
  process.send?.({ type: 'result', result } satisfies FloodMessage, () => process.disconnect());
}

// ---------------------------------------------------------------------------------------------
// The orchestration.

function parseArgs(): { quick: boolean; realShare: number; warmThrottle: boolean } {
  const argv = process.argv.slice(2);
  let realShare = 0.1;
  let warmThrottle = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--warm-throttle') warmThrottle = true;
    else if (argv[i] === '--real-share') {
      realShare = Number(argv[++i]);
      if (!(realShare >= 0 && realShare <= 1)) throw new Error('--real-share takes a number from 0 to 1');
    } else rest.push(argv[i]!);
  }
  const args = parseBenchArgs(rest);
  if (args.only) throw new Error('--only does not apply: the login bench runs on the embedded SQLite store');
  return { quick: args.quick, realShare, warmThrottle };
}

function forkRole(role: 'server' | 'spray' | 'flood', config: unknown): ChildProcess {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, [ROLE_ENV]: role, [CONFIG_ENV]: JSON.stringify(config) },
    // The children never write the report: their stdout goes to our stderr.
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  child.stdout?.pipe(process.stderr);
  return child;
}

function nextMessage<T extends { type: string }>(
  child: ChildProcess,
  type: T['type'],
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`no '${type}' from the child within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (m: T): void => {
      if (m.type === type) done(null, m);
    };
    const onExitEarly = (code: number | null): void =>
      done(new Error(`child exited (${code}) before '${type}'`));
    const done = (error: Error | null, m?: T): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExitEarly);
      if (error) reject(error);
      else resolve(m!);
    };
    child.on('message', onMessage);
    child.on('exit', onExitEarly);
  });
}

async function serverPhase<T>(server: ChildProcess, run: () => Promise<T>): Promise<[T, ServerPhaseStats]> {
  server.send({ type: 'phase-start' } satisfies ServerCommand);
  const value = await run();
  const stats = nextMessage<Extract<ServerMessage, { type: 'phase' }>>(server, 'phase', 10_000);
  server.send({ type: 'phase-end' } satisfies ServerCommand);
  return [value, (await stats).stats];
}

async function ledgerSeq(agent: Agent, port: number, cookie: string): Promise<number> {
  // The ledger head is detail for signed-in users (anonymous callers learn up or down only).
  const health = expect(await send(agent, port, 'GET', '/health', { cookie }), 200, 'GET /health');
  return (health.ledger as { seq: number }).seq;
}

/** Password, then TOTP enrolment and its first code: a full session over real HTTP. */
async function signIn(
  agent: Agent,
  port: number,
  username = USERNAME,
): Promise<{ cookie: string; csrf: string }> {
  const first = await send(agent, port, 'POST', '/api/v1/auth/sign-in', {}, { username, password: PASSWORD });
  const step1 = expect(first, 200, 'password step');
  if (step1.next !== 'enrol_totp') throw new Error(`unexpected next step ${String(step1.next)}`);
  let cookie = sessionCookie(first);
  if (!cookie) throw new Error('the password step set no session cookie');
  let csrf = step1.csrfToken as string;
  const enrol = expect(
    await send(agent, port, 'POST', '/api/v1/auth/totp/enrol', { cookie, 'x-csrf-token': csrf }),
    200,
    'TOTP enrolment',
  );
  const secret = enrol.secret as string;
  const confirm = await send(
    agent,
    port,
    'POST',
    '/api/v1/auth/totp/confirm',
    { cookie, 'x-csrf-token': csrf },
    { code: totpCode(secret, Date.now()) },
  );
  const confirmed = expect(confirm, 200, 'TOTP confirmation');
  cookie = sessionCookie(confirm) ?? '';
  if (!cookie) throw new Error('the TOTP confirmation set no session cookie');
  csrf = confirmed.csrfToken as string;
  const session = expect(
    await send(agent, port, 'GET', '/api/v1/auth/session', { cookie }),
    200,
    'GET session',
  );
  if ((session.user as { username: string }).username !== username)
    throw new Error('signed in as someone else');
  return { cookie, csrf };
}

async function main(): Promise<void> {
  const args = parseArgs();
  const plan: Plan = { ...(args.quick ? QUICK : FULL), realShare: args.realShare };
  const machine = machineInfo();
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const dir = tempDir('holdfast-bench-login-');
  const children = new Set<ChildProcess>();
  onExit(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
    dir.remove();
  });
  // Bounded in time whatever happens.
  const deadline = setTimeout(
    () => {
      note('login bench: overall time limit reached, stopping');
      process.exit(2);
    },
    plan.baselineMs + 2 * plan.sprayMs + plan.drainMs + 180_000,
  );
  deadline.unref();

  note(`login bench: starting a node in ${dir.path}`);
  const server = forkRole('server', dir.path);
  children.add(server);
  const { port } = await nextMessage<Extract<ServerMessage, { type: 'ready' }>>(server, 'ready', 60_000);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const { cookie } = await signIn(agent, port);
  // The flooder of the fair-use phase signs in now, before the spray uses up the address's allowance.
  const flooderSession = await signIn(agent, port, FLOODER);
  note(`login bench: node on 127.0.0.1:${port}; ${USERNAME} signed in with password + TOTP`);

  // Warm-up (JIT, SQLite page cache, sockets), then the baseline: the legitimate client alone.
  // The legitimate client keeps LEGIT_SOCKETS connections alive, all opened here: a browser that
  // is already connected when the spray starts.
  const legitAgent = new Agent({ keepAlive: true, maxSockets: LEGIT_SOCKETS });
  for (let round = 0; round < 20; round++)
    await Promise.all(
      Array.from({ length: LEGIT_SOCKETS }, () =>
        send(legitAgent, port, 'GET', '/api/v1/auth/session', { cookie }),
      ),
    );
  await legitLoad(legitAgent, port, cookie, 200, 1_000);
  note(`login bench: baseline, legitimate client alone for ${plan.baselineMs / 1000} s`);
  const [baseline, baselineServer] = await serverPhase(server, () =>
    legitLoad(legitAgent, port, cookie, plan.legitPerS, plan.baselineMs),
  );

  if (args.warmThrottle) {
    // Use up the address's allowance one attempt at a time, so the spray starts fully throttled.
    for (let i = 0; i < DEFAULT_THROTTLE.perAddressPerMinute; i++)
      await send(
        agent,
        port,
        'POST',
        '/api/v1/auth/sign-in',
        {},
        { username: `warm-${i}@${TENANT}`, password: 'wrong' },
      );
    note(
      `login bench: the address has used its ${DEFAULT_THROTTLE.perAddressPerMinute} failures for this minute`,
    );
  }
  const seqBefore = await ledgerSeq(agent, port, cookie);
  note(
    `login bench: spray ${formatRate(plan.sprayPerS)}/s for ${plan.sprayMs / 1000} s ` +
      `(${Math.round(plan.realShare * 100)} % with the real user name) + legitimate client at ${plan.legitPerS}/s`,
  );
  const spray = forkRole('spray', {
    port,
    ratePerS: plan.sprayPerS,
    durationMs: plan.sprayMs,
    drainMs: plan.drainMs,
    realShare: plan.realShare,
    realUser: USERNAME,
  } satisfies SprayConfig);
  children.add(spray);
  await nextMessage<Extract<SprayMessage, { type: 'started' }>>(spray, 'started', 60_000);
  const sprayDone = nextMessage<Extract<SprayMessage, { type: 'result' }>>(
    spray,
    'result',
    plan.sprayMs + plan.drainMs + 30_000,
  );
  const [[legit, sprayResult], sprayServer] = await serverPhase(server, async () => {
    const legitResult = await legitLoad(legitAgent, port, cookie, plan.legitPerS, plan.sprayMs);
    return [legitResult, (await sprayDone).result] as const;
  });
  const seqAfter = await ledgerSeq(agent, port, cookie);

  // Fair use: a second user floods searches and streams while the legitimate client carries on.
  note(
    `login bench: ${FLOODER} keeps ${FLOOD_SEARCHES_IN_FLIGHT} searches in flight and opens ${FLOOD_STREAMS} streams for ${plan.sprayMs / 1000} s`,
  );
  const flooder = forkRole('flood', {
    port,
    session: flooderSession,
    durationMs: plan.sprayMs,
  } satisfies FloodConfig);
  children.add(flooder);
  await nextMessage<Extract<FloodMessage, { type: 'ready' }>>(flooder, 'ready', 60_000);
  const floodDone = nextMessage<Extract<FloodMessage, { type: 'result' }>>(
    flooder,
    'result',
    plan.sprayMs + 60_000,
  );
  const clientEld = monitorEventLoopDelay({ resolution: 1 });
  clientEld.enable();
  const [[floodLegit, floodResult], floodServer] = await serverPhase(server, async () => {
    flooder.send({ type: 'go' });
    const legitResult = await legitLoad(legitAgent, port, cookie, plan.legitPerS, plan.sprayMs);
    return [legitResult, (await floodDone).result] as const;
  });
  clientEld.disable();
  const floodLat = summariseLatency(floodLegit.latencies);

  // After the spray: the legitimate session still works; a fresh sign-in of the sprayed account?
  const sessionAfter = await send(agent, port, 'GET', '/api/v1/auth/session', { cookie });
  const freshSignIn = await send(
    agent,
    port,
    'POST',
    '/api/v1/auth/sign-in',
    {},
    { username: USERNAME, password: PASSWORD },
  );
  agent.destroy();
  legitAgent.destroy();

  server.send({ type: 'stop' } satisfies ServerCommand);
  await nextMessage<Extract<ServerMessage, { type: 'stopped' }>>(server, 'stopped', 30_000);
  await new Promise<void>((resolve) =>
    server.exitCode !== null ? resolve() : server.once('exit', () => resolve()),
  );

  // -------------------------------------------------------------------------------------------
  // Report.
  const s = sprayResult;
  const answered = s.status429 + s.status401 + Object.values(s.otherStatus).reduce((a, b) => a + b, 0);
  const rejected = s.status429 + s.status401;
  const rejectedRatio = s.sent > 0 ? rejected / s.sent : NaN;
  const achievedPerS = s.sendMs > 0 ? (s.sent * 1000) / s.sendMs : 0;
  const base = summariseLatency(baseline.latencies);
  const legitLat = [...legit.latencies].sort((a, b) => a - b);
  const legitP50 = percentile(legitLat, 50);
  const legitP95 = percentile(legitLat, 95);
  const legitP99 = percentile(legitLat, 99);
  const legitMax = legitLat.length ? legitLat[legitLat.length - 1]! : NaN;
  const legitRequests = legit.latencies.length + legit.errors;
  const steady = summariseLatency(legit.steadyLatencies);
  const auditEvents = seqAfter - seqBefore;
  const retryAfter = freshSignIn.headers['retry-after'];

  const cpuShare = (p: ServerPhaseStats): string => `${Math.round((p.cpuMs / p.wallMs) * 100)} %`;

  console.log(`Login benchmark${args.quick ? ' (--quick)' : ''}, ${startedAt.toISOString()}`);
  console.log(`machine: ${describeMachine(machine)}`);
  console.log(
    `load average at start (1/5/15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(' / ')} ` +
      `(other work on the machine competes for the same cores)`,
  );
  console.log(
    `server: one Holdfast node in a child process on 127.0.0.1:${port}, embedded SQLite (WAL, synchronous=FULL), ` +
      `system clock, logs at info to a file; default throttle: ${DEFAULT_THROTTLE.maxFailures} failures lock a ` +
      `name for ${DEFAULT_THROTTLE.lockoutMs / 60_000} min, ${DEFAULT_THROTTLE.perAddressPerMinute} failures/min per address`,
  );
  console.log(
    `spray: target ${formatRate(plan.sprayPerS)}/s for ${plan.sprayMs / 1000} s from one address (127.0.0.1), ` +
      `wrong passwords, random user names and ${plan.realShare > 0 ? `1 in ${Math.round(1 / plan.realShare)}` : 'never'} the real one ` +
      `(${USERNAME}), ${SPRAY_SOCKETS} keep-alive sockets`,
  );
  if (args.warmThrottle)
    console.log(
      `--warm-throttle: the address used up its ${DEFAULT_THROTTLE.perAddressPerMinute} failures/min just before the spray`,
    );
  console.log(
    `legitimate client: GET /api/v1/auth/session with its full session at ${plan.legitPerS}/s (open loop) over ` +
      `${LEGIT_SOCKETS} kept-alive connections, ${plan.baselineMs / 1000} s alone, then ${plan.sprayMs / 1000} s during the spray`,
  );
  console.log('');
  console.log(
    formatTable(
      ['spray', 'value'],
      [
        ['requests sent', s.sent.toLocaleString('en-GB')],
        ['achieved rate', `${formatRate(achievedPerS)}/s`],
        ['skipped (in-flight cap)', String(s.skipped)],
        ['answered 429 (throttled before hashing)', s.status429.toLocaleString('en-GB')],
        ['answered 401 (hashed, then refused)', `${s.status401} (${s.realUser401} for the real name)`],
        ['other statuses', JSON.stringify(s.otherStatus)],
        ['transport errors / unanswered', `${s.errors} / ${s.unanswered}`],
        ['rejected (429 + 401) / sent', rejectedRatio.toFixed(4)],
        [
          '429 latency p50 / p99 / max',
          `${ms(s.latency429.p50)} / ${ms(s.latency429.p99)} / ${ms(s.latency429.max)} ms`,
        ],
        [
          '401 latency p50 / p99 / max',
          `${ms(s.latency401.p50)} / ${ms(s.latency401.p99)} / ${ms(s.latency401.max)} ms`,
        ],
        [
          '401s answered between',
          s.first401S === null ? '-' : `${s.first401S.toFixed(2)} s and ${(s.last401S ?? 0).toFixed(2)} s`,
        ],
        ['401s by second sent', s.sent401BySecond.join(' ')],
        ['max requests in flight', String(s.maxInFlight)],
        ['last answer after', `${(s.totalMs / 1000).toFixed(2)} s`],
        ['ledger events written meanwhile', `${auditEvents} (sign-in audit events and checkpoints)`],
      ],
    ),
  );
  console.log('');
  console.log(
    formatTable(
      [
        'legitimate client',
        'requests',
        'errors',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'max ms',
        'server ELD p99/max ms',
        'server CPU',
      ],
      [
        [
          'alone (baseline)',
          String(baseline.latencies.length + baseline.errors),
          String(baseline.errors),
          ms(base.p50),
          ms(
            percentile(
              [...baseline.latencies].sort((a, b) => a - b),
              95,
            ),
          ),
          ms(base.p99),
          ms(base.max),
          `${ms(baselineServer.eldP99Ms)} / ${ms(baselineServer.eldMaxMs)}`,
          cpuShare(baselineServer),
        ],
        [
          'during the spray',
          String(legitRequests),
          String(legit.errors),
          ms(legitP50),
          ms(legitP95),
          ms(legitP99),
          ms(legitMax),
          `${ms(sprayServer.eldP99Ms)} / ${ms(sprayServer.eldMaxMs)}`,
          cpuShare(sprayServer),
        ],
        [
          `  sent after ${STEADY_AFTER_S} s`,
          String(steady.count),
          '',
          ms(steady.p50),
          ms(
            percentile(
              [...legit.steadyLatencies].sort((a, b) => a - b),
              95,
            ),
          ),
          ms(steady.p99),
          ms(steady.max),
          '',
          '',
        ],
      ],
    ),
  );
  if (legit.errors > 0) console.log(`legitimate statuses: ${JSON.stringify(legit.statuses)}`);
  console.log(
    `legitimate requests that opened a connection: ${baseline.newConnections} alone, ${legit.newConnections} during the spray; ` +
      `slowest during the spray (sent at s: ms): ` +
      legit.slowest
        .map((x) => `${x.atS.toFixed(2)}: ${ms(x.ms)}${x.newConnection ? ' (new connection)' : ''}`)
        .join(', '),
  );
  console.log('');
  console.log(
    `after the spray: the legitimate session answers ${sessionAfter.status}; a fresh sign-in of ${USERNAME} ` +
      `with the right password answers ${freshSignIn.status}` +
      (retryAfter ? ` (Retry-After ${String(retryAfter)} s)` : ''),
  );
  console.log(
    `target: legitimate p99 < 100 ms during the spray: ${legitP99 < 100 ? 'met' : '**not met**'} (${ms(legitP99)} ms)`,
  );
  console.log('');
  console.log(
    `fair use: ${FLOODER} sent ${floodResult.searches.toLocaleString('en-GB')} searches with ${FLOOD_SEARCHES_IN_FLIGHT} in flight ` +
      `(answers ${JSON.stringify(floodResult.statuses)}); of ${FLOOD_STREAMS} live streams ${floodResult.streamsOpened} opened, ` +
      `${floodResult.streamsRefused} refused; server CPU ${cpuShare(floodServer)}, server ELD p99/max ` +
      `${ms(floodServer.eldP99Ms)} / ${ms(floodServer.eldMaxMs)} ms; bench client ELD p99/max ` +
      `${ms(clientEld.percentile(99) / 1e6)} / ${ms(clientEld.max / 1e6)} ms`,
  );
  console.log(
    `other user's GET /api/v1/auth/session during the flood: p50 ${ms(floodLat.p50)} / p99 ${ms(floodLat.p99)} / max ${ms(floodLat.max)} ms ` +
      `(${floodLegit.errors} errors); target p99 < 100 ms: ${floodLat.p99 < 100 ? 'met' : '**not met**'}`,
  );
  if (floodLegit.errors > 0)
    console.log(`other user's statuses during the flood: ${JSON.stringify(floodLegit.statuses)}`);
  console.log(
    `slowest during the flood (sent at s: ms): ` +
      floodLegit.slowest
        .map((x) => `${x.atS.toFixed(2)}: ${ms(x.ms)}${x.newConnection ? ' (new connection)' : ''}`)
        .join(', '),
  );
  console.log(`total ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)} s`);
  console.log(
    JSON.stringify({
      bench: 'login',
      spray_per_s: round(achievedPerS),
      legit_p99_ms: round(legitP99, 2),
      legit_p50_ms: round(legitP50, 2),
      legit_p95_ms: round(legitP95, 2),
      legit_max_ms: round(legitMax, 2),
      legit_requests: legitRequests,
      legit_errors: legit.errors,
      legit_steady_p99_ms: round(steady.p99, 2),
      flood_other_user_p99_ms: round(floodLat.p99, 2),
      flood_other_user_p50_ms: round(floodLat.p50, 2),
      flood_other_user_errors: floodLegit.errors,
      flood_searches: floodResult.searches,
      flood_search_statuses: floodResult.statuses,
      flood_streams_opened: floodResult.streamsOpened,
      baseline_p99_ms: round(base.p99, 2),
      spray_sent: s.sent,
      spray_429: s.status429,
      spray_401: s.status401,
      spray_errors: s.errors + s.unanswered + Object.values(s.otherStatus).reduce((a, b) => a + b, 0),
      spray_rejected_ratio: round(rejectedRatio, 4),
      spray_answered: answered,
      audit_events: auditEvents,
      server_eld_p99_ms: round(sprayServer.eldP99Ms, 2),
      real_share: plan.realShare,
      warm_throttle: args.warmThrottle,
      load_1m: round(loadAtStart[0] ?? 0, 2),
      quick: args.quick,
      machine: { cpu: machine.cpu, cores: machine.cores, node: machine.node },
    }),
  );
}

const role = process.env[ROLE_ENV];
if (role === 'server') {
  await runServer(JSON.parse(process.env[CONFIG_ENV] ?? '""') as string);
} else if (role === 'spray') {
  await runSpray(JSON.parse(process.env[CONFIG_ENV] ?? '{}') as SprayConfig);
} else if (role === 'flood') {
  await runFlood(JSON.parse(process.env[CONFIG_ENV] ?? '{}') as FloodConfig);
} else {
  await main();
}
