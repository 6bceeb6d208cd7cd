import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { FixedClock, sealEvent } from '@holdfast/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AccountsService } from '../../src/accounts/service.ts';
import { SessionStore } from '../../src/auth/sessions.ts';
import { importBatch } from '../../src/ledger/import.ts';
import { LedgerIntegrityError } from '../../src/ledger/ledger.ts';
import { rowToStored } from '../../src/ledger/rows.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { Ed25519Signer, ledgerCrypto } from '../../src/node/crypto.ts';
import { sha256Hex, signRequest, verifySignedRequest } from '../../src/sync/signing.ts';
import {
  IntegrityMonitor,
  refuseToStartIfTampered,
  startupIntegrityCheck,
} from '../../src/node/integrity.ts';
import { initNode, openNode, type HoldfastNode } from '../../src/node/node.ts';
import { checkProjections } from '../../src/projections/check.ts';
import { freshStore, STORE_KINDS, type StoreKind } from '../support/databases.ts';
import { freePort } from '../support/postgres.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

// Not a test of password hashing: hashes at the smallest argon2id cost (support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * Acceptance for tamper evidence beyond the hash chain: direct edits of projection tables, of the
 * unhashed `subject` column, garbage in a hybrid clock, and a key-less re-hash. Each attack is made on
 * a stopped node's store; the node is then restarted, and verify names the chain and seq (or seq
 * range) or the projection, table, key and column, while the node refuses to start or to sign.
 */
const TENANT = 'northshire';
const NODE = 'node-1';
const quietLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface Seeded {
  config: Awaited<ReturnType<typeof freshStore>>['config'];
  kind: StoreKind;
  clock: FixedClock;
  adviserId: string;
  siteId: string;
  cleanup(): Promise<void>;
}

const opened: HoldfastNode[] = [];
const seededStores: Seeded[] = [];

afterEach(async () => {
  for (const n of opened.splice(0)) await n.close().catch(() => undefined);
  for (const s of seededStores.splice(0)) await s.cleanup();
});

/** A stopped node with a provider, a site and users; checkpoints every 5 events and one at the head. */
async function seed(kind: StoreKind): Promise<Seeded> {
  const fresh = await freshStore(kind);
  const config = { ...fresh.config, checkpointEvery: 5 };
  const clock = new FixedClock(Date.UTC(2026, 10, 29, 9, 0, 0));
  const node = await initNode(config, { node: NODE, tenant: TENANT, role: 'single' }, { clock });
  const accounts = new AccountsService(
    node.store,
    node.ledger,
    new SessionStore(node.store, clock),
    node.providerKeys,
  );
  await accounts.createTenant(TENANT, 'Northshire provider', 'system:test');
  const siteId = await accounts.createSite(TENANT, 'Northshire site A', 'system:test');
  await accounts.createSite(TENANT, 'Northshire site B', 'system:test');
  let adviserId = '';
  for (const role of ['health_adviser', 'auditor', 'clinician', 'shift_manager'] as const) {
    clock.advance(1000);
    const user = await accounts.create(
      TENANT,
      {
        username: `${role}@northshire`,
        displayName: `${role} of Northshire`,
        roles: [role],
        siteIds: [siteId],
        password: 'correct horse battery staple',
      },
      'system:test',
    );
    if (role === 'health_adviser') adviserId = user.userId;
  }
  await node.ledger.checkpointNow(TENANT);
  await node.close();
  const seeded = { config, kind, clock, adviserId, siteId, cleanup: fresh.cleanup };
  seededStores.push(seeded);
  return seeded;
}

async function restart(s: Seeded): Promise<HoldfastNode> {
  const node = await openNode(s.config, { clock: s.clock });
  opened.push(node);
  return node;
}

/**
 * After an attack on the node's own recent history, a normal start is refused outright by the head
 * mark check (ledger/own-chains.ts), naming the seq; the node is then opened as `holdfast verify`
 * opens it, to show that verify and the ledger's own checks name the fault as well.
 */
