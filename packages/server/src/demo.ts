import { randomBytes } from 'node:crypto';
import { ROLE_LABELS, ROLES, type Role } from '@holdfast/core';
import { AccountsService } from './accounts/service.ts';
import { SessionStore } from './auth/sessions.ts';
import type { HoldfastNode } from './node/node.ts';

export const DEMO_TENANT = 'northshire-iuc';
export const DEMO_PROVIDER_NAME = 'Northshire IUC';

export interface DemoAccounts {
  password: string;
  users: { username: string; role: Role }[];
}

/**
 * The demo provider seeded at the first `npm start`: Northshire IUC, two sites, one user per role,
 * all with one generated password. Each enrols a second factor at first sign-in, like anyone.
 */
export async function seedDemoProvider(node: HoldfastNode): Promise<DemoAccounts> {
  const accounts = new AccountsService(node.store, node.ledger, new SessionStore(node.store, node.clock));
  const actor = `node:${node.identity.node}`;
  await accounts.createTenant(DEMO_TENANT, DEMO_PROVIDER_NAME, actor);
  const north = await accounts.createSite(DEMO_TENANT, 'Northshire 111 call centre', actor);
  const south = await accounts.createSite(DEMO_TENANT, 'Southport OOH treatment centre', actor);
  const password = `demo-${randomBytes(9).toString('base64url')}`;
  const users: DemoAccounts['users'] = [];
  for (const role of ROLES) {
    const username = `${role.replace('_', '-')}@northshire`;
    await accounts.create(
      DEMO_TENANT,
      {
        username,
        displayName: `Demo ${ROLE_LABELS[role].toLowerCase()}`,
        roles: [role],
        siteIds: [north, south],
        password,
      },
      actor,
    );
    users.push({ username, role });
  }
  return { password, users };
}
