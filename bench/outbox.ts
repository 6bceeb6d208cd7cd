/**
 * Outbox benchmark (`npm run bench:outbox`, `-- --quick`, `-- --only sqlite|postgres`).
 *
 * For each store (embedded SQLite in WAL mode with synchronous=FULL; PostgreSQL with its default
 * durability, or the server at HOLDFAST_TEST_DATABASE_URL) a real node (system clock, the real HTTP
 * application listening on loopback, request logs at `info` to a file) runs in this process beside
 * the real delivery worker with its default options (16 messages at once), as `holdfast serve` runs
 * it. The receiver is the real test ambulance service, `holdfast receiver --kind ambulance --store
 * FILE`, in a process of its own with no faults: it validates every message with @medplum/core,
 * creates its resources and fsyncs its record before it answers.
 *
 * 1. Throughput. Ambulance request Bundles (the real mapping, a triage path of eight questions, no
 *    patient) are queued in the ledger as `message.queued` events, 100 to a commit; then, timed from
 *    the worker's start until every one of them is `accepted` in the messages projection: lease
 *    (one append each), POST, and the receiver's answer recorded (one append each). Beside it, in the
 *    same rounds, the same Bundles (their bytes as the worker sent them, with fresh ids so the
 *    receiver holds each again) are POSTed bare with the same headers, through node:http's global
 *    keep-alive agent as the transport uses, 16 at once: raw_post_per_s. The two alternate over
 *    several rounds so machine drift touches both alike. ratio = messages_per_s / raw_post_per_s.
 * 2. Latency. An adviser signed in over HTTP (password + TOTP) triages calls to an ambulance
 *    disposition (seeded walks of the sample pack), one at a time; for each, the time from sending
 *    POST …/disposition/confirm until the case's ambulance request is `accepted` in the projection
 *    the adviser's screen reads (checked after every commit the ledger announces, as the worker
 *    itself is woken). Then GET …/ambulance-handover must say `accepted` with the incident reference.
 *
 * Progress goes to stderr; stdout gets the report and, as its last line, one JSON object whose
 * headline figures are the first store's (SQLite unless `--only postgres`); `by_store` has each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { request as httpRequest } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import pino from 'pino';

import { walk, type TriageAnswer } from '@holdfast/core/triage/engine';
import { simulateAnswers } from '@holdfast/core/triage/simulation';
import { AccountsService } from '../packages/server/src/accounts/service.ts';
import { SessionStore } from '../packages/server/src/auth/sessions.ts';
import { freePort } from '../packages/server/src/drill/postgres.ts';
import { ambulanceRequestBundle } from '../packages/server/src/handover/ambulance-bundle.ts';
import { buildHoldfastApp } from '../packages/server/src/http/holdfast-app.ts';
import { createLogger } from '../packages/server/src/http/logger.ts';
import { DEFAULT_DELIVERY_OPTIONS, DeliveryWorker } from '../packages/server/src/messaging/delivery.ts';
import { messagingDb, statusOf } from '../packages/server/src/messaging/projection.ts';
import { HttpTransport } from '../packages/server/src/messaging/transport-http.ts';
import { initNode, type HoldfastNode } from '../packages/server/src/node/node.ts';
import { ApiSession, MemoryTotpSecrets } from '../packages/server/src/simulate/api-client.ts';
import { deriveSeed, mulberry32 } from '../packages/server/src/simulate/simulator.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../packages/server/src/triage/packs.ts';
import {
  describeMachine,
  formatRate,
  machineInfo,
  note,
  onExit,
  parseBenchArgsWithProfile,
  perSecond,
  round,
  startBenchPostgres,
  tempDir,
  type BenchPostgres,
} from './support.ts';

type StoreKind = 'sqlite' | 'postgres';

const TENANT = 'benchshire';
const ADVISER = `adviser@${TENANT}`;
const PASSWORD = 'correct horse battery staple';
const HOLDFAST_BIN = fileURLToPath(new URL('../packages/server/bin/holdfast.mjs', import.meta.url));
const TARGET_RATIO = 0.5;
const TARGET_ACCEPT_P99_MS = 1_000;

interface Plan {
  /** Messages through the outbox (and as many raw POSTs), over `rounds` alternating rounds. */
  messages: number;
  rounds: number;
  /** Messages (and raw POSTs) sent first, not counted: connections, JIT, the receiver's validator. */
  warmup: number;
  /** Ambulance dispositions timed one after another. */
  dispositions: number;
}
const FULL: Plan = { messages: 2_000, rounds: 4, warmup: 100, dispositions: 200 };
const QUICK: Plan = { messages: 300, rounds: 2, warmup: 50, dispositions: 30 };

