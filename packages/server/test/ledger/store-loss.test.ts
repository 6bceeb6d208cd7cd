import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LedgerIntegrityError } from '../../src/ledger/ledger.ts';
import { readHeadMark } from '../../src/ledger/head-mark.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { CommitOutcomeUnknownError, StoreUnavailableError } from '../../src/store/primary.ts';
import type { Store } from '../../src/store/store.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { startTestNode, type TestNode } from '../support/nodes.ts';

const T = 'northshire';

/**
 * The ledger's chain head after the database connection was lost (docs/OPERATIONS.md). The store
 * stands in for a failover: its next commit either lands or not, and then the answer is lost (the
 * caller gets CommitOutcomeUnknownError) and the store counts a loss, as PrimaryLocator does. The
 * ledger must report the outcome as unknown, re-read its heads before the next append (no seq
 * collision, no fork), tell listeners of what landed, and halt when the database it reconnected to
 * lacks what it had acknowledged.
 */
describe.each(STORE_KINDS)('the ledger after a lost database connection, on %s', (kind) => {
  let node: TestNode;
  let losses = 0;
  let nextCommit: 'lands' | 'is lost' | null = null;
  beforeAll(async () => {
    node = await startTestNode(kind, { node: 'hub-1', tenant: T, role: 'hub' }, { checkpointEvery: 50 });
    const store: Store = node.store;
    const transaction = store.transaction.bind(store);
    Object.defineProperty(store, 'losses', { get: () => losses });
    store.transaction = async (fn) => {
      const outcome = nextCommit;
      nextCommit = null;
      if (outcome === null) return transaction(fn);
      losses++;
      if (outcome === 'lands') {
        await transaction(fn);
        throw new CommitOutcomeUnknownError();
      }
      return transaction(async (trx) => {
        await fn(trx);
        throw new CommitOutcomeUnknownError(); // rolled back: the commit never happened
      });
    };
  });
  afterAll(async () => node?.destroy());

  const note = (text: string) => ({
    tenant: T,
    type: 'test.item.noted',
    actor: 'user:u',
    payload: { item: 'a', text },
  });
  const texts = async () =>
    (await node.ledger.readChain(T, 'hub-1', 1))
      .filter((e) => e.type === 'test.item.noted')
      .map((e) => JSON.parse(e.payloadJson).text as string);
  const verified = async () => (await verifyStore(node.store, ledgerCrypto, { tenant: T })).faults;

  it('reports a commit that landed as unknown, then appends after it without a seq collision', async () => {
    const before = (await node.ledger.append([note('acknowledged 1')]))[0]!;
    const heard: string[] = [];
    const unsubscribe = node.ledger.subscribe((_t, events) => heard.push(...events.map((e) => e.id)));
    nextCommit = 'lands';
    const lost = await node.ledger.append([note('unknown, landed')]).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(CommitOutcomeUnknownError);
    // The next append re-reads the head: seq after the landed one, not a collision with it.
    const after = (await node.ledger.append([note('after')]))[0]!;
    unsubscribe();
    expect(after.seq).toBe(before.seq + 2);
    expect(await texts()).toEqual(['acknowledged 1', 'unknown, landed', 'after']);
    // Caches and live updates hear of the landed event, as after any commit.
    const landed = (await node.ledger.readChain(T, 'hub-1', before.seq + 1, before.seq + 1))[0]!;
    expect(heard).toContain(landed.id);
    expect(node.ledger.halted).toBeNull();
    expect(await verified()).toEqual([]);
    // The head mark follows the store again (confirmed under the write lock, which head() waits for).
    await node.ledger.head(T);
    const mark = readHeadMark(node.config.dataDir, node.identity.signer, ledgerCrypto)!.chains.get(T)!;
    expect(mark).toEqual({ committed: { seq: after.seq, hash: after.hash } });
  });

  it('reports a commit that was lost as unknown, then appends on the head before it', async () => {
    const before = (await node.ledger.head(T)).seq;
    nextCommit = 'is lost';
    await expect(node.ledger.append([note('unknown, lost')])).rejects.toBeInstanceOf(
      CommitOutcomeUnknownError,
    );
    const after = (await node.ledger.append([note('after the lost one')]))[0]!;
    expect(after.seq).toBe(before + 1);
    expect(await texts()).not.toContain('unknown, lost');
    expect(await verified()).toEqual([]);
  });

  it('answers every append of a group whose commit was unknown as unknown, and retries none of them', async () => {
    const before = (await node.ledger.head(T)).seq;
    nextCommit = 'lands';
    // Appended in one tick: they wait in the queue together and share one (group) commit.
    const answers = await Promise.all(
      ['g0', 'g1', 'g2', 'g3'].map((t) => node.ledger.append([note(t)]).catch((e: unknown) => e)),
    );
    for (const a of answers) expect(a).toBeInstanceOf(CommitOutcomeUnknownError);
    const after = (await node.ledger.append([note('after the group')]))[0]!;
    // The group landed once: retrying its appends one by one would have recorded them twice.
    expect(after.seq).toBe(before + 5);
    const all = await texts();
    for (const t of ['g0', 'g1', 'g2', 'g3']) expect(all.filter((x) => x === t)).toEqual([t]);
    expect(await verified()).toEqual([]);
  });

  it('fails every append of a group whose guard lost the database, and retries none of them', async () => {
    const before = (await node.ledger.head(T)).seq;
    let guardRuns = 0;
    const answers = await Promise.all(
      ['s0', 's1', 's2', 's3'].map((t, i) =>
        node.ledger
          .append([note(t)], {
            guard: async (trx) => {
              guardRuns++;
              await trx.selectFrom('ledger_events').select('seq').limit(1).execute();
              // As a guard's read does when the connection goes under it.
              if (i === 2) throw new StoreUnavailableError('the database connection was lost');
            },
          })
          .catch((e: unknown) => e),
      ),
    );
    for (const a of answers) expect(a).toBeInstanceOf(StoreUnavailableError);
    // The guards before it and its own ran once; nothing was tried again append by append.
    expect(guardRuns).toBe(3);
    expect((await node.ledger.head(T)).seq).toBe(before);
    const all = await texts();
    for (const t of ['s0', 's1', 's2', 's3']) expect(all).not.toContain(t);
    expect(await verified()).toEqual([]);
  });

  it('halts, appending nothing, when the database it reconnected to lacks an acknowledged commit', async () => {
    const acknowledged = (await node.ledger.append([note('acknowledged, then missing')]))[0]!;
    // A standby that was not synchronous is promoted without the last acknowledged commit.
    await node.store.db
      .deleteFrom('ledger_events')
      .where('tenant', '=', T)
      .where('node', '=', 'hub-1')
      .where('seq', '=', acknowledged.seq)
      .execute();
    losses++;
    const refused = await node.ledger.append([note('would fork')]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LedgerIntegrityError);
    expect((refused as Error).message).toMatch(new RegExp(`committed up to seq ${acknowledged.seq}`));
    expect(node.ledger.halted).toMatch(/not the one it wrote to/);
    expect((await node.ledger.chainHeads(T)).get('hub-1')).toBe(acknowledged.seq - 1);
    expect(await texts()).not.toContain('would fork');
  });
});