async function refusedThenOpenedForReport(s: Seeded, seq: number | null): Promise<HoldfastNode> {
  await expect(openNode(s.config, { clock: s.clock })).rejects.toThrow(
    new RegExp(`refusing to start: .*\\n  tenant ${TENANT}, node ${NODE}, seq ${seq ?? '\\d+'}`),
  );
  const node = await openNode(s.config, { clock: s.clock, ownChains: 'report' });
  opened.push(node);
  return node;
}

async function stop(node: HoldfastNode): Promise<void> {
  opened.splice(opened.indexOf(node), 1);
  await node.close();
}

/** A node's own checkpoint seqs, ascending. */
async function checkpointSeqs(node: HoldfastNode): Promise<number[]> {
  const rows = await node.store.db
    .selectFrom('checkpoints')
    .select('seq')
    .where('tenant', '=', TENANT)
    .where('node', '=', NODE)
    .orderBy('seq')
    .execute();
  return rows.map((r) => Number(r.seq));
}

/**
 * What an attacker without the node key can do best: change one event, then re-hash it and every
 * later event so that every hash and link holds again. Only a signed checkpoint can tell.
 */
async function editAndRehash(
  node: HoldfastNode,
  seq: number,
  change: (e: ReturnType<typeof rowToStored>) => ReturnType<typeof rowToStored>,
): Promise<void> {
  const rows = await node.store.db
    .selectFrom('ledger_events')
    .selectAll()
    .where('tenant', '=', TENANT)
    .where('node', '=', NODE)
    .where('seq', '>=', seq)
    .orderBy('seq')
    .execute();
  let prevHash: string | null = null;
  for (const row of rows) {
    let e = rowToStored(row);
    if (e.seq === seq) e = change(e);
    if (prevHash) e = { ...e, prevHash };
    const sealed = sealEvent(ledgerCrypto, e);
    await node.store.db
      .updateTable('ledger_events')
      .set({ payload: sealed.payloadJson, hlc: sealed.hlc, prev_hash: sealed.prevHash, hash: sealed.hash })
      .where('tenant', '=', TENANT)
      .where('node', '=', NODE)
      .where('seq', '=', sealed.seq)
      .execute();
    prevHash = sealed.hash;
  }
}