/** Eight questions and answers: the length of a typical path to an ambulance disposition. */
const TRIAGE_PATH = [
  ['Is the person conscious?', 'Yes'],
  ['Are they breathing normally?', 'No, struggling to breathe'],
  ['Is there chest pain?', 'Yes, heavy, spreading to the left arm'],
  ['When did it start?', 'Less than an hour ago'],
  ['Are they sweating or clammy?', 'Yes'],
  ['Have they had a heart attack before?', 'No'],
  ['Are they on blood thinners?', 'Not known'],
  ['Can they speak in full sentences?', 'No'],
].map(([question, answer]) => ({ question: question!, answer: answer! }));

// ---------------------------------------------------------------------------------------------
// The receiver: `holdfast receiver` in its own process.

interface Receiver {
  url: string;
  child: ChildProcess;
  held(): Promise<{ count: number; posts: number }>;
  stop(): Promise<void>;
}

async function startReceiver(storeFile: string, children: Set<ChildProcess>): Promise<Receiver> {
  const port = await freePort();
  // Nothing HOLDFAST_* from this environment: the receiver needs no node.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOLDFAST_')));
  const child = spawn(
    process.execPath,
    [
      HOLDFAST_BIN,
      'receiver',
      '--kind',
      'ambulance',
      '--store',
      storeFile,
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
    ],
    { env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the receiver exited (${child.exitCode}): ${output}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`the receiver did not start: ${output}`);
    await sleep(100);
  }
  return {
    url,
    child,
    async held() {
      const view = (await (await fetch(`${url}/received`)).json()) as { count: number; posts: number };
      return { count: view.count, posts: view.posts };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux); NaN elsewhere. */
function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return NaN;
  }
}
/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS_PER_S = 100;

/** The PostgreSQL server's processes (its postmaster and every child of it), found from a backend. */
async function postgresPids(node: HoldfastNode): Promise<() => number[]> {
  if (node.store.dialect !== 'postgres') return () => [];
  const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(node.store.db);
  const parentOf = (pid: number | string): number => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return NaN;
    }
  };
  const postmaster = parentOf(rows[0]!.pid);
  if (!Number.isFinite(postmaster)) return () => [];
  return () => [
    postmaster,
    ...readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d) && parentOf(d) === postmaster)
      .map(Number),
  ];
}

