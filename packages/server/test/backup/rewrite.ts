import { canonicalJson, sealEvent, signCheckpoint } from '@holdfast/core';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import type { TestNode } from '../support/nodes.ts';
import { TENANT } from './fixture.ts';

/**
 * What an attacker holding a node's private key can do to its store: change the payload at `fromSeq`,
 * re-hash every later event so the links hold, and re-sign the node's own checkpoints. Only the
 * checkpoints other nodes witnessed still carry the old hashes.
 */
export async function rewriteChain(node: TestNode, chain: string, fromSeq: number): Promise<void> {
  const events = await node.ledger.readChain(TENANT, chain, 1);
  const sqlite = node.store.sqliteHandle()!;
  let prevHash = events[fromSeq - 2]!.hash;
  const rewritten = new Map<number, { hash: string; hlc: string }>();
  for (const e of events.slice(fromSeq - 1)) {
    const payloadJson =
      e.seq === fromSeq
        ? canonicalJson({ ...(JSON.parse(e.payloadJson) as object), text: 'rewritten' })
        : e.payloadJson;
    const sealed = sealEvent(ledgerCrypto, { ...e, payloadJson, prevHash });
    sqlite
      .prepare(
        'update ledger_events set payload = ?, prev_hash = ?, hash = ? where tenant = ? and node = ? and seq = ?',
      )
      .run(sealed.payloadJson, sealed.prevHash, sealed.hash, TENANT, chain, e.seq);
    rewritten.set(e.seq, { hash: sealed.hash, hlc: sealed.hlc });
    prevHash = sealed.hash;
  }
  const own = await node.ledger.checkpoints(TENANT, chain, fromSeq);
  for (const c of own.filter((x) => x.signer === chain)) {
    const r = rewritten.get(c.seq)!;
    const signed = signCheckpoint(node.identity.signer, {
      tenant: TENANT,
      node: chain,
      seq: c.seq,
      hash: r.hash,
      hlc: r.hlc,
    });
    sqlite
      .prepare(
        'update checkpoints set hash = ?, signature = ? where tenant = ? and node = ? and seq = ? and signer = ?',
      )
      .run(signed.hash, signed.signature, TENANT, chain, c.seq, chain);
  }
}
