import type { Clock } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';
import { actorOf } from '../http/context.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Store } from '../store/store.ts';
import { collectPackData, type DowntimePackData, type KeyContact } from './pack-data.ts';
import { renderDowntimePack, type RenderOptions } from './pdf.ts';

export interface DowntimePack {
  pdf: Buffer;
  data: DowntimePackData;
}

/**
 * Makes downtime packs. Every pack is patient data leaving the system on paper, so each is recorded
 * (`audit.downtime_pack`, naming every case in it) durably before its PDF is returned.
 */
export class DowntimePackService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly options: { contacts?: readonly KeyContact[]; render?: RenderOptions } = {},
  ) {}

  /** For a signed-in member of staff: the open cases of their own sites, as their role may see them. */
  async forUser(ctx: RequestContext): Promise<DowntimePack> {
    const data = await collectPackData(this.store, {
      tenant: ctx.tenant,
      siteIds: ctx.siteIds,
      roles: ctx.roles,
      generatedBy: ctx.username,
      nowMs: this.clock.nowMs(),
      contacts: this.options.contacts ?? [],
    });
    await this.audit(data, actorOf(ctx), {
      trigger: 'request',
      userId: ctx.userId,
      roles: ctx.roles,
    });
    return { data, pdf: await renderDowntimePack(data, this.options.render) };
  }

  /**
   * For the node itself (an operator's command, or the timer): with no user, the pack shows what a
   * clinician would see, as it is what the site's clinical staff work from when the system is down.
   */
  async forNode(
    tenant: string,
    by: { trigger: 'command' | 'timer'; actor: string; operator?: string },
    siteIds?: readonly string[],
  ): Promise<DowntimePack> {
    const data = await collectPackData(this.store, {
      tenant,
      ...(siteIds ? { siteIds } : {}),
      roles: ['clinician'],
      generatedBy: by.operator ? `${by.operator} (command line)` : 'the node (timer)',
      nowMs: this.clock.nowMs(),
      contacts: this.options.contacts ?? [],
    });
    await this.audit(data, by.actor, {
      trigger: by.trigger,
      ...(by.operator ? { operator: by.operator.slice(0, 100) } : {}),
    });
    return { data, pdf: await renderDowntimePack(data, this.options.render) };
  }

  private async audit(data: DowntimePackData, actor: string, fields: Record<string, unknown>): Promise<void> {
    await this.ledger.append([
      {
        tenant: data.tenant,
        type: 'audit.downtime_pack',
        actor,
        payload: {
          ...fields,
          siteIds: data.sites.map((s) => s.siteId),
          caseIds: [...data.callbacks, ...data.withAdvisers, ...data.otherOpen].map((c) => c.caseId),
        },
      },
    ]);
  }
}