function ownCpuMs(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Part 1: the outbox against raw POSTs.

interface ThroughputResult {
  messages: number;
  outboxMs: number;
  rawMs: number;
  queueMs: number;
  /** Commits (each one durable transaction) the worker made while delivering, per message. */
  commitsPerMessage: number;
  /** Ledger events per delivered message (lease, sent, delivered, accepted). */
  eventsPerMessage: number;
  bodyBytes: number;
  rawRejected: number;
  /** CPU ms per message: this process (node and worker, or the raw client) and the receiver's. */
  outboxNodeCpuMs: number;
  outboxReceiverCpuMs: number;
  /**
   * Share of the outbox's wall time this process's event loop was busy (CPU, and synchronous waits
   * such as better-sqlite3's fsync at COMMIT): what is left of 1 is time it waited for answers.
   */
  outboxLoopBusy: number;
  /** PostgreSQL's processes (its backends, WAL writer, checkpointer), while the outbox delivered. */
  outboxPostgresCpuMs: number;
  rawClientCpuMs: number;
  rawReceiverCpuMs: number;
  /** What the receiver holds at the end (warm-up included), and the POSTs it was sent. */
  receiverHeld: number;
  receiverPosts: number;
}

async function countAccepted(node: HoldfastNode): Promise<number> {
  const row = await node.store.withTenant(TENANT, (trx) =>
    messagingDb(trx)
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('tenant', '=', TENANT)
      .where('state', '=', 'accepted')
      .executeTakeFirstOrThrow(),
  );
  return Number(row.n);
}

async function ledgerSeqCount(node: HoldfastNode): Promise<number> {
  const row = await node.store.withTenant(TENANT, (trx) =>
    trx
      .selectFrom('ledger_events')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('tenant', '=', TENANT)
      .executeTakeFirstOrThrow(),
  );
  return Number(row.n);
}

/** Queues `count` ambulance requests, 100 to a commit; returns their ids. */
async function queueMessages(
  node: HoldfastNode,
  messaging: Awaited<ReturnType<typeof buildHoldfastApp>>['messaging'],
  receiverUrl: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < count; from += 100) {
    const drafts = [];
    for (let i = from; i < Math.min(count, from + 100); i++) {
      const messageId = randomUUID();
      ids.push(messageId);
      const caseId = randomUUID();
      drafts.push(
        messaging.queuedDraft(TENANT, 'system:bench', {
          messageId,
          kind: 'ambulance_request',
          endpointId: 'ambulance',
          caseId,
          siteId: null,
          bundle: ambulanceRequestBundle({
            messageId,
            caseId,
            sentAtIso: new Date().toISOString(),
            source: { node: node.ledger.node, tenant: TENANT },
            destination: { name: 'North Ambulance Service', endpoint: receiverUrl, odsCode: 'RX9' },
            category: 2,
            dxCode: 'SAMPLE-AMB-C2',
            dispositionLabel: 'Emergency ambulance response, category 2 (emergency)',
            presentingComplaint: 'Chest pain and breathlessness',
            location: 'At home',
            caller: {
              name: 'Bench Caller',
              relationship: 'self',
              callbackNumber: `07700 900${String(i % 1000).padStart(3, '0')}`,
            },
            triagePath: TRIAGE_PATH,
            specialNotes: [],
            patient: null,
          }),
          summary: 'Ambulance request, category 2',
          // Nothing may fail by its deadline here: every message must get through.
          failAfterMs: 24 * 3_600_000,
        }),
      );
    }
    await node.ledger.append(drafts);
  }
  return ids;
}

/** The stored Bundles of these messages, as the worker sends them. */
async function storedBodies(node: HoldfastNode, ids: readonly string[]): Promise<Map<string, string>> {
  const bodies = new Map<string, string>();
  for (let from = 0; from < ids.length; from += 200) {
    const rows = await node.store.withTenant(TENANT, (trx) =>
      messagingDb(trx)
        .selectFrom('messages')
        .select(['message_id', 'bundle', 'status'])
        .where('tenant', '=', TENANT)
        .where('message_id', 'in', ids.slice(from, from + 200))
        .execute(),
    );
    for (const r of rows) {
      const status = statusOf(r);
      if (status.invalid) throw new Error(`message ${r.message_id} was refused by the outgoing validator`);
      bodies.set(r.message_id, r.bundle);
    }
  }
  return bodies;
}

/** `-- --cpu-prof <dir>`: a V8 CPU profile of this process for each measured outbox round. */
let cpuProfileDir: string | null = null;
let cpuProfiles = 0;

