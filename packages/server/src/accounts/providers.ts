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
