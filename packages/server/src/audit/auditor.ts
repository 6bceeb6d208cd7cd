import type { Permission } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';
import { actorOf } from '../http/context.ts';
import type { Ledger } from '../ledger/ledger.ts';

/**
 * Writes audit events into the ledger. Callers await them: access to patient data is recorded
 * durably before the data leaves the server.
 */
export class Auditor {
  constructor(private readonly ledger: Ledger) {}

  async signIn(fields: {
    tenant: string;
    userId?: string;
    step: 'password' | 'totp' | 'recovery_code' | 'passkey' | 'sign_out';
    outcome: 'success' | 'failure' | 'throttled' | 'locked';
    address: string;
  }): Promise<void> {
    const { tenant, ...payload } = fields;
    await this.ledger.append([
      {
        tenant,
        type: 'audit.sign_in',
        actor: fields.userId ? `user:${fields.userId}` : 'anonymous',
        payload: stripUndefined(payload),
      },
    ]);
  }

  async denied(ctx: RequestContext, permission: Permission, route: string): Promise<void> {
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'audit.denied',
        actor: actorOf(ctx),
        payload: { userId: ctx.userId, roles: ctx.roles, siteIds: ctx.siteIds, permission, route },
      },
    ]);
  }

  async access(
    ctx: RequestContext,
    fields: {
      action: 'read' | 'write' | 'search';
      resourceType: 'patient' | 'case';
      resourceId?: string;
      reason?: string;
      breakGlass: boolean;
      fields: string[];
    },
  ): Promise<void> {
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'audit.access',
        actor: actorOf(ctx),
        payload: stripUndefined({ userId: ctx.userId, roles: ctx.roles, siteIds: ctx.siteIds, ...fields }),
      },
    ]);
  }
}

function stripUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