async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  if (!cpuProfileDir) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(cpuProfileDir, `${name}-${++cpuProfiles}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/** Runs the worker from its start until `target` messages of the tenant are accepted. */
async function deliverAll(node: HoldfastNode, worker: DeliveryWorker, target: number): Promise<number> {
  const started = performance.now();
  worker.start();
  const until = Date.now() + 600_000;
  // A count every 5 ms: a cheap indexed read, against rounds of seconds.
  while ((await countAccepted(node)) < target) {
    if (Date.now() > until) throw new Error(`not every message was accepted within 10 minutes`);
    await sleep(5);
  }
  const elapsed = performance.now() - started;
  await worker.stop();
  return elapsed;
}

/**
 * The same bodies POSTed bare, `concurrency` at once, as the transport sends them: same headers,
 * node:http's global keep-alive agent. Returns the time taken and how many were not accepted.
 */
async function rawPosts(
  url: string,
  bodies: readonly string[],
  concurrency: number,
): Promise<{ ms: number; notAccepted: number }> {
  const target = new URL(url);
  let notAccepted = 0;
  const post = (messageId: string, body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        target,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/fhir+json',
            accept: 'application/fhir+json',
            'idempotency-key': messageId,
            'content-length': Buffer.byteLength(body),
          },
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            // The receiver's business answer, read as bare as can be: accepted or not.
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200 || !text.includes('"code":"ok"')) notAccepted++;
            resolve();
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  // Fresh ids made before the clock starts: the body is the same bytes but for its id.
  const fresh = bodies.map((body) => {
    // The idempotency key is the MessageHeader's id (the receiver checks they agree).
    const oldId = (JSON.parse(body) as { entry: { resource: { id: string } }[] }).entry[0]!.resource.id;
    const newId = randomUUID();
    return { id: newId, body: body.replaceAll(oldId, newId) };
  });
  const started = performance.now();
  const queue = [...fresh];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await post(next.id, next.body);
    }),
  );
  return { ms: performance.now() - started, notAccepted };
}

async function throughput(
  node: HoldfastNode,
  messaging: Awaited<ReturnType<typeof buildHoldfastApp>>['messaging'],
  receiver: Receiver,
  plan: Plan,
  store: StoreKind,
): Promise<ThroughputResult> {
  const endpointUrl = `${receiver.url}/messages`;
  const worker = new DeliveryWorker(
    { store: node.store, ledger: node.ledger, clock: node.clock, tenant: TENANT },
    { http: new HttpTransport() },
  );
  let commits = 0;
  let counting = false;
  const unsubscribe = node.ledger.subscribe(() => {
    if (counting) commits++;
  });
  let accepted = await countAccepted(node);
  const pgPids = await postgresPids(node);
  const result: ThroughputResult = {
    messages: 0,
    outboxMs: 0,
    rawMs: 0,
    queueMs: 0,
    commitsPerMessage: 0,
    eventsPerMessage: 0,
    bodyBytes: 0,
    rawRejected: 0,
    receiverHeld: 0,
    receiverPosts: 0,
    outboxNodeCpuMs: 0,
    outboxReceiverCpuMs: 0,
    outboxPostgresCpuMs: 0,
    outboxLoopBusy: 0,
    rawClientCpuMs: 0,
    rawReceiverCpuMs: 0,
  };
  let events = 0;
  let commitsSum = 0;
  const perRound = Math.ceil(plan.messages / plan.rounds);
  for (let r = -1; r < plan.rounds; r++) {
    const warmup = r < 0;
    const count = warmup ? plan.warmup : Math.min(perRound, plan.messages - r * perRound);
    const queueStarted = performance.now();
    const ids = await queueMessages(node, messaging, receiver.url, count);
    const queueMs = performance.now() - queueStarted;
    const bodies = [...(await storedBodies(node, ids)).values()];
    const runOutbox = async () => {
      const seqBefore = await ledgerSeqCount(node);
      counting = true;
      const before = commits;
      // Summed over the processes there are at the end (backends opened during the round included).
      const pgCpu = (pids: number[]) => pids.reduce((n, pid) => n + (processCpuMs(pid) || 0), 0);
      const pgBefore = new Map(pgPids().map((pid) => [pid, processCpuMs(pid) || 0]));
      const cpu = [ownCpuMs(), processCpuMs(receiver.child.pid)];
      const elu = performance.eventLoopUtilization();
      const ms = await profiled(`outbox-${store}`, () => deliverAll(node, worker, accepted + count));
      const loopBusyMs = performance.eventLoopUtilization(elu).active;
      const nodeCpu = ownCpuMs() - cpu[0]!;
      const receiverCpu = processCpuMs(receiver.child.pid) - cpu[1]!;
      const pidsAfter = pgPids();
      const postgresCpu = pgCpu(pidsAfter) - pidsAfter.reduce((n, pid) => n + (pgBefore.get(pid) ?? 0), 0);
      counting = false;
      accepted += count;
      return {
        ms,
        commits: commits - before,
        events: (await ledgerSeqCount(node)) - seqBefore,
        nodeCpu,
        receiverCpu,
        postgresCpu,
        loopBusyMs,
      };
    };
    const runRaw = async () => {
      const cpu = [ownCpuMs(), processCpuMs(receiver.child.pid)];
      const r = await rawPosts(endpointUrl, bodies, worker.options.concurrency);
      return {
        ...r,
        clientCpu: ownCpuMs() - cpu[0]!,
        receiverCpu: processCpuMs(receiver.child.pid) - cpu[1]!,
      };
    };
    // Alternate which goes first, so that whatever drifts over the run touches both alike.
    let outbox: Awaited<ReturnType<typeof runOutbox>>;
    let raw: Awaited<ReturnType<typeof runRaw>>;
    if (r % 2 === 0) {
      outbox = await runOutbox();
      raw = await runRaw();
    } else {
      raw = await runRaw();
      outbox = await runOutbox();
    }
    note(
      `outbox bench (${store}): ${warmup ? 'warm-up' : `round ${r + 1}/${plan.rounds}`}: ${count} messages, ` +
        `outbox ${formatRate(perSecond(count, outbox.ms))}/s, raw ${formatRate(perSecond(count, raw.ms))}/s, ` +
        `${outbox.commits} commits`,
    );
    if (warmup) continue;
    result.messages += count;
    result.outboxMs += outbox.ms;
    result.rawMs += raw.ms;
    result.queueMs += queueMs;
    result.rawRejected += raw.notAccepted;
    if (raw.notAccepted > 0)
      throw new Error(`${raw.notAccepted} raw POSTs were not accepted: the baseline would not be comparable`);
    commitsSum += outbox.commits;
    result.outboxNodeCpuMs += outbox.nodeCpu;
    result.outboxReceiverCpuMs += outbox.receiverCpu;
    result.outboxPostgresCpuMs += outbox.postgresCpu;
    result.outboxLoopBusy += outbox.loopBusyMs;
    result.rawClientCpuMs += raw.clientCpu;
    result.rawReceiverCpuMs += raw.receiverCpu;
    events += outbox.events;
    result.bodyBytes = Math.round(bodies.reduce((n, b) => n + Buffer.byteLength(b), 0) / bodies.length);
  }
  unsubscribe();
  result.commitsPerMessage = commitsSum / result.messages;
  result.eventsPerMessage = events / result.messages;
  result.outboxNodeCpuMs /= result.messages;
  result.outboxReceiverCpuMs /= result.messages;
  result.outboxPostgresCpuMs /= result.messages;
  result.outboxLoopBusy /= result.outboxMs;
  result.rawClientCpuMs /= result.messages;
  result.rawReceiverCpuMs /= result.messages;
  // Every message the outbox delivered and every raw POST is held once: nothing lost, nothing sent twice.
  const held = await receiver.held();
  result.receiverHeld = held.count;
  result.receiverPosts = held.posts;
  const expected = 2 * (plan.warmup + plan.messages);
  if (held.count !== expected)
    throw new Error(`the receiver holds ${held.count} messages, not the ${expected} sent`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Part 2: from the adviser's confirmation to the ambulance service's acceptance.

interface TriagePlan {
  pathwayId: string;
  answers: TriageAnswer[];
}

/** Seeded walks of the shipped pack that end at an ambulance disposition. */
async function ambulancePlans(count: number): Promise<TriagePlan[]> {
  const loaded = await requireProtocolPack(SAMPLE_PACK_DIR);
  const pathways = loaded.pack.manifest.pathways.map((p) => p.id);
  const plans: TriagePlan[] = [];
  for (let i = 0; plans.length < count; i++) {
    if (i > count * 500) throw new Error('the pack hardly ever reaches an ambulance disposition');
    const random = mulberry32(deriveSeed(20_261_204, 10, i));
    const pathwayId = pathways[Math.floor(random() * pathways.length)]!;
    const protocol = loaded.protocols.get(pathwayId)!;
    const answers = simulateAnswers(protocol, random);
    const result = walk(protocol, answers);
    if (result.status === 'disposition' && result.disposition.kind === 'ambulance')
      plans.push({ pathwayId, answers });
  }
  return plans;
}

interface LatencyResult {
  dispositions: number;
  /** From sending the confirm to the request accepted in the projection, ms, in order. */
  acceptMs: number[];
  /** The confirm request's own latency (its commit queues the message). */
  confirmMs: number[];
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function latency(
  node: HoldfastNode,
  baseUrl: URL,
  siteId: string,
  plan: Plan,
  store: StoreKind,
): Promise<LatencyResult> {
  const worker = new DeliveryWorker(
    { store: node.store, ledger: node.ledger, clock: node.clock, tenant: TENANT },
    { http: new HttpTransport() },
  );
  const adviser = new ApiSession(
    baseUrl,
    { username: ADVISER, password: PASSWORD },
    { secrets: new MemoryTotpSecrets() },
  );
  await adviser.signIn();
  const plans = await ambulancePlans(Math.min(plan.dispositions, 50));

  /** The state of the case's ambulance request in the projection the adviser's screen reads. */
  const requestState = async (caseId: string): Promise<string | null> => {
    const row = await node.store.withTenant(TENANT, (trx) =>
      messagingDb(trx)
        .selectFrom('messages')
        .select('state')
        .where('tenant', '=', TENANT)
        .where('case_id', '=', caseId)
        .where('kind', '=', 'ambulance_request')
        .executeTakeFirst(),
    );
    return row?.state ?? null;
  };
  // Woken by every commit, as the worker is; one read at a time, and a slow poll as a safety net.
  let watching: { caseId: string; resolve: (at: number) => void } | null = null;
  let checking = false;
  let again = false;
  const check = async (): Promise<void> => {
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      do {
        again = false;
        const w = watching;
        if (!w) break;
        if ((await requestState(w.caseId)) === 'accepted') {
          watching = null;
          w.resolve(performance.now());
        }
      } while (again);
    } finally {
      checking = false;
    }
  };
  const unsubscribe = node.ledger.subscribe((tenants) => {
    if (tenants.has(TENANT) && watching) void check();
  });
  const safetyNet = setInterval(() => void check(), 50);
  worker.start();

  const result: LatencyResult = { dispositions: 0, acceptMs: [], confirmMs: [] };
  try {
    for (let n = 0; n < plan.dispositions; n++) {
      const p = plans[n % plans.length]!;
      const { json: opened } = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
        siteId,
        caller: {
          name: 'Bench Caller',
          relationship: 'self',
          callbackNumber: `0113 496 0${String(n % 1000).padStart(3, '0')}`,
          callbackNumberReadBack: true,
        },
        location: 'At home',
        presentingComplaint: 'Benchmark call',
      });
      const caseId = opened.caseId;
      await adviser.call('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId: p.pathwayId });
      let last: { status: string; disposition?: { kind: string; dxCode: string } } = { status: 'question' };
      for (const a of p.answers)
        last = (await adviser.call<typeof last>('POST', `/api/v1/cases/${caseId}/triage/answers`, a)).json;
      if (last.status !== 'disposition' || last.disposition?.kind !== 'ambulance')
        throw new Error(`case ${caseId}: triage ended at ${last.disposition?.kind ?? last.status}`);
      // Let the worker's passes woken by the triage commits finish: the clock starts at the confirm.
      await sleep(20);

      const accepted = new Promise<number>((resolve) => (watching = { caseId, resolve }));
      const started = performance.now();
      await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
        dxCode: last.disposition.dxCode,
      });
      const confirmed = performance.now();
      void check();
      const timeout = sleep(30_000).then(() => NaN);
      const acceptedAt = await Promise.race([accepted, timeout]);
      if (Number.isNaN(acceptedAt)) throw new Error(`case ${caseId}: not accepted within 30 s`);
      result.acceptMs.push(acceptedAt - started);
      result.confirmMs.push(confirmed - started);
      result.dispositions++;

      // What the adviser's screen reads: accepted, with the ambulance service's incident reference.
      const { json: handover } = await adviser.call<{ state: string; reference: string | null }>(
        'GET',
        `/api/v1/cases/${caseId}/ambulance-handover`,
      );
      if (handover.state !== 'accepted' || !handover.reference?.startsWith('INC-'))
        throw new Error(`case ${caseId}: the screen says ${handover.state} (${handover.reference})`);
      if ((n + 1) % 50 === 0) note(`outbox bench (${store}): ${n + 1} dispositions accepted`);
    }
  } finally {
    clearInterval(safetyNet);
    unsubscribe();
    await worker.stop();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

interface StoreResult {
  store: StoreKind;
  throughput: ThroughputResult;
  latency: LatencyResult;
  messagesPerS: number;
  rawPostPerS: number;
  ratio: number;
  acceptP50: number;
  acceptP99: number;
  acceptMax: number;
  confirmP50: number;
  confirmP99: number;
}

async function benchStore(
  store: StoreKind,
  plan: Plan,
  pg: BenchPostgres | null,
  children: Set<ChildProcess>,
): Promise<StoreResult> {
  const dir = tempDir(`holdfast-bench-outbox-${store}-`);
  const database = store === 'postgres' ? await pg!.createDatabase() : null;
  let receiver: Receiver | null = null;
  let node: HoldfastNode | null = null;
  let closeApp: (() => Promise<unknown>) | null = null;
  try {
    note(`outbox bench (${store}): starting the receiver and a node in ${dir.path}`);
    receiver = await startReceiver(join(dir.path, 'receiver.ndjson'), children);
    node = await initNode(
      {
        store,
        dataDir: join(dir.path, 'node'),
        ...(database ? { databaseUrl: database.url } : {}),
        checkpointEvery: 100,
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
    await accounts.create(
      TENANT,
      {
        username: ADVISER,
        displayName: 'Bench adviser',
        roles: ['health_adviser'],
        siteIds: [siteId],
        password: PASSWORD,
      },
      'system:bench',
    );
    const logger = createLogger(
      'info',
      pino.destination({ dest: join(dir.path, 'server.log'), sync: false }),
    );
    const { app, messaging } = await buildHoldfastApp(node, { logger, webDist: false });
    closeApp = () => app.close();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (!address || typeof address === 'string') throw new Error('the node is not listening on a port');
    const baseUrl = new URL(`http://127.0.0.1:${address.port}`);
    await messaging.setEndpoint(TENANT, 'system:bench', {
      endpointId: 'ambulance',
      name: 'North Ambulance Service',
      kinds: ['ambulance_request'],
      odsCode: 'RX9',
      transport: { type: 'http', url: `${receiver.url}/messages`, clientCertificate: null },
      phone: '0300 000 0000',
      acceptWithinSeconds: 30,
    });

    const t = await throughput(node, messaging, receiver, plan, store);
    note(`outbox bench (${store}): ${plan.dispositions} ambulance dispositions, one at a time`);
    const l = await latency(node, baseUrl, siteId, plan, store);
    const accept = [...l.acceptMs].sort((a, b) => a - b);
    const confirm = [...l.confirmMs].sort((a, b) => a - b);
    const messagesPerS = perSecond(t.messages, t.outboxMs);
    const rawPostPerS = perSecond(t.messages, t.rawMs);
    return {
      store,
      throughput: t,
      latency: l,
      messagesPerS,
      rawPostPerS,
      ratio: messagesPerS / rawPostPerS,
      acceptP50: percentile(accept, 50),
      acceptP99: percentile(accept, 99),
      acceptMax: accept[accept.length - 1] ?? NaN,
      confirmP50: percentile(confirm, 50),
      confirmP99: percentile(confirm, 99),
    };
  } finally {
    await closeApp?.().catch(() => null);
    await node?.close().catch(() => null);
    await receiver?.stop();
    await database?.drop().catch((error: unknown) => note(`dropping the database failed: ${String(error)}`));
    dir.remove();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 1) : '-';
}

