/**
 * Restore benchmark (`npm run bench:restore`, `npm run bench:restore -- --quick`).
 *
 * Builds a hub's ledger of N events (10 million; 200,000 with --quick) straight into a SQLite store
 * (untimed: sealed events, a hash chain per node, a checkpoint signed by the chain's node every 100
 * events, a witness checkpoint by the other node every 1,000; two chains, the hub's and a site's),
 * backs it up with `runBackup` (timed, reported), then times `restoreBackup` into an empty store:
 * every chunk decrypted and matched to its address, every event re-hashed with its link and clock
 * checked, every checkpoint signature checked, the rows inserted, every projection rebuilt. Target:
 * 10 million events in at most 5 minutes on 2 cores.
 *
 * `--events N` sets the size (`npm run bench:restore -- --events 10000000` is the full run).
 * The full run restores onto SQLite (`--only postgres` restores onto PostgreSQL instead); --quick
 * restores onto both. Beside the restore it measures bare SHA-256 over the same canonical bodies
 * (one core), the floor of any verifying restore. Progress goes to stderr; the last stdout line is
 * one JSON object.
 */
import * as nodeCrypto from 'node:crypto';
import { loadavg } from 'node:os';
import { canonicalBody, formatHlc, GENESIS_HASH, signCheckpoint, type Checkpoint } from '@holdfast/core';
import { runBackup } from '../packages/server/src/backup/backup.ts';
import type { KeySource } from '../packages/server/src/backup/keys.ts';
import { restoreBackup, type RestoreReport } from '../packages/server/src/backup/restore.ts';
import { Ed25519Signer, ledgerCrypto } from '../packages/server/src/node/crypto.ts';
import { initNode, type HoldfastNode } from '../packages/server/src/node/node.ts';
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
  type BenchPostgres,
  NOTE_WORDS,
} from './support.ts';
import { mulberry32 } from '../packages/server/src/simulate/simulator.ts';

const TENANT = 'bench-restore';
const HUB = 'bench-hub';
const SITE = 'bench-site';
const CHECKPOINT_EVERY = 100;
const WITNESS_EVERY = 1_000;
const TARGET_MS = 5 * 60_000;
const KEY: KeySource = { kind: 'passphrase', passphrase: 'bench restore passphrase', from: 'bench' };

/** `--events N` (or HOLDFAST_BENCH_EVENTS=N) sets the size, e.g. a 1-million run on a busy machine. */
function parseArgs(argv: readonly string[]): ReturnType<typeof parseBenchArgs> & { events: number | null } {
  const rest: string[] = [];
  let events: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--events') {
      events = Number(argv[++i]);
      if (!Number.isSafeInteger(events) || events < 10_000)
        throw new Error('--events takes a whole number of events, at least 10000');
    } else rest.push(argv[i]!);
  }
  return { ...parseBenchArgs(rest), events };
}
const args = parseArgs(process.argv.slice(2));
const TOTAL = args.events ?? Number(process.env.HOLDFAST_BENCH_EVENTS ?? (args.quick ? 200_000 : 10_000_000));
/** Share of the events in the site's chain. */
const SITE_SHARE = 0.3;

/** Two hex digits of every byte value: random ids without number-to-string conversions. */
const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/**
 * Appends `count` sealed events to `node`'s chain of the store directly (one prepared statement,
 * big transactions), with its checkpoints, and a witness checkpoint by `witness` every 1,000. Each
 * event is hashed by the core's `canonicalBody` and checkpoints are signed by `signCheckpoint`, as
 * the ledger does; only the per-event work the ledger needs for a live append (planning, locking,
 * projections) is skipped.
 */
