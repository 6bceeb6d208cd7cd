import { chmodSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import type { Statement } from 'better-sqlite3';
import type { Checkpoint } from '@holdfast/core';
import type { HoldfastConfig } from '../config.ts';
import { makeOwnerOnlyDir } from '../node/file-modes.ts';
import { PROVIDER_KEYS_FILE } from '../node/provider-keys.ts';
import { KEY_FILE, NODE_FILE } from '../node/identity.ts';
import { recordStoreKind } from '../node/store-kind.ts';
import { openNode, type HoldfastNode, type OpenNodeOptions } from '../node/node.ts';
import type { Store } from '../store/store.ts';
import { ChainFaultError, type CheckpointTally } from './chain-check.ts';
import {
  BackupFormatError,
  linkProblem,
  listManifests,
  type ChunkEvent,
  type ManifestFile,
} from './format.ts';
import { BackupKeyError, openBackupKeys, type KeySource } from './keys.ts';
import { rebuildProjectionsFast } from './rebuild.ts';
import { walkManifestParallel } from './walk-parallel.ts';

export type RestoreTarget = Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir' | 'checkpointEvery'>;

export interface TopUpResult {
  peer: string;
  /** Events newly stored from this peer (each checked by the sync import: hash, link, signature). */
  events: number;
}

/** A peer's part of a restore, with its own time and rate (the backup's figures do not include it). */
export interface PeerTopUp extends TopUpResult {
  ms: number;
  eventsPerSecond: number;
}

export interface RestoreOptions {
  from: string;
  key: KeySource;
  target: RestoreTarget;
  /** Live peers to pull from after the backup is in (the restored node syncs with its restored identity). */
  peers?: readonly string[];
  /** Pulls everything `peer` holds beyond what the node holds; given by the caller (the sync client). */
  topUp?: (node: HoldfastNode, peer: string) => Promise<TopUpResult>;
  node?: OpenNodeOptions;
  onProgress?: (phase: 'restoring' | 'rebuilding projections', done: number, total: number) => void;
  log?: (line: string) => void;
}

export interface RestoreReport {
  manifest: number;
  manifestFile: string;
  createdAt: string;
  /** Newer manifests that could not be used, and why (their first bad file or event). */
  rejected: { file: string; problem: string }[];
  /** Chain-link warnings about the manifest history (the restore itself does not depend on them). */
  warnings: string[];
  node: string;
  tenant: string;
  store: 'sqlite' | 'postgres';
  events: number;
  /** The backup's chains as verified from the backup (before any peer). */
  chains: { node: string; lastSeq: number }[];
  checkpoints: CheckpointTally;
  /** Peers that answered, each with the events it brought, its time and rate. */
  toppedUp: PeerTopUp[];
  /**
   * Peers that did not answer or refused, and why. The restore went on without them: the restored
   * node tops up from them later (`holdfast top-up --peer …`, or their own sync when they return).
   */
  skippedPeers: { peer: string; problem: string }[];
  /** Events from peers, all peers together. */
  peerEvents: number;
  /** The chains after the peers' events (what the restored node now holds). */
  finalChains: { node: string; lastSeq: number }[];
  chunks: number;
  bytes: number;
  /** Reading, decrypting, checking and inserting the backup, and indexing it. */
  loadMs: number;
  /** Of loadMs: building the ledger's secondary indexes once every event is in. */
  indexesMs: number;
  rebuildMs: number;
  topUpMs: number;
  totalMs: number;
  /** The backup's events over reading, checking, loading and rebuilding them (peers excluded). */
  backupEventsPerSecond: number;
  /** Backup and peer events together over the whole restore. */
  eventsPerSecond: number;
}

export class RestoreError extends Error {}

/**
 * What to do when no manifest in a backup directory can be used: said where the restore stops,
 * since that is when an operator under pressure needs it.
 */
export function noUsableBackupAdvice(from: string): string {
  return [
    'What to do next:',
    `  - Check the key: the passphrase file or key file must be the one that wrapped this backup's data key. It is never stored in the backup directory or on the node: it comes from where your provider keeps it (a password manager, a sealed envelope, a second site).`,
    `  - Try an older copy of the backups (another disk, an off-site copy): \`holdfast backup verify <dir>\` checks one without restoring, and says which manifest restores.`,
    `  - A site can be rebuilt without a backup: initialise a new site with a new node id and an enrolment token from the hub (\`holdfast init --role site --hub <url> --token <token> --node <new id>\`); it receives the provider's ledger from the hub.`,
    `  - A hub cannot be rebuilt from peers alone: its key and identity are only in its backups. If none restores, initialise a new hub with a new node id, register each site's key on it (\`holdfast nodes register\`), and have each site re-pin it (\`holdfast nodes repin-hub --node <new id> --public-key <key> --confirm\`, after confirming the key by phone); the sites then send it everything they hold.`,
    `  - Keep ${from} as it is for investigation.`,
  ].join('\n');
}

/**
 * `holdfast restore --from DIR`: rebuilds a node, on either store, from the newest manifest whose
 * every chunk, event and checkpoint checks out. A manifest that fails is reported (its first bad file
 * or event named), what it had written is removed, and the previous manifest is tried. The data key
 * is unwrapped first, so a wrong passphrase or key file fails before anything is written. The
 * target must be empty. Events are checked as they stream from the chunks and inserted in one
 * transaction per chunk through the store's bulk path (no per-event import planning: each chain is
 * checked in full from seq 1, which is what import's checks establish piecewise); checkpoints
 * follow once all of them are checked; then the projections are rebuilt and live peers top it up.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreReport> {
  const started = performance.now();
  const log = options.log ?? (() => undefined);
  const { target } = options;
  await assertEmptyTarget(target);
  let keys: ReturnType<typeof openBackupKeys>;
  try {
    keys = openBackupKeys(options.from, options.key);
  } catch (error) {
    // Nothing is written before the key opens: say so, and what to try instead.
    if (error instanceof BackupKeyError)
      error.message = `${error.message} (nothing was written)\n${noUsableBackupAdvice(options.from)}`;
    throw error;
  }
  const manifests = listManifests(options.from);
  if (manifests.length === 0)
    throw new RestoreError(
      `${options.from} holds no backup manifest: nothing was written.\n${noUsableBackupAdvice(options.from)}`,
    );

  const rejected: { file: string; problem: string }[] = [];
  const dataDirExisted = existsSync(target.dataDir);
  for (const m of manifests) {
    if (!m.manifest || m.problem) {
      rejected.push({ file: m.file, problem: m.problem ?? 'is damaged' });
      log(`${m.file} ${m.problem ?? 'is damaged'}: trying the previous manifest`);
      continue;
    }
    if (m.manifest.keyId !== keys.keyId) {
      rejected.push({ file: m.file, problem: 'was made with another data key' });
      continue;
    }
    try {
      const report = await restoreFrom(options, keys, m, started);
      report.rejected = rejected;
      report.warnings = manifests.flatMap((o) => {
        const p = linkProblem(o, manifests);
        return p ? [`${o.file} ${p}`] : [];
      });
      // Every manifest of one directory is signed by the same node key; another key means another
      // writer, which deserves a look even though the restored manifest checked out on its own.
      for (const o of manifests)
        if (o.manifest && o.manifest.publicKey !== m.manifest.publicKey)
          report.warnings.push(`${o.file} is signed by another key than ${m.file}`);
      return report;
    } catch (error) {
      if (!(error instanceof BackupFormatError) && !(error instanceof ChainFaultError)) {
        await wipeTarget(target, dataDirExisted);
        throw error;
      }
      rejected.push({ file: m.file, problem: error.message });
      log(
        `${m.file} cannot be restored: ${error.message}; removing what it wrote and trying the previous manifest`,
      );
      await wipeTarget(target, dataDirExisted);
    }
  }
  throw new RestoreError(
    `no manifest in ${options.from} restores cleanly; nothing was left in the target:\n  ${rejected.map((r) => `${r.file}: ${r.problem}`).join('\n  ')}\n${noUsableBackupAdvice(options.from)}`,
  );
}

async function restoreFrom(
  options: RestoreOptions,
  keys: ReturnType<typeof openBackupKeys>,
  m: ManifestFile,
  started: number,
): Promise<RestoreReport> {
  const manifest = m.manifest!;
  const { target } = options;
  let node: HoldfastNode | null = null;
  const loadStart = performance.now();
  try {
    let bulk: BulkWriter | null = null;
    const walk = await walkManifestParallel(options.from, keys, manifest, {
      identity: async (identity) => {
        makeOwnerOnlyDir(target.dataDir);
        const keyPath = join(target.dataDir, KEY_FILE);
        writeFileSync(keyPath, identity.nodeKey, { mode: 0o600, flag: 'wx' });
        chmodSync(keyPath, 0o600);
        writeFileSync(join(target.dataDir, NODE_FILE), identity.nodeJson, { flag: 'wx', mode: 0o600 });
        if (identity.providerKeys !== undefined)
          writeFileSync(join(target.dataDir, PROVIDER_KEYS_FILE), identity.providerKeys, {
            flag: 'wx',
            mode: 0o600,
          });
        recordStoreKind(target);
        node = await openNode(target, options.node);
        bulk = await BulkWriter.start(node.store);
      },
      events: (events) => bulk!.insertEvents(events),
      checkpoints: (checkpoints) => bulk!.insertCheckpoints(checkpoints),
      progress: (done, total) => options.onProgress?.('restoring', done, total),
    });
    const indexesStart = performance.now();
    await (bulk as BulkWriter | null)?.finish();
    const indexesMs = performance.now() - indexesStart;
    const loadMs = performance.now() - loadStart;
    const restored = node as unknown as HoldfastNode;

    const rebuildStart = performance.now();
    await rebuildProjectionsFast(restored, walk, (d, t) =>
      options.onProgress?.('rebuilding projections', d, t),
    );
    restored.ledger.resetCache();
    const rebuildMs = performance.now() - rebuildStart;

    const topUpStart = performance.now();
    const toppedUp: PeerTopUp[] = [];
    const skippedPeers: { peer: string; problem: string }[] = [];
    if ((options.peers ?? []).length > 0 && !options.topUp)
      throw new RestoreError('--peer needs the sync client, which this build does not have');
    // What the backup gave is verified and stays: a peer that is down or refuses is named and left
    // for later, and the others still top the node up.
    for (const peer of options.peers ?? []) {
      const peerStart = performance.now();
      try {
        const r = await options.topUp!(restored, peer);
        const ms = performance.now() - peerStart;
        toppedUp.push({ ...r, ms, eventsPerSecond: ms > 0 ? (r.events * 1000) / ms : 0 });
      } catch (error) {
        const problem = (error as Error).message;
        skippedPeers.push({ peer, problem });
        (options.log ?? (() => undefined))(
          `peer ${peer} skipped: ${problem}; the restore goes on without it (top up from it later with \`holdfast top-up --peer ${peer}\`)`,
        );
      }
    }
    const finalHeads = await restored.ledger.chainHeads(manifest.tenant);
    const finalChains = [...finalHeads]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([node, lastSeq]) => ({ node, lastSeq }));
    const topUpMs = performance.now() - topUpStart;
    // The restored chains were verified above: from now on the node holds the store to them.
    await markRestoredHeads(restored);
    await restored.close();
    node = null;
    const totalMs = performance.now() - started;
    const peerEvents = toppedUp.reduce((n, t) => n + t.events, 0);
    return {
      manifest: manifest.number,
      manifestFile: m.file,
      createdAt: manifest.createdAt,
      rejected: [],
      warnings: [],
      node: manifest.node,
      tenant: manifest.tenant,
      store: target.store,
      events: walk.events,
      chains: walk.chains,
      checkpoints: walk.checkpoints,
      toppedUp,
      skippedPeers,
      peerEvents,
      finalChains,
      chunks: walk.chunks,
      bytes: walk.bytes,
      loadMs,
      indexesMs,
      rebuildMs,
      topUpMs,
      totalMs,
      backupEventsPerSecond: loadMs + rebuildMs > 0 ? (walk.events * 1000) / (loadMs + rebuildMs) : 0,
      eventsPerSecond: totalMs > 0 ? ((walk.events + peerEvents) * 1000) / totalMs : 0,
    };
  } finally {
    if (node) await (node as HoldfastNode).close();
  }
}

/** Refuses a target that holds anything: a restore never mixes into existing data. */
async function assertEmptyTarget(target: RestoreTarget): Promise<void> {
  if (existsSync(target.dataDir) && readdirSync(target.dataDir).length > 0)
    throw new RestoreError(
      `the data directory ${target.dataDir} is not empty: restore only into an empty directory (nothing was written)`,
    );
  if (target.store === 'postgres') {
    const tables = await publicTables(target.databaseUrl!);
    if (tables.length > 0)
      throw new RestoreError(
        `the PostgreSQL database is not empty (it has ${tables.length} tables): restore only into an empty database (nothing was written)`,
      );
  }
}

async function publicTables(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const r = await client.query<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = 'public'",
    );
    return r.rows.map((row) => row.table_name);
  } finally {
    await client.end();
  }
}

