import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { openNode } from '../../src/node/node.ts';
import { DISK_FULL_MESSAGE } from '../../src/store/failures.ts';
import { Client, startTestApp, type TestApp, OPERATOR_HEADERS } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * A node whose disk fills up while an adviser keeps taking calls. Every call it acknowledged (2xx)
 * must be there after space is freed and the node restarted; every call it could not keep must be
 * answered 503 "the node cannot write: its disk is full" (never a generic 500), must not be stored,
 * and /health must say the node cannot write, then recover once space is freed.
 *
 * The real thing is a small tmpfs under a SQLite store (ENOSPC from the file system). Where the
 * sandbox refuses the mount the test says so and is skipped; the same run with SQLite's
 * max_page_count (SQLITE_FULL from SQLite's own limit, the same error path through the node) runs
 * everywhere.
 */

const TMPFS_SIZE = '24m';
/** A new PostgreSQL database starts as a copy of template1 (about 8 MiB). */
const PG_TMPFS_SIZE = '48m';

function mountSmallTmpfs(size: string, owner?: string): { dir: string } | { refused: string } {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-diskfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
    if (owner) execFileSync('chown', [`${owner}:${owner}`, dir], { stdio: 'pipe' });
    return { dir };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const why = (error as { stderr?: Buffer }).stderr?.toString().trim() || String(error);
    return { refused: `mounting a tmpfs is not allowed here (${why})` };
  }
}

interface DiskFiller {
  /** Takes away the space left, but a little, so a few calls still fit before the disk is full. */
  fill(t: TestApp): void;
  free(t: TestApp): void;
  /** What the store reports as the cause. */
  causeCode: string;
}

