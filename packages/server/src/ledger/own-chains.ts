import { ChainVerifier, type ChainFault } from '@holdfast/core';
import type { Store } from '../store/store.ts';
import type { NodeIdentity } from '../node/identity.ts';
import { ledgerCrypto } from '../node/crypto.ts';
import { loadNodeKeys } from '../projections/node-keys.ts';
import { HeadMark, HeadMarkUnreadable, type HeadMarkEntry, type MarkedHead } from './head-mark.ts';
import { rowToStored } from './rows.ts';
import { compareWithHeadMark, verifyStore, type OwnChains, type VerifyReport } from './verify.ts';

/**
 * A node refuses to serve or sign over a store that does not match what it knows from outside the
 * store (its identity file and its head mark): signing a checkpoint over such a store would turn a
 * forgery into history sealed with the node's real key.
 */
export class OwnChainRefusal extends Error {
  constructor(
    message: string,
    readonly report: VerifyReport | null,
  ) {
    super(message);
    this.name = 'OwnChainRefusal';
  }
}

export function ownChainsOf(identity: NodeIdentity, mark: HeadMark | null): OwnChains {
  return {
    node: identity.node,
    publicKey: identity.publicKey,
    mark: mark?.exists ? mark.entries() : null,
  };
}

/**
 * The start-up check, before anything is rebuilt, served or signed. With a head mark, each chain this
 * node writes is checked from the mark on, which the store cannot move: its registration must name
 * the key in the identity file, the event at the marked seq must have the marked hash (the hash links
 * carry that down to seq 1), and what lies beyond must link to it and be either the write-ahead head
 * or sealed by the node's own key — so the cost is the tail, not the chain's length. Edits deeper in
 * the chain that were not re-hashed are `holdfast verify`'s to find. With no mark yet (a store from
 * before head marks) the chains are verified in full, their unsealed tails must be within the
 * checkpoint bound, and the mark is then written. Throws OwnChainRefusal naming tenant, node and the
 * first bad seq; returns the mark the ledger goes on writing.
 */
export async function checkOwnChainsAtStart(
  store: Store,
  identity: NodeIdentity,
  dataDir: string,
  checkpointEvery: number,
): Promise<HeadMark> {
  let mark: HeadMark;
  try {
    mark = HeadMark.open(dataDir, identity.signer, ledgerCrypto);
  } catch (error) {
    if (error instanceof HeadMarkUnreadable)
      throw new OwnChainRefusal(`refusing to start node ${identity.node}: ${error.message}`, null);
    throw error;
  }
  const report = mark.exists
    ? await checkFromMark(store, identity, mark.entries())
    : await verifyStore(store, ledgerCrypto, {
        node: identity.node,
        own: ownChainsOf(identity, null),
        maxUnsealed: checkpointEvery - 1,
      });
  if (!report.ok) {
    await mark.close();
    const lines = report.faults.map((f) => `tenant ${f.tenant}, node ${f.node}, seq ${f.seq}: ${f.problem}`);
    throw new OwnChainRefusal(
      `refusing to start: the store does not hold what node ${identity.node} wrote (its identity file and head mark disagree with it); nothing was signed.\n  ${lines.join('\n  ')}\nRun \`holdfast verify\` for the full report.`,
      report,
    );
  }
  const heads = new Map<string, MarkedHead>();
  for (const chain of report.chains) {
    if (chain.lastSeq === 0) continue;
    const row = await store.db
      .selectFrom('ledger_events')
      .select('hash')
      .where('tenant', '=', chain.tenant)
      .where('node', '=', chain.node)
      .where('seq', '=', chain.lastSeq)
      .executeTakeFirstOrThrow();
    heads.set(chain.tenant, { seq: chain.lastSeq, hash: row.hash });
  }
  // The store checked out: a write-ahead left by a crash is settled one way or the other.
  await mark.confirm(heads);
  return mark;
}

/** For commands that report rather than refuse (`holdfast verify`): the mark, or why it is unusable. */
export function openHeadMarkForReport(
  dataDir: string,
  identity: NodeIdentity,
): { mark: HeadMark | null; problem: string | null } {
  try {
    return { mark: HeadMark.open(dataDir, identity.signer, ledgerCrypto), problem: null };
  } catch (error) {
    if (error instanceof HeadMarkUnreadable) return { mark: null, problem: error.message };
    throw error;
  }
}