function holdfast(s: Seeded, args: string[]) {
  const env: Record<string, string> = { ...process.env, CI: '1', NO_COLOR: '1' } as Record<string, string>;
  if (s.kind === 'postgres') {
    env.HOLDFAST_STORE = 'postgres';
    env.HOLDFAST_DATABASE_URL = s.config.databaseUrl!;
  }
  const result = spawnSync(process.execPath, holdfastArgs('-d', s.config.dataDir, ...args), {
    encoding: 'utf8',
    env,
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function holdfastVerify(s: Seeded, args: string[]) {
  return holdfast(s, ['verify', ...args]);
}

describe.each(STORE_KINDS)('attacks beyond the hash chain on %s', (kind) => {
  it('an untouched store passes every check, and the node starts and signs', async () => {
    const s = await seed(kind);
    const node = await restart(s);
    const report = await refuseToStartIfTampered(node, quietLogger);
    expect(report.ok).toBe(true);
    expect(report.projections.eventsFolded).toBe(report.chains.eventsChecked);
    expect(report.projections.tablesCompared).toBeGreaterThanOrEqual(9);
    await node.ledger.append([
      {
        tenant: TENANT,
        type: 'site.created',
        actor: 'system:test',
        payload: { siteId: randomUUID(), name: 'C' },
      },
    ]);
    expect(await node.ledger.checkpointNow(TENANT)).not.toBeNull();
  });

  it('a role granted in the users table: verify --projections names projection, table, key and column; the node refuses to start', async () => {
    const s = await seed(kind);
    let node = await restart(s);
    await node.store.db
      .withTables<{ users: { tenant: string; user_id: string; roles: string } }>()
      .updateTable('users')
      .set({ roles: JSON.stringify(['health_adviser', 'auditor']) })
      .where('user_id', '=', s.adviserId)
      .execute();
    await stop(node);

    node = await restart(s);
    expect((await verifyStore(node.store, ledgerCrypto)).ok).toBe(true);
    const check = await checkProjections(node.store, node.projections.projections, node.registry);
    expect(check.ok).toBe(false);
    expect(check.difference).toEqual({
      projection: 'accounts',
      table: 'users',
      key: { tenant: TENANT, user_id: s.adviserId },
      column: 'roles',
      problem: expect.stringContaining('the table was edited') as string,
    });
    // What `serve` runs before listening.
    await expect(
      startupIntegrityCheck(node, quietLogger, new IntegrityMonitor(node, quietLogger, 60_000)),
    ).rejects.toThrow(
      `projection accounts, table users, row (tenant=${TENANT}, user_id=${s.adviserId}), column roles`,
    );
    await stop(node);

    const cli = holdfastVerify(s, ['--projections']);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(
      `BAD projections: projection accounts, table users, row (tenant=${TENANT}, user_id=${s.adviserId}), column roles`,
    );
    // Without --projections the chain alone is fine: the edit is not in the ledger.
    expect(holdfastVerify(s, []).code).toBe(0);
  });

  it('a node key swapped in node_keys and a row added to sites are named too', async () => {
    const s = await seed(kind);
    let node = await restart(s);
    await node.store.db
      .withTables<{ node_keys: { node: string; public_key: string } }>()
      .updateTable('node_keys')
      .set({ public_key: 'MCowBQYDK2VwAyEAattackerattackerattackerattackerattacker00=' })
      .where('node', '=', NODE)
      .execute();
    await stop(node);
    node = await restart(s);
    const keys = await checkProjections(node.store, node.projections.projections, node.registry);
    expect(keys.difference).toMatchObject({
      projection: 'node_keys',
      table: 'node_keys',
      key: { tenant: TENANT, node: NODE },
      column: 'public_key',
    });
    await node.projections.rebuild();
    await node.store.db
      .withTables<{ sites: { tenant: string; site_id: string; name: string } }>()
      .insertInto('sites')
      .values({ tenant: TENANT, site_id: 'site-forged', name: 'Forged' })
      .execute();
    const extra = await checkProjections(node.store, node.projections.projections, node.registry);
    expect(extra.difference).toMatchObject({
      projection: 'accounts',
      table: 'sites',
      key: { tenant: TENANT, site_id: 'site-forged' },
      column: null,
      problem: expect.stringContaining('the ledger does not produce it') as string,
    });
  });

  it('a key planted in node_keys does not authenticate a sync request', async () => {
    const s = await seed(kind);
    const node = await restart(s);
    const attacker = Ed25519Signer.generate(NODE).signer;
    await node.store.db
      .withTables<{ node_keys: { node: string; public_key: string } }>()
      .updateTable('node_keys')
      .set({ public_key: attacker.publicKey })
      .where('node', '=', NODE)
      .execute();
    const request = (signer: typeof attacker) => ({
      method: 'POST',
      path: '/api/v1/sync/push',
      headers: signRequest(signer, s.clock, {
        method: 'POST',
        path: '/api/v1/sync/push',
        tenant: TENANT,
        body: '{}',
      }),
      bodySha256: sha256Hex('{}'),
    });
    await expect(verifySignedRequest(node.store, s.clock, request(attacker))).rejects.toMatchObject({
      code: 'bad_signature',
    });
    // The key the ledger registered still works.
    await expect(
      verifySignedRequest(node.store, s.clock, request(node.identity.signer)),
    ).resolves.toMatchObject({
      node: NODE,
    });
  });

  it('an edited subject column is named by event, and a rebuild does not follow it', async () => {
    const s = await seed(kind);
    let node = await restart(s);
    const target = await node.store.db
      .selectFrom('ledger_events')
      .select('seq')
      .where('tenant', '=', TENANT)
      .where('node', '=', NODE)
      .where('subject', '=', `user:${s.adviserId}`)
      .executeTakeFirstOrThrow();
    await node.store.db
      .updateTable('ledger_events')
      .set({ subject: 'user:someone-else' })
      .where('tenant', '=', TENANT)
      .where('node', '=', NODE)
      .where('seq', '=', target.seq)
      .execute();
    await stop(node);
    node = await restart(s);
    await node.projections.rebuild();
    const check = await checkProjections(node.store, node.projections.projections, node.registry);
    expect(check.subjectFault).toEqual({
      tenant: TENANT,
      node: NODE,
      seq: Number(target.seq),
      problem: expect.stringContaining('"user:someone-else"') as string,
    });
    expect(check.difference).toBeNull();
    await expect(refuseToStartIfTampered(node, quietLogger)).rejects.toThrow(
      `ledger event ${TENANT} / ${NODE} seq ${Number(target.seq)}`,
    );
  });

  it('one byte of an hlc turned into a letter is a fault at that event, not a crash', async () => {
    const s = await seed(kind);
    let node = await restart(s);
    const seq = 4;
    const row = await node.store.db
      .selectFrom('ledger_events')
      .select('hlc')
      .where('tenant', '=', TENANT)
      .where('node', '=', NODE)
      .where('seq', '=', seq)
      .executeTakeFirstOrThrow();
    await node.store.db
      .updateTable('ledger_events')
      .set({ hlc: `${row.hlc.slice(0, 3)}x${row.hlc.slice(4)}` })
      .where('tenant', '=', TENANT)
      .where('node', '=', NODE)
      .where('seq', '=', seq)
      .execute();
    await stop(node);

    node = await restart(s);
    expect(node.ledger.clockFaults).toEqual([{ tenant: TENANT, node: NODE, seq }]);
    const report = await verifyStore(node.store, ledgerCrypto);
    expect(report.faults).toEqual([
      expect.objectContaining({ tenant: TENANT, node: NODE, seq, fromSeq: seq }),
    ]);
    await expect(refuseToStartIfTampered(node, quietLogger)).rejects.toThrow(
      `chain ${TENANT} / ${NODE} is bad at seq ${seq}`,
    );
    await stop(node);
    const cli = holdfastVerify(s, []);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(`${TENANT} / ${NODE}: 3 events`);
    expect(cli.stdout).toContain(`BAD at seq ${seq}`);
    // The real `holdfast serve` process: exits before listening, naming chain and seq.
    const served = holdfast(s, ['serve', '--port', String(await freePort())]);
    expect(served.code).toBe(1);
    expect(served.stdout).not.toContain('listening on');
    expect(served.stderr).toContain('refusing to start');
    expect(served.stderr).toContain(`chain ${TENANT} / ${NODE} is bad at seq ${seq}`);
  });

  it('a garbage hlc re-hashed to fit is named as not an HLC value, and the node will not sign on top', async () => {
    const s = await seed(kind);
    let node = await restart(s);
    const head = Math.max(...(await checkpointSeqs(node)));
    await editAndRehash(node, head, (e) => ({ ...e, hlc: `${e.hlc.slice(0, 15)}-00000z` }));
    await stop(node);

    node = await refusedThenOpenedForReport(s, head - 1);
    const report = await verifyStore(node.store, ledgerCrypto);
    expect(report.faults).toEqual([
      expect.objectContaining({
        node: NODE,
        seq: head,
        problem: expect.stringContaining('is not an HLC value'),
      }),
    ]);
    const append = node.ledger.append([
      {
        tenant: TENANT,
        type: 'site.created',
        actor: 'system:test',
        payload: { siteId: randomUUID(), name: 'Z' },
      },
    ]);
    await expect(append).rejects.toThrow(LedgerIntegrityError);
    await expect(append).rejects.toThrow(`chain ${TENANT} / ${NODE} is bad at seq ${head}`);
  });

  it('a key-less re-hash caught at the next checkpoint is reported as the seq range since the previous one', async () => {
    const s = await seed(kind);
    let node = await restart(s);
    const seals = await checkpointSeqs(node);
    // Seals at 1 (registration), every 5 events, and the head: the edit lies strictly inside a range.
    const [previous, next] = [seals[0]!, seals[1]!];
    const edited = next - 1;
    expect(edited).toBeGreaterThan(previous + 1);
    await editAndRehash(node, edited, (e) => {
      const payloadJson = e.payloadJson.replace('of Northshire', 'of Elsewhere');
      expect(payloadJson).not.toBe(e.payloadJson);
      return { ...e, payloadJson };
    });
    await stop(node);

    // The start check sees the rewritten tail after the last checkpoint; verify names the exact range.
    node = await refusedThenOpenedForReport(s, null);
    const report = await verifyStore(node.store, ledgerCrypto);
    expect(report.faults).toEqual([
      expect.objectContaining({
        node: NODE,
        seq: next,
        fromSeq: previous + 1,
        problem: expect.stringContaining(`somewhere in seq ${previous + 1}-${next}`),
      }),
    ]);
    await expect(refuseToStartIfTampered(node, quietLogger)).rejects.toThrow(
      `chain ${TENANT} / ${NODE} is bad in seq ${previous + 1}-${next}`,
    );
    // The head's checkpoint no longer matches either: nothing is appended or signed on top.
    await expect(node.ledger.checkpointNow(TENANT)).rejects.toThrow(LedgerIntegrityError);
    await stop(node);
    const cli = holdfastVerify(s, ['--projections']);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(`BAD in seq ${previous + 1}-${next}`);
  });

  it('an edit after the last checkpoint is not sealed by the restarted node', async () => {
    const s = await seed(kind);
    let node = await restart(s);
    const [tail] = await node.ledger.append([
      {
        tenant: TENANT,
        type: 'site.created',
        actor: 'system:test',
        payload: { siteId: randomUUID(), name: 'T' },
      },
    ]);
    await stop(node);
    node = await restart(s);
    await node.store.db
      .updateTable('ledger_events')
      .set({ payload: tail!.payloadJson.replace('"T"', '"Taken"') })
      .where('tenant', '=', TENANT)
      .where('node', '=', NODE)
      .where('seq', '=', tail!.seq)
      .execute();
    await stop(node);

    node = await restart(s);
    await expect(node.ledger.checkpointNow(TENANT)).rejects.toThrow(
      `chain ${TENANT} / ${NODE} is bad at seq ${tail!.seq}: content does not match its hash`,
    );
    expect(await checkpointSeqs(node)).not.toContain(tail!.seq);
    expect((await verifyStore(node.store, ledgerCrypto)).faults).toEqual([
      expect.objectContaining({ seq: tail!.seq }),
    ]);
  });

  it('the periodic check while serving halts appends and signing on a projection edit', async () => {
    const s = await seed(kind);
    const node = await restart(s);
    const errors: unknown[] = [];
    const monitor = new IntegrityMonitor(
      node,
      { ...quietLogger, error: (o: unknown) => errors.push(o) },
      60_000,
    );
    expect((await monitor.runOnce())?.ok).toBe(true);
    await node.store.db
      .withTables<{ users: { user_id: string; disabled: number } }>()
      .updateTable('users')
      .set({ disabled: 1 })
      .where('user_id', '=', s.adviserId)
      .execute();
    const report = await monitor.runOnce();
    expect(report?.ok).toBe(false);
    expect(report?.problems).toEqual([expect.stringContaining('table users')]);
    expect(errors).toHaveLength(1);
    expect(node.ledger.halted).toContain(`column disabled`);
    await expect(
      node.ledger.append([
        {
          tenant: TENANT,
          type: 'site.created',
          actor: 'system:test',
          payload: { siteId: randomUUID(), name: 'H' },
        },
      ]),
    ).rejects.toThrow(LedgerIntegrityError);
    await expect(node.ledger.checkpointNow(TENANT)).rejects.toThrow(LedgerIntegrityError);
    // Nor does it import (an import counter-signs what it receives).
    await expect(importBatch(node.ledger, TENANT, [])).rejects.toThrow(LedgerIntegrityError);
  });
});
