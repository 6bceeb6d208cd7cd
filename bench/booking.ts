/**
 * Booking benchmark (`npm run bench:booking`, `npm run bench:booking -- --quick`, `-- --only sqlite|postgres`).
 *
 * For each store (embedded SQLite in WAL mode with synchronous=FULL; PostgreSQL with its default
 * durability, or the server at HOLDFAST_TEST_DATABASE_URL) a real Holdfast node (the real HTTP
 * application, the system clock, request logs at `info` to a file, checkpoints as `holdfast start`
 * makes them) listens on a free loopback port in a child process of its own, with a 14-day diary of
 * 20 treatment centres (one session a day per centre, 18:00–22:00 UK time, quarter-hour slots of one
 * patient: 4,480 slots), planned through the booking service before the measurement starts.
 *
 * 50 clients (clinicians, each signed in with password + TOTP on its own session, each with one case
 * to book for) compete for the diary through the API, each in a closed loop:
 *   GET  /api/v1/cases/:caseId/appointment-options?limit=20  (the earliest suitable slots)
 *   POST /api/v1/cases/:caseId/appointments {slotId}          (one of the first five left, at random)
 * booking down its list (a 409 `slot_full` or `slot_being_booked`: another client took it or is taking it, try the next) and asking for
 * options again when the list is used up, so many clients go for the same slots at once. A slot after the case's timeframe is booked with a clinician's
 * reason, as the rule asks. Each booking is a new appointment for the client's case (the booking path
 * does not depend on how many a case has).
 *
 * Reported: bookings per second (201 answers over the measured time), latency of the booking POST
 * (201 and 409 alike, from send to last byte, keep-alive) and of the options GET, p50/p95/p99/max,
 * the refusals, and the double bookings counted afterwards from the node's own store: slots holding
 * more standing bookings than places, plus core's custody fold over the whole ledger (a booking by a
 * node that did not own the slot, or beyond capacity). It must be 0. The client shares the machine's
 * cores with the server (and PostgreSQL), so the figures are a lower bound.
 * `-- --cpu-prof DIR` writes a V8 CPU profile of the server child over the measured time to DIR; the
 * report gives the server's CPU time and event-loop delay over it either way.
 * Progress goes to stderr; stdout gets the report and, as its last line, one JSON object:
 * `{"bench":"booking","bookings_per_s":…,"p99_ms":…,"double_bookings":0}` (over all stores run: the
 * slowest store's rate, the highest p99, the sum of double bookings).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { addLocalDays, formatLocal } from '@holdfast/core';
import { AccountsService } from '../packages/server/src/accounts/service.ts';
import { Auditor } from '../packages/server/src/audit/auditor.ts';
import { SessionStore } from '../packages/server/src/auth/sessions.ts';
import { BookingService } from '../packages/server/src/booking/service.ts';
import { bookingDb } from '../packages/server/src/booking/projection.ts';
import { CaseService } from '../packages/server/src/cases/service.ts';
import { CONFIG_DEFAULTS } from '../packages/server/src/config.ts';
import type { RequestContext } from '../packages/server/src/http/context.ts';
import type { HoldfastConfig } from '../packages/server/src/config.ts';
import { initNode, openNode } from '../packages/server/src/node/node.ts';
import { PatientService } from '../packages/server/src/patients/service.ts';
import {
  ApiSession,
  MemoryTotpSecrets,
  type RequestObserver,
} from '../packages/server/src/simulate/api-client.ts';
import { mulberry32 } from '../packages/server/src/simulate/simulator.ts';
import {
  describeMachine,
  formatTable,
  machineInfo,
  note,
  onExit,
  parseBenchArgsWithProfile,
  round,
  serveBenchNode,
  startBenchPostgres,
  tempDir,
  type BenchPostgres,
  type ServerCommand,
  type ServerPhaseStats,
} from './support.ts';

const ROLE_ENV = 'HOLDFAST_BENCH_BOOKING_ROLE';
const CONFIG_ENV = 'HOLDFAST_BENCH_BOOKING_CONFIG';
const TENANT = 'benchshire';
const PASSWORD = 'correct horse battery staple';
const CLIENTS = 50;
const CENTRES = 20;
const DAYS = 14;
const TARGET_P99_MS = 100;
/** Options asked for at once; a client books down its list (one of the first PICK_AMONG) before asking again. */
const OPTIONS_LIMIT = 20;
const PICK_AMONG = 5;
const OUTSIDE_REASON = 'Benchmark: the patient can only come on a later day';

