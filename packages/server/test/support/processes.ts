import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { ApiSession } from '../../src/simulate/api-client.ts';
import { holdfastArgs } from './cli-entry.ts';
import { createPgDatabase } from './databases.ts';
import { freePort } from './postgres.ts';
import type { Client } from './http.ts';

/**
 * Real `holdfast` processes for tests that run a hub, sites and receivers on loopback: one-shot
 * commands, long-running ones started until they answer, and waits on what they do. Every process,
 * temporary directory and clean-up registered here is dealt with after the file's tests.
 */
const dirs: string[] = [];
const children = new Set<ChildProcess>();
/** Clean-ups run after the file's tests (a test database's drop, for instance). */
export const cleanups: (() => Promise<void>)[] = [];

export function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `holdfast-${name}-`));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  for (const c of [...children]) c.kill('SIGKILL');
  for (const c of cleanups) await c();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const BASE_ENV = {
  CI: '1',
  NO_COLOR: '1',
  HOLDFAST_LOG_LEVEL: 'warn',
  HOLDFAST_SYNC_INTERVAL_SECONDS: '1',
  HOLDFAST_SYNC_MAX_BACKOFF_SECONDS: '2',
};

export function holdfast(args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, holdfastArgs(...args), {
    encoding: 'utf8',
    env: { ...process.env, ...BASE_ENV, ...env },
    timeout: 60_000,
  });
  if (r.status !== 0)
    throw new Error(`holdfast ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** A long-running CLI command; resolves once `ready` says so. */
export async function start(
  args: string[],
  env: Record<string, string>,
  ready: () => Promise<boolean>,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, holdfastArgs(...args), {
    env: { ...process.env, ...BASE_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited (${child.exitCode}): ${out}`);
    if (await ready()) return child;
    if (Date.now() > deadline) throw new Error(`${args.join(' ')} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `holdfast serve` of the node in `dir` on a loopback `port`, once its /health answers. */
export function serve(dir: string, port: number, env: Record<string, string> = {}): Promise<ChildProcess> {
  return start(['-d', dir, 'serve', '--port', String(port), '--host', '127.0.0.1'], env, () =>
    answers(`http://127.0.0.1:${port}/health`),
  );
}

/**
 * A hub on a fresh PostgreSQL database, initialised with the demo provider (not started): its
 * directory, the environment its commands need, the demo password and a one-time enrolment token
 * for a site. The database is dropped after the file's tests.
 */
export async function initDemoHubOnPostgres(): Promise<{
  hubDir: string;
  hubEnv: Record<string, string>;
  databaseUrl: string;
  password: string;
  token: string;
}> {
  const db = await createPgDatabase();
  cleanups.push(db.drop);
  const hubEnv = { HOLDFAST_STORE: 'postgres', HOLDFAST_DATABASE_URL: db.url };
  const hubDir = tempDir('hub');
  const init = holdfast(['-d', hubDir, 'init', '--role', 'hub', '--node', 'hub-1', '--demo'], hubEnv);
  const password = /password, shown once: (\S+)/.exec(init)![1]!;
  const token = holdfast(['-d', hubDir, 'nodes', 'enrol-token'], hubEnv).split('\n')[0]!.trim();
  return { hubDir, hubEnv, databaseUrl: db.url, password, token };
}

/** `holdfast init` of a site node enrolled at the hub with a one-time token. */
export function initSite(dir: string, node: string, hubUrl: string, token: string): string {
  return holdfast(['-d', dir, 'init', '--role', 'site', '--node', node, '--hub', hubUrl, '--token', token]);
}

/**
 * The hub of `initDemoHubOnPostgres` serving, and a SQLite site `site-a` enrolled with it and serving:
 * the start of every hub-lost test. `hub` is the hub's process (the tests kill it and serve again).
 */
export async function serveHubAndSite(
  hubDir: string,
  hubEnv: Record<string, string>,
  token: string,
): Promise<{ hub: ChildProcess; hubPort: number; siteDir: string; sitePort: number }> {
  const hubPort = await freePort();
  const hub = await serve(hubDir, hubPort, hubEnv);
  const siteDir = tempDir('site-a');
  initSite(siteDir, 'site-a', `http://127.0.0.1:${hubPort}`, token);
  const sitePort = await freePort();
  await serve(siteDir, sitePort);
  return { hub, hubPort, siteDir, sitePort };
}

export const answers = async (url: string) => {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
};

export function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** The request shape the case helpers (support/cases.ts) use, over a real process's HTTP session. */
export function asClient(session: ApiSession): Client {
  return {
    async request(method: string, url: string, body?: unknown) {
      const r = await session.call(method, url, body);
      return { statusCode: r.status, body: JSON.stringify(r.json), json: () => r.json };
    },
  } as unknown as Client;
}
