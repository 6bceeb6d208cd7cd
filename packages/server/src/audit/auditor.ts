import type { Permission } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';
import { actorOf } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';

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

  async denied(
    ctx: RequestContext,
    permission: Permission,
    route: string,
    repeats?: { count: number; firstAt: string; lastAt: string },
  ): Promise<void> {
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'audit.denied',
        actor: actorOf(ctx),
        payload: {
          userId: ctx.userId,
          roles: ctx.roles,
          siteIds: ctx.siteIds,
          permission,
          route,
          ...repeats,
        },
      },
    ]);
  }

  async access(ctx: RequestContext, fields: AccessFields): Promise<void> {
    await this.ledger.append([accessEvent(ctx, fields)]);
  }
}

export interface AccessFields {
  action: 'read' | 'write' | 'search';
  resourceType: 'patient' | 'case';
  resourceId?: string;
  reason?: string;
  breakGlass: boolean;
  fields: string[];
}

/**
 * The `audit.access` event of one access, for a caller that appends it in the same commit as the
 * write it records (so the record and its audit stand or fall together).
 */
export function accessEvent(ctx: RequestContext, fields: AccessFields): EventDraft {
  return {
    tenant: ctx.tenant,
    type: 'audit.access',
    actor: actorOf(ctx),
    payload: stripUndefined({ userId: ctx.userId, roles: ctx.roles, siteIds: ctx.siteIds, ...fields }),
  };
}

function stripUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
