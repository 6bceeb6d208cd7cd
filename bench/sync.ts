/**
 * Sync benchmark (`npm run bench:sync`, `npm run bench:sync -- --quick`).
 *
 * A site that was cut off from its hub for 72 hours during a large area's surge (about 1,000 cases
 * an hour, 30 events a case: several million events) merges into the hub. Both are real nodes with
 * real stores (site: SQLite file, WAL, synchronous=FULL; hub: PostgreSQL with its default
 * durability, or SQLite with `--only sqlite`), joined by the in-process MemoryTransport (requests and
 * answers copied through JSON; no HTTP, no compression). The merge is one `SyncEngine.syncOnce()`
 * on the site: it pulls the hub's few events, then pushes everything, which the hub imports batch by
 * batch with every check (schemas, hashes, links, checkpoint signatures, witnesses, projections).
 *
 * Beside it, in the same run: raw multi-row INSERTs of exactly the rows the hub stored, into the
 * `ledger_events` table of a fresh database on the same server, one transaction per 1,000 rows.
 *
 * Generating millions of realistic events through `Ledger.append` would take longer than the merge,
 * so the site's backlog is written straight into its store with the same core functions the ledger
 * uses (sealEvent for each event's hash and link, signCheckpoint every 100 events), in transactions
 * of 10,000 rows, from three event types (case opened, note added, case closed) in hour-long waves.
 */
import {
  canonicalJson,
  formatHlc,
  GENESIS_HASH,
  sealEvent,
  signCheckpoint,
  FixedClock,
  type Checkpoint,
  type StoredEvent,
} from '@holdfast/core';
import { benchRegistry, caseClosed, caseOpened, noteAdded } from './sync-registry.ts';
import { ledgerCrypto } from '../packages/server/src/node/crypto.ts';
import { initNode, type HoldfastNode } from '../packages/server/src/node/node.ts';
import { verifyStore } from '../packages/server/src/ledger/verify.ts';
import { rowToStored, storedToRow } from '../packages/server/src/ledger/rows.ts';
import { Store, type StoreOptions } from '../packages/server/src/store/store.ts';
import { registerPeerKey, SyncEngine } from '../packages/server/src/sync/engine.ts';
import { MemoryTransport, type SyncInterceptor } from '../packages/server/src/sync/memory-transport.ts';
import {
  describeMachine,
  formatRate,
  formatTable,
  machineInfo,
  note,
  onExit,
  parseBenchArgs,
  perSecond,
  round,
  startBenchPostgres,
  tempDir,
  timeMs,
  type BenchPostgres,
  NOTE_WORDS,
} from './support.ts';
import { mulberry32 } from '../packages/server/src/simulate/simulator.ts';

const TENANT = 'bench-provider';
const SITE = 'site-north';
const HUB = 'hub';
const HOURS = 72;
const EVENTS_PER_CASE = 30;
const CHECKPOINT_EVERY = 100;
const GENERATE_TX_ROWS = 10_000;
const RAW_TX_ROWS = 1_000;
const TARGET_S = 60;

interface Sizes {
  casesPerHour: number;
}
const FULL: Sizes = { casesPerHour: 1_000 };
/** About 100,000 events. */
const QUICK: Sizes = { casesPerHour: 46 };

