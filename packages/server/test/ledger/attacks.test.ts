import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { FixedClock, canonicalJson, sealEvent, signCheckpoint, type StoredEvent } from '@holdfast/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HEAD_MARK_FILE } from '../../src/ledger/head-mark.ts';
import { OwnChainRefusal, ownChainsOf } from '../../src/ledger/own-chains.ts';
import { verifyStore, type VerifyReport } from '../../src/ledger/verify.ts';
import { Ed25519Signer, ledgerCrypto } from '../../src/node/crypto.ts';
import { loadIdentity } from '../../src/node/identity.ts';
import { initNode, openNode } from '../../src/node/node.ts';
import { Store } from '../../src/store/store.ts';
import { freshStore, STORE_KINDS, type StoreKind } from '../support/databases.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

// Not a test of password hashing: hashes at the smallest argon2id cost (support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Issue 19: attacks by someone who can write the database (SQLite file, PostgreSQL tables) but not
 * the data directory with node.key and the head mark. Each attack is done with plain SQL, through a
 * connection of its own, not through the code under test; then `verify` must name the chain and the
 * seq (or range), and the node must refuse to start, again at every restart, without signing anything.
 */
const TENANT = 'prov-a';
const NODE = 'node-1';
/** Checkpoints every 10 events: seq 1 (registration), 11 and 21 are sealed; 22-26 are the unsealed tail. */
const CHECKPOINT_EVERY = 10;
const LAST_SEQ = 26;
const LAST_SEALED = 21;
const USER = '0190f5d2-7d3c-7000-8000-000000000001';

type Fresh = Awaited<ReturnType<typeof freshStore>>;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Plain SQL on the store, as an attacker with a database login has it. */
interface RawSql {
  all(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  run(text: string, params?: unknown[]): Promise<void>;
  close(): Promise<void>;
}

async function rawSql(fresh: Fresh): Promise<RawSql> {
  if (fresh.storeOptions.dialect === 'sqlite') {
    const db = new BetterSqlite3(fresh.storeOptions.file);
    return {
      all: async (text, params = []) => db.prepare(text).all(...params) as Record<string, unknown>[],
      run: async (text, params = []) => void db.prepare(text).run(...params),
      close: async () => void db.close(),
    };
  }
  const client = new pg.Client({ connectionString: fresh.storeOptions.connectionString });
  await client.connect();
  let n = 0;
  const numbered = (text: string) => text.replace(/\?/g, () => `$${++n}`);
  return {
    all: async (text, params = []) => {
      n = 0;
      return (await client.query(numbered(text), params)).rows as Record<string, unknown>[];
    },
    run: async (text, params = []) => {
      n = 0;
      await client.query(numbered(text), params);
    },
    close: () => client.end(),
  };
}

function rolesChanged(roles: string[]): Record<string, unknown> {
  return { userId: USER, roles, siteIds: [] };
}

/** A node whose own chain is seq 1-26, sealed up to 21, closed as after a clean stop of the process. */
async function builtNode(kind: StoreKind): Promise<Fresh> {
  const fresh = await freshStore(kind);
  cleanups.push(() => fresh.cleanup());
  const config = { ...fresh.config, checkpointEvery: CHECKPOINT_EVERY };
  const clock = new FixedClock(1_764_000_000_000);
  const node = await initNode(config, { node: NODE, tenant: TENANT, role: 'single' }, { clock });
  for (let i = 2; i <= LAST_SEQ; i++) {
    clock.advance(1000);
    await node.ledger.append([
      {
        tenant: TENANT,
        type: 'user.roles_changed',
        actor: 'user:admin',
        payload: rolesChanged(['clinician']),
      },
    ]);
  }
  await node.close();
  return { ...fresh, config };
}

async function ownChain(sqlDb: RawSql): Promise<StoredEvent[]> {
  const rows = await sqlDb.all('select * from ledger_events where tenant = ? and node = ? order by seq', [
    TENANT,
    NODE,
  ]);
  return rows.map((r) => ({
    id: r.id as string,
    tenant: r.tenant as string,
    node: r.node as string,
    seq: Number(r.seq),
    hlc: r.hlc as string,
    type: r.type as string,
    v: Number(r.v),
    actor: r.actor as string,
    payloadJson: r.payload as string,
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  }));
}

/** Re-hashes (and re-links) a chain from `fromSeq` on, as an attacker without the key can. */
async function rehashFrom(sqlDb: RawSql, events: StoredEvent[], fromSeq: number): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let prevHash = fromSeq === 1 ? '0'.repeat(64) : events[fromSeq - 2]!.hash;
  for (const e of events) {
    if (e.seq < fromSeq) {
      out.push(e);
      continue;
    }
    const { hash: _old, ...body } = e;
    const sealed = sealEvent(ledgerCrypto, { ...body, prevHash });
    await sqlDb.run(
      'update ledger_events set payload = ?, prev_hash = ?, hash = ? where tenant = ? and node = ? and seq = ?',
      [sealed.payloadJson, sealed.prevHash, sealed.hash, TENANT, NODE, e.seq],
    );
    prevHash = sealed.hash;
    out.push(sealed);
  }
  return out;
}

