import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { holdfastArgs } from '../../../server/test/support/cli-entry.ts';

/**
 * A real `holdfast start` process for browser tests: its own data directory and free port, the demo
 * provider seeded at first start (its one-time password read from the process output), serving the
 * built web app from packages/web/dist on the API's own port.
 */

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const WEB_DIR = join(REPO_ROOT, 'packages/web');

/** The demo provider's accounts (`packages/server/src/demo.ts`). */
export const DEMO = {
  admin: 'provider-admin@northshire',
  adviser: 'health-adviser@northshire',
  clinician: 'clinician@northshire',
  shiftManager: 'shift-manager@northshire',
  receptionist: 'receptionist@northshire',
  auditor: 'auditor@northshire',
} as const;

export interface RunningHoldfast {
  /** http://localhost:PORT: WebAuthn needs a host name (`localhost`), never 127.0.0.1. */
  url: string;
  port: number;
  dataDir: string;
  /** The demo provider's password, printed once at first start. */
  demoPassword: string;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Builds packages/web/dist when it is missing or older than its sources, with the same script
 * `npm start` runs (scripts/build-web.mjs). Test files run in parallel workers: a lock directory
 * makes the others wait for one build instead of racing it (vite empties dist before writing).
 */
export async function ensureWebBuild(): Promise<void> {
  const lock = join(REPO_ROOT, '.test-results/web-build.lock');
  mkdirSync(join(REPO_ROOT, '.test-results'), { recursive: true });
  const deadline = Date.now() + 240_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another worker is building; a lock older than the deadline is a leftover of a killed run.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 240_000)
        rmSync(lock, { recursive: true });
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${lock}: remove it if no build runs`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    const build = spawnSync(process.execPath, ['scripts/build-web.mjs'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 230_000,
    });
    if (build.status !== 0 || !existsSync(join(WEB_DIR, 'dist/index.html')))
      throw new Error(`the web build failed (exit ${build.status}):\n${build.stdout}\n${build.stderr}`);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Spawns `holdfast <args>` from the suite's bundle of the CLI (see server/test/support/cli-entry.ts). */
export function spawnHoldfast(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, holdfastArgs(...args), {
    cwd: REPO_ROOT,
    env: { ...process.env, CI: '1', NO_COLOR: '1', TZ: 'UTC', HOLDFAST_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Waits for `child` to print `pattern`; fails with what it printed if it exits or takes too long. */
export async function waitForOutput(
  child: ChildProcess,
  output: () => string,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(output());
    if (match) return match;
    if (child.exitCode !== null)
      throw new Error(`holdfast exited (${child.exitCode}) before printing ${pattern}:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`holdfast did not print ${pattern} in time:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops a child with SIGTERM (a clean shutdown), then SIGKILL if it does not go. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * `holdfast start` on a fresh data directory and a free port (the demo provider, web app and API);
 * or, given a data directory seeded already (see seed.ts), `holdfast serve` on it.
 */
export async function startHoldfast(
  options: {
    seeded?: { dataDir: string; demoPassword: string };
    keepDataDir?: boolean;
    /** HOLDFAST_* settings for this server (for example a shorter message deadline). */
    env?: Record<string, string>;
  } = {},
): Promise<RunningHoldfast> {
  await ensureWebBuild();
  const dataDir = options.seeded?.dataDir ?? mkdtempSync(join(tmpdir(), 'holdfast-web-'));
  const port = await freePort();
  const child = spawnHoldfast(
    ['-d', dataDir, options.seeded ? 'serve' : 'start', '--port', String(port)],
    options.env ?? {},
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const output = () => out;
  try {
    await waitForOutput(child, output, /listening on http:\/\/localhost:\d+/);
    const demoPassword =
      options.seeded?.demoPassword ??
      (await waitForOutput(child, output, /all with the password (\S+)/, 10_000))[1]!;
    return {
      url: `http://localhost:${port}`,
      port,
      dataDir,
      demoPassword,
      output,
      async stop() {
        await stopChild(child);
        if (!options.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}