/** The node's own chains checked from its head mark on (see checkOwnChainsAtStart). */
async function checkFromMark(
  store: Store,
  identity: NodeIdentity,
  mark: ReadonlyMap<string, HeadMarkEntry>,
): Promise<VerifyReport> {
  const db = store.db;
  const node = identity.node;
  const held = await db
    .selectFrom('ledger_events')
    .select('tenant')
    .distinct()
    .where('node', '=', node)
    .execute();
  const tenants = [...new Set([...mark.keys(), ...held.map((r) => r.tenant)])].sort();
  const chains: VerifyReport['chains'] = [];
  let eventsChecked = 0;
  let checkpointsChecked = 0;
  for (const tenant of tenants) {
    const entry = mark.get(tenant);
    const last = await db
      .selectFrom('ledger_events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('tenant', '=', tenant)
      .where('node', '=', node)
      .executeTakeFirst();
    const lastSeq = Number(last?.seq ?? 0);
    const chain = { tenant, node, eventsChecked: 0, checkpointsChecked: 0, lastSeq, sealedSeq: 0 };
    const fault = (await registrationFault(store, identity, tenant)) ?? (await tailFault());
    chains.push({ ...chain, fault });

    async function tailFault(): Promise<ChainFault | null> {
      const committed = entry?.committed ?? { seq: 0, hash: '' };
      const anchor =
        committed.seq > 0
          ? await db
              .selectFrom('ledger_events')
              .select(['hash', 'hlc'])
              .where('tenant', '=', tenant)
              .where('node', '=', node)
              .where('seq', '=', committed.seq)
              .executeTakeFirst()
          : { hash: committed.hash, hlc: '' };
      if (!entry || !anchor || anchor.hash !== committed.hash) {
        // Missing, rewritten, or unknown to the mark: named from the store's own last checkpoint.
        const sealed = await db
          .selectFrom('checkpoints')
          .select((eb) => eb.fn.max('seq').as('seq'))
          .where('tenant', '=', tenant)
          .where('node', '=', node)
          .where('signer', '=', node)
          .where('seq', '<', Math.max(committed.seq, 1))
          .executeTakeFirst();
        return compareWithHeadMark(db, { ...chain, sealedSeq: Number(sealed?.seq ?? 0) }, entry);
      }
      const checkpoints = (
        await db
          .selectFrom('checkpoints')
          .selectAll()
          .where('tenant', '=', tenant)
          .where('node', '=', node)
          .where('seq', '>', committed.seq)
          .execute()
      ).map((c) => ({ ...c, seq: Number(c.seq) }));
      // Witnesses need the other nodes' keys; the node's own key is the identity file's.
      const keys = checkpoints.some((c) => c.signer !== node)
        ? await loadNodeKeys(db, tenant)
        : new Map<string, string>();
      keys.set(node, identity.publicKey);
      const verifier = new ChainVerifier(ledgerCrypto, tenant, node, keys, checkpoints, {
        selfKey: identity.publicKey,
        resumeAfter: { seq: committed.seq, hash: committed.hash, hlc: anchor.hlc },
      });
      const rows = await db
        .selectFrom('ledger_events')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '>', committed.seq)
        .orderBy('seq')
        .execute();
      for (const row of rows) if (!verifier.push(rowToStored(row))) break;
      const report = verifier.finish();
      eventsChecked += report.eventsChecked;
      checkpointsChecked += report.checkpointsChecked;
      return report.fault ?? compareWithHeadMark(db, { ...chain, sealedSeq: report.sealedSeq }, entry);
    }
  }
  const faults = chains.flatMap((c) => (c.fault ? [c.fault] : []));
  return { ok: faults.length === 0, chains, eventsChecked, checkpointsChecked, faults };
}

/**
 * The node's registration (seq 1 of its own chain) must name the key in its identity file. Later
 * registrations are covered by the mark (a re-hash changes the marked hash) or by `holdfast verify`.
 */
async function registrationFault(
  store: Store,
  identity: NodeIdentity,
  tenant: string,
): Promise<ChainFault | null> {
  const rows = await store.db
    .selectFrom('ledger_events')
    .selectAll()
    .where('tenant', '=', tenant)
    .where('node', '=', identity.node)
    .where('seq', '=', 1)
    .execute();
  for (const row of rows) {
    if (row.type !== 'node.registered') continue;
    let p: { node?: unknown; publicKey?: unknown };
    try {
      p = JSON.parse(row.payload) as typeof p;
    } catch {
      continue; // not JSON: its hash no longer matches, which verify names
    }
    if (p.node === identity.node && p.publicKey !== identity.publicKey)
      return {
        tenant,
        node: identity.node,
        seq: Number(row.seq),
        fromSeq: Number(row.seq),
        problem: `registers node ${identity.node} with a key that is not the one in its identity file (node.json): the chain was re-signed with another key`,
      };
  }
  return null;
}