function generateChain(
  hub: HoldfastNode,
  chain: { node: string; signer: Ed25519Signer; startSeq: number; prevHash: string; startMs: number },
  witness: Ed25519Signer,
  count: number,
  onProgress: (n: number) => void,
): void {
  const sqlite = hub.store.sqliteHandle()!;
  const insert = sqlite.prepare(
    'insert into ledger_events (tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertCheckpoint = sqlite.prepare(
    'insert into checkpoints (tenant, node, seq, hash, hlc, signer, signature) values (?, ?, ?, ?, ?, ?, ?)',
  );
  const random = mulberry32(chain.startMs);
  const byte = () => HEX_BYTE[(random() * 256) | 0]!;
  const hex = (digits: number) => {
    let s = '';
    for (let i = 0; i < digits; i += 2) s += byte();
    return digits % 2 === 0 ? s : s.slice(1);
  };
  const words = NOTE_WORDS.length;
  let prevHash = chain.prevHash;
  let seq = chain.startSeq;
  const BATCH = 100_000;
  for (let done = 0; done < count;) {
    const n = Math.min(BATCH, count - done);
    sqlite.transaction(() => {
      for (let i = 0; i < n; i++) {
        seq++;
        const caseId = `0190a1b2-${hex(4)}-7000-8000-${hex(12)}`;
        let text = NOTE_WORDS[(random() * words) | 0]!;
        const target = 120 + ((random() * 120) | 0);
        while (text.length < target) text += ' ' + NOTE_WORDS[(random() * words) | 0]!;
        // Canonical JSON by hand: keys in order, strings with nothing to escape.
        const payloadJson = `{"author":"Dr A. Example ${seq % 13}","caseId":"${caseId}","kind":"clinical","noteId":"${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}","text":"${text}"}`;
        const e = {
          id: `0190a1b2-${hex(4)}-7${hex(3)}-8${hex(3)}-${hex(12)}`,
          tenant: TENANT,
          node: chain.node,
          seq,
          hlc: formatHlc({ wallMs: chain.startMs + seq, counter: 0 }),
          type: 'bench.case.note_added',
          v: 1,
          actor: `user:clinician-${seq % 97}`,
          payloadJson,
          prevHash,
        };
        const hash = ledgerCrypto.sha256Hex(canonicalBody(e));
        insert.run(
          TENANT,
          chain.node,
          seq,
          e.id,
          e.hlc,
          e.type,
          1,
          e.actor,
          payloadJson,
          prevHash,
          hash,
          `case:${caseId}`,
        );
        prevHash = hash;
        const last = done + i === count - 1;
        if (seq % CHECKPOINT_EVERY === 0 || last) {
          const head = { tenant: TENANT, node: chain.node, seq, hash, hlc: e.hlc };
          const own: Checkpoint = signCheckpoint(chain.signer, head);
          insertCheckpoint.run(own.tenant, own.node, own.seq, own.hash, own.hlc, own.signer, own.signature);
          if (seq % WITNESS_EVERY === 0) {
            const w = signCheckpoint(witness, head);
            insertCheckpoint.run(w.tenant, w.node, w.seq, w.hash, w.hlc, w.signer, w.signature);
          }
        }
      }
    })();
    done += n;
    onProgress(done);
  }
}

interface Source {
  hub: HoldfastNode;
  dataDir: string;
  events: number;
}

async function buildSource(root: string): Promise<Source> {
  const dataDir = `${root}/hub`;
  const hub = await initNode(
    { store: 'sqlite', dataDir, checkpointEvery: CHECKPOINT_EVERY },
    { node: HUB, tenant: TENANT, role: 'hub' },
  );
  const site = Ed25519Signer.generate(SITE).signer;
  await hub.ledger.append([
    {
      tenant: TENANT,
      type: 'node.registered',
      actor: 'user:bench-admin',
      payload: { node: SITE, publicKey: site.publicKey, role: 'site' },
    },
  ]);
  await hub.ledger.checkpointNow(TENANT);
  const head = await hub.ledger.head(TENANT);
  const hubEvents = TOTAL - Math.round(TOTAL * SITE_SHARE) - head.seq;
  const siteEvents = Math.round(TOTAL * SITE_SHARE);
  // Generation is not measured. The source is only backed up, which reads each chain in seq order
  // through the chain index: the secondary indexes (event id, ledger order, subject) would only slow
  // ten million random-key inserts, so the source goes without them (the restored node has them all).
  const sourceDb = hub.store.sqliteHandle()!;
  sourceDb.pragma('synchronous = OFF');
  sourceDb.pragma('cache_size = -262144');
  for (const name of ['ledger_events_id', 'ledger_events_order', 'ledger_events_subject'])
    sourceDb.exec(`drop index ${name}`);
  const startMs = Date.UTC(2026, 0, 1);
  let lastNote = 0;
  const progress = (label: string, total: number) => (n: number) => {
    if (n - lastNote >= 1_000_000 || n === total) {
      note(`  generated ${label}: ${n.toLocaleString('en-GB')}/${total.toLocaleString('en-GB')}`);
      lastNote = n;
    }
  };
  const headRow = (await hub.ledger.readChain(TENANT, HUB, head.seq, head.seq))[0]!;
  generateChain(
    hub,
    {
      node: HUB,
      signer: hub.identity.signer,
      startSeq: head.seq,
      prevHash: headRow.hash,
      // After the hub's own first events: every clock in the chain must increase.
      startMs: Number(headRow.hlc.slice(0, 15)),
    },
    site,
    hubEvents,
    progress('hub chain', hubEvents),
  );
  lastNote = 0;
  generateChain(
    hub,
    { node: SITE, signer: site, startSeq: 0, prevHash: GENESIS_HASH, startMs },
    hub.identity.signer,
    siteEvents,
    progress('site chain', siteEvents),
  );
  sourceDb.pragma('synchronous = FULL');
  // No projection folds the generated type (the hub's own registration was folded when appended).
  hub.ledger.resetCache();
  return { hub, dataDir, events: TOTAL };
}

