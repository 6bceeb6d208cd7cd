import {
  providerReportingSettingsSchema,
  REQUIRED_REPORTING_SETTINGS,
  type ProviderReportingSettings,
} from '@holdfast/core';
import { sql } from 'kysely';
import { actorOf, type RequestContext } from '../http/context.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Store, Tx } from '../store/store.ts';

/**
 * The provider's national reporting identity (ODS code, contract area, region) as events
 * (`provider.reporting_settings_set`), folded into one row per provider: the newest in ledger order
 * stands. A provider admin reads and sets it over the API; the IUC ADC return reads it.
 */
export interface ProviderSettingsTable {
  tenant: string;
  /** The settings as canonical JSON (the event's `settings`). */
  settings: string;
  set_by: string;
  set_at_hlc: string;
}

export type ProviderSettingsTables = { provider_settings: ProviderSettingsTable };

export function providerSettingsDb(db: Db | Tx) {
  return db.withTables<ProviderSettingsTables>();
}

const folds = foldsTypes('provider.reporting_settings_set');

export const providerSettingsProjection: Projection = {
  name: 'provider_settings',
  version: 1,
  tables: ['provider_settings'],
  folds,
  async create(trx) {
    await sql`create table provider_settings (
      tenant text not null primary key,
      settings text not null,
      set_by text not null,
      set_at_hlc text not null
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = providerSettingsDb(trx);
    const row = {
      tenant: e.tenant,
      settings: JSON.stringify((e.payload as { settings: ProviderReportingSettings }).settings),
      set_by: e.actor,
      set_at_hlc: e.hlc,
    };
    // One subject per provider, folded in ledger order: the later event replaces the earlier.
    await db.deleteFrom('provider_settings').where('tenant', '=', e.tenant).execute();
    await db.insertInto('provider_settings').values(row).execute();
  },
  async resetSubject(trx, tenant, subject) {
    if (subject !== 'provider-settings') return;
    await providerSettingsDb(trx).deleteFrom('provider_settings').where('tenant', '=', tenant).execute();
  },
};

export interface ProviderSettingsView {
  settings: ProviderReportingSettings;
  /** The required settings not set: a national return cannot be made without them. */
  missing: (typeof REQUIRED_REPORTING_SETTINGS)[number][];
  setBy: string | null;
  setAt: string | null;
}

/** Reads the settings inside a transaction already scoped to the tenant (the report's). */
export async function readProviderSettings(
  trx: Tx,
  tenant: string,
  tenantFilter = true,
): Promise<ProviderSettingsView> {
  let q = providerSettingsDb(trx).selectFrom('provider_settings').selectAll();
  if (tenantFilter) q = q.where('tenant', '=', tenant);
  const row = await q.executeTakeFirst();
  const settings = row ? (JSON.parse(row.settings) as ProviderReportingSettings) : {};
  return {
    settings,
    missing: REQUIRED_REPORTING_SETTINGS.filter((k) => settings[k] === undefined),
    setBy: row?.set_by ?? null,
    setAt: row ? new Date(Number(row.set_at_hlc.slice(0, 15))).toISOString() : null,
  };
}

/** The provider settings service: read, and replace (every field at once; one left out is unset). */
export class ProviderSettingsService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly scope: { tenantFilter: boolean } = { tenantFilter: true },
  ) {}

  async read(tenant: string): Promise<ProviderSettingsView> {
    return this.store.withTenant(tenant, (trx) => readProviderSettings(trx, tenant, this.scope.tenantFilter));
  }

  async set(ctx: RequestContext, settings: ProviderReportingSettings): Promise<ProviderSettingsView> {
    // The event names who set it (its actor): no patient data, so no audit.access beside it.
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'provider.reporting_settings_set',
        actor: actorOf(ctx),
        payload: { settings },
      },
    ]);
    return this.read(ctx.tenant);
  }
}

/**
 * `GET|PUT /api/v1/admin/reporting-settings`: the provider's ODS code, contract area and region for
 * national returns, for a provider admin (`sites.manage`: they configure the provider's sites too).
 */
export function providerSettingsRoutes(service: ProviderSettingsService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/admin/reporting-settings',
      summary:
        'Your provider’s national reporting identity (ODS code, contract area, region) and what is missing',
      access: { permission: 'sites.manage' },
      async handler({ ctx }) {
        return service.read(ctx.tenant);
      },
    }),
    authedRoute({
      method: 'PUT',
      url: '/api/v1/admin/reporting-settings',
      summary: 'Set your provider’s national reporting identity; a field left out is not set',
      access: { permission: 'sites.manage' },
      body: providerReportingSettingsSchema,
      async handler({ ctx, body }) {
        return service.set(ctx, body);
      },
    }),
  ];
}
