/**
 * Flow benchmark (`npm run bench:flow`, `npm run bench:flow -- --quick`, `-- --only sqlite|postgres`).
 *
 * For each store (embedded SQLite in WAL mode with synchronous=FULL; PostgreSQL with its default
 * durability, or the server at HOLDFAST_TEST_DATABASE_URL) a real Holdfast node (the real HTTP
 * application, the system clock, request logs at `info` to a file, checkpoints every 100 events and
 * every 10 s, as `holdfast start` runs it) listens on a free loopback port in a child process of
 * its own. This process drives complete case flows through it over HTTP:
 *
 *   adviser:   POST /api/v1/calls → POST …/triage (a pathway) → POST …/triage/answers until a
 *              speak-to-primary-care disposition (the case joins the CAS queue)
 *   clinician: GET /api/v1/queue → POST …/claim → POST …/callback-attempts (answered)
 *              → POST …/consultation → POST …/consultation/record (NEWS2 observations)
 *              → POST …/outcome (advice and close)
 *
 * Triage walks come from `simulateAnswers` (seeded), kept when they end at a speak-to-primary-care
 * disposition, so each flow answers as many questions as such a call does in the shipped pack.
 * USERS advisers and as many clinicians sign in (password + TOTP, enrolled at first sign-in); flows
 * take them in turn. Before measuring, a backlog of queued cases is put in the queue (so
 * GET /api/v1/queue lists what a busy queue holds) and a warm-up runs.
 *
 * Then flows are started at a steady rate (open loop: on schedule, whether or not earlier ones have
 * finished), first at the target of 30,000 an hour (one every 120 ms), then half as fast again at
 * each step, until p99 reaches 100 ms, a flow fails, or the node falls behind (more than
 * MAX_IN_FLIGHT flows running). For each store it reports, at the target rate and at the fastest
 * sustained rate: complete flows per hour, latency per route (p50/p95/p99/max, from send to last
 * byte, on keep-alive connections), the server's CPU share and event-loop delay, and ledger events
 * per flow. The JSON line's `flows_per_hour` and `p99_ms` are the fastest sustained step's (both
 * measured together); `target_rate_p99_ms` is the p99 at 30,000 an hour. The client shares the
 * machine's cores with the server (and PostgreSQL), so the capacity found is a lower bound.
 * `-- --cpu-prof <dir>` writes a V8 CPU profile of the server process there.
 *
 * `-- --hub-processes N` (PostgreSQL only) measures the same flows against one hub process and then
 * against N hub processes over one database, each its own node in its own child process (a second
 * process gets the first one's provider keys, as docs/OPERATIONS.md says), hearing each other's
 * commits through LISTEN/NOTIFY. The client plays a load balancer that keeps a user on one process:
 * adviser i on process i mod N, clinician i on the next, so every case is opened through one process
 * and worked through another. The report gives flows per hour for 1 and for N processes.
 * Progress goes to stderr; stdout gets the report and, as its last line, one JSON object.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'node:http';

import { loadavg } from 'node:os';

import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { walk } from '@holdfast/core/triage/engine';
import type { TriageAnswer } from '@holdfast/core/triage/engine';
import { simulateAnswers } from '@holdfast/core/triage/simulation';
import { AccountsService } from '../packages/server/src/accounts/service.ts';
import { SessionStore } from '../packages/server/src/auth/sessions.ts';
import { CONFIG_DEFAULTS } from '../packages/server/src/config.ts';

import { initNode } from '../packages/server/src/node/node.ts';
import { PROVIDER_KEYS_FILE } from '../packages/server/src/node/provider-keys.ts';
import {
  ApiSession,
  MemoryTotpSecrets,
  type RequestObserver,
} from '../packages/server/src/simulate/api-client.ts';
import { deriveSeed, mulberry32 } from '../packages/server/src/simulate/simulator.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../packages/server/src/triage/packs.ts';
import {
  describeMachine,
  formatRate,
  formatTable,
  machineInfo,
  note,
  onExit,
  parseBenchArgsWithProfile,
  round,
  startBenchPostgres,
  tempDir,
  type BenchPostgres,
  serveBenchNode,
  type ServerCommand,
  type ServerPhaseStats,
} from './support.ts';

const ROLE_ENV = 'HOLDFAST_BENCH_FLOW_ROLE';
const CONFIG_ENV = 'HOLDFAST_BENCH_FLOW_CONFIG';

type StoreKind = 'sqlite' | 'postgres';

const TENANT = 'benchshire';
const PASSWORD = 'correct horse battery staple';
/** Advisers (and as many clinicians) signed in; flows take them in turn. */
const USERS = 8;
const TARGET_FLOWS_PER_HOUR = 30_000;
const TARGET_P99_MS = 100;

