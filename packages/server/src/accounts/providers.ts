import { ConflictError, ValidationError } from '@holdfast/core';
import type { HoldfastNode } from '../node/node.ts';
import type { AccountsService } from './service.ts';

/** A provider (tenant) id: what user names end in (`…@<id>`) and what every row is scoped by. */
export const PROVIDER_ID = /^[a-z0-9][a-z0-9-]{1,62}$/;

/**
 * Adds a provider to a node that serves several (a supplier's hosted hub): its own chain, begun
 * with this node's key registration so that its checkpoints verify here and wherever its events go
 * (a chain without it was the cause of "checkpoint signed by node-1, which is not a registered node
 * of tenant …"), and its own key for account secrets, then the `tenant.created` event.
 */
export async function addProvider(
  node: HoldfastNode,
  accounts: AccountsService,
  fields: { tenant: string; name: string; actor: string },
): Promise<void> {
  const problems = [];
  if (!PROVIDER_ID.test(fields.tenant))
    problems.push({
      path: 'tenant',
      message: 'must be 2-63 lower-case letters, digits or - (starting with a letter or digit)',
    });
  if (fields.name.trim().length === 0 || fields.name.length > 200)
    problems.push({ path: 'name', message: 'must be the provider name, 1-200 characters' });
  if (problems.length > 0) throw new ValidationError(problems);
  if (node.identity.role === 'site')
    throw new ValidationError([
      { path: 'tenant', message: 'a site cannot add providers: add them on the hub or a single node' },
    ]);
  if (await accounts.providerExists(fields.tenant))
    throw new ConflictError(`provider ${fields.tenant} exists already on this node`);
  await node.ledger.registerSelf(fields.tenant, node.identity.role);
  node.providerKeys.ensure(fields.tenant);
  await accounts.createTenant(fields.tenant, fields.name.trim(), fields.actor);
}

/**
 * Providers made the old way (a bare `tenant.created`, before `holdfast providers add`) have a chain
 * on this node that this node never registered its key in: their checkpoints name a signer the
 * tenant does not know, and `holdfast verify` says so. This appends the node's `node.registered` to
 * each such chain (the registry of a tenant's keys is its whole ledger, so the later registration
 * vouches for the earlier checkpoints too), seals it with a checkpoint, and gives a hub or single
 * node a key for the provider's account secrets if it had none. Run at every start; returns the
 * providers it registered the node in (none after the first run).
 */
export async function registerInOldProviders(node: HoldfastNode): Promise<string[]> {
  const self = node.identity.node;
  const db = node.store.db.withTables<{ node_keys: { tenant: string; node: string } }>();
  const ownChains = await node.store.db
    .selectFrom('ledger_events')
    .select('tenant')
    .distinct()
    .where('node', '=', self)
    .execute();
  const registered = new Set(
    (await db.selectFrom('node_keys').select('tenant').where('node', '=', self).execute()).map(
      (r) => r.tenant,
    ),
  );
  const missing = ownChains.map((r) => r.tenant).filter((tenant) => !registered.has(tenant));
  for (const tenant of missing.sort()) {
    await node.ledger.append([
      {
        tenant,
        type: 'node.registered',
        actor: `node:${self}`,
        payload: { node: self, publicKey: node.identity.signer.publicKey, role: node.identity.role },
      },
    ]);
    await node.ledger.checkpointNow(tenant);
    if (node.identity.role !== 'site') node.providerKeys.ensure(tenant);
  }
  return missing;
}

/**
 * `holdfast providers rotate-key`: a new current key for the provider's account secrets. Account
 * events written from now on are sealed under it; the older keys stay in provider-keys.json, by
 * id, to open what they sealed (the ledger is never rewritten). Sites hold the key set they were
 * given at enrolment: each takes the new set with `holdfast providers fetch-keys --token …` (a new
 * enrolment token for the same node), see `fetchProviderKeys`.
 */
export async function rotateProviderKey(
  node: HoldfastNode,
  accounts: AccountsService,
  tenant: string,
): Promise<{ keyId: string; keyIds: string[] }> {
  if (node.identity.role === 'site')
    throw new ValidationError([
      {
        path: '--provider',
        message: 'a site does not make provider keys: rotate on the hub, then fetch the keys here',
      },
    ]);
  if (!(await accounts.providerExists(tenant)))
    throw new ValidationError([{ path: '--provider', message: `no provider ${tenant} on this node` }]);
  const keyId = node.providerKeys.rotate(tenant);
  return { keyId, keyIds: Object.keys(node.providerKeys.keySet(tenant).keys) };
}
