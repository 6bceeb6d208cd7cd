/**
 * Shared helpers for the benchmarks under bench/: arguments, machine description, timing, tables,
 * temporary directories and a throwaway PostgreSQL server (or HOLDFAST_TEST_DATABASE_URL).
 *
 * Benchmarks print a readable report and, as their very last line, one JSON object that scripts
 * can parse (`tail -n 1`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino from 'pino';
import { CONFIG_DEFAULTS } from '../packages/server/src/config.ts';
import { buildHoldfastApp } from '../packages/server/src/http/holdfast-app.ts';
import { createLogger } from '../packages/server/src/http/logger.ts';
import type { HoldfastNode } from '../packages/server/src/node/node.ts';
import { CommitFanIn } from '../packages/server/src/node/commit-fan-in.ts';
import { sessionNotices } from '../packages/server/src/auth/sessions.ts';
import pg from 'pg';
import { startTestPostgres } from '../packages/server/test/support/postgres.ts';

/** Words that benchmark notes are made of: clinical-sounding text of realistic length, no real data. */
export const NOTE_WORDS = (
  'patient reports chest pain radiating left arm onset two hours ago no previous history ' +
  'breathless on exertion advised ambulance safety netting given callback arranged within ' +
  'one hour temperature raised fluids encouraged paracetamol taken mother present child ' +
  'alert and talking rash non blanching checked glass test negative GP informed'
).split(' ');

export interface BenchArgs {
  /** `--quick`: smaller sizes, for a smoke run (the whole run stays under a minute). */
  quick: boolean;
  /** `--only sqlite|postgres`: run one store only (handy while profiling). */
  only: 'sqlite' | 'postgres' | null;
}

export function parseBenchArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const args: BenchArgs = { quick: false, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--only') {
      const v = argv[++i];
      if (v !== 'sqlite' && v !== 'postgres') throw new Error('--only takes sqlite or postgres');
      args.only = v;
    } else if (a === '--') continue;
    else throw new Error(`unknown argument ${a} (known: --quick, --only sqlite|postgres)`);
  }
  return args;
}