/** Removes what a failed attempt wrote: the target was empty before, so everything in it is ours. */
/** Writes the head mark of every own chain the restore (and its top-up) left in the store. */
async function markRestoredHeads(node: HoldfastNode): Promise<void> {
  const tenants = await node.store.db
    .selectFrom('ledger_events')
    .select('tenant')
    .distinct()
    .where('node', '=', node.identity.node)
    .execute();
  await node.ledger.withWriteLock(async () => {
    for (const { tenant } of tenants) await node.ledger.markStoredHead(tenant);
  });
}

async function wipeTarget(target: RestoreTarget, dataDirExisted: boolean): Promise<void> {
  if (existsSync(target.dataDir)) {
    if (dataDirExisted)
      for (const name of readdirSync(target.dataDir))
        rmSync(join(target.dataDir, name), { recursive: true, force: true });
    else rmSync(target.dataDir, { recursive: true, force: true });
  }
  if (target.store === 'postgres') {
    const client = new pg.Client({ connectionString: target.databaseUrl });
    await client.connect();
    try {
      const r = await client.query<{ table_name: string }>(
        "select table_name from information_schema.tables where table_schema = 'public'",
      );
      for (const { table_name } of r.rows)
        await client.query(`drop table if exists "${table_name.replace(/"/g, '""')}" cascade`);
    } finally {
      await client.end();
    }
  }
}

