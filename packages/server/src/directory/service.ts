import { createHash } from 'node:crypto';
import {
  ConflictError,
  NotFoundError,
  searchDirectory,
  ValidationError,
  type CapacityStatus,
  type Clock,
  type DirectorySearchQuery,
  type DirectorySearchResult,
  type DirectoryService as DirectoryServiceRecord,
  type DirectoryServiceDefinition,
} from '@holdfast/core';
import { ageInYears } from '@holdfast/core/triage/eligibility';
import {
  directoryToCsv,
  directoryToJson,
  parseDirectoryFile,
  type DirectoryFileFormat,
} from '@holdfast/core/directory/files';
import type { Auditor } from '../audit/auditor.ts';
import type { CaseService } from '../cases/service.ts';
import type { TriageService } from '../cases/triage.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store } from '../store/store.ts';
import { directoryDb, serviceOf } from './projection.ts';
import { PostcodeStore, type PostcodePlace } from './postcodes.ts';

/** How far a search looks when the caller does not say (km). */
export const DEFAULT_SEARCH_DISTANCE_KM = 25;
/** The timeframe searched for a disposition without a clock (routine, "own GP"): a day. */
export const UNTIMED_DISPOSITION_MINUTES = 24 * 60;

export type SearchLocation = { postcode: string } | { latitude: number; longitude: number };

export interface CaseSearchInput {
  caseId: string;
  location: SearchLocation;
  distanceKm?: number;
  /** The instant to search from (default now): planning ahead, or a test's clock. */
  atMs?: number;
}

export type CaseSearchResult = DirectorySearchResult & { query: DirectorySearchQuery; searchId: string };

/**
 * The provider's Directory of Services: services as ledger facts (directory.* events), searched in
 * core (`searchDirectory`, the same code a site without its hub and the browser run), with the
 * node-local postcode table for places.
 */