function report(r: StoreResult): string[] {
  const t = r.throughput;
  const l = r.latency;
  return [
    `${r.store}:`,
    `  outbox: ${t.messages.toLocaleString('en-GB')} messages from queued in the ledger to accepted in ` +
      `${(t.outboxMs / 1000).toFixed(2)} s = ${formatRate(r.messagesPerS)} messages/s ` +
      `(${t.commitsPerMessage.toFixed(2)} commits and ${t.eventsPerMessage.toFixed(2)} ledger events a message)`,
    `  raw:    ${t.messages.toLocaleString('en-GB')} POSTs of the same bodies in ${(t.rawMs / 1000).toFixed(2)} s = ` +
      `${formatRate(r.rawPostPerS)} POSTs/s; ${t.bodyBytes.toLocaleString('en-GB')} bytes a body; the receiver holds ` +
      `${t.receiverHeld.toLocaleString('en-GB')} messages (warm-up included) from ${t.receiverPosts.toLocaleString('en-GB')} POSTs`,
    `  CPU a message: outbox ${ms(t.outboxNodeCpuMs)} ms in the node (worker, ledger, projections) + ` +
      `${ms(t.outboxReceiverCpuMs)} ms in the receiver; raw ${ms(t.rawClientCpuMs)} ms in the client + ` +
      `${ms(t.rawReceiverCpuMs)} ms in the receiver` +
      (r.store === 'postgres'
        ? `; PostgreSQL ${ms(t.outboxPostgresCpuMs)} ms while the outbox delivered`
        : ''),
    `  the node's event loop was busy ${Math.round(t.outboxLoopBusy * 100)} % of the outbox's time ` +
      `(${ms((t.outboxLoopBusy * t.outboxMs) / t.messages)} ms a message: CPU, and synchronous waits such as SQLite's fsync at commit)`,
    `  ratio ${r.ratio.toFixed(3)} (target ≥ ${TARGET_RATIO}: ${r.ratio >= TARGET_RATIO ? 'met' : '**not met**'}); ` +
      `queueing them took ${(t.queueMs / 1000).toFixed(2)} s (${formatRate(perSecond(t.messages, t.queueMs))}/s, 100 to a commit, validation included)`,
    `  ambulance disposition → accepted (${l.dispositions}, one at a time): p50 ${ms(r.acceptP50)} ms, ` +
      `p99 ${ms(r.acceptP99)} ms, max ${ms(r.acceptMax)} ms (target p99 < ${TARGET_ACCEPT_P99_MS} ms: ` +
      `${r.acceptP99 < TARGET_ACCEPT_P99_MS ? 'met' : '**not met**'}); the confirm request itself p50 ` +
      `${ms(r.confirmP50)} ms, p99 ${ms(r.confirmP99)} ms`,
  ];
}