type StoreKind = 'sqlite' | 'postgres';

interface Plan {
  /** How long the clients compete (they stop earlier if the diary is full). */
  measureMs: number;
  warmupMs: number;
}
const FULL: Plan = { measureMs: 30_000, warmupMs: 3_000 };
const QUICK: Plan = { measureMs: 6_000, warmupMs: 1_000 };

interface ServerConfig {
  store: StoreKind;
  dataDir: string;
  databaseUrl?: string;
  /** `-- --cpu-prof DIR`: a V8 CPU profile of the server over the measured time, written there. */
  cpuProf?: string;
}
type ServerMessage =
  | { type: 'ready'; port: number; cases: string[]; slots: number }
  | { type: 'phase'; stats: ServerPhaseStats }
  | { type: 'stopped' };

const clinicianName = (i: number): string => `clinician-${i}@${TENANT}`;

function nodeConfig(
  c: ServerConfig,
): Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir' | 'checkpointEvery'> {
  return {
    store: c.store,
    dataDir: c.dataDir,
    ...(c.databaseUrl ? { databaseUrl: c.databaseUrl } : {}),
    checkpointEvery: CONFIG_DEFAULTS.checkpointEvery,
  };
}

// ---- the server (child process) -------------------------------------------------------------

async function runServer(config: ServerConfig): Promise<void> {
  const node = await initNode(nodeConfig(config), { node: 'bench-node-1', tenant: TENANT, role: 'single' });
  const accounts = new AccountsService(
    node.store,
    node.ledger,
    new SessionStore(node.store, node.clock),
    node.providerKeys,
  );
  await accounts.createTenant(TENANT, 'Benchshire urgent care', 'system:bench');
  const siteIds: string[] = [];
  for (let i = 0; i < CENTRES; i++)
    siteIds.push(await accounts.createSite(TENANT, `Treatment centre ${i + 1}`, 'system:bench'));
  const users: string[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const user = await accounts.create(
      TENANT,
      {
        username: clinicianName(i),
        displayName: `Bench clinician ${i}`,
        roles: ['clinician'],
        siteIds,
        password: PASSWORD,
      },
      'system:bench',
    );
    users.push(user.userId);
  }
  const auditor = new Auditor(node.ledger);
  const patients = new PatientService(node.store, node.ledger, auditor, accounts, {
    tenantFilter: true,
    clock: node.clock,
  });
  const cases = new CaseService(node.store, node.ledger, node.clock, accounts, auditor);
  const booking = new BookingService(node.store, node.ledger, node.clock, { cases, patients, accounts });
  const ctx = (userId: string, roles: RequestContext['roles']): RequestContext => ({
    tenant: TENANT,
    userId,
    username: 'bench',
    roles,
    siteIds,
    sessionId: 'bench-setup',
    address: '127.0.0.1',
  });
  const admin = ctx(users[0]!, ['provider_admin']);

  // The diary: 20 centres (sample data), a template each, one session a day for 14 days from tomorrow.
  const today = formatLocal(node.clock.nowMs()).slice(0, 10);
  let slots = 0;
  for (let c = 0; c < CENTRES; c++) {
    const centreId = `centre-${c + 1}`;
    await booking.defineCentre(admin, {
      centreId,
      siteId: siteIds[c]!,
      name: `Treatment centre ${c + 1} (sample)`,
      address: `${c + 1} Sample Road, Benchshire`,
      postcode: 'BS1 1AA',
      lat: 53.5 + (c % 5) * 0.1,
      lon: -1.8 + Math.floor(c / 5) * 0.1,
      phone: '0300 000 0000',
      rooms: [{ roomId: 'room-1', name: 'Room 1' }],
    });
    await booking.defineTemplate(admin, centreId, {
      templateId: 'quarter',
      name: 'Quarter hour',
      slotMinutes: 15,
      patientsPerSlot: 1,
      kinds: ['urgent_face_to_face', 'routine'],
    });
    for (let d = 1; d <= DAYS; d++) {
      const planned = await booking.planSession(admin, centreId, {
        templateId: 'quarter',
        roomId: 'room-1',
        clinicianName: 'Dr Sample',
        date: addLocalDays(today, d),
        startLocal: '18:00',
        endLocal: '22:00',
      });
      slots += planned.slots.length;
    }
  }
  // One case per client, opened and triaged at a centre's site (setup, not measured).
  const caseIds: string[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const who = ctx(users[i]!, ['health_adviser']);
    const caseId = await cases.open(who, {
      siteId: siteIds[i % CENTRES]!,
      answered: true,
      caller: { name: 'Bench Caller', relationship: 'self', callbackNumber: '0113 496 0000' },
      location: 'Home address',
      presentingComplaint: 'Benchmark call (not clinically validated)',
    });
    await cases.command(who, caseId, [
      { type: 'start_triage' },
      { type: 'reach_disposition', kind: 'contact_primary_care' },
    ]);
    caseIds.push(caseId);
  }
  // PostgreSQL: the node listens for other hub processes' commits and session notices, as
  // `holdfast serve` does (it keeps sessions in the process only while it hears them).
  const port = await serveBenchNode(node, TENANT, config.dataDir, config.databaseUrl);
  if (config.cpuProf) profileMeasuredPhase(config.cpuProf, config.store);
  process.send?.({ type: 'ready', port, cases: caseIds, slots } satisfies ServerMessage);
}

