import type { Clock, Role } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';
import { actorOf } from '../http/context.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Store } from '../store/store.ts';
import {
  collectPackData,
  type DowntimePackData,
  type KeyContact,
  type PackAppointments,
  type PackDispatch,
} from './pack-data.ts';
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

  /** Cars, crews and visits in progress for the pack (set when the node runs the dispatch module). */
  private dispatch:
    | ((tenant: string, siteIds: readonly string[] | 'all', roles: readonly Role[]) => Promise<PackDispatch>)
    | null = null;

  setDispatch(
    section: (
      tenant: string,
      siteIds: readonly string[] | 'all',
      roles: readonly Role[],
    ) => Promise<PackDispatch>,
  ): void {
    this.dispatch = section;
  }

  /** Treatment-centre appointments for the pack (set when the node runs the booking module). */
  private appointments:
    | ((tenant: string, siteIds: readonly string[] | 'all', fromMs: number) => Promise<PackAppointments>)
    | null = null;

  setAppointments(
    section: (
      tenant: string,
      siteIds: readonly string[] | 'all',
      fromMs: number,
    ) => Promise<PackAppointments>,
  ): void {
    this.appointments = section;
  }

  /** The other modules' sections (dispatch, appointments), each read through its module's service. */
  private async withDispatch(
    data: DowntimePackData,
    siteIds: readonly string[] | 'all',
    roles: readonly Role[],
  ): Promise<DowntimePackData> {
    const dispatch = this.dispatch ? await this.dispatch(data.tenant, siteIds, roles) : null;
    const appointments = this.appointments
      ? await this.appointments(data.tenant, siteIds, data.generatedAtMs)
      : null;
    return {
      ...data,
      ...(dispatch ? { dispatch } : {}),
      ...(appointments && appointments.centres.length > 0 ? { appointments } : {}),
    };
  }

  /** For a signed-in member of staff: the open cases of their own sites, as their role may see them. */
  async forUser(ctx: RequestContext): Promise<DowntimePack> {
    const data = await this.withDispatch(
      await collectPackData(this.store, {
        tenant: ctx.tenant,
        siteIds: ctx.siteIds,
        roles: ctx.roles,
        generatedBy: ctx.username,
        nowMs: this.clock.nowMs(),
        contacts: this.options.contacts ?? [],
      }),
      ctx.siteIds,
      ctx.roles,
    );
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
    const data = await this.withDispatch(
      await collectPackData(this.store, {
        tenant,
        ...(siteIds ? { siteIds } : {}),
        roles: ['clinician'],
        generatedBy: by.operator ? `${by.operator} (command line)` : 'the node (timer)',
        nowMs: this.clock.nowMs(),
        contacts: this.options.contacts ?? [],
      }),
      siteIds ?? 'all',
      ['clinician'],
    );
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
          caseIds: [
            ...new Set([
              ...[...data.callbacks, ...data.withAdvisers, ...data.otherOpen].map((c) => c.caseId),
              ...(data.dispatch?.visits ?? []).map((v) => v.caseId),
              ...(data.appointments?.centres ?? []).flatMap((c) => c.appointments.map((a) => a.caseId)),
            ]),
          ],
        },
      },
    ]);
  }
}