async function checkpointCount(sqlDb: RawSql): Promise<number> {
  const [row] = await sqlDb.all('select count(*) as n from checkpoints where signer = ?', [NODE]);
  return Number(row!.n);
}

async function verifyAsTheNode(fresh: Fresh): Promise<VerifyReport> {
  const node = await openNode(fresh.config, { ownChains: 'report' });
  try {
    return await verifyStore(node.store, ledgerCrypto, {
      own: ownChainsOf(node.identity, node.headMark),
      maxUnsealed: CHECKPOINT_EVERY - 1,
    });
  } finally {
    await node.close();
  }
}

/** Starts the node twice (a restart after the refusal): refused both times, nothing signed. */
async function expectRefusedAtStart(fresh: Fresh, sqlDb: RawSql, seqText: RegExp): Promise<void> {
  const before = await checkpointCount(sqlDb);
  const markBefore = readFileSync(join(fresh.dataDir, HEAD_MARK_FILE));
  for (let attempt = 0; attempt < 2; attempt++) {
    const error = await openNode(fresh.config).then(
      async (node) => {
        await node.close();
        return null;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OwnChainRefusal);
    expect((error as Error).message).toMatch(new RegExp(`tenant ${TENANT}, node ${NODE}, ${seqText.source}`));
  }
  expect(await checkpointCount(sqlDb)).toBe(before);
  expect(readFileSync(join(fresh.dataDir, HEAD_MARK_FILE)).equals(markBefore)).toBe(true);
}

interface Attack {
  name: string;
  run(sqlDb: RawSql): Promise<void>;
  /** The seq verify must name, and the text the problem must hold (range, cause). */
  seq: number;
  problem: RegExp;
}

const ATTACKS: Attack[] = [
  {
    name: 'delete the last event',
    run: (db) =>
      db.run('delete from ledger_events where tenant = ? and node = ? and seq = ?', [TENANT, NODE, LAST_SEQ]),
    seq: LAST_SEQ,
    problem: /seq 26-26 missing: .*reached seq 26, the store ends at seq 25/,
  },
  {
    name: 'delete the whole unsealed tail',
    run: (db) =>
      db.run('delete from ledger_events where tenant = ? and node = ? and seq > ?', [
        TENANT,
        NODE,
        LAST_SEALED,
      ]),
    seq: LAST_SEALED + 1,
    problem: /seq 22-26 missing/,
  },
  {
    name: 'delete the tail together with its checkpoint rows',
    run: async (db) => {
      await db.run('delete from ledger_events where tenant = ? and node = ? and seq > ?', [TENANT, NODE, 11]);
      await db.run('delete from checkpoints where tenant = ? and node = ? and seq > ?', [TENANT, NODE, 11]);
    },
    seq: 12,
    problem: /seq 12-26 missing/,
  },
  {
    name: 'edit an event inside the unsealed tail and re-hash the rest',
    run: async (db) => {
      const events = await ownChain(db);
      const target = events[24 - 1]!;
      events[24 - 1] = { ...target, payloadJson: canonicalJson(rolesChanged(['provider_admin'])) };
      await rehashFrom(db, events, 24);
    },
    seq: LAST_SEALED + 1,
    problem: /seq 22-26: the event at seq 26 is not the one this node's head mark records/,
  },
  {
    name: 'append a forged user.roles_changed with a correct hash',
    run: async (db) => {
      const events = await ownChain(db);
      const last = events[events.length - 1]!;
      const forged = sealEvent(ledgerCrypto, {
        id: `0190f5d2-7d3c-7000-8000-${String(last.seq + 1).padStart(12, '0')}`,
        tenant: TENANT,
        node: NODE,
        seq: last.seq + 1,
        hlc: `${String(Number(last.hlc.slice(0, 15)) + 1000).padStart(15, '0')}-000000`,
        type: 'user.roles_changed',
        v: 1,
        actor: 'user:admin',
        payloadJson: canonicalJson(rolesChanged(['auditor', 'provider_admin'])),
        prevHash: last.hash,
      });
      await db.run(
        'insert into ledger_events (tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [
          forged.tenant,
          forged.node,
          forged.seq,
          forged.id,
          forged.hlc,
          forged.type,
          forged.v,
          forged.actor,
          forged.payloadJson,
          forged.prevHash,
          forged.hash,
          `user:${USER}`,
        ],
      );
    },
    seq: LAST_SEQ + 1,
    problem: /seq 27-27: events beyond this node's head mark \(seq 26\) not sealed by its key/,
  },
  {
    name: "swap the node's key in node_keys, rewrite its registration, re-hash and re-sign everything",
    run: async (db) => {
      const attacker = Ed25519Signer.generate(NODE).signer;
      await db.run('update node_keys set public_key = ? where tenant = ? and node = ?', [
        attacker.publicKey,
        TENANT,
        NODE,
      ]);
      const events = await ownChain(db);
      const registration = JSON.parse(events[0]!.payloadJson) as Record<string, unknown>;
      events[0] = {
        ...events[0]!,
        payloadJson: canonicalJson({ ...registration, publicKey: attacker.publicKey }),
      };
      const rewritten = await rehashFrom(db, events, 1);
      const sealedSeqs = (
        await db.all('select seq from checkpoints where tenant = ? and node = ? and signer = ?', [
          TENANT,
          NODE,
          NODE,
        ])
      ).map((r) => Number(r.seq));
      await db.run('delete from checkpoints where tenant = ? and node = ?', [TENANT, NODE]);
      for (const seq of [...sealedSeqs, LAST_SEQ]) {
        const c = signCheckpoint(attacker, rewritten[seq - 1]!);
        await db.run(
          'insert into checkpoints (tenant, node, seq, hash, hlc, signer, signature) values (?, ?, ?, ?, ?, ?, ?)',
          [c.tenant, c.node, c.seq, c.hash, c.hlc, c.signer, c.signature],
        );
      }
    },
    seq: 1,
    problem: /registers node node-1 with a key that is not the one in its identity file/,
  },
];