/** Fills the tmpfs with a file until the file system refuses (ENOSPC), then gives back `slackBytes`. */
function tmpfsFiller(dir: string, slackBytes: number, causeCode: string): DiskFiller {
  const file = join(dir, 'filler');
  return {
    causeCode,
    fill() {
      const fd = openSync(file, 'w');
      const chunk = Buffer.alloc(64 * 1024, 1);
      let written = 0;
      try {
        for (;;) written += writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
      expect(written).toBeGreaterThan(slackBytes);
      execFileSync('truncate', ['-s', String(written - slackBytes), file]);
    },
    free() {
      unlinkSync(file);
    },
  };
}

/** SQLite's max_page_count: the database may grow by `slackPages` pages and no more. */
function pageLimitFiller(slackPages: number): DiskFiller {
  return {
    causeCode: 'SQLITE_FULL',
    fill(t) {
      const db = t.node.store.sqliteHandle()!;
      const pages = db.pragma('page_count', { simple: true }) as number;
      db.pragma(`max_page_count = ${pages + slackPages}`);
    },
    free(t) {
      t.node.store.sqliteHandle()!.pragma('max_page_count = 4294967294');
    },
  };
}

interface Attempt {
  marker: string;
  key: string;
  status: number;
  body: { caseId?: string; code?: string; detail?: string };
}

async function diskFullRun(t: TestApp, logLines: string[], filler: DiskFiller): Promise<void> {
  const tenant = 'northshire';
  const site = t.providers[0]!.sites[0]!;
  const adviser = new Client(t.app, t.clock);
  expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
  const call = (marker: string) => ({
    siteId: site,
    caller: {
      name: 'Sam Caller',
      relationship: 'self',
      callbackNumber: '0113 496 0123',
      callbackNumberReadBack: true,
    },
    location: marker,
    presentingComplaint: 'Chest pain',
  });
  const post = async (marker: string, key: string): Promise<Attempt> => {
    const res = await adviser.request('POST', '/api/v1/calls', call(marker), { 'idempotency-key': key });
    return { marker, key, status: res.statusCode, body: res.json() as Attempt['body'] };
  };

  const attempts: Attempt[] = [];
  for (let i = 0; i < 5; i++) attempts.push(await post(`call ${attempts.length}`, randomUUID()));
  expect(attempts.map((a) => a.status)).toEqual([201, 201, 201, 201, 201]);

  filler.fill(t);
  // Keep taking calls until the node has refused 20 in a row (bounded: the disk fills long before).
  let refusedInARow = 0;
  while (refusedInARow < 20 && attempts.length < 5000) {
    const a = await post(`call ${attempts.length}`, randomUUID());
    attempts.push(a);
    refusedInARow = a.status === 503 ? refusedInARow + 1 : 0;
  }
  const acknowledged = attempts.filter((a) => a.status >= 200 && a.status < 300);
  const refused = attempts.filter((a) => a.status >= 500);
  // The run must have shown both: calls kept on the filling disk and calls refused on the full one.
  expect(acknowledged.length).toBeGreaterThan(5);
  expect(refused.length).toBeGreaterThanOrEqual(20);
  expect(attempts.filter((a) => a.status < 200 || (a.status >= 300 && a.status < 500))).toEqual([]);
  for (const a of refused) {
    expect(a.status).toBe(503);
    expect(a.body).toMatchObject({ code: 'disk_full', detail: DISK_FULL_MESSAGE });
  }

  const health = await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS });
  expect(health.statusCode).toBe(503);
  expect(health.json()).toMatchObject({
    status: 'unavailable',
    problem: DISK_FULL_MESSAGE,
    cause: { code: filler.causeCode },
  });
  // The log names the real cause, not a rollback that followed it, and no patient data.
  const errors = logLines.filter((l) => l.includes('"level":50'));
  expect(errors.some((l) => l.includes(DISK_FULL_MESSAGE) && l.includes(filler.causeCode))).toBe(true);
  expect(logLines.filter((l) => /cannot rollback/i.test(l))).toEqual([]);
  expect(logLines.filter((l) => /Sam Caller|496 0123|call \d+/.test(l))).toEqual([]);

  filler.free(t);
  // The node notices by itself (a load balancer sends no writes to an unhealthy node).
  const recovered = await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS });
  expect(recovered.statusCode, recovered.body).toBe(200);
  // A refused call sent again with its key is opened now; an acknowledged one sent again is not repeated.
  const retried = await post(refused[0]!.marker, refused[0]!.key);
  expect(retried.status).toBe(201);
  const repeated = await post(acknowledged[0]!.marker, acknowledged[0]!.key);
  expect(repeated).toMatchObject({ status: 200, body: { caseId: acknowledged[0]!.body.caseId } });

  // Restart the node on the same files and count from the store.
  await t.app.close();
  await t.node.close();
  const node = await openNode(t.config, { clock: t.clock });
  try {
    const rows = await node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'payload'])
      .where('tenant', '=', tenant)
      .where('type', 'in', ['case.opened', 'audit.access'])
      .execute();
    const opened = rows
      .filter((r) => r.type === 'case.opened')
      .map((r) => JSON.parse(r.payload) as { caseId: string; location: string });
    const storedByMarker = new Map(opened.map((o) => [o.location, o.caseId]));
    expect(opened.length).toBe(storedByMarker.size); // no call stored twice
    const lost = acknowledged.filter((a) => storedByMarker.get(a.marker) !== a.body.caseId);
    expect(lost).toEqual([]);
    const storedThoughRefused = refused.filter((a) => a !== refused[0] && storedByMarker.has(a.marker));
    expect(storedThoughRefused).toEqual([]);
    expect(storedByMarker.size).toBe(acknowledged.length + 1);
    // Every stored case has the audit of its write (they were one commit).
    const auditedCases = new Set(
      rows
        .filter((r) => r.type === 'audit.access')
        .map((r) => JSON.parse(r.payload) as { action: string; resourceId?: string })
        .filter((p) => p.action === 'write')
        .map((p) => p.resourceId),
    );
    expect(opened.filter((o) => !auditedCases.has(o.caseId))).toEqual([]);
    const report = await verifyStore(node.store, ledgerCrypto);
    expect(report.ok, JSON.stringify(report)).toBe(true);
  } finally {
    await node.close();
  }
}