interface Plan {
  warmupFlows: number;
  /** How long each rate is held. */
  stepMs: number;
  /** Rates tried at most: the target, then half as fast again each step. */
  maxSteps: number;
  /** Queued cases left waiting in the queue before measuring. */
  backlog: number;
}
const FULL: Plan = { warmupFlows: 60, stepMs: 30_000, maxSteps: 6, backlog: 100 };
const QUICK: Plan = { warmupFlows: 24, stepMs: 4_000, maxSteps: 3, backlog: 100 };

// ---------------------------------------------------------------------------------------------
// Messages between the processes.

interface ServerConfig {
  store: StoreKind;
  dataDir: string;
  databaseUrl?: string;
  users: number;
  /** Another hub process over the first one's database: its node id and the first one's data directory. */
  join?: { node: string; firstDataDir: string };
}

type ServerMessage =
  | { type: 'ready'; port: number; siteId: string }
  | { type: 'phase'; stats: ServerPhaseStats }
  | { type: 'stopped' };

const adviserName = (i: number): string => `adviser-${i}@${TENANT}`;
const clinicianName = (i: number): string => `clinician-${i}@${TENANT}`;

// ---------------------------------------------------------------------------------------------
// The server (child process).

async function runServer(config: ServerConfig): Promise<void> {
  const toParent = (m: ServerMessage): void => void process.send?.(m);
  if (config.join) {
    copyFileSync(
      join(config.join.firstDataDir, PROVIDER_KEYS_FILE),
      join(config.dataDir, PROVIDER_KEYS_FILE),
    );
    const joined = await initNode(
      {
        store: config.store,
        dataDir: config.dataDir,
        ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
        checkpointEvery: CONFIG_DEFAULTS.checkpointEvery,
      },
      { node: config.join.node, tenant: TENANT, role: 'hub' },
    );
    const port = await serveBenchNode(joined, TENANT, config.dataDir, config.databaseUrl);
    toParent({ type: 'ready', port, siteId: '' });
    return;
  }
  const node = await initNode(
    {
      store: config.store,
      dataDir: config.dataDir,
      ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
      checkpointEvery: CONFIG_DEFAULTS.checkpointEvery,
    },
    { node: 'bench-node-1', tenant: TENANT, role: 'single' },
  );
  const accounts = new AccountsService(
    node.store,
    node.ledger,
    new SessionStore(node.store, node.clock),
    node.providerKeys,
  );
  await accounts.createTenant(TENANT, 'Benchshire urgent care', 'system:bench');
  const siteId = await accounts.createSite(TENANT, 'Benchshire hub', 'system:bench');
  for (let i = 0; i < config.users; i++) {
    for (const [username, role] of [
      [adviserName(i), 'health_adviser'],
      [clinicianName(i), 'clinician'],
    ] as const)
      await accounts.create(
        TENANT,
        { username, displayName: `Bench ${role} ${i}`, roles: [role], siteIds: [siteId], password: PASSWORD },
        'system:bench',
      );
  }
  const port = await serveBenchNode(node, TENANT, config.dataDir, config.databaseUrl);
  toParent({ type: 'ready', port, siteId });
}

// ---------------------------------------------------------------------------------------------
// The client.

interface TriagePlan {
  pathwayId: string;
  answers: TriageAnswer[];
}