describe.each(STORE_KINDS)('attacks by whoever can write the database (%s)', (kind) => {
  it('an untouched store verifies and starts; the attacks below are not on a broken store', async () => {
    const fresh = await builtNode(kind);
    const report = await verifyAsTheNode(fresh);
    expect(report.faults).toEqual([]);
    expect(report.chains.find((c) => c.node === NODE)).toMatchObject({
      lastSeq: LAST_SEQ,
      sealedSeq: LAST_SEALED,
    });
    const node = await openNode(fresh.config);
    await node.close();
  });

  it.each(ATTACKS)(
    '$name: verify names the chain and seq, the node refuses to start or sign',
    async (attack) => {
      const fresh = await builtNode(kind);
      const sqlDb = await rawSql(fresh);
      cleanups.unshift(() => sqlDb.close());
      await attack.run(sqlDb);

      const report = await verifyAsTheNode(fresh);
      expect(report.ok).toBe(false);
      expect(report.faults).toHaveLength(1);
      expect(report.faults[0]).toMatchObject({ tenant: TENANT, node: NODE, seq: attack.seq });
      expect(report.faults[0]!.problem).toMatch(attack.problem);

      await expectRefusedAtStart(fresh, sqlDb, new RegExp(`seq ${attack.seq}:`));
    },
  );

  it('the key swap passes a verify that trusts node_keys: the identity file is what catches it', async () => {
    const fresh = await builtNode(kind);
    const sqlDb = await rawSql(fresh);
    cleanups.unshift(() => sqlDb.close());
    await ATTACKS[5]!.run(sqlDb);
    const store = await Store.open(fresh.storeOptions);
    try {
      expect((await verifyStore(store, ledgerCrypto)).ok).toBe(true);
    } finally {
      await store.close();
    }
    expect((await verifyAsTheNode(fresh)).faults[0]).toMatchObject({ node: NODE, seq: 1 });
  });

  it('a store from before head marks is adopted only if its unsealed tail is within the checkpoint bound', async () => {
    const fresh = await builtNode(kind);
    rmSync(join(fresh.dataDir, HEAD_MARK_FILE));
    // Within the bound (5 unsealed, bound 9): adopted, and the mark written.
    const adopted = await openNode(fresh.config);
    await adopted.close();
    expect(readFileSync(join(fresh.dataDir, HEAD_MARK_FILE)).length).toBeGreaterThan(0);

    rmSync(join(fresh.dataDir, HEAD_MARK_FILE));
    const sqlDb = await rawSql(fresh);
    cleanups.unshift(() => sqlDb.close());
    // Five forged events more: 10 unsealed, more than a node ever leaves.
    for (let i = 0; i < 5; i++) await ATTACKS[4]!.run(sqlDb);
    const refused = await openNode(fresh.config).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(OwnChainRefusal);
    expect((refused as Error).message).toMatch(
      /tenant prov-a, node node-1, seq 22: seq 22-31: 10 events not sealed by a checkpoint of node node-1, more than a node leaves unsealed \(9\)/,
    );
  });

  it('a crash between the write-ahead mark and the commit is not mistaken for an attack', async () => {
    const fresh = await builtNode(kind);
    const node = await openNode(fresh.config);
    // What the ledger writes just before a commit that then never happens (the process dies).
    await node.headMark!.writeAhead(new Map([[TENANT, { seq: LAST_SEQ + 1, hash: 'a'.repeat(64) }]]));
    await node.close();
    const reopened = await openNode(fresh.config);
    expect(await reopened.ledger.head(TENANT)).toMatchObject({ seq: LAST_SEQ });
    await reopened.close();
  });
});