/** Bare SHA-256 over every event's canonical body, as restore hashes them (one core), in ms. */
function sha256Floor(hub: HoldfastNode): { ms: number; events: number } {
  const sqlite = hub.store.sqliteHandle()!;
  const rows = sqlite
    .prepare('select tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash from ledger_events')
    .raw(true)
    .iterate() as IterableIterator<
    [string, string, number, string, string, string, number, string, string, string]
  >;
  const hash = (nodeCrypto as { hash?: (a: string, d: string, e: 'hex') => string }).hash;
  let ms = 0;
  let events = 0;
  let sink = 0;
  let batch: string[] = [];
  const flush = () => {
    const start = performance.now();
    for (const b of batch)
      sink ^= (
        hash ? hash('sha256', b, 'hex') : nodeCrypto.createHash('sha256').update(b).digest('hex')
      ).charCodeAt(0);
    ms += performance.now() - start;
    events += batch.length;
    batch = [];
  };
  for (const r of rows) {
    batch.push(
      canonicalBody({
        tenant: r[0],
        node: r[1],
        seq: r[2],
        id: r[3],
        hlc: r[4],
        type: r[5],
        v: r[6],
        actor: r[7],
        payloadJson: r[8],
        prevHash: r[9],
      }),
    );
    if (batch.length === 100_000) flush();
  }
  flush();
  if (sink === 0.5) note('unreachable'); // keeps the hashes observable
  return { ms, events };
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const root = tempDir('holdfast-bench-restore-');
  let pgServer: BenchPostgres | null = null;
  onExit(() => {
    pgServer?.stop();
    // HOLDFAST_BENCH_KEEP=1 keeps the source store and the backup (for profiling a restore).
    if (process.env.HOLDFAST_BENCH_KEEP === '1') note(`kept ${root.path}`);
    else root.remove();
  });
  const stores: ('sqlite' | 'postgres')[] = args.only
    ? [args.only]
    : args.quick
      ? ['sqlite', 'postgres']
      : ['sqlite'];
  if (stores.includes('postgres')) pgServer = await startBenchPostgres();

  note(`building a ledger of ${TOTAL.toLocaleString('en-GB')} events (untimed)`);
  const genStart = performance.now();
  const source = await buildSource(root.path);
  const genMs = performance.now() - genStart;
  note(`  built in ${(genMs / 1000).toFixed(0)} s`);

  note('backing up (timed)');
  const dir = `${root.path}/backup`;
  const backup = await runBackup(source.hub, {
    dir,
    key: KEY,
    dataDir: source.dataDir,
    onProgress: every(1_000_000, (d, t) =>
      note(`  backed up ${d.toLocaleString('en-GB')}/${t.toLocaleString('en-GB')}`),
    ),
  });
  note(
    `  ${backup.totalEvents} events, ${backup.newChunks} chunks, ${(backup.newBytes / 2 ** 20).toFixed(0)} MiB, ${(backup.ms / 1000).toFixed(1)} s`,
  );

  note('bare SHA-256 over the same canonical bodies (reference floor)');
  const floor = sha256Floor(source.hub);
  await source.hub.close();
  if (floor.events !== TOTAL)
    throw new Error(`expected ${TOTAL} events in the source, found ${floor.events}`);

  const results: { store: 'sqlite' | 'postgres'; report: RestoreReport; cpuMs: number }[] = [];
  for (const store of stores) {
    const database = store === 'postgres' ? await pgServer!.createDatabase() : null;
    const dataDir = `${root.path}/restored-${store}`;
    note(`restoring onto ${store} (timed)`);
    const cpu = process.cpuUsage();
    const report = await restoreBackup({
      from: dir,
      key: KEY,
      target: { store, databaseUrl: database?.url, dataDir, checkpointEvery: CHECKPOINT_EVERY },
      onProgress: every(1_000_000, (d, t, phase) =>
        note(`  ${phase}: ${d.toLocaleString('en-GB')}/${t.toLocaleString('en-GB')}`),
      ),
    });
    const used = process.cpuUsage(cpu);
    if (report.events !== TOTAL) throw new Error(`restored ${report.events} events, expected ${TOTAL}`);
    results.push({ store, report, cpuMs: (used.user + used.system) / 1000 });
    note(`  ${(report.totalMs / 1000).toFixed(1)} s, ${formatRate(report.eventsPerSecond)} events/s`);
    await database?.drop();
  }

  const floorRate = perSecond(floor.events, floor.ms);
  console.log(`Restore benchmark: ${TOTAL.toLocaleString('en-GB')} events (${describeMachine(machine)})`);
  console.log(
    `backup: ${formatRate(perSecond(backup.totalEvents, backup.ms))} events/s, ${(backup.ms / 1000).toFixed(1)} s, ` +
      `${backup.newChunks} chunks, ${(backup.newBytes / 2 ** 20).toFixed(0)} MiB encrypted`,
  );
  console.log(
    formatTable(
      [
        'restore onto',
        'total s',
        'events/s',
        'load+verify s',
        'of which indexes s',
        'projections s',
        'CPU s',
        'checkpoints own/witnessed',
        'vs 5 min',
      ],
      results.map(({ store, report: r, cpuMs }) => [
        store,
        (r.totalMs / 1000).toFixed(1),
        formatRate(r.eventsPerSecond),
        (r.loadMs / 1000).toFixed(1),
        (r.indexesMs / 1000).toFixed(1),
        (r.rebuildMs / 1000).toFixed(1),
        (cpuMs / 1000).toFixed(1),
        `${r.checkpoints.own}/${r.checkpoints.witnessed}`,
        (r.totalMs / TARGET_MS).toFixed(2),
      ]),
    ),
  );
  console.log(`bare SHA-256 of the same canonical bodies, one core: ${formatRate(floorRate)} events/s`);
  console.log(`load average (1 min) at the end: ${loadavg()[0]!.toFixed(1)} on ${machine.cores} cores`);
  const main = results[0]!.report;
  console.log(
    JSON.stringify({
      bench: 'restore',
      quick: args.quick,
      events: TOTAL,
      machine: describeMachine(machine),
      backup_s: round(backup.ms / 1000, 1),
      backup_events_per_s: round(perSecond(backup.totalEvents, backup.ms)),
      backup_mib: round(backup.newBytes / 2 ** 20),
      restores: results.map(({ store, report: r, cpuMs }) => ({
        store,
        total_s: round(r.totalMs / 1000, 1),
        events_per_s: round(r.eventsPerSecond),
        load_verify_s: round(r.loadMs / 1000, 1),
        indexes_s: round(r.indexesMs / 1000, 1),
        projections_s: round(r.rebuildMs / 1000, 1),
        // CPU time of this process, both threads (a PostgreSQL server's own CPU is not included).
        cpu_s: round(cpuMs / 1000, 1),
        checkpoints_own: r.checkpoints.own,
        checkpoints_witnessed: r.checkpoints.witnessed,
        verified: true,
      })),
      restore_s: round(main.totalMs / 1000, 1),
      restore_events_per_s: round(main.eventsPerSecond),
      target_s: TARGET_MS / 1000,
      ratio_to_target: round(main.totalMs / TARGET_MS, 3),
      sha256_events_per_s: round(floorRate),
      ratio_to_sha256: round(main.eventsPerSecond / floorRate, 3),
      load_average_1m: round(loadavg()[0]!, 1),
    }),
  );
}

function every(
  step: number,
  fn: (done: number, total: number, phase: string) => void,
): (a: unknown, b: number, c?: number) => void {
  let last = -Infinity;
  return (a, b, c) => {
    // runBackup reports (done, total); restore reports (phase, done, total).
    const [phase, done, total] = typeof a === 'string' ? [a, b, c!] : ['', a as number, b];
    if (done - last >= step || done === total || done < last) {
      last = done;
      fn(done, total, phase);
    }
  };
}

await main();