/** Events bound to one insert statement (12 values each, well under SQLite's 32,766). */
const ROWS = 64;
const EVENT_COLUMNS = 'tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject';

/**
 * Inserts checked events in bulk: on SQLite one prepared statement in one transaction per chunk,
 * with synchronous=NORMAL while loading (a crash mid-restore leaves a target to wipe and restore
 * again, never a half-trusted node; FULL is set back and the WAL checkpointed at the end); on
 * PostgreSQL one INSERT ... SELECT FROM unnest(arrays) per chunk.
 */
class BulkWriter {
  private constructor(private readonly store: Store) {}

  private insertMany: Statement<unknown[]> | null = null;
  private insertOne: Statement<unknown[]> | null = null;

  /** Secondary indexes of ledger_events, dropped while loading and built again at the end. */
  private deferred: { name: string; sql: string }[] = [];

  static async start(store: Store): Promise<BulkWriter> {
    const writer = new BulkWriter(store);
    const sqlite = store.sqliteHandle();
    // Building an index once over sorted keys is far cheaper than keeping it up to date through
    // millions of random inserts (event ids and subjects are random). The chain index stays: its
    // keys arrive in order, and it is the store's own guard against a duplicate (node, seq).
    if (sqlite) {
      sqlite.pragma('synchronous = NORMAL');
      sqlite.pragma('cache_size = -262144');
      // The index builds at the end sort in memory, on a second core where SQLite can use one.
      sqlite.pragma('temp_store = MEMORY');
      sqlite.pragma('threads = 2');
      writer.deferred = sqlite
        .prepare(
          "select name, sql from sqlite_master where type = 'index' and tbl_name = 'ledger_events' and sql is not null and name <> 'ledger_events_chain'",
        )
        .all() as { name: string; sql: string }[];
      for (const i of writer.deferred) sqlite.exec(`drop index "${i.name}"`);
    } else {
      const r = await sql<{
        name: string;
        sql: string;
      }>`select indexname as name, indexdef as sql from pg_indexes
        where schemaname = 'public' and tablename = 'ledger_events' and indexname not in ('ledger_events_chain', 'ledger_events_pkey')`.execute(
        store.db,
      );
      writer.deferred = r.rows;
      for (const i of writer.deferred) await sql`drop index ${sql.id(i.name)}`.execute(store.db);
    }
    return writer;
  }

