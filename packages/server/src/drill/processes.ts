import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Real `holdfast` processes for the drill: each node serves in a child process of its own (so a
 * SIGKILL is a real crash), and one-off commands (backup, restore, verify) run as the operator would
 * run them. Output goes to a log file per process; the last lines are shown when something fails.
 */

// The test suite starts hundreds of processes and points this at its one-off bundle of the same
// sources (HOLDFAST_CLI_BUNDLE, made by its global setup); an operator's drill runs the CLI itself.
const BIN =
  process.env.HOLDFAST_CLI_BUNDLE ?? fileURLToPath(new URL('../../bin/holdfast.mjs', import.meta.url));

export type Env = Record<string, string>;

/** The environment of a child: this one's, minus anything HOLDFAST_* that could point it elsewhere. */
function childEnv(env: Env): NodeJS.ProcessEnv {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('HOLDFAST_') || k === 'HOLDFAST_PG_BIN' || k === 'HOLDFAST_CLI_BUNDLE',
    ),
  );
  return { ...base, NO_COLOR: '1', ...env };
}

export function tailOf(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class NodeProcess {
  private exited: Promise<number | null>;
  exitCode: number | null = null;
  running = true;

  private constructor(
    readonly name: string,
    readonly url: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
    log: WriteStream,
  ) {
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.running = false;
        this.exitCode = code;
        log.write(`\n[drill] ${name} exited: code ${code}, signal ${signal}\n`);
        resolve(code);
      }),
    );
  }

  /** `holdfast serve` for one node, on 127.0.0.1:`port`. */
  static serve(name: string, port: number, env: Env, logFile: string): NodeProcess {
    const log = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(process.execPath, [BIN, 'serve', '--port', String(port), '--host', '127.0.0.1'], {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new NodeProcess(name, `http://127.0.0.1:${port}`, logFile, child, log);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Waits until /health answers 200 (the store open, projections rebuilt, the port listening). */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (!this.running)
        throw new Error(
          `${this.name} exited (code ${this.exitCode}) before serving:\n${tailOf(this.logFile)}`,
        );
      try {
        const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`${this.name} did not answer /health within ${timeoutMs} ms:\n${tailOf(this.logFile)}`);
  }

  /** A crash: no shutdown code runs. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** At once, without waiting (the drill itself is being interrupted). */
  killNow(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** A clean stop (SIGTERM: the node seals its chain and closes its store), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Commands still running, so that an interrupted drill can end them too. */
const runningCommands = new Set<ChildProcess>();

export function killRunningCommands(): void {
  for (const child of runningCommands) child.kill('SIGKILL');
}

/** Runs one `holdfast` command to its end; its output is appended to `logFile` too. */
export function runHoldfast(
  args: string[],
  env: Env,
  logFile: string,
  timeoutMs = 300_000,
): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runningCommands.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      runningCommands.delete(child);
      clearTimeout(timer);
      const log = createWriteStream(logFile, { flags: 'a' });
      log.end(`$ holdfast ${args.join(' ')}\n${stdout}${stderr}[exit ${code}]\n`);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