/** Seeded walks of the shipped pack that end at a speak-to-primary-care disposition. */
async function triagePlans(count: number): Promise<TriagePlan[]> {
  const loaded = await requireProtocolPack(SAMPLE_PACK_DIR);
  const weighted = loaded.pack.manifest.pathways.map((p) => [p.id, p.simWeight ?? 1] as const);
  const total = weighted.reduce((sum, [, w]) => sum + w, 0);
  const plans: TriagePlan[] = [];
  for (let i = 0; plans.length < count; i++) {
    if (i > count * 200) throw new Error('the pack hardly ever reaches a speak-to-primary-care disposition');
    const random = mulberry32(deriveSeed(20_261_129, 9, i));
    let pick = random() * total;
    const pathwayId = (weighted.find(([, w]) => (pick -= w) < 0) ?? weighted[weighted.length - 1]!)[0];
    const protocol = loaded.protocols.get(pathwayId)!;
    const answers = simulateAnswers(protocol, random);
    const result = walk(protocol, answers);
    if (result.status === 'disposition' && result.disposition.kind === 'speak_to_primary_care')
      plans.push({ pathwayId, answers });
  }
  return plans;
}

/** Latencies by route, for the phase being measured. */
class Recorder {
  measuring = false;
  byRoute = new Map<string, number[]>();
  all: number[] = [];
  errors = 0;
  statuses: Record<string, number> = {};

  reset(): void {
    this.byRoute = new Map();
    this.all = [];
    this.errors = 0;
    this.statuses = {};
  }

  readonly observe: RequestObserver = ({ method, route, status, ms }) => {
    if (!this.measuring) return;
    if (status >= 400) {
      this.errors++;
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    }
    const key = `${method} ${route}`;
    let list = this.byRoute.get(key);
    if (!list) this.byRoute.set(key, (list = []));
    list.push(ms);
    this.all.push(ms);
  };
}

interface Worker {
  adviser: ApiSession;
  clinician: ApiSession;
}

const OBSERVATIONS = {
  respirationRate: 18,
  spo2: 96,
  airOrOxygen: 'air',
  systolicBp: 124,
  pulse: 88,
  consciousness: 'alert',
  temperature: 37.8,
};

/** One call to a speak-to-primary-care disposition: the case ends up in the queue. Returns its id. */
async function triageToQueue(w: Worker, siteId: string, plan: TriagePlan, n: number): Promise<string> {
  const { json } = await w.adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
    siteId,
    caller: {
      name: 'Bench Caller',
      relationship: 'self',
      callbackNumber: `0113 496 0${String(n % 1000).padStart(3, '0')}`,
      callbackNumberReadBack: true,
    },
    location: 'Home address',
    presentingComplaint: 'Benchmark call',
  });
  const caseId = json.caseId;
  await w.adviser.call('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId: plan.pathwayId });
  let last: { status: string; disposition?: { kind: string; dxCode: string } } = { status: 'question' };
  for (const a of plan.answers)
    last = (await w.adviser.call<typeof last>('POST', `/api/v1/cases/${caseId}/triage/answers`, a)).json;
  if (last.status !== 'disposition' || last.disposition?.kind !== 'speak_to_primary_care')
    throw new Error(
      `case ${caseId}: triage ended at ${JSON.stringify(last.disposition?.kind ?? last.status)}`,
    );
  await w.adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
    dxCode: last.disposition.dxCode,
  });
  return caseId;
}

/** A complete flow: call, triage, queue, claim, call-back, consultation with observations, outcome. */
async function completeFlow(w: Worker, siteId: string, plan: TriagePlan, n: number): Promise<void> {
  const caseId = await triageToQueue(w, siteId, plan, n);
  const queue = await w.clinician.call<{ cases: { caseId: string }[] }>('GET', '/api/v1/queue');
  if (!queue.json.cases.some((c) => c.caseId === caseId))
    throw new Error(`case ${caseId} is not in the queue`);
  await w.clinician.call('POST', `/api/v1/cases/${caseId}/claim`);
  await w.clinician.call('POST', `/api/v1/cases/${caseId}/callback-attempts`, { outcome: 'answered' });
  await w.clinician.call('POST', `/api/v1/cases/${caseId}/consultation`);
  await w.clinician.call('POST', `/api/v1/cases/${caseId}/consultation/record`, {
    history: 'Cough and fever for three days',
    observations: OBSERVATIONS,
    assessment: 'Likely viral infection',
    plan: 'Fluids, paracetamol',
    safetyNetting: 'Call back if breathing gets worse',
  });
  const closed = await w.clinician.call<{ status: string }>('POST', `/api/v1/cases/${caseId}/outcome`, {
    outcome: 'advice_and_close',
  });
  if (closed.json.status !== 'closed')
    throw new Error(`case ${caseId} is ${closed.json.status} after the outcome`);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : '-';
}