  async insertEvents(events: readonly ChunkEvent[]): Promise<void> {
    if (events.length === 0) return;
    const sqlite = this.store.sqliteHandle();
    if (sqlite) {
      // ROWS events a statement: one statement step per event costs more than binding its values.
      this.insertMany ??= sqlite.prepare(
        `insert into ledger_events (${EVENT_COLUMNS}) values ${new Array<string>(ROWS).fill(`(${'?, '.repeat(11)}?)`).join(', ')}`,
      );
      this.insertOne ??= sqlite.prepare(
        `insert into ledger_events (${EVENT_COLUMNS}) values (${'?, '.repeat(11)}?)`,
      );
      const values = (e: ChunkEvent, into: unknown[], at: number) => {
        into[at] = e.tenant;
        into[at + 1] = e.node;
        into[at + 2] = e.seq;
        into[at + 3] = e.id;
        into[at + 4] = e.hlc;
        into[at + 5] = e.type;
        into[at + 6] = e.v;
        into[at + 7] = e.actor;
        into[at + 8] = e.payloadJson;
        into[at + 9] = e.prevHash;
        into[at + 10] = e.hash;
        into[at + 11] = e.subject;
      };
      const many = this.insertMany;
      const one = this.insertOne;
      sqlite.transaction(() => {
        const batch = new Array<unknown>(ROWS * 12);
        let i = 0;
        for (; i + ROWS <= events.length; i += ROWS) {
          for (let j = 0; j < ROWS; j++) values(events[i + j]!, batch, j * 12);
          many.run(batch);
        }
        const single = new Array<unknown>(12);
        for (; i < events.length; i++) {
          values(events[i]!, single, 0);
          one.run(single);
        }
      })();
      return;
    }
    const col = <T>(f: (e: ChunkEvent) => T): T[] => events.map(f);
    await sql`insert into ledger_events (${sql.raw(EVENT_COLUMNS)})
      select * from unnest(
        ${col((e) => e.tenant)}::text[], ${col((e) => e.node)}::text[], ${col((e) => e.seq)}::bigint[],
        ${col((e) => e.id)}::text[], ${col((e) => e.hlc)}::text[], ${col((e) => e.type)}::text[],
        ${col((e) => e.v)}::integer[], ${col((e) => e.actor)}::text[], ${col((e) => e.payloadJson)}::text[],
        ${col((e) => e.prevHash)}::text[], ${col((e) => e.hash)}::text[], ${col((e) => e.subject)}::text[]
      )`.execute(this.store.db);
  }

  async insertCheckpoints(checkpoints: readonly Checkpoint[]): Promise<void> {
    await this.store.transaction(async (trx) => {
      for (let i = 0; i < checkpoints.length; i += 500)
        await trx
          .insertInto('checkpoints')
          .values(checkpoints.slice(i, i + 500))
          .execute();
    });
  }

  async finish(): Promise<void> {
    const sqlite = this.store.sqliteHandle();
    if (sqlite) {
      for (const i of this.deferred) sqlite.exec(i.sql);
      sqlite.pragma('synchronous = FULL');
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
      return;
    }
    await this.store.db.connection().execute(async (conn) => {
      await sql`set maintenance_work_mem = '256MB'`.execute(conn);
      for (const i of this.deferred) await sql.raw(i.sql).execute(conn);
    });
  }
}