/** After a failed run: the app and the store closed (again, if the run closed them already). */
async function stopQuietly(t: TestApp): Promise<void> {
  await t.app.close().catch(() => undefined);
  await t.node.close().catch(() => undefined);
}

describe('a full disk under a SQLite store', () => {
  const tmpfs = mountSmallTmpfs(TMPFS_SIZE);
  afterAll(() => {
    if ('dir' in tmpfs) {
      // Lazily: a failed run may leave a handle open; the mount goes when it closes.
      execFileSync('umount', ['-l', tmpfs.dir]);
      rmSync(tmpfs.dir, { recursive: true, force: true });
    }
  });

  it.skipIf('refused' in tmpfs)(
    `on a ${TMPFS_SIZE} tmpfs: nothing acknowledged lost, 503 with the real cause, /health unhealthy then healthy${
      'refused' in tmpfs ? ` — skipped: ${tmpfs.refused}` : ''
    }`,
    async () => {
      if (!('dir' in tmpfs)) return;
      const logLines: string[] = [];
      const t = await startTestApp('sqlite', { providers: ['northshire'], dataDir: tmpfs.dir, logLines });
      try {
        await diskFullRun(t, logLines, tmpfsFiller(tmpfs.dir, 512 * 1024, 'SQLITE_FULL'));
      } finally {
        await stopQuietly(t);
      }
    },
    180_000,
  );

  it('at SQLite max_page_count: the same, on any machine', async () => {
    const logLines: string[] = [];
    const dataDir = mkdtempSync(join(tmpdir(), 'holdfast-pagelimit-'));
    try {
      const t = await startTestApp('sqlite', { providers: ['northshire'], dataDir, logLines });
      try {
        await diskFullRun(t, logLines, pageLimitFiller(40));
      } finally {
        await stopQuietly(t);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('a full disk under a PostgreSQL store', () => {
  // The server runs as the postgres user when the tests run as root (see support/postgres.ts).
  const tmpfs =
    process.getuid?.() === 0
      ? mountSmallTmpfs(PG_TMPFS_SIZE, 'postgres')
      : { refused: 'not root: the test PostgreSQL cannot be given a tablespace on a tmpfs' };
  const tablespace = `hf_full_${randomUUID().slice(0, 8)}`;
  afterAll(() => {
    if ('dir' in tmpfs) {
      execFileSync('umount', ['-l', tmpfs.dir]);
      rmSync(tmpfs.dir, { recursive: true, force: true });
    }
  });

  it.skipIf('refused' in tmpfs)(
    `its database in a tablespace on a ${PG_TMPFS_SIZE} tmpfs: nothing acknowledged lost, 503 with the real cause (53100), /health unhealthy then healthy${
      'refused' in tmpfs ? ` — skipped: ${tmpfs.refused}` : ''
    }`,
    async () => {
      if (!('dir' in tmpfs)) return;
      const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
      await admin.connect();
      try {
        await admin.query(`create tablespace ${tablespace} location '${tmpfs.dir}'`);
        const logLines: string[] = [];
        const t = await startTestApp('postgres', {
          providers: ['northshire'],
          logLines,
          pgTablespace: tablespace,
        });
        try {
          await diskFullRun(t, logLines, tmpfsFiller(tmpfs.dir, 1024 * 1024, '53100'));
        } finally {
          await stopQuietly(t);
          const database = new URL(t.config.databaseUrl!).pathname.slice(1);
          await admin.query(`drop database if exists ${database} with (force)`);
        }
      } finally {
        await admin.query(`drop tablespace if exists ${tablespace}`).catch(() => undefined);
        await admin.end();
      }
    },
    180_000,
  );
});