function forkServer(config: ServerConfig, cpuProfileDir: string | null): ChildProcess {
  const child = fork(fileURLToPath(import.meta.url), [], {
    ...(cpuProfileDir
      ? { execArgv: [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] }
      : {}),
    env: { ...process.env, [ROLE_ENV]: 'server', [CONFIG_ENV]: JSON.stringify(config) },
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
      () => done(new Error(`no '${type}' from the server within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (m: T): void => {
      if (m.type === type) done(null, m);
    };
    const onExitEarly = (code: number | null): void =>
      done(new Error(`server exited (${code}) before '${type}'`));
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

interface RouteFigures {
  route: string;
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** One measured step: flows started at a steady rate (open loop) for a while. */
interface StepResult {
  /** Flows per hour offered: one started every 3,600,000 / rate ms. */
  offeredPerHour: number;
  offered: number;
  flows: number;
  failedFlows: number;
  /** Due flows not started because MAX_IN_FLIGHT were running (the node fell behind). */
  skipped: number;
  elapsedMs: number;
  flowsPerHour: number;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  routes: RouteFigures[];
  flowP50: number;
  flowP99: number;
  maxInFlight: number;
  answersPerFlow: number;
  eventsPerFlow: number;
  server: ServerPhaseStats;
  firstError: string | null;
  /** Every offered flow completed (none failed), at 95 % of the offered rate or more, with p99 < TARGET_P99_MS. */
  sustained: boolean;
}

interface StoreResult {
  store: StoreKind;
  /** Hub processes over the one store (1 unless --hub-processes). */
  processes: number;
  steps: StepResult[];
  /** The step at the target rate. */
  atTarget: StepResult;
  /** The fastest sustained step (or, if none was, the step at the target rate). */
  best: StepResult;
  /** The step that was not sustained, if one was not. */
  failed: StepResult | null;
}

/** Flows running at once beyond which a due flow is skipped: the node is not keeping up. */
const MAX_IN_FLIGHT = 64;

/** Events of the processes' own chains: one session per process. */
async function ledgerSeq(sessions: readonly ApiSession[]): Promise<number> {
  let sum = 0;
  for (const session of sessions) {
    const health = await session.call<{ ledger: { seq: number } }>('GET', '/health');
    sum += health.json.ledger.seq;
  }
  return sum;
}

/** The server figures of several processes as one: CPU added up, the worst event-loop delay. */
function combined(stats: readonly ServerPhaseStats[]): ServerPhaseStats {
  return {
    eldP50Ms: Math.max(...stats.map((x) => x.eldP50Ms)),
    eldP99Ms: Math.max(...stats.map((x) => x.eldP99Ms)),
    eldMaxMs: Math.max(...stats.map((x) => x.eldMaxMs)),
    cpuMs: stats.reduce((sum, x) => sum + x.cpuMs, 0),
    wallMs: Math.max(...stats.map((x) => x.wallMs)),
  };
}

const sleep = (msToWait: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, msToWait)));

async function benchStore(
  store: StoreKind,
  plan: Plan,
  plans: TriagePlan[],
  pg: BenchPostgres | null,
  children: Set<ChildProcess>,
  cpuProfileDir: string | null,
  processes = 1,
): Promise<StoreResult> {
  const dirs = Array.from({ length: processes }, (_, k) => tempDir(`holdfast-bench-flow-${store}-${k + 1}-`));
  const database = store === 'postgres' ? await pg!.createDatabase() : null;
  const label = processes > 1 ? `${store}, ${processes} hub processes` : store;
  try {
    note(`flow bench (${label}): starting a node in ${dirs[0]!.path}`);
    const server = forkServer(
      {
        store,
        dataDir: dirs[0]!.path,
        ...(database ? { databaseUrl: database.url } : {}),
        users: USERS,
      },
      cpuProfileDir,
    );
    children.add(server);
    const { port, siteId } = await nextMessage<Extract<ServerMessage, { type: 'ready' }>>(
      server,
      'ready',
      120_000,
    );
    const servers = [server];
    const ports = [port];
    for (let k = 1; k < processes; k++) {
      const other = forkServer(
        {
          store,
          dataDir: dirs[k]!.path,
          ...(database ? { databaseUrl: database.url } : {}),
          users: USERS,
          join: { node: `bench-node-${k + 1}`, firstDataDir: dirs[0]!.path },
        },
        null,
      );
      children.add(other);
      servers.push(other);
      ports.push(
        (await nextMessage<Extract<ServerMessage, { type: 'ready' }>>(other, 'ready', 120_000)).port,
      );
    }
    const baseUrls = ports.map((p) => new URL(`http://127.0.0.1:${p}`));
    const recorder = new Recorder();
    const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT * 2 });
    const secrets = new MemoryTotpSecrets();
    const session = (username: string, at: number): ApiSession =>
      new ApiSession(
        baseUrls[at % processes]!,
        { username, password: PASSWORD },
        { secrets, agent, observe: recorder.observe },
      );
    // A load balancer that keeps each user on one process; a case is worked through the next one.
    const workers: Worker[] = Array.from({ length: USERS }, (_, i) => ({
      adviser: session(adviserName(i), i),
      clinician: session(clinicianName(i), i + 1),
    }));
    const perProcess = baseUrls.map((_, k) => workers[k % USERS]!.adviser);
    // Sign-ins one at a time: the server hashes passwords on a bounded pool.
    for (const w of workers) {
      await w.adviser.signIn();
      await w.clinician.signIn();
    }
    note(
      `flow bench (${label}): node${processes > 1 ? 's' : ''} on 127.0.0.1:${ports.join(', ')}; ${workers.length * 2} users signed in with password + TOTP`,
    );

    let planIndex = 0;
    const nextPlan = (): TriagePlan => plans[planIndex++ % plans.length]!;
    // A backlog of cases waiting in the queue, as a busy queue would hold.
    await Promise.all(
      workers.map(async (w, i) => {
        for (let n = i; n < plan.backlog; n += workers.length) await triageToQueue(w, siteId, nextPlan(), n);
      }),
    );
    // Warm-up: JIT, caches, connections.
    await Promise.all(
      workers.map(async (w, i) => {
        for (let n = i; n < plan.warmupFlows; n += workers.length)
          await completeFlow(w, siteId, nextPlan(), n);
      }),
    );
    note(
      `flow bench (${label}): ${plan.backlog} cases waiting in the queue, ${plan.warmupFlows} warm-up flows done`,
    );

    let flowNumber = 0;
    const step = async (perHour: number, durationMs: number): Promise<StepResult> => {
      recorder.reset();
      const seqBefore = await ledgerSeq(perProcess);
      const flowTimes: number[] = [];
      let flows = 0;
      let failedFlows = 0;
      let skipped = 0;
      let answers = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      let lastDone = 0;
      let firstError: string | null = null;
      const one = async (w: Worker, n: number): Promise<void> => {
        const p = nextPlan();
        const t0 = performance.now();
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await completeFlow(w, siteId, p, n);
          flows++;
          answers += p.answers.length;
          flowTimes.push(performance.now() - t0);
        } catch (error) {
          failedFlows++;
          firstError ??= error instanceof Error ? error.message : String(error);
        } finally {
          inFlight--;
          lastDone = performance.now();
        }
      };
      for (const x of servers) x.send({ type: 'phase-start' } satisfies ServerCommand);
      recorder.measuring = true;
      // Open loop: a flow starts on schedule whether or not the earlier ones have finished.
      const interval = 3_600_000 / perHour;
      const offered = Math.floor(durationMs / interval);
      const running: Promise<void>[] = [];
      const started = performance.now();
      for (let n = 0; n < offered; n++) {
        await sleep(started + n * interval - performance.now());
        if (inFlight >= MAX_IN_FLIGHT) {
          skipped++;
          continue;
        }
        const number = flowNumber++;
        running.push(one(workers[number % workers.length]!, number));
      }
      await Promise.all(running);
      const elapsedMs = Math.max(offered * interval, lastDone - started);
      recorder.measuring = false;
      const statsPromises = servers.map((x) =>
        nextMessage<Extract<ServerMessage, { type: 'phase' }>>(x, 'phase', 10_000),
      );
      for (const x of servers) x.send({ type: 'phase-end' } satisfies ServerCommand);
      const serverStats = combined((await Promise.all(statsPromises)).map((m) => m.stats));
      const seqAfter = await ledgerSeq(perProcess);
      const all = [...recorder.all].sort((a, b) => a - b);
      const sortedFlows = [...flowTimes].sort((a, b) => a - b);
      const p99 = percentile(all, 99);
      return {
        offeredPerHour: perHour,
        offered,
        flows,
        failedFlows,
        skipped,
        elapsedMs,
        flowsPerHour: (flows / elapsedMs) * 3_600_000,
        requests: all.length,
        errors: recorder.errors,
        statuses: { ...recorder.statuses },
        p50: percentile(all, 50),
        p95: percentile(all, 95),
        p99,
        max: all[all.length - 1] ?? NaN,
        routes: [...recorder.byRoute.entries()].map(([route, values]) => {
          const sorted = [...values].sort((a, b) => a - b);
          return {
            route,
            count: sorted.length,
            p50: percentile(sorted, 50),
            p95: percentile(sorted, 95),
            p99: percentile(sorted, 99),
            max: sorted[sorted.length - 1]!,
          };
        }),
        flowP50: percentile(sortedFlows, 50),
        flowP99: percentile(sortedFlows, 99),
        maxInFlight,
        answersPerFlow: flows > 0 ? answers / flows : NaN,
        eventsPerFlow: flows > 0 ? (seqAfter - seqBefore) / flows : NaN,
        server: serverStats,
        firstError,
        sustained:
          flows === offered &&
          failedFlows === 0 &&
          p99 < TARGET_P99_MS &&
          (flows / elapsedMs) * 3_600_000 >= 0.95 * perHour,
      };
    };

    // The target rate, then faster by half each time, until a step is not sustained.
    const steps: StepResult[] = [];
    for (let i = 0, rate = TARGET_FLOWS_PER_HOUR; i < plan.maxSteps; i++, rate = Math.round(rate * 1.5)) {
      note(
        `flow bench (${label}): ${formatRate(rate)} flows/hour (one every ${(3_600_000 / rate).toFixed(0)} ms) ` +
          `for ${plan.stepMs / 1000} s`,
      );
      const result = await step(rate, plan.stepMs);
      steps.push(result);
      note(
        `flow bench (${label}):   ${result.flows}/${result.offered} flows, p99 ${ms(result.p99)} ms, ` +
          `server CPU ${Math.round((result.server.cpuMs / result.server.wallMs) * 100)} %` +
          `${result.sustained ? '' : ' (not sustained: stop)'}`,
      );
      if (!result.sustained) break;
    }

    for (const w of workers) {
      w.adviser.close();
      w.clinician.close();
    }
    agent.destroy();
    for (const x of servers) {
      x.send({ type: 'stop' } satisfies ServerCommand);
      await nextMessage<Extract<ServerMessage, { type: 'stopped' }>>(x, 'stopped', 60_000);
      await new Promise<void>((resolve) =>
        x.exitCode !== null ? resolve() : x.once('exit', () => resolve()),
      );
      children.delete(x);
    }
    const atTarget = steps[0]!;
    const sustained = steps.filter((x) => x.sustained);
    return {
      store,
      processes,
      steps,
      atTarget,
      best: sustained[sustained.length - 1] ?? atTarget,
      failed: steps.find((x) => !x.sustained) ?? null,
    };
  } finally {
    await database?.drop().catch((error: unknown) => note(`dropping the database failed: ${String(error)}`));
    for (const dir of dirs) dir.remove();
  }
}

