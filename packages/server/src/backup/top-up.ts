import { loadNodeKeys } from '../projections/node-keys.ts';
import type { HoldfastNode } from '../node/node.ts';
import { SyncEngine } from '../sync/engine.ts';
import { HttpSyncTransport, SignatureRefusedError, SyncHttpError } from '../sync/http-transport.ts';
import type { TopUpResult } from './restore.ts';

/**
 * Tops a restored node up from a live peer with the sync engine over HTTP, as the restored node
 * itself (its restored identity signs the requests). `peer` is `URL` or `node-id=URL`. Without a
 * node id, each node the restored ledger registers is tried in turn: the peer's answer must be
 * signed by the key registered for the node it claims to be, so a wrong guess is refused, never
 * trusted. Whatever is pulled goes through the sync import checks (hashes, links, signatures).
 */
export async function topUpFromPeer(node: HoldfastNode, peer: string): Promise<TopUpResult> {
  const m = /^([A-Za-z0-9][A-Za-z0-9._:-]{0,127})=(https?:\/\/.+)$/.exec(peer);
  const url = m ? m[2]! : peer;
  if (!/^https?:\/\//.test(url))
    throw new Error(`--peer must be a URL (http:// or https://), or node-id=URL; got ${peer}`);
  const tenant = node.identity.tenant;
  const keys = await loadNodeKeys(node.store.db, tenant);
  const candidates = m ? [m[1]!] : [...keys.keys()].filter((n) => n !== node.identity.node).sort();
  const errors: string[] = [];
  for (const peerNode of candidates) {
    const peerPublicKey = keys.get(peerNode);
    if (!peerPublicKey) {
      errors.push(`${peerNode} is not a registered node of tenant ${tenant}`);
      continue;
    }
    const transport = new HttpSyncTransport({
      url,
      peerNode,
      peerPublicKey,
      signer: node.identity.signer,
      tenant,
      clock: node.clock,
    });
    try {
      const result = await new SyncEngine(node, tenant, transport).syncOnce();
      return { peer: `${peerNode}=${url}`, events: result.pulled };
    } catch (error) {
      // Only an answer not signed by this candidate's key means "not this node"; anything else is real.
      if (!m && (error instanceof SyncHttpError || error instanceof SignatureRefusedError)) {
        errors.push(`${peerNode}: ${error.message}`);
        continue;
      }
      throw error;
    }
  }
  throw new Error(`could not sync from ${url}: ${errors.join('; ') || 'no other node is registered'}`);
}
