/**
 * Ledger benchmark (`npm run bench:ledger`, `npm run bench:ledger -- --quick`).
 *
 * For each store (SQLite file in WAL mode with synchronous=FULL; PostgreSQL with its default
 * durability) it measures, in one process:
 *
 *  1. durable appends/s through the real Ledger of a real node (validation, canonical JSON, hashing,
 *     chain heads, checkpoints, projections, one durable commit per call) at batch sizes 1 and 100;
 *  2. beside it, raw inserts of exactly the rows the ledger wrote into the same `ledger_events`
 *     table of a fresh store (same indexes), one durable transaction per batch of 1 and of 100,
 *     a multi-row INSERT through the same Kysely store, nothing else;
 *  3. verified events/s: `verifyStore` over everything written (≥100k events in a full run), the
 *     median of the runs after the process's first (which starts the worker threads; reported too),
 *     beside bare SHA-256 (node:crypto createHash) over the canonical body of each stored event.
 *
 * The ledger and raw runs alternate in rounds over the same rows so that drift on the machine (disk
 * cache, other load) hits both alike. Progress goes to stderr; stdout gets a table per store and,
 * as its last line, one JSON object.
 */
import { createHash } from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import { join } from 'node:path';
import { canonicalBody, createEventRegistry, defineEventType, type EventRegistry } from '@holdfast/core';
import { z } from 'zod';
import type { EventDraft } from '../packages/server/src/ledger/ledger.ts';
import { rowToStored } from '../packages/server/src/ledger/rows.ts';
import { workerStats } from '../packages/server/src/ledger/verify-parallel.ts';
import {
  bodyStats,
  NO_END,
  openPostgresRangeReader,
  PAGE,
  sqliteRangeReader,
} from '../packages/server/src/ledger/verify-range.ts';
import { verifyStore, type VerifyReport } from '../packages/server/src/ledger/verify.ts';
import { ledgerCrypto } from '../packages/server/src/node/crypto.ts';
import { initNode, type HoldfastNode } from '../packages/server/src/node/node.ts';
import type { LedgerEventsTable } from '../packages/server/src/store/schema.ts';
import { Store, type StoreOptions } from '../packages/server/src/store/store.ts';
import {
  describeMachine,
  formatRate,
  formatTable,
  machineInfo,
  median,
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

type StoreKind = 'sqlite' | 'postgres';
type Row = Omit<LedgerEventsTable, 'pos'>;

interface Sizes {
  /** Events appended one per durable commit (split over `rounds`). */
  batch1: number;
  /** Events appended 100 per durable commit (split over `rounds`). */
  batch100: number;
  rounds: number;
  /** Untimed events per path before measuring (JIT, caches, connection pool). */
  warmup: number;
  /** The store is topped up to at least this many events before verify is measured. */
  verifyEvents: number;
  verifyRuns: number;
}

const FULL: Sizes = {
  batch1: 3_000,
  batch100: 60_000,
  rounds: 3,
  warmup: 2_000,
  verifyEvents: 120_000,
  verifyRuns: 3,
};
/** A smoke run: well under a minute with PostgreSQL's start; ratios are noisier than a full run's. */
const QUICK: Sizes = {
  batch1: 600,
  batch100: 12_000,
  rounds: 2,
  warmup: 500,
  verifyEvents: 30_000,
  verifyRuns: 2,
};

const TENANT = 'bench-tenant';
const NODE = 'bench-site-1';
/** The product default (HOLDFAST_CHECKPOINT_EVERY): a signed checkpoint every 100 events. */
const CHECKPOINT_EVERY = 100;
/** Events per append while topping the store up for verify (untimed). */
const FILL_BATCH = 1_000;

/** A realistic clinical fact with a subject (the case) and a payload of about 300 bytes. */
const caseNoteAdded = defineEventType({
  type: 'bench.case.note_added',
  v: 1,
  schema: z.strictObject({
    caseId: z.string().regex(/^[0-9a-f-]{36}$/),
    noteId: z.string().regex(/^[0-9a-f-]{36}$/),
    author: z.string().min(1).max(100),
    role: z.enum(['call_handler', 'clinician', 'dispatcher']),
    kind: z.enum(['clinical', 'safeguarding', 'admin']),
    text: z.string().min(1).max(2000),
    codes: z.array(z.string().regex(/^[0-9]{6,18}$/)).max(10),
  }),
  subjectOf: (p) => `case:${p.caseId}`,
  description: 'Benchmark only: a note added to a case',
});

function benchRegistry(): EventRegistry {
  return createEventRegistry().register(caseNoteAdded);
}

class DraftFactory {
  private readonly random = mulberry32(20_251_129);
  private n = 0;

  private hex(len: number): string {
    let s = '';
    while (s.length < len)
      s += Math.floor(this.random() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    return s.slice(0, len);
  }

  private uuid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
  }

  next(): EventDraft {
    this.n++;
    const words: string[] = [];
    let length = 0;
    const target = 80 + Math.floor(this.random() * 80);
    while (length < target) {
      const w = NOTE_WORDS[Math.floor(this.random() * NOTE_WORDS.length)]!;
      words.push(w);
      length += w.length + 1;
    }
    return {
      tenant: TENANT,
      type: caseNoteAdded.type,
      actor: `user:clinician-${String(this.n % 97).padStart(4, '0')}`,
      payload: {
        caseId: `0190a1b2-${this.hex(4)}-7000-8000-${this.hex(12)}`,
        noteId: this.uuid(),
        author: `Dr A. Example ${this.n % 13}`,
        role: 'clinician',
        kind: this.n % 11 === 0 ? 'safeguarding' : 'clinical',
        text: words.join(' '),
        codes: [String(100_000 + (this.n % 899_999)), '22253000'],
      },
    };
  }

  many(count: number): EventDraft[] {
    return Array.from({ length: count }, () => this.next());
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A fresh, empty store location: a SQLite file in a temp dir, or a new PostgreSQL database. */
async function freshLocation(
  kind: StoreKind,
  pgServer: BenchPostgres | null,
): Promise<{
  dataDir: string;
  storeOptions: StoreOptions;
  config: { store: StoreKind; databaseUrl?: string; dataDir: string; checkpointEvery: number };
  cleanup(): Promise<void>;
}> {
  const dir = tempDir('holdfast-bench-');
  if (kind === 'sqlite') {
    return {
      dataDir: dir.path,
      storeOptions: { dialect: 'sqlite', file: join(dir.path, 'holdfast.sqlite') },
      config: { store: 'sqlite', dataDir: dir.path, checkpointEvery: CHECKPOINT_EVERY },
      cleanup: async () => dir.remove(),
    };
  }
  if (!pgServer) throw new Error('no PostgreSQL server');
  const database = await pgServer.createDatabase();
  return {
    dataDir: dir.path,
    storeOptions: { dialect: 'postgres', connectionString: database.url },
    config: {
      store: 'postgres',
      databaseUrl: database.url,
      dataDir: dir.path,
      checkpointEvery: CHECKPOINT_EVERY,
    },
    cleanup: async () => {
      await database.drop();
      dir.remove();
    },
  };
}

/** Reads back, in write order, the rows the ledger stored after `afterPos`, as the ledger wrote them. */
async function rowsAfter(store: Store, afterPos: number): Promise<{ rows: Row[]; lastPos: number }> {
  const stored = await store.db
    .selectFrom('ledger_events')
    .selectAll()
    .where('pos', '>', afterPos)
    .orderBy('pos')
    .execute();
  let lastPos = afterPos;
  const rows = stored.map(({ pos, ...row }) => {
    lastPos = Number(pos);
    return { ...row, seq: Number(row.seq), v: Number(row.v) };
  });
  return { rows, lastPos };
}

interface AppendResult {
  batch: number;
  events: number;
  ledgerMs: number;
  rawMs: number;
}

interface VerifyResult {
  events: number;
  checkpoints: number;
  meanBodyBytes: number;
  meanPayloadBytes: number;
  /** Median of the timed runs, after the process's first. */
  verifyMs: number;
  /** The process's first verify: worker threads starting, nothing warm. */
  firstVerifyMs: number;
  sha256Ms: number;
  /** One-shot crypto.hash(), where this Node has it (>= 20.12), over the same bodies. */
  oneShotMs: number | null;
  /** Reading the rows verify reads, doing nothing else (reference). */
  readMs: number;
}

interface StoreResult {
  kind: StoreKind;
  appends: AppendResult[];
  verify: VerifyResult;
}

/**
 * Appends `drafts` through the ledger `batch` at a time, then inserts the very rows it wrote into
 * the raw store with one transaction per `batch` rows; both timed, in alternating rounds.
 */
async function measureAppends(
  node: HoldfastNode,
  raw: Store,
  factory: DraftFactory,
  cursor: { lastPos: number },
  batch: number,
  total: number,
  rounds: number,
): Promise<AppendResult> {
  const result: AppendResult = { batch, events: 0, ledgerMs: 0, rawMs: 0 };
  const perRound = Math.max(batch, Math.round(total / rounds / batch) * batch);
  for (let r = 0; r < rounds; r++) {
    const batches = chunks(factory.many(perRound), batch);
    result.ledgerMs += await timeMs(async () => {
      for (const drafts of batches) await node.ledger.append(drafts);
    });
    const { rows, lastPos } = await rowsAfter(node.store, cursor.lastPos);
    cursor.lastPos = lastPos;
    if (rows.length !== perRound) throw new Error(`expected ${perRound} new rows, found ${rows.length}`);
    const rowBatches = chunks(rows, batch);
    result.rawMs += await timeMs(async () => {
      for (const values of rowBatches) {
        await raw.transaction(async (trx) => {
          await trx.insertInto('ledger_events').values(values).execute();
        });
      }
    });
    result.events += perRound;
    note(
      `  batch ${batch} round ${r + 1}/${rounds}: ledger ${formatRate(perSecond(perRound, result.ledgerMs / (r + 1)))}/s` +
        `, raw ${formatRate(perSecond(perRound, result.rawMs / (r + 1)))}/s (running means)`,
    );
  }
  return result;
}

async function measureVerify(node: HoldfastNode, factory: DraftFactory, sizes: Sizes): Promise<VerifyResult> {
  const count = async (): Promise<number> =>
    Number(
      (
        await node.store.db
          .selectFrom('ledger_events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  let events = await count();
  if (events < sizes.verifyEvents)
    note(`  topping up from ${events} to ${sizes.verifyEvents} events for verify`);
  while (events < sizes.verifyEvents) {
    const n = Math.min(FILL_BATCH, sizes.verifyEvents - events);
    await node.ledger.append(factory.many(n));
    events += n;
  }
  await node.ledger.checkpointNow(TENANT);

  // The exact bytes verify hashes: the canonical body of every stored event (built untimed).
  const bodies: string[] = [];
  let totalBytes = 0;
  let payloadBytes = 0;
  let afterSeq = 0;
  for (;;) {
    const page = await node.store.db
      .selectFrom('ledger_events')
      .selectAll()
      .where('tenant', '=', TENANT)
      .where('node', '=', NODE)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(10_000)
      .execute();
    if (page.length === 0) break;
    for (const row of page) {
      const body = canonicalBody(rowToStored(row));
      bodies.push(body);
      totalBytes += Buffer.byteLength(body, 'utf8');
      payloadBytes += Buffer.byteLength(row.payload, 'utf8');
    }
    afterSeq = Number(page[page.length - 1]!.seq);
  }
  if (bodies.length !== events) throw new Error(`read ${bodies.length} bodies, expected ${events}`);

  // Hash every body once untimed: warms the JIT and flattens the strings (canonicalBody builds them
  // by concatenation), so the baseline times hashing bytes and nothing else.
  for (const body of bodies) createHash('sha256').update(body, 'utf8').digest('hex');

  const oneShot = (nodeCrypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;
  const times = {
    verify: [] as number[],
    sha256: [] as number[],
    oneShot: [] as number[],
    read: [] as number[],
  };
  let checkpoints = 0;
  let sink = 0;
  // The first check of a process starts the worker threads and runs cold code in every thread; the
  // baseline above is warmed first. Timed on its own and reported beside the median of the runs after.
  const firstStarted = performance.now();
  const first = await verifyStore(node.store, ledgerCrypto);
  const firstMs = performance.now() - firstStarted;
  if (!first.ok) throw new Error('the first verify failed');
  note(
    `  first verify of the process: ${formatRate(perSecond(events, firstMs))}/s (workers starting, not in the median)`,
  );
  for (let r = 0; r < sizes.verifyRuns; r++) {
    let report: VerifyReport | null = null;
    const inWorkers = workerStats.ranges;
    const rebuiltBefore = bodyStats.rebuilt;
    times.verify.push(
      await timeMs(async () => {
        report = await verifyStore(node.store, ledgerCrypto);
      }),
    );
    const done = report as VerifyReport | null;
    if (!done?.ok || done.eventsChecked !== events) {
      throw new Error(
        `verify failed or incomplete: ${JSON.stringify(done?.faults)} (${done?.eventsChecked})`,
      );
    }
    checkpoints = done.checkpointsChecked;
    times.sha256.push(
      await timeMs(() => {
        for (const body of bodies)
          sink ^= createHash('sha256').update(body, 'utf8').digest('hex').charCodeAt(0);
      }),
    );
    if (oneShot) {
      times.oneShot.push(
        await timeMs(() => {
          for (const body of bodies) sink ^= oneShot('sha256', body, 'hex').charCodeAt(0);
        }),
      );
    }
    times.read.push(await timeMs(async () => void (sink ^= await readOnly(node.store))));
    note(
      `  verify run ${r + 1}/${sizes.verifyRuns}: verify ${formatRate(perSecond(events, times.verify[r]!))}/s` +
        `, sha256 ${formatRate(perSecond(events, times.sha256[r]!))}/s` +
        `, read only ${formatRate(perSecond(events, times.read[r]!))}/s` +
        ` (verify: ${workerStats.ranges - inWorkers} seq ranges checked in worker threads,` +
        ` ${bodyStats.rebuilt - rebuiltBefore} events whose body the store did not build right)`,
    );
  }
  if (sink === 0.5) note('unreachable'); // keeps the loops' results observable
  return {
    events,
    checkpoints,
    meanBodyBytes: Math.round(totalBytes / events),
    meanPayloadBytes: Math.round(payloadBytes / events),
    verifyMs: median(times.verify),
    firstVerifyMs: firstMs,
    sha256Ms: median(times.sha256),
    oneShotMs: times.oneShot.length ? median(times.oneShot) : null,
    readMs: median(times.read),
  };
}

/**
 * Reference only: reads the chain's rows the way verify does (the same query, with the canonical
 * bodies the store builds, the same pages and the same readers) in one thread and does nothing with
 * them, to show how much of verify's time is the store's.
 */
async function readOnly(store: Store): Promise<number> {
  const sqlite = store.sqliteHandle();
  const source = store.workerSource();
  const reader = sqlite
    ? { ...sqliteRangeReader(sqlite), close: async () => undefined }
    : source?.dialect === 'postgres'
      ? await openPostgresRangeReader(source.connectionString, null)
      : null;
  if (!reader) throw new Error('the benchmark store has no reader verify would use');
  try {
    const read = reader.pages(TENANT, NODE, NO_END);
    let afterSeq = 0;
    let rowsRead = 0;
    for (;;) {
      const page = await read(afterSeq);
      rowsRead += page.length;
      if (page.length < PAGE) return rowsRead;
      afterSeq = Number(page[page.length - 1]![0]);
    }
  } finally {
    await reader.close();
  }
}

async function benchStore(
  kind: StoreKind,
  sizes: Sizes,
  pgServer: BenchPostgres | null,
): Promise<StoreResult> {
  note(`${kind}: preparing stores`);
  const ledgerLoc = await freshLocation(kind, pgServer);
  const rawLoc = await freshLocation(kind, pgServer);
  const node = await initNode(
    ledgerLoc.config,
    { node: NODE, tenant: TENANT, role: 'site' },
    { registry: benchRegistry() },
  );
  const raw = await Store.open(rawLoc.storeOptions);
  try {
    const factory = new DraftFactory();
    const cursor = { lastPos: (await rowsAfter(node.store, 0)).lastPos };

    note(`${kind}: warming up`);
    await measureAppends(node, raw, factory, cursor, 1, Math.min(200, sizes.warmup), 1);
    await measureAppends(node, raw, factory, cursor, 100, sizes.warmup, 1);

    note(`${kind}: appends, batch 1`);
    const b1 = await measureAppends(node, raw, factory, cursor, 1, sizes.batch1, sizes.rounds);
    note(`${kind}: appends, batch 100`);
    const b100 = await measureAppends(node, raw, factory, cursor, 100, sizes.batch100, sizes.rounds);

    note(`${kind}: verify`);
    const verify = await measureVerify(node, factory, sizes);
    return { kind, appends: [b1, b100], verify };
  } finally {
    await raw.close();
    await node.close();
    await ledgerLoc.cleanup();
    await rawLoc.cleanup();
  }
}

interface StoreSummary {
  append_per_s: number;
  raw_insert_per_s: number;
  append_ratio: number;
  verify_per_s: number;
  raw_sha256_per_s: number;
  verify_ratio: number;
  /** The first verify of the process (workers starting), against the same baseline. */
  verify_first_per_s: number;
  verify_first_ratio: number;
  append_per_s_batch1: number;
  raw_insert_per_s_batch1: number;
  append_ratio_batch1: number;
  /** Bare one-shot crypto.hash() over the same bodies, and verify against it. */
  raw_sha256_oneshot_per_s: number | null;
  verify_ratio_oneshot: number | null;
  /** Reading the rows verify reads, nothing else. */
  read_only_per_s: number;
  events_verified: number;
}

function summarise(r: StoreResult): StoreSummary {
  const [b1, b100] = r.appends as [AppendResult, AppendResult];
  const v = r.verify;
  const verifyPerS = perSecond(v.events, v.verifyMs);
  const shaPerS = perSecond(v.events, v.sha256Ms);
  const oneShotPerS = v.oneShotMs === null ? null : perSecond(v.events, v.oneShotMs);
  return {
    append_per_s: round(perSecond(b100.events, b100.ledgerMs)),
    raw_insert_per_s: round(perSecond(b100.events, b100.rawMs)),
    append_ratio: round(b100.rawMs / b100.ledgerMs, 3),
    verify_per_s: round(verifyPerS),
    raw_sha256_per_s: round(shaPerS),
    verify_ratio: round(verifyPerS / shaPerS, 3),
    verify_first_per_s: round(perSecond(v.events, v.firstVerifyMs)),
    verify_first_ratio: round(perSecond(v.events, v.firstVerifyMs) / shaPerS, 3),
    append_per_s_batch1: round(perSecond(b1.events, b1.ledgerMs)),
    raw_insert_per_s_batch1: round(perSecond(b1.events, b1.rawMs)),
    append_ratio_batch1: round(b1.rawMs / b1.ledgerMs, 3),
    raw_sha256_oneshot_per_s: oneShotPerS === null ? null : round(oneShotPerS),
    verify_ratio_oneshot: oneShotPerS === null ? null : round(verifyPerS / oneShotPerS, 3),
    read_only_per_s: round(perSecond(v.events, v.readMs)),
    events_verified: v.events,
  };
}

function report(r: StoreResult, s: StoreSummary): string {
  const label =
    r.kind === 'sqlite' ? 'SQLite (WAL, synchronous=FULL)' : 'PostgreSQL (fsync on, synchronous_commit on)';
  const rows: string[][] = [];
  for (const a of r.appends) {
    const ledger = perSecond(a.events, a.ledgerMs);
    const raw = perSecond(a.events, a.rawMs);
    rows.push([
      `append, batch ${a.batch}`,
      a.events.toLocaleString('en-GB'),
      `${formatRate(ledger)}/s`,
      `${formatRate(raw)}/s`,
      `raw INSERT, batch ${a.batch}`,
      (ledger / raw).toFixed(3),
    ]);
  }
  const v = r.verify;
  /** A verify row: the measure, its rate and a baseline's, and the ratio between them. */
  const verifyRow = (measure: string, perS: number, baselinePerS: number, baseline: string) =>
    rows.push([
      measure,
      v.events.toLocaleString('en-GB'),
      `${formatRate(perS)}/s`,
      `${formatRate(baselinePerS)}/s`,
      baseline,
      (perS / baselinePerS).toFixed(3),
    ]);
  verifyRow('verify', s.verify_per_s, s.raw_sha256_per_s, 'raw SHA-256 (createHash)');
  verifyRow('verify, first of process', s.verify_first_per_s, s.raw_sha256_per_s, 'raw SHA-256 (createHash)');
  if (s.raw_sha256_oneshot_per_s !== null)
    verifyRow('verify', s.verify_per_s, s.raw_sha256_oneshot_per_s, 'raw SHA-256 (crypto.hash)');
  verifyRow('verify', s.verify_per_s, s.read_only_per_s, 'read the rows only');
  return [
    label,
    formatTable(['measure', 'events', 'ledger', 'baseline', 'baseline is', 'ratio'], rows),
    `  verify checked ${v.checkpoints.toLocaleString('en-GB')} checkpoint signatures; ` +
      `mean payload ${v.meanPayloadBytes} bytes, canonical body ${v.meanBodyBytes} bytes`,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const sizes = args.quick ? QUICK : FULL;
  const machine = machineInfo();
  const kinds: StoreKind[] = args.only ? [args.only] : ['sqlite', 'postgres'];
  const started = Date.now();

  let pgServer: BenchPostgres | null = null;
  onExit(() => pgServer?.stop());
  const results: StoreResult[] = [];
  try {
    for (const kind of kinds) {
      if (kind === 'postgres') {
        note('postgres: starting a throwaway server');
        pgServer = await startBenchPostgres();
      }
      results.push(await benchStore(kind, sizes, pgServer));
    }
  } finally {
    pgServer?.stop();
  }

  const summaries: Partial<Record<StoreKind, StoreSummary>> = {};
  console.log(`Ledger benchmark${args.quick ? ' (--quick)' : ''}, ${new Date().toISOString()}`);
  console.log(`machine: ${describeMachine(machine)}`);
  console.log(
    `sizes: batch 1 ${sizes.batch1}, batch 100 ${sizes.batch100} events in ${sizes.rounds} round(s) per path; ` +
      `verify over ${sizes.verifyEvents}+ events, median of ${sizes.verifyRuns} after the first; ` +
      `checkpoint every ${CHECKPOINT_EVERY} events`,
  );
  for (const r of results) {
    const s = summarise(r);
    summaries[r.kind] = s;
    console.log('');
    console.log(report(r, s));
  }
  console.log('');
  console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(
    JSON.stringify({
      bench: 'ledger',
      ...summaries,
      quick: args.quick,
      machine: { cpu: machine.cpu, cores: machine.cores, node: machine.node },
    }),
  );
}

await main();
