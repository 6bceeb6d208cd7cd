import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway PostgreSQL server for tests, benchmarks and the drill, started from the system's
 * binaries (it lives in src because `holdfast drill` starts one too).
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
 * Set HOLDFAST_TEST_DATABASE_URL to use an existing server instead (its user must be able to
 * create databases).
 */
export interface TestPostgres {
  adminUrl: string;
  stop(): void;
}

export const INSTALL_HINT =
  'PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found.\n' +
  '  Debian/Ubuntu: apt-get install -y postgresql\n' +
  '  Fedora/RHEL:   dnf install -y postgresql-server\n' +
  '  macOS:         brew install postgresql@15\n' +
  'or point the tests at an existing server: HOLDFAST_TEST_DATABASE_URL=postgres://user:password@host:5432/postgres';

export function findPostgresBinDir(): string | null {
  const candidates: string[] = [];
  if (process.env.HOLDFAST_PG_BIN) candidates.push(process.env.HOLDFAST_PG_BIN);
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(debianRoot, v, 'bin'));
  }
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0) candidates.push(pgConfig.stdout.trim());
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(dir);
  return (
    candidates.find(
      (dir) =>
        existsSync(join(dir, 'initdb')) &&
        existsSync(join(dir, 'pg_ctl')) &&
        existsSync(join(dir, 'postgres')),
    ) ?? null
  );
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

function idOf(user: string): { uid: number; gid: number } | null {
  const result = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const group = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (result.status !== 0 || group.status !== 0) return null;
  return { uid: Number(result.stdout.trim()), gid: Number(group.stdout.trim()) };
}

/** Who PostgreSQL runs as: as root, the `postgres` user (it refuses root); otherwise null (oneself). */
export function postgresOwner(): { uid: number; gid: number } | null {
  const isRoot = process.getuid?.() === 0;
  const owner = isRoot ? idOf('postgres') : null;
  if (isRoot && !owner) {
    throw new Error(
      'running as root, PostgreSQL needs an unprivileged user to run as, and there is no `postgres` user: useradd --system postgres',
    );
  }
  return owner;
}

/** Runs one of PostgreSQL's programs (initdb, pg_ctl, pg_basebackup) as `owner`, in `cwd`. */
export function postgresRunner(
  binDir: string,
  owner: { uid: number; gid: number } | null,
  cwd: string,
): (cmd: string, args: string[]) => void {
  return (cmd, args) => {
    const full = owner
      ? (['runuser', ['-u', 'postgres', '--', join(binDir, cmd), ...args]] as const)
      : ([join(binDir, cmd), args] as const);
    const result = spawnSync(full[0], full[1], { encoding: 'utf8', cwd });
    if (result.status !== 0) {
      throw new Error(`${cmd} failed (exit ${result.status}): ${result.stderr || result.stdout}`);
    }
  };
}

/** A test cluster: superuser postgres, trusted local connections (replication too), UTF-8, C locale. */
export function initdbArgs(dataDir: string): string[] {
  return [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-instructions',
    '--no-sync',
  ];
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const existing = process.env.HOLDFAST_TEST_DATABASE_URL;
  if (existing) return { adminUrl: existing, stop: () => undefined };

  const binDir = findPostgresBinDir();
  if (!binDir) throw new Error(INSTALL_HINT);
  const owner = postgresOwner();
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-pg-'));
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  execFileSync('mkdir', ['-p', socketDir]);
  if (owner) {
    for (const path of [dir, socketDir]) chownSync(path, owner.uid, owner.gid);
  }
  const run = postgresRunner(binDir, owner, dir);
  run('initdb', initdbArgs(dataDir));
  // Durability stays at PostgreSQL's defaults (fsync on, synchronous_commit on): the ledger's
  // acknowledgement promise is tested against the real thing.
  const port = await freePort();
  const options = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=128MB`;
  run('pg_ctl', ['-D', dataDir, '-l', join(dir, 'postgres.log'), '-o', options, '-w', '-t', '60', 'start']);
  let stopped = false;
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