function labelOf(r: StoreResult): string {
  return r.processes > 1 ? `${r.store} ×${r.processes} hub processes` : r.store;
}

function stepReport(store: string, r: StepResult): string {
  const lines: string[] = [];
  lines.push(
    `${store} at ${formatRate(r.offeredPerHour)} flows/hour offered: ${r.flows.toLocaleString('en-GB')} of ` +
      `${r.offered.toLocaleString('en-GB')} flows completed in ${(r.elapsedMs / 1000).toFixed(1)} s = ` +
      `${formatRate(r.flowsPerHour)} flows/hour; ${r.failedFlows} failed, ${r.skipped} skipped; ` +
      `${r.requests.toLocaleString('en-GB')} requests, ${r.errors} error answers` +
      (r.errors > 0 ? ` ${JSON.stringify(r.statuses)}` : ''),
  );
  lines.push(
    `  all requests p50 / p95 / p99 / max: ${ms(r.p50)} / ${ms(r.p95)} / ${ms(r.p99)} / ${ms(r.max)} ms; ` +
      `a whole flow p50 / p99: ${ms(r.flowP50)} / ${ms(r.flowP99)} ms; at most ${r.maxInFlight} in flight; ` +
      `${r.answersPerFlow.toFixed(1)} triage answers a flow`,
  );
  lines.push(
    `  server: CPU ${Math.round((r.server.cpuMs / r.server.wallMs) * 100)} % of one core ` +
      `(${((r.server.cpuMs / Math.max(1, r.requests)) * 1000).toFixed(0)} µs a request), event-loop delay ` +
      `p50 / p99 / max ${ms(r.server.eldP50Ms)} / ${ms(r.server.eldP99Ms)} / ${ms(r.server.eldMaxMs)} ms; ` +
      `${r.eventsPerFlow.toFixed(1)} ledger events a flow (case events, audit, checkpoints)`,
  );
  if (r.firstError) lines.push(`  first error: ${r.firstError}`);
  lines.push('');
  lines.push(
    formatTable(
      ['route', 'requests', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
      r.routes.map((x) => [x.route, String(x.count), ms(x.p50), ms(x.p95), ms(x.p99), ms(x.max)]),
    ),
  );
  return lines.join('\n');
}

function stepsTable(r: StoreResult): string {
  return formatTable(
    [
      `${labelOf(r)}: offered/hour`,
      'completed/hour',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'max ms',
      'server CPU',
      'sustained',
    ],
    r.steps.map((x) => [
      formatRate(x.offeredPerHour),
      formatRate(x.flowsPerHour),
      ms(x.p50),
      ms(x.p95),
      ms(x.p99),
      ms(x.max),
      `${Math.round((x.server.cpuMs / x.server.wallMs) * 100)} %`,
      x.sustained ? 'yes' : 'no',
    ]),
  );
}

/**
 * Met: the step at the target rate was sustained and completed (to within 1%) the target's flows.
 * The text's verdict and the JSON line's `target_met` both say this (they once used two rules and
 * could disagree on a run that completed 96% of the target's flows).
 */
function targetMet(r: StoreResult): boolean {
  return r.atTarget.sustained && r.atTarget.flowsPerHour >= TARGET_FLOWS_PER_HOUR * 0.99;
}

function verdict(r: StoreResult): string {
  const met = targetMet(r);
  return (
    `${labelOf(r)}: target ≥ ${formatRate(TARGET_FLOWS_PER_HOUR)} flows/hour with p99 < ${TARGET_P99_MS} ms: ` +
    `${met ? 'met' : '**not met**'} (at ${formatRate(r.atTarget.offeredPerHour)}/hour p99 ${ms(r.atTarget.p99)} ms; ` +
    `fastest sustained ${formatRate(r.best.flowsPerHour)} flows/hour with p99 ${ms(r.best.p99)} ms)`
  );
}

/** `--hub-processes N`, taken out of the arguments (the common parser knows the rest). */
function takeHubProcesses(): number | null {
  const i = process.argv.indexOf('--hub-processes');
  if (i < 0) return null;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 8)
    throw new Error('--hub-processes takes a whole number of hub processes from 1 to 8');
  process.argv.splice(i, 2);
  return n;
}