/** The common arguments plus `--cpu-prof DIR` (where the profiles go; `what` says which, for the error). */
export function parseBenchArgsWithProfile(what: string): BenchArgs & { cpuProf: string | null } {
  const argv = process.argv.slice(2);
  const rest: string[] = [];
  let cpuProf: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cpu-prof') {
      cpuProf = argv[++i] ?? '';
      if (!cpuProf) throw new Error(`--cpu-prof takes a directory for ${what}`);
    } else rest.push(argv[i]!);
  }
  return { ...parseBenchArgs(rest), cpuProf };
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) cpu = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux: os.cpus() it is
  }
  return {
    cpu,
    cores: availableParallelism(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export function describeMachine(m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, node ${m.node}, ${m.platform}`;
}

/** Milliseconds taken by `fn`, measured with the monotonic high-resolution clock. */
export async function timeMs(fn: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Rounds a rate for the JSON line (whole numbers) or a ratio (three decimals). */
export function round(value: number, decimals = 0): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

export function formatRate(perS: number): string {
  return Math.round(perS).toLocaleString('en-GB');
}

/** A plain-text table with right-aligned columns after the first. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Progress and notes go to stderr, so stdout holds only the report and the JSON line. */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

export interface TempDir {
  path: string;
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface BenchPostgres {
  adminUrl: string;
  /** True when HOLDFAST_TEST_DATABASE_URL pointed at an existing server. */
  external: boolean;
  createDatabase(): Promise<{ url: string; drop(): Promise<void> }>;
  stop(): void;
}

/**
 * A PostgreSQL server for a benchmark: the throwaway one the tests use (default durability: fsync
 * on, synchronous_commit on), or the server at HOLDFAST_TEST_DATABASE_URL. Databases created with
 * `createDatabase` are dropped by their `drop()`.
 */
export async function startBenchPostgres(): Promise<BenchPostgres> {
  const external = Boolean(process.env.HOLDFAST_TEST_DATABASE_URL);
  const server = await startTestPostgres();
  const adminQuery = async (text: string): Promise<void> => {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
      await admin.query(text);
    } finally {
      await admin.end();
    }
  };
  return {
    adminUrl: server.adminUrl,
    external,
    async createDatabase() {
      const name = `hf_bench_${randomBytes(6).toString('hex')}`;
      await adminQuery(`create database ${name}`);
      const url = new URL(server.adminUrl);
      url.pathname = `/${name}`;
      return { url: url.toString(), drop: () => adminQuery(`drop database if exists ${name} with (force)`) };
    },
    stop: () => server.stop(),
  };
}

/** Runs `cleanup` once, on normal exit, on an error or on Ctrl-C. */
export function onExit(cleanup: () => void): void {
  let done = false;
  const once = (): void => {
    if (done) return;
    done = true;
    try {
      cleanup();
    } catch (error) {
      note(`cleanup failed: ${String(error)}`);
    }
  };
  process.on('exit', once);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      once();
      process.exit(130);
    });
  }
}

/** What the server child of a bench reports about one measured phase. */
export interface ServerPhaseStats {
  /** Event-loop delay of the server's main thread (perf_hooks, 1 ms resolution), in ms. */
  eldP50Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  /** CPU time of the whole server process (main thread, worker threads, libuv) over the phase. */
  cpuMs: number;
  wallMs: number;
}

/** What the bench parent tells its server child. */
export type ServerCommand = { type: 'phase-start' } | { type: 'phase-end' } | { type: 'stop' };

/**
 * Serves `node` as `holdfast start` would (the real app, request logs at info to
 * `<dataDir>/server.log`, default throttle and session policy, checkpoints every T seconds) on a free
 * loopback port, and answers the parent's phase and stop commands with `phase` and `stopped`
 * messages. Returns the port; the caller sends its own `ready` message.
 */
export async function serveBenchNode(
  node: HoldfastNode,
  tenant: string,
  dataDir: string,
  /** PostgreSQL: hear the other hub processes' commits, as `holdfast serve` does. */
  databaseUrl?: string,
): Promise<number> {
  const toParent = (m: { type: 'phase'; stats: ServerPhaseStats } | { type: 'stopped' }): void =>
    void process.send?.(m);
  const logger = createLogger('info', pino.destination({ dest: join(dataDir, 'server.log'), sync: false }));
  const { app } = await buildHoldfastApp(node, { logger });
  const fanIn = databaseUrl
    ? new CommitFanIn(node.ledger, databaseUrl, { channels: [sessionNotices(node.store)] })
    : null;
  await fanIn?.start();
  const checkpoints = setInterval(() => {
    node.ledger.checkpointNow(tenant).catch((error: unknown) => note(`checkpoint failed: ${String(error)}`));
  }, CONFIG_DEFAULTS.checkpointIntervalSeconds * 1000);
  checkpoints.unref();
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;

  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  let cpu = process.cpuUsage();
  let wall = performance.now();
  process.on('message', (m: ServerCommand) => {
    if (m.type === 'phase-start') {
      eld.reset();
      cpu = process.cpuUsage();
      wall = performance.now();
    } else if (m.type === 'phase-end') {
      const used = process.cpuUsage(cpu);
      toParent({
        type: 'phase',
        stats: {
          eldP50Ms: eld.percentile(50) / 1e6,
          eldP99Ms: eld.percentile(99) / 1e6,
          eldMaxMs: eld.max / 1e6,
          cpuMs: (used.user + used.system) / 1000,
          wallMs: performance.now() - wall,
        },
      });
    } else {
      clearInterval(checkpoints);
      void (async () => {
        await app.close();
        await fanIn?.stop();
        await node.ledger.checkpointNow(tenant).catch(() => null);
        await node.close();
        logger.flush();
        toParent({ type: 'stopped' });
        process.disconnect();
      })();
    }
  });
  return port;
}
