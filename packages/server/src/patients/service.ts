import { randomUUID } from 'node:crypto';
import {
  ForbiddenError,
  hasPermission,
  NotFoundError,
  ValidationError,
  type PatientRecord,
} from '@holdfast/core';
import type { Auditor } from '../audit/auditor.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Store } from '../store/store.ts';
import type { AccountsService } from '../accounts/service.ts';
import { foldName, patientsDb } from './projection.ts';

/** Fields only some roles may see (field-level rules over the permission table). */
const PROTECTED_FIELDS = {
  clinicalNotes: 'patients.clinical_notes.read',
  accessInstructions: 'patients.access_instructions.read',
} as const;

export interface PatientView {
  patientId: string;
  homeSiteId: string;
  record: Partial<PatientRecord>;
  /** Fields withheld from this role. */
  withheld: string[];
  breakGlass: boolean;
}

export interface PatientSummary {
  patientId: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  nhsNumber: string | null;
  homeSiteId: string;
}

/**
 * Patient records. This is the only way to patient rows, and every read, search and write here
 * records an audit event in the ledger before anything is returned: later modules get auditing by
 * construction.
 */
export class PatientService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly auditor: Auditor,
    private readonly accounts: AccountsService,
    readonly options: { tenantFilter: boolean } = { tenantFilter: true },
  ) {}

  async register(ctx: RequestContext, homeSiteId: string, record: PatientRecord): Promise<string> {
    const sites = await this.accounts.sites(ctx.tenant);
    if (!sites.some((s) => s.siteId === homeSiteId))
      throw new ValidationError([{ path: 'body.homeSiteId', message: 'is not a site of your provider' }]);
    const patientId = randomUUID();
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'patient.registered',
        actor: actorOf(ctx),
        payload: { patientId, homeSiteId, record },
      },
      {
        tenant: ctx.tenant,
        type: 'audit.access',
        actor: actorOf(ctx),
        payload: {
          userId: ctx.userId,
          roles: ctx.roles,
          siteIds: ctx.siteIds,
          action: 'write',
          resourceType: 'patient',
          resourceId: patientId,
          breakGlass: false,
          fields: Object.keys(record),
        },
      },
    ]);
    return patientId;
  }

  /**
   * One patient's record, filtered for the caller's role. Outside the caller's sites it needs a
   * stated reason and the break-glass permission, and the access is flagged for review.
   */
  async read(ctx: RequestContext, patientId: string, breakGlassReason?: string): Promise<PatientView> {
    const row = await this.store.withTenant(ctx.tenant, async (trx) => {
      let q = patientsDb(trx).selectFrom('patients').selectAll().where('patient_id', '=', patientId);
      if (this.options.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
      return q.executeTakeFirst();
    });
    if (!row) throw new NotFoundError('patient');
    const inScope = ctx.siteIds.includes(row.home_site_id);
    let breakGlass = false;
    if (!inScope) {
      const allowed = hasPermission(ctx.roles, 'patients.break_glass');
      const reasoned = !!breakGlassReason && breakGlassReason.trim().length >= 10;
      if (!allowed || !reasoned) {
        // A refused attempt to open a record outside one's scope is itself worth an auditor's eye.
        await this.auditor.denied(ctx, 'patients.break_glass', 'GET /api/v1/patients/:patientId');
        if (!allowed) throw new ForbiddenError('this patient is outside your sites');
        throw new ForbiddenError(
          'this patient is outside your sites: state a reason (at least 10 characters) in the X-Break-Glass-Reason header; the access is flagged for review',
        );
      }
      breakGlass = true;
    }
    const full = JSON.parse(row.record) as PatientRecord;
    const withheld: string[] = [];
    const record: Partial<PatientRecord> = { ...full };
    for (const [field, permission] of Object.entries(PROTECTED_FIELDS) as [
      keyof typeof PROTECTED_FIELDS,
      (typeof PROTECTED_FIELDS)[keyof typeof PROTECTED_FIELDS],
    ][]) {
      if (!hasPermission(ctx.roles, permission)) {
        if (record[field] !== undefined) withheld.push(field);
        delete record[field];
      }
    }
    // Special notes come first in every view: they change what a call handler does next.
    const ordered = { specialNotes: record.specialNotes ?? [], ...record };
    await this.auditor.access(ctx, {
      action: 'read',
      resourceType: 'patient',
      resourceId: patientId,
      reason: breakGlass ? breakGlassReason!.trim() : undefined,
      breakGlass,
      fields: Object.keys(ordered),
    });
    return { patientId, homeSiteId: row.home_site_id, record: ordered, withheld, breakGlass };
  }

  async search(
    ctx: RequestContext,
    query: { nhsNumber?: string; familyName?: string; dateOfBirth?: string },
  ): Promise<PatientSummary[]> {
    const rows = await this.store.withTenant(ctx.tenant, async (trx) => {
      let q = patientsDb(trx).selectFrom('patients').selectAll().limit(50);
      if (this.options.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
      if (query.nhsNumber) q = q.where('nhs_number', '=', query.nhsNumber);
      else
        q = q
          .where('family_name_folded', '=', foldName(query.familyName ?? ''))
          .where('date_of_birth', '=', query.dateOfBirth ?? '');
      return q.execute();
    });
    await this.auditor.access(ctx, {
      action: 'search',
      resourceType: 'patient',
      breakGlass: false,
      fields: ['givenName', 'familyName', 'dateOfBirth', 'nhsNumber'],
    });
    return rows.map((r) => {
      const rec = JSON.parse(r.record) as PatientRecord;
      return {
        patientId: r.patient_id,
        givenName: rec.givenName,
        familyName: rec.familyName,
        dateOfBirth: rec.dateOfBirth,
        nhsNumber: r.nhs_number,
        homeSiteId: r.home_site_id,
      };
    });
  }
}