async function main(): Promise<void> {
  const hubProcesses = takeHubProcesses();
  const args = parseBenchArgsWithProfile('the server process profile');
  const plan = args.quick ? QUICK : FULL;
  if (hubProcesses !== null && args.only === 'sqlite')
    throw new Error('--hub-processes is for PostgreSQL: several processes share one database');
  const stores: StoreKind[] =
    hubProcesses !== null ? ['postgres'] : args.only ? [args.only] : ['sqlite', 'postgres'];
  // One process first, then N over one database: the same flows, the same rates.
  const counts = hubProcesses === null ? [1] : [...new Set([1, hubProcesses])];
  const machine = machineInfo();
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const children = new Set<ChildProcess>();
  let pg: BenchPostgres | null = null;
  onExit(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
    pg?.stop();
  });
  const deadline = setTimeout(
    () => {
      note('flow bench: overall time limit reached, stopping');
      process.exit(2);
    },
    stores.length * counts.length * (plan.maxSteps * (plan.stepMs + 30_000) + 180_000),
  );
  deadline.unref();

  const plans = await triagePlans(400);
  const results: StoreResult[] = [];
  for (const store of stores) {
    if (store === 'postgres') {
      note('flow bench: starting PostgreSQL');
      pg = await startBenchPostgres();
    }
    for (const n of counts) results.push(await benchStore(store, plan, plans, pg, children, args.cpuProf, n));
  }
  pg?.stop();

  console.log(`Flow benchmark${args.quick ? ' (--quick)' : ''}, ${startedAt.toISOString()}`);
  console.log(`machine: ${describeMachine(machine)}`);
  console.log(
    `load average at start (1/5/15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(' / ')} ` +
      '(the client runs on the same cores as the server; other work competes too)',
  );
  console.log(
    `one node in a child process on 127.0.0.1 (system clock, request logs at info to a file, checkpoints every ` +
      `${CONFIG_DEFAULTS.checkpointEvery} events and ${CONFIG_DEFAULTS.checkpointIntervalSeconds} s); ` +
      `${USERS} advisers and ${USERS} clinicians signed in; ${plan.backlog} cases waiting in the queue; ` +
      `${plan.warmupFlows} warm-up flows; then flows started at a steady rate (open loop) for ${plan.stepMs / 1000} s ` +
      `per step, from ${formatRate(TARGET_FLOWS_PER_HOUR)}/hour up by half a step until p99 ≥ ${TARGET_P99_MS} ms or the node falls behind`,
  );
  console.log(
    'a flow: call → triage (seeded walks of the sample pack to a speak-to-primary-care disposition) → queue → claim → ' +
      'call-back → consultation with observations → outcome (advice and close)',
  );
  for (const r of results) {
    console.log('');
    console.log(stepsTable(r));
    console.log('');
    console.log(stepReport(labelOf(r), r.atTarget));
    for (const x of [r.best, r.failed])
      if (x && x !== r.atTarget) {
        console.log('');
        console.log(stepReport(labelOf(r), x));
      }
  }
  console.log('');
  for (const r of results) console.log(verdict(r));
  console.log(`total ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)} s`);
  const figures = (r: StoreResult | undefined) =>
    r
      ? {
          flows_per_hour: round(r.best.flowsPerHour),
          p99_ms: round(r.best.p99, 2),
          p50_ms: round(r.best.p50, 2),
          p95_ms: round(r.best.p95, 2),
          target_rate_p99_ms: round(r.atTarget.p99, 2),
          target_rate_p50_ms: round(r.atTarget.p50, 2),
          target_met: targetMet(r),
          failed_flows: r.steps.reduce((sum, x) => sum + x.failedFlows, 0),
          errors: r.steps.reduce((sum, x) => sum + x.errors, 0),
          events_per_flow: round(r.atTarget.eventsPerFlow, 1),
          server_cpu_at_target: round(r.atTarget.server.cpuMs / r.atTarget.server.wallMs, 2),
          steps: r.steps.map((x) => ({
            offered: x.offeredPerHour,
            flows_per_hour: round(x.flowsPerHour),
            p99_ms: round(x.p99, 2),
            sustained: x.sustained,
          })),
        }
      : null;
  console.log(
    JSON.stringify({
      bench: 'flow',
      sqlite: figures(results.find((r) => r.store === 'sqlite')),
      postgres: figures(results.find((r) => r.store === 'postgres' && r.processes === 1)),
      ...(hubProcesses !== null
        ? {
            hub_processes: Object.fromEntries(results.map((r) => [String(r.processes), figures(r)] as const)),
          }
        : {}),
      quick: args.quick,
      load_1m: round(loadAtStart[0] ?? 0, 2),
      machine: { cpu: machine.cpu, cores: machine.cores, node: machine.node },
    }),
  );
}

if (process.env[ROLE_ENV] === 'server') {
  await runServer(JSON.parse(process.env[CONFIG_ENV] ?? '{}') as ServerConfig);
} else {
  await main();
}
