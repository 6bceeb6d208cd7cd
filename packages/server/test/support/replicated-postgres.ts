import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  findPostgresBinDir,
  freePort,
  INSTALL_HINT,
  initdbArgs,
  postgresOwner,
  postgresRunner,
} from '../../src/drill/postgres.ts';

/**
 * A primary with one synchronous streaming standby, as docs/OPERATIONS.md sets them up: the
 * standby is a pg_basebackup of the primary (-R writes its connection to the primary), named
 * `standby1` by its cluster_name, and the primary waits for it on every commit
 * (synchronous_standby_names = 'standby1', synchronous_commit = on). Real processes: the primary
 * can be killed with SIGKILL and the standby promoted.
 */
export interface ReplicatedPostgres {
  primaryPort: number;
  standbyPort: number;
  /** Admin URL of one server (user postgres, database postgres). */
  adminUrl(port: number): string;
  /** SIGKILL of the primary's postmaster and every process it started: the machine is lost. */
  killPrimary(): void;
  /** `pg_ctl promote` of the standby, waiting until it accepts writes. */
  promoteStandby(): void;
  /** synchronous_standby_names cleared on the server at `port` (reloaded): commits stop waiting. */
  withoutSynchronousStandby(port: number): Promise<void>;
  stop(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPrimaryAndStandby(): Promise<ReplicatedPostgres> {
  const binDir = findPostgresBinDir();
  if (!binDir) throw new Error(INSTALL_HINT);
  const owner = postgresOwner();
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-pg-replicated-'));
  const primaryDir = join(dir, 'primary');
  const standbyDir = join(dir, 'standby');
  const socketDir = join(dir, 'sock');
  execFileSync('mkdir', ['-p', socketDir]);
  if (owner) for (const path of [dir, socketDir]) chownSync(path, owner.uid, owner.gid);
  const run = postgresRunner(binDir, owner, dir);
  const primaryPort = await freePort();
  const standbyPort = await freePort();
  const started: string[] = [];
  const startServer = (dataDir: string, port: number, name: string) => {
    const options = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c max_connections=100 -c cluster_name=${name}`;
    run('pg_ctl', ['-D', dataDir, '-l', join(dir, `${name}.log`), '-o', options, '-w', '-t', '60', 'start']);
    started.push(dataDir);
  };
  const stop = () => {
    for (const dataDir of started) {
      spawnSync(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], {
        stdio: 'ignore',
        ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run('initdb', initdbArgs(primaryDir));
    // initdb's pg_hba.conf already lets local replication connections in (trust, as the test runs).
    appendFileSync(
      join(primaryDir, 'postgresql.conf'),
      ['wal_level = replica', 'synchronous_commit = on', "synchronous_standby_names = 'standby1'", ''].join(
        '\n',
      ),
    );
    startServer(primaryDir, primaryPort, 'primary');
    run('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      standbyDir,
      '-R',
      '-X',
      'stream',
      '--no-sync',
    ]);
    startServer(standbyDir, standbyPort, 'standby1');
    // The primary has its synchronous standby: from now on a commit returns once standby1 has it.
    const admin = new pg.Client({
      connectionString: `postgres://postgres@127.0.0.1:${primaryPort}/postgres`,
    });
    await admin.connect();
    try {
      for (let i = 0; ; i++) {
        const r = await admin.query<{ sync_state: string }>(
          `select sync_state from pg_stat_replication where application_name = 'standby1'`,
        );
        if (r.rows[0]?.sync_state === 'sync') break;
        if (i > 100) throw new Error('standby1 did not become the synchronous standby');
        await sleep(100);
      }
    } finally {
      await admin.end();
    }
  } catch (error) {
    stop();
    throw error;
  }
  return {
    primaryPort,
    standbyPort,
    adminUrl: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
    killPrimary() {
      const postmaster = Number(readFileSync(join(primaryDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' })
        .stdout.split('\n')
        .map((l) => Number(l.trim()))
        .filter((pid) => pid > 0);
      for (const pid of [postmaster, ...children]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      started.splice(started.indexOf(primaryDir), 1);
    },
    promoteStandby() {
      run('pg_ctl', ['-D', standbyDir, '-w', '-t', '60', 'promote']);
    },
    async withoutSynchronousStandby(port) {
      const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
      await c.connect();
      try {
        await c.query(`alter system set synchronous_standby_names = ''`);
        await c.query('select pg_reload_conf()');
      } finally {
        await c.end();
      }
    },
    stop,
  };
}