/** UUIDv7-shaped ids from a counter (time-ordered, unique within the run). */
function uuidFrom(ms: number, n: number): string {
  const t = ms.toString(16).padStart(12, '0');
  const c = n.toString(16).padStart(18, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${c.slice(0, 3)}-8${c.slice(3, 6)}-${c.slice(6, 18)}`;
}

interface Generated {
  events: number;
  cases: number;
  ms: number;
  lastHlc: string;
}

/**
 * Writes the site's 72-hour backlog straight into its SQLite store (see the file comment). Hour by
 * hour, the hour's cases advance together one step at a time (opened, 28 notes, closed), so cases
 * interleave as they would on a busy floor.
 */
function generateBacklog(
  site: HoldfastNode,
  sizes: Sizes,
  startMs: number,
  head: { seq: number; hash: string },
): Generated {
  const db = site.store.sqliteHandle();
  if (!db) throw new Error('the site store must be SQLite');
  const random = mulberry32(20_261_129);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const insertEvent = db.prepare(
    'insert into ledger_events (tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertCheckpoint = db.prepare(
    'insert into checkpoints (tenant, node, seq, hash, hlc, signer, signature) values (?, ?, ?, ?, ?, ?, ?)',
  );
  const signer = site.identity.signer;
  const total = HOURS * sizes.casesPerHour * EVENTS_PER_CASE;
  const stepMs = Math.max(1, Math.floor((HOURS * 3_600_000) / total));
  let seq = head.seq;
  let prevHash = head.hash;
  let wallMs = startMs;
  let n = 0;
  let lastHlc = '';
  const pending: { e: StoredEvent; subject: string }[] = [];
  const checkpoints: Checkpoint[] = [];
  const flush = db.transaction(() => {
    for (const { e, subject } of pending)
      insertEvent.run(
        e.tenant,
        e.node,
        e.seq,
        e.id,
        e.hlc,
        e.type,
        e.v,
        e.actor,
        e.payloadJson,
        e.prevHash,
        e.hash,
        subject,
      );
    for (const c of checkpoints)
      insertCheckpoint.run(c.tenant, c.node, c.seq, c.hash, c.hlc, c.signer, c.signature);
  });
  const started = performance.now();
  for (let hour = 0; hour < HOURS; hour++) {
    const cases = Array.from({ length: sizes.casesPerHour }, (_, i) =>
      uuidFrom(startMs + hour * 3_600_000, hour * 100_000 + i),
    );
    for (let step = 0; step < EVENTS_PER_CASE; step++) {
      for (const id of cases) {
        let type: string;
        let payload: Record<string, unknown>;
        if (step === 0) {
          type = caseOpened.type;
          payload = {
            caseId: id,
            site: SITE,
            priority: pick(['p1', 'p2', 'p3', 'p4'] as const),
            presenting: Array.from({ length: 6 }, () => pick(NOTE_WORDS)).join(' '),
            callbackNumber: `07${Math.floor(random() * 1e9)
              .toString()
              .padStart(9, '0')}`,
          };
        } else if (step === EVENTS_PER_CASE - 1) {
          type = caseClosed.type;
          payload = { caseId: id, outcome: pick(['advice', 'referred', 'ambulance', 'gp'] as const) };
        } else {
          type = noteAdded.type;
          payload = {
            caseId: id,
            noteId: uuidFrom(wallMs, n),
            author: `clinician-${Math.floor(random() * 40)}`,
            role: pick(['call_handler', 'clinician', 'dispatcher'] as const),
            text: Array.from({ length: 24 }, () => pick(NOTE_WORDS)).join(' '),
            codes: [String(100000 + Math.floor(random() * 899999))],
          };
        }
        wallMs += stepMs;
        seq++;
        n++;
        const e = sealEvent(ledgerCrypto, {
          id: uuidFrom(wallMs, 10_000_000 + n),
          tenant: TENANT,
          node: SITE,
          seq,
          hlc: formatHlc({ wallMs, counter: 0 }),
          type,
          v: 1,
          actor: 'user:bench-clinician',
          payloadJson: canonicalJson(payload),
          prevHash,
        });
        prevHash = e.hash;
        lastHlc = e.hlc;
        pending.push({ e, subject: `case:${id}` });
        if (n % CHECKPOINT_EVERY === 0 || n === total) checkpoints.push(signCheckpoint(signer, e));
        if (pending.length >= GENERATE_TX_ROWS || n === total) {
          flush();
          pending.length = 0;
          checkpoints.length = 0;
        }
      }
    }
    if ((hour + 1) % 12 === 0) note(`  generated ${hour + 1} h: ${n.toLocaleString('en-GB')} events`);
  }
  return { events: n, cases: HOURS * sizes.casesPerHour, ms: performance.now() - started, lastHlc };
}

async function openBenchNode(
  storeOptions: { store: 'sqlite' | 'postgres'; databaseUrl?: string; dataDir: string },
  node: string,
  role: 'hub' | 'site',
  startMs: number,
): Promise<HoldfastNode> {
  return initNode(
    { ...storeOptions, checkpointEvery: CHECKPOINT_EVERY },
    { node, tenant: TENANT, role },
    {
      clock: new FixedClock(startMs),
      registry: benchRegistry(),
      registrySource: { module: new URL('./sync-registry.ts', import.meta.url), name: 'benchRegistry' },
      ledger: { maxGroupEvents: 5_000 },
    },
  );
}

/** Raw INSERTs of the hub's stored rows into a fresh store of the same kind; returns the insert time only. */
async function rawInsert(hub: HoldfastNode, rawOptions: StoreOptions): Promise<{ ms: number; rows: number }> {
  const raw = await Store.open(rawOptions);
  let ms = 0;
  let rows = 0;
  try {
    let after = 0;
    for (;;) {
      const page = await hub.store.db
        .selectFrom('ledger_events')
        .selectAll()
        .where('tenant', '=', TENANT)
        .where('node', '=', SITE)
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(RAW_TX_ROWS)
        .execute();
      if (page.length === 0) break;
      after = Number(page[page.length - 1]!.seq);
      const values = page.map((r) => storedToRow(rowToStored(r), r.subject));
      ms += await timeMs(() =>
        raw.transaction(async (trx) => {
          for (let i = 0; i < values.length; i += 500)
            await trx
              .insertInto('ledger_events')
              .values(values.slice(i, i + 500))
              .execute();
        }),
      );
      rows += values.length;
    }
  } finally {
    await raw.close();
  }
  return { ms, rows };
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const sizes = args.quick ? QUICK : FULL;
  const hubKind = args.only ?? 'postgres';
  const machine = machineInfo();
  const started = performance.now();
  let pgServer: BenchPostgres | null = null;
  const dirs = [
    tempDir('holdfast-bench-sync-site-'),
    tempDir('holdfast-bench-sync-hub-'),
    tempDir('holdfast-bench-sync-raw-'),
  ];
  const drops: (() => Promise<void>)[] = [];
  onExit(() => {
    pgServer?.stop();
    for (const d of dirs) d.remove();
  });
  const [siteDir, hubDir, rawDir] = dirs as [(typeof dirs)[0], (typeof dirs)[0], (typeof dirs)[0]];
  const startMs = Date.UTC(2026, 10, 20, 6, 0, 0);
  let hubConfig: { store: 'sqlite' | 'postgres'; databaseUrl?: string; dataDir: string } = {
    store: 'sqlite',
    dataDir: hubDir.path,
  };
  let rawOptions: StoreOptions = { dialect: 'sqlite', file: `${rawDir.path}/raw.sqlite` };
  if (hubKind === 'postgres') {
    note('postgres: starting a throwaway server');
    pgServer = await startBenchPostgres();
    const hubDb = await pgServer.createDatabase();
    const rawDb = await pgServer.createDatabase();
    drops.push(hubDb.drop, rawDb.drop);
    hubConfig = { store: 'postgres', databaseUrl: hubDb.url, dataDir: hubDir.path };
    rawOptions = { dialect: 'postgres', connectionString: rawDb.url };
  }

  const hub = await openBenchNode(hubConfig, HUB, 'hub', startMs - 86_400_000);
  const site = await openBenchNode(
    { store: 'sqlite', dataDir: siteDir.path },
    SITE,
    'site',
    startMs - 3_600_000,
  );
  let result: Awaited<ReturnType<SyncEngine['syncOnce']>>;
  let generated: Generated;
  let syncMs: number;
  let hubMs = 0;
  let hubMsBefore = 0;
  let verified: boolean | null = null;
  let raw: { ms: number; rows: number };
  try {
    // Enrolment, and one sync while connected: the site holds the hub's chain, the hub the site's start.
    await registerPeerKey(hub, TENANT, SITE, site.identity.signer.publicKey, 'site');
    await registerPeerKey(site, TENANT, HUB, hub.identity.signer.publicKey, 'hub');
    // Time spent answering (the hub's handlers, and the JSON copies both ways) versus the rest
    // (the site reading and exporting its backlog).
    const timed: SyncInterceptor = async (call, deliver) => {
      const t0 = performance.now();
      try {
        return await deliver(call);
      } finally {
        hubMs += performance.now() - t0;
      }
    };
    const engine = new SyncEngine(
      site,
      TENANT,
      new MemoryTransport(hub, { interceptor: timed }),
      engineOptions(),
    );
    await engine.syncOnce();

    note(
      `generating the site's ${HOURS} h backlog (${(HOURS * sizes.casesPerHour).toLocaleString('en-GB')} cases)`,
    );
    const head = await site.ledger.head(TENANT);
    const headRow = (await site.ledger.readChain(TENANT, SITE, head.seq, head.seq))[0]!;
    generated = generateBacklog(site, sizes, startMs, { seq: head.seq, hash: headRow?.hash ?? GENESIS_HASH });
    site.ledger.resetCache();
    site.ledger.hlc.observe(generated.lastHlc);
    note(`  ${generated.events.toLocaleString('en-GB')} events in ${(generated.ms / 1000).toFixed(1)} s`);

    note('merging: the site syncs with the hub');
    hubMsBefore = hubMs;
    syncMs = await timeMs(async () => {
      result = await engine.syncOnce();
    });
    note(`  ${result!.pushed.toLocaleString('en-GB')} events in ${(syncMs / 1000).toFixed(1)} s`);
    if (result!.unsentEvents !== 0) throw new Error(`the merge left ${result!.unsentEvents} events unsent`);

    if (args.quick) {
      const report = await verifyStore(hub.store, ledgerCrypto, { tenant: TENANT });
      verified = report.ok;
    }
    note('raw inserts of the same rows into a fresh store of the same kind');
    raw = await rawInsert(hub, rawOptions);
  } finally {
    await hub.close();
    await site.close();
    for (const drop of drops) await drop().catch(() => undefined);
    pgServer?.stop();
  }

  const r = result!;
  const syncPerS = perSecond(r.pushed, syncMs);
  const rawPerS = perSecond(raw.rows, raw.ms);
  const hubLabel =
    hubKind === 'postgres'
      ? 'PostgreSQL (fsync on, synchronous_commit on)'
      : 'SQLite (WAL, synchronous=FULL)';
  console.log(`Sync benchmark${args.quick ? ' (--quick)' : ''}, ${new Date().toISOString()}`);
  console.log(`machine: ${describeMachine(machine)}`);
  console.log(
    `a site offline ${HOURS} h at ${sizes.casesPerHour.toLocaleString('en-GB')} cases/h x ${EVENTS_PER_CASE} events ` +
      `(${generated!.cases.toLocaleString('en-GB')} cases, ${generated!.events.toLocaleString('en-GB')} events) merges into the hub; ` +
      `site SQLite, hub ${hubLabel}; in-process transport (JSON-copied, no HTTP)`,
  );
  console.log(
    `backlog generated in ${(generated!.ms / 1000).toFixed(1)} s straight into the site's store with the core's ` +
      `sealEvent/signCheckpoint (3 event types, checkpoint every ${CHECKPOINT_EVERY}, ${GENERATE_TX_ROWS.toLocaleString('en-GB')} rows a transaction)`,
  );
  console.log('');
  console.log(
    formatTable(
      ['measure', 'events', 'time', 'rate'],
      [
        [
          'merge (pull + push + import on the hub)',
          r.pushed.toLocaleString('en-GB'),
          `${(syncMs / 1000).toFixed(1)} s`,
          `${formatRate(syncPerS)}/s`,
        ],
        [
          `raw INSERT into the hub's store kind, ${RAW_TX_ROWS} rows a transaction`,
          raw.rows.toLocaleString('en-GB'),
          `${(raw.ms / 1000).toFixed(1)} s`,
          `${formatRate(rawPerS)}/s`,
        ],
      ],
    ),
  );
  const answerMs = hubMs - hubMsBefore;
  console.log(
    `of the merge: ${(answerMs / 1000).toFixed(1)} s answering on the hub (checks, writes, JSON copies), ` +
      `${((syncMs - answerMs) / 1000).toFixed(1)} s on the site (reading and exporting its backlog)`,
  );
  console.log(
    `ratio merge/raw ${(syncPerS / rawPerS).toFixed(3)}; ${r.pushRequests} push and ${r.pullRequests} pull requests; ` +
      `target <= ${TARGET_S} s: ${syncMs / 1000 <= TARGET_S ? 'met' : 'NOT met'}` +
      (verified === null ? '' : `; hub verified after the merge: ${verified}`),
  );
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(
    JSON.stringify({
      bench: 'sync',
      quick: args.quick,
      hub_store: hubKind,
      site_store: 'sqlite',
      hours: HOURS,
      cases: generated!.cases,
      events: r.pushed,
      sync_ms: round(syncMs),
      sync_events_per_s: round(syncPerS),
      raw_insert_events_per_s: round(rawPerS),
      ratio: round(syncPerS / rawPerS, 3),
      target_s: TARGET_S,
      target_met: syncMs / 1000 <= TARGET_S,
      push_requests: r.pushRequests,
      hub_answer_ms: round(answerMs),
      generate_ms: round(generated!.ms),
      verified,
      machine: { cpu: machine.cpu, cores: machine.cores, node: machine.node },
    }),
  );
}

await main();

function engineOptions(): { batchEvents?: number; maxEventsPerRequest?: number } {
  const b = process.env.BENCH_SYNC_BATCH;
  const r = process.env.BENCH_SYNC_REQUEST;
  return { ...(b ? { batchEvents: Number(b) } : {}), ...(r ? { maxEventsPerRequest: Number(r) } : {}) };
}