export class DirectoryService {
  readonly postcodes: PostcodeStore;

  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly deps: {
      cases: CaseService;
      patients: PatientService;
      triage: TriageService;
      auditor: Auditor;
    },
  ) {
    this.postcodes = new PostcodeStore(store);
  }

  /** The provider's services in the directory now (removed ones left out), by name. */
  async services(tenant: string): Promise<DirectoryServiceRecord[]> {
    const rows = await this.store.withTenant(tenant, (trx) =>
      directoryDb(trx)
        .selectFrom('directory_services')
        .select(['definition', 'capacity'])
        .where('tenant', '=', tenant)
        .where('removed', '=', 0)
        .execute(),
    );
    return rows
      .map(serviceOf)
      .sort((a, b) => a.name.localeCompare(b.name) || (a.serviceId < b.serviceId ? -1 : 1));
  }

  async serviceById(tenant: string, serviceId: string): Promise<DirectoryServiceRecord | null> {
    const row = await this.row(tenant, serviceId);
    return row && row.removed === 0 ? serviceOf(row) : null;
  }

  private row(tenant: string, serviceId: string) {
    return this.store.withTenant(tenant, (trx) =>
      directoryDb(trx)
        .selectFrom('directory_services')
        .select(['definition', 'capacity', 'version', 'removed'])
        .where('tenant', '=', tenant)
        .where('service_id', '=', serviceId)
        .executeTakeFirst(),
    );
  }

  /** A search over the provider's services (pure core; nothing recorded). */
  async search(tenant: string, query: DirectorySearchQuery): Promise<DirectorySearchResult> {
    return searchDirectory(await this.services(tenant), query);
  }

  /** The place of a postcode from the node's postcode table, or null. */
  async locate(postcode: string): Promise<PostcodePlace | null> {
    return this.postcodes.locate(postcode);
  }

  /** Adds a service or replaces its definition (its capacity stays as staff set it). */
  async set(
    tenant: string,
    actor: string,
    definition: DirectoryServiceDefinition,
  ): Promise<DirectoryServiceRecord> {
    await this.ledger.append(await this.setDrafts(tenant, actor, [definition]));
    return (await this.serviceById(tenant, definition.serviceId))!;
  }

  private async setDrafts(
    tenant: string,
    actor: string,
    definitions: readonly DirectoryServiceDefinition[],
  ): Promise<EventDraft[]> {
    const versions = new Map(
      (
        await this.store.withTenant(tenant, (trx) =>
          directoryDb(trx)
            .selectFrom('directory_services')
            .select(['service_id', 'version'])
            .where('tenant', '=', tenant)
            .execute(),
        )
      ).map((r) => [r.service_id, Number(r.version)]),
    );
    return definitions.map((service) => ({
      tenant,
      type: 'directory.service_set',
      actor,
      payload: { version: (versions.get(service.serviceId) ?? 0) + 1, service },
    }));
  }

  async remove(ctx: RequestContext, serviceId: string, reason: string): Promise<void> {
    if (!(await this.serviceById(ctx.tenant, serviceId))) throw new NotFoundError('service');
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'directory.service_removed',
        actor: actorOf(ctx),
        payload: { serviceId, reason },
      },
    ]);
  }

  async setCapacity(
    ctx: RequestContext,
    serviceId: string,
    capacity: { status: CapacityStatus; note?: string | undefined },
  ): Promise<DirectoryServiceRecord> {
    if (!(await this.serviceById(ctx.tenant, serviceId))) throw new NotFoundError('service');
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'directory.capacity_set',
        actor: actorOf(ctx),
        payload: { serviceId, status: capacity.status, ...(capacity.note ? { note: capacity.note } : {}) },
      },
    ]);
    return (await this.serviceById(ctx.tenant, serviceId))!;
  }

  /**
   * Imports a directory file: every service in it is added or replaced, in one append (all or
   * nothing); services not in the file stay. A bad row refuses the file (DirectoryFileError).
   */
  async importFile(
    tenant: string,
    actor: string,
    text: string,
    format: DirectoryFileFormat,
  ): Promise<{ imported: number }> {
    const definitions = parseDirectoryFile(text, format);
    if (definitions.length > 0) await this.ledger.append(await this.setDrafts(tenant, actor, definitions));
    return { imported: definitions.length };
  }

  async exportFile(tenant: string, format: DirectoryFileFormat): Promise<string> {
    const definitions = (await this.services(tenant)).map(
      ({ capacity: _capacity, ...definition }) => definition,
    );
    return format === 'csv' ? directoryToCsv(definitions) : directoryToJson(definitions);
  }

  /** Where a search starts: a postcode from the table (400 naming `postcode` when unknown), or coordinates. */
  async place(location: SearchLocation): Promise<{ latitude: number; longitude: number }> {
    if (!('postcode' in location)) return location;
    const found = await this.locate(location.postcode);
    if (!found)
      throw new ValidationError([
        {
          path: 'postcode',
          message: 'is not in the postcode table: check it, or give the latitude and longitude instead',
        },
      ]);
    return { latitude: found.latitude, longitude: found.longitude };
  }

  /**
   * The search for a case: its disposition (Dx code and timeframe), the pathway's symptom group, and
   * the identified patient's age and sex come from the case, the place from the caller. Reading the
   * case is audited as reads of cases are; nothing else is recorded (the referral records what was
   * offered, quoting the searchId: a hash of the query and the ranked services).
   */
  async searchForCase(ctx: RequestContext, input: CaseSearchInput): Promise<CaseSearchResult> {
    const row = await this.deps.cases.get(ctx, input.caseId);
    if (!row.dx_code)
      throw new ConflictError('the case has no disposition yet: search once triage reaches one');
    const location = await this.place(input.location);
    const fromMs = input.atMs ?? this.clock.nowMs();
    const facts = row.patient_id ? await this.deps.patients.directoryFacts(ctx.tenant, row.patient_id) : null;
    const symptomGroup = row.pathway_id
      ? (this.deps.triage.pack.protocols.get(row.pathway_id)?.content.symptomGroup ?? null)
      : null;
    const query: DirectorySearchQuery = {
      dxCode: row.dx_code,
      symptomGroup,
      ageYears: facts ? ageInYears(facts.dateOfBirth, new Date(fromMs).toISOString()) : null,
      sex: facts ? (facts.sex === 'male' || facts.sex === 'female' ? facts.sex : 'unknown') : null,
      location,
      maxDistanceKm: input.distanceKm ?? DEFAULT_SEARCH_DISTANCE_KM,
      fromMs,
      withinMinutes:
        row.timeframe_minutes !== null && Number(row.timeframe_minutes) > 0
          ? Number(row.timeframe_minutes)
          : UNTIMED_DISPOSITION_MINUTES,
    };
    const result = await this.search(ctx.tenant, query);
    await this.deps.auditor.access(ctx, {
      action: 'read',
      resourceType: 'case',
      resourceId: input.caseId,
      breakGlass: false,
      fields: ['directory_search'],
    });
    const searchId = createHash('sha256')
      .update(JSON.stringify({ query, ranked: result.ranked.map((r) => r.service.serviceId) }))
      .digest('hex')
      .slice(0, 32);
    return { ...result, query, searchId };
  }
}