describe('the real commands (sqlite)', () => {
  function holdfast(dataDir: string, args: string[]) {
    const result = spawnSync(process.execPath, holdfastArgs('-d', dataDir, ...args), {
      encoding: 'utf8',
      env: { ...process.env, CI: '1', NO_COLOR: '1', HOLDFAST_CHECKPOINT_EVERY: String(CHECKPOINT_EVERY) },
      timeout: 60_000,
    });
    return { code: result.status, out: result.stdout + result.stderr };
  }

  it('after a forged append, `holdfast verify` exits 1 naming chain and seq; serve and rebuild refuse', async () => {
    const fresh = await builtNode('sqlite');
    const ok = holdfast(fresh.dataDir, ['verify']);
    expect(ok.code).toBe(0);
    const sqlDb = await rawSql(fresh);
    cleanups.unshift(() => sqlDb.close());
    await ATTACKS[4]!.run(sqlDb);

    const verify = holdfast(fresh.dataDir, ['verify']);
    expect(verify.code).toBe(1);
    expect(verify.out).toMatch(
      /prov-a \/ node-1: .*BAD at seq 27: seq 27-27: events beyond this node's head mark/,
    );
    const before = await checkpointCount(sqlDb);
    for (const command of [['serve', '--port', '0'], ['rebuild']]) {
      const refused = holdfast(fresh.dataDir, command);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(/refusing to start: .*\n\s+tenant prov-a, node node-1, seq 27:/);
    }
    expect(await checkpointCount(sqlDb)).toBe(before);
  });

  it('a head mark that is not signed by the node is refused by serve and reported by verify', async () => {
    const fresh = await builtNode('sqlite');
    const path = join(fresh.dataDir, HEAD_MARK_FILE);
    // Both slots claim a longer chain; the signatures no longer cover what they say.
    writeFileSync(
      path,
      readFileSync(path, 'utf8').replace(/"seq":(\d+)/g, (_m, n: string) => `"seq":${Number(n) + 1}`),
    );
    const verify = holdfast(fresh.dataDir, ['verify']);
    expect(verify.code).toBe(1);
    expect(verify.out).toMatch(/head mark: .*signature is not valid for this node key/);
    expect(holdfast(fresh.dataDir, ['serve', '--port', '0']).out).toMatch(/refusing to start node node-1/);
    // The identity on disk is the one the mark is checked with.
    expect(loadIdentity(fresh.dataDir).node).toBe(NODE);
  });
});
