import { ValidationError } from '@holdfast/core';
import type { HoldfastNode } from '../node/node.ts';
import { unwrapKeySet } from '../node/provider-keys.ts';
import { requestEnrolment } from './enrolment.ts';

/**
 * A site's way to its provider's current key set after a rotation on the hub: the enrolment path
 * again, for the node already enrolled. The hub spends the one-time token (issued by a provider
 * admin, `holdfast nodes enrol-token` or the API), recognises the node's registered key, registers
 * nothing new, and answers with the key set wrapped under the token. The answer must come from the
 * hub this site pinned and be for its own provider; the keys are merged with those held.
 */
export async function fetchProviderKeys(
  node: HoldfastNode,
  token: string,
  fetchImpl: typeof fetch = fetch,
): Promise<{ current: string; keyIds: string[] }> {
  const hub = node.identity.hub;
  if (node.identity.role !== 'site' || !hub)
    throw new ValidationError([
      { path: 'role', message: 'this node is not a site with a hub: its provider keys are made here' },
    ]);
  const answer = await requestEnrolment(
    hub.url,
    { token, node: node.identity.node, publicKey: node.identity.signer.publicKey },
    fetchImpl,
  );
  if (answer.tenant !== node.identity.tenant)
    throw new Error(
      `the token is for provider ${answer.tenant}, not this site's ${node.identity.tenant}: ask for a token of ${node.identity.tenant}`,
    );
  if (answer.hub.node !== hub.node || answer.hub.publicKey !== hub.publicKey)
    throw new Error(
      `the hub at ${hub.url} answered as ${answer.hub.node} with a key other than the one pinned here: nothing taken (see holdfast nodes repin-hub)`,
    );
  if (!answer.providerKey) throw new Error('the hub sent no provider keys: it holds none for this provider');
  const set = unwrapKeySet(answer.providerKey, token);
  node.providerKeys.adopt(node.identity.tenant, set);
  const held = node.providerKeys.keySet(node.identity.tenant);
  return { current: held.current, keyIds: Object.keys(held.keys) };
}
