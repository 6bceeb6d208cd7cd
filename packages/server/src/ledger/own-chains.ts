import type { Store } from '../store/store.ts';
import type { NodeIdentity } from '../node/identity.ts';
import { ledgerCrypto } from '../node/crypto.ts';
import { HeadMark, HeadMarkUnreadable, type MarkedHead } from './head-mark.ts';
import { verifyStore, type OwnChains, type VerifyReport } from './verify.ts';

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
 * The start-up check: every chain this node writes is re-verified in full (hashes, links, its
 * checkpoints against the key in its identity file, its registration naming that key) and its end is
 * held against the head mark. With no mark yet (a store from before head marks) the unsealed tail
 * must be within the checkpoint bound, and the mark is then written. Throws OwnChainRefusal naming
 * tenant, node and the first bad seq; returns the mark the ledger goes on writing.
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
  const report = await verifyStore(store, ledgerCrypto, {
    node: identity.node,
    own: ownChainsOf(identity, mark),
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