/** A CPU profile of this (server) process from the parent's phase-start to its phase-end. */
function profileMeasuredPhase(dir: string, store: StoreKind): void {
  let session: Session | null = null;
  process.on('message', (m: ServerCommand) => {
    void (async () => {
      if (m.type === 'phase-start') {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      } else if (m.type === 'phase-end' && session) {
        const { profile } = await session.post('Profiler.stop');
        writeFileSync(join(dir, `booking-${store}-${process.pid}.cpuprofile`), JSON.stringify(profile));
        session.disconnect();
        session = null;
      }
    })();
  });
}

// ---- the client ---------------------------------------------------------------------------------

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function figures(values: readonly number[]) {
  const s = [...values].sort((a, b) => a - b);
  return {
    count: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s.at(-1) ?? NaN,
  };
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 1) : '-');

function nextMessage<T extends ServerMessage>(
  child: ChildProcess,
  type: T['type'],
  timeoutMs: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new Error(`no '${type}' from the server within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (m: ServerMessage): void => {
      if (m.type === type) finish(null, m as T);
    };
    const onExit = (code: number | null): void =>
      finish(new Error(`server exited (${code}) before '${type}'`));
    const finish = (error: Error | null, m?: T): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(m!);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

interface Option {
  slot: { slotId: string };
  withinTimeframe: boolean;
  bookableHere: boolean;
  free: number;
}

interface StoreResult {
  store: StoreKind;
  slots: number;
  booked: number;
  conflicts: number;
  errors: number;
  firstError: string | null;
  elapsedMs: number;
  bookingsPerS: number;
  book: ReturnType<typeof figures>;
  options: ReturnType<typeof figures>;
  doubleBookings: number;
  custodyViolations: number;
  standing: number;
  diaryFull: boolean;
  /** The server process over the measured time: its CPU time and event-loop delay. */
  server: ServerPhaseStats;
}

/** Slots over their places and custody violations, counted from the node's store after it stopped. */
async function countDoubleBookings(config: ServerConfig) {
  const node = await openNode(nodeConfig(config));
  try {
    const rows = await node.store.withTenant(TENANT, async (trx) => {
      const db = bookingDb(trx);
      const slots = await db
        .selectFrom('booking_slots')
        .select(['slot_id', 'capacity'])
        .where('tenant', '=', TENANT)
        .execute();
      const standing = await db
        .selectFrom('booking_appointments')
        .select(['slot_id'])
        .where('tenant', '=', TENANT)
        .where('status', '!=', 'cancelled')
        .execute();
      return { slots, standing };
    });
    const taken = new Map<string, number>();
    for (const a of rows.standing)
      if (a.slot_id !== null) taken.set(a.slot_id, (taken.get(a.slot_id) ?? 0) + 1);
    let over = 0;
    for (const s of rows.slots) over += Math.max(0, (taken.get(s.slot_id) ?? 0) - Number(s.capacity));
    const accounts = new AccountsService(
      node.store,
      node.ledger,
      new SessionStore(node.store, node.clock),
      node.providerKeys,
    );
    const auditor = new Auditor(node.ledger);
    const patients = new PatientService(node.store, node.ledger, auditor, accounts, {
      tenantFilter: true,
      clock: node.clock,
    });
    const cases = new CaseService(node.store, node.ledger, node.clock, accounts, auditor);
    const booking = new BookingService(node.store, node.ledger, node.clock, { cases, patients, accounts });
    const violations = await booking.custodyViolations(TENANT);
    return { over, violations: violations.length, standing: rows.standing.length };
  } finally {
    await node.close();
  }
}

async function benchStore(
  store: StoreKind,
  plan: Plan,
  pg: BenchPostgres | null,
  children: Set<ChildProcess>,
  cpuProf: string | null,
): Promise<StoreResult> {
  const dir = tempDir(`holdfast-bench-booking-${store}-`);
  const database = store === 'postgres' ? await pg!.createDatabase() : null;
  const config: ServerConfig = {
    store,
    dataDir: dir.path,
    ...(database ? { databaseUrl: database.url } : {}),
    ...(cpuProf ? { cpuProf } : {}),
  };
  try {
    note(`booking bench (${store}): starting a node and planning the diary in ${dir.path}`);
    const child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, [ROLE_ENV]: 'server', [CONFIG_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    children.add(child);
    child.stdout?.pipe(process.stderr);
    const ready = await nextMessage<Extract<ServerMessage, { type: 'ready' }>>(child, 'ready', 300_000);
    const baseUrl = new URL(`http://127.0.0.1:${ready.port}`);
    const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS * 2 });
    const secrets = new MemoryTotpSecrets();
    let measuring = false;
    const bookMs: number[] = [];
    const optionsMs: number[] = [];
    const observe: RequestObserver = ({ method, route, ms }) => {
      if (!measuring) return;
      if (method === 'POST' && route.endsWith('/appointments')) bookMs.push(ms);
      else if (route.includes('appointment-options')) optionsMs.push(ms);
    };
    const sessions = ready.cases.map(
      (_, i) =>
        new ApiSession(
          baseUrl,
          { username: clinicianName(i), password: PASSWORD },
          { secrets, agent, observe },
        ),
    );
    note(`booking bench (${store}): ${ready.slots} slots; signing in ${CLIENTS} clinicians`);
    for (const s of sessions) await s.signIn();

    let stopAt = 0;
    let booked = 0;
    let conflicts = 0;
    let errors = 0;
    let firstError: string | null = null;
    let diaryFull = false;
    const client = async (i: number): Promise<void> => {
      const random = mulberry32(1600 + i);
      const s = sessions[i]!;
      const caseId = ready.cases[i]!;
      let offered: Option[] = [];
      while (performance.now() < stopAt) {
        if (offered.length === 0) {
          const { json } = await s.call<{ options: Option[] }>(
            'GET',
            `/api/v1/cases/${caseId}/appointment-options?limit=${OPTIONS_LIMIT}`,
          );
          offered = json.options.filter((o) => o.bookableHere && o.free > 0);
          if (offered.length === 0) {
            diaryFull = true;
            return;
          }
        }
        // One of the first few still on the list: every client goes for the same earliest slots.
        const [pick] = offered.splice(Math.floor(random() * Math.min(PICK_AMONG, offered.length)), 1);
        const answer = await s.raw('POST', `/api/v1/cases/${caseId}/appointments`, {
          slotId: pick!.slot.slotId,
          ...(pick!.withinTimeframe ? {} : { outsideTimeframeReason: OUTSIDE_REASON }),
        });
        if (!measuring) continue;
        if (answer.status === 201) booked++;
        else if (answer.status === 409) conflicts++;
        else {
          errors++;
          firstError ??= `${answer.status} ${answer.body.slice(0, 300)}`;
        }
      }
    };

    note(`booking bench (${store}): warm-up ${plan.warmupMs} ms`);
    stopAt = performance.now() + plan.warmupMs;
    await Promise.all(sessions.map((_, i) => client(i)));
    note(`booking bench (${store}): ${CLIENTS} clients for ${plan.measureMs} ms`);
    child.send({ type: 'phase-start' } satisfies ServerCommand);
    measuring = true;
    const started = performance.now();
    stopAt = started + plan.measureMs;
    await Promise.all(sessions.map((_, i) => client(i)));
    const elapsedMs = performance.now() - started;
    measuring = false;
    const phase = nextMessage<Extract<ServerMessage, { type: 'phase' }>>(child, 'phase', 30_000);
    child.send({ type: 'phase-end' } satisfies ServerCommand);
    const server = (await phase).stats;
    agent.destroy();

    child.send({ type: 'stop' } satisfies ServerCommand);
    await nextMessage(child, 'stopped', 60_000);
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)));
    children.delete(child);
    const counted = await countDoubleBookings(config);
    return {
      store,
      slots: ready.slots,
      booked,
      conflicts,
      errors,
      firstError,
      elapsedMs,
      bookingsPerS: (booked * 1000) / elapsedMs,
      book: figures(bookMs),
      options: figures(optionsMs),
      doubleBookings: counted.over + counted.violations,
      custodyViolations: counted.violations,
      standing: counted.standing,
      diaryFull,
      server,
    };
  } finally {
    await database?.drop().catch(() => undefined);
    dir.remove();
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgsWithProfile('the booking server');
  const plan = args.quick ? QUICK : FULL;
  const stores: StoreKind[] = args.only ? [args.only] : ['sqlite', 'postgres'];
  const children = new Set<ChildProcess>();
  let pg: BenchPostgres | null = null;
  onExit(() => {
    for (const c of children) c.kill('SIGKILL');
    pg?.stop();
  });
  if (stores.includes('postgres')) pg = await startBenchPostgres();
  const results: StoreResult[] = [];
  try {
    for (const store of stores) results.push(await benchStore(store, plan, pg, children, args.cpuProf));
  } finally {
    pg?.stop();
    pg = null;
  }
  const machine = machineInfo();
  const lines = [
    `Booking benchmark${args.quick ? ' (quick)' : ''}: ${CLIENTS} clients competing for a ${DAYS}-day diary of ${CENTRES} centres through the API`,
    `Machine: ${describeMachine(machine)}`,
    '',
    formatTable(
      [
        'store',
        'slots',
        'booked',
        'bookings/s',
        '409s',
        'errors',
        'book p50',
        'p95',
        'p99',
        'max',
        'options p50',
        'p99',
        'double bookings',
      ],
      results.map((r) => [
        r.store,
        String(r.slots),
        String(r.booked),
        r.bookingsPerS.toFixed(1),
        String(r.conflicts),
        String(r.errors),
        fmt(r.book.p50),
        fmt(r.book.p95),
        fmt(r.book.p99),
        fmt(r.book.max),
        fmt(r.options.p50),
        fmt(r.options.p99),
        String(r.doubleBookings),
      ]),
    ),
    '',
    ...results.map(
      (r) =>
        `${r.store}: ${r.standing} bookings stand in the store; custody violations ${r.custodyViolations}; ` +
        `${r.diaryFull ? 'the diary filled up' : 'the diary did not fill'} in ${(r.elapsedMs / 1000).toFixed(1)} s; ` +
        `booking p99 ${fmt(r.book.p99)} ms (target < ${TARGET_P99_MS} ms); ` +
        `server CPU ${Math.round((100 * r.server.cpuMs) / r.server.wallMs)}% of one core, event-loop delay p99 ${fmt(r.server.eldP99Ms)} ms` +
        `${r.firstError ? `; first error: ${r.firstError}` : ''}`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const json = {
    bench: 'booking',
    bookings_per_s: round(Math.min(...results.map((r) => r.bookingsPerS)), 1),
    p99_ms: round(Math.max(...results.map((r) => r.book.p99)), 1),
    double_bookings: results.reduce((sum, r) => sum + r.doubleBookings, 0),
  };
  process.stdout.write(`${JSON.stringify(json)}\n`);
  if (results.some((r) => r.errors > 0 || r.doubleBookings > 0)) process.exitCode = 1;
}

if (process.env[ROLE_ENV] === 'server') {
  const config = JSON.parse(process.env[CONFIG_ENV] ?? '{}') as ServerConfig;
  runServer(config).catch((error: unknown) => {
    note(
      `booking bench server failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    note(`booking bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  });
}