function figures(r: StoreResult) {
  return {
    messages_per_s: round(r.messagesPerS),
    raw_post_per_s: round(r.rawPostPerS),
    ratio: round(r.ratio, 3),
    ambulance_accept_p50_ms: round(r.acceptP50, 2),
    ambulance_accept_p99_ms: round(r.acceptP99, 2),
    ambulance_accept_max_ms: round(r.acceptMax, 2),
    confirm_p50_ms: round(r.confirmP50, 2),
    messages: r.throughput.messages,
    dispositions: r.latency.dispositions,
    commits_per_message: round(r.throughput.commitsPerMessage, 2),
    node_cpu_ms_per_message: round(r.throughput.outboxNodeCpuMs, 2),
    node_loop_busy: round(r.throughput.outboxLoopBusy, 2),
    receiver_cpu_ms_per_message: round(r.throughput.rawReceiverCpuMs, 2),
  };
}

async function main(): Promise<void> {
  const args = parseBenchArgsWithProfile('the profiles of the outbox rounds');
  cpuProfileDir = args.cpuProf;
  const plan = args.quick ? QUICK : FULL;
  const stores: StoreKind[] = args.only ? [args.only] : ['sqlite', 'postgres'];
  const machine = machineInfo();
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const children = new Set<ChildProcess>();
  let pg: BenchPostgres | null = null;
  onExit(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
    pg?.stop();
  });
  const results: StoreResult[] = [];
  for (const store of stores) {
    if (store === 'postgres') {
      note('outbox bench: starting PostgreSQL');
      pg = await startBenchPostgres();
    }
    results.push(await benchStore(store, plan, pg, children));
  }
  pg?.stop();

  console.log(`Outbox benchmark${args.quick ? ' (--quick)' : ''}, ${startedAt.toISOString()}`);
  console.log(`machine: ${describeMachine(machine)}`);
  console.log(
    `load average at start (1/5/15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(' / ')} ` +
      '(node, worker, receiver and PostgreSQL share these cores with whatever else runs)',
  );
  console.log(
    `one node in this process (system clock, the real HTTP application on 127.0.0.1, request logs at info to a file) ` +
      `with the delivery worker's default options (concurrency ${DEFAULT_DELIVERY_OPTIONS.concurrency}); ` +
      `\`holdfast receiver --kind ambulance\` in its own process, no faults, fsync per message held`,
  );
  console.log(
    `throughput: ${plan.messages} ambulance request Bundles in ${plan.rounds} rounds (after ${plan.warmup} for warm-up), ` +
      `outbox and raw POSTs alternating; latency: ${plan.dispositions} ambulance dispositions confirmed one at a time over HTTP`,
  );
  for (const r of results) {
    console.log('');
    for (const line of report(r)) console.log(line);
  }
  console.log('');
  console.log(`total ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)} s`);
  const head = results[0]!;
  console.log(
    JSON.stringify({
      bench: 'outbox',
      ...figures(head),
      store: head.store,
      quick: args.quick,
      by_store: Object.fromEntries(results.map((r) => [r.store, figures(r)])),
      load_1m: round(loadAtStart[0] ?? 0, 2),
      machine: { cpu: machine.cpu, cores: machine.cores, node: machine.node },
    }),
  );
}

await main();
process.exit(0);
