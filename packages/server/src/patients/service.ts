import { randomUUID } from 'node:crypto';
import {
  canonicalJson,
  ConflictError,
  currentRecord,
  EDITABLE_FIELDS,
  type EditableField,
  type Allergy,
  type PatientChanges,
  splitRestrictedChanges,
  DATE_OF_BIRTH_RANK,
  ForbiddenError,
  isRestricted,
  matchPatient,
  redactPatientFields,
  siteDecision,
  unwritablePatientFields,
  NotFoundError,
  parseHlc,
  swapDayAndMonth,
  ValidationError,
  type Clock,
  type FieldIssue,
  type PatientMatch,
  type PatientRecord,
  type RestrictedPart,
  type SpecialNoteKind,
  splitRestricted,
} from '@holdfast/core';
import { ageInYears } from '@holdfast/core/triage/eligibility';
import { accessEvent, type Auditor } from '../audit/auditor.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { Store, Tx } from '../store/store.ts';
import type { AccountsService } from '../accounts/service.ts';
import { caseSiteAndPatient, casesPerPatient } from '../cases/reads.ts';
import { requireSiteAccess } from '../access/sites.ts';
import { ndjsonLines, patientFromFhirLine } from './fhir.ts';
import { patientsDb, type PatientsTable } from './projection.ts';

/** Repeat callers (same patient, 3 or more cases received within 96 hours, the current one included). */
export const REPEAT_CALLER_WINDOW_MS = 96 * 3600_000;
export const REPEAT_CALLER_THRESHOLD = 3;

/** Fuzzy search reads at most this many records sharing a date of birth, and returns the best few. */
const SEARCH_SCAN_LIMIT = 5_000;
const SEARCH_RESULT_LIMIT = 20;

/** SQLite binds at most 32,766 parameters per statement: NHS numbers are looked up in chunks. */
const LOOKUP_CHUNK = 500;

export type SpecialNoteView =
  { kind: SpecialNoteKind; text: string } | { kind: SpecialNoteKind; withheld: true };

export type PatientRecordView = Omit<Partial<PatientRecord>, 'specialNotes'> & {
  specialNotes: SpecialNoteView[];
  /** Added by edits after registration (`patient.details_changed`). */
  allergies?: Allergy[];
};

/** A case's patient as the CAS queue row shows it (`queueFacts`). */
export interface QueuePatientFacts {
  name: string;
  ageYears: number;
  sex: PatientRecord['sex'];
  deceasedAt: string | null;
  /** The kinds of the record's special notes, or 'withheld' when the record is outside the reader's sites. */
  specialNotes: SpecialNoteKind[] | 'withheld';
  repeatCaller: boolean;
}

export interface RepeatCallerStatus {
  /** Cases of this patient received in the 96 hours up to now (both ends included). */
  cases96h: number;
  flagged: boolean;
}

export interface PatientView {
  patientId: string;
  homeSiteId: string;
  record: PatientRecordView;
  /** Fields withheld from this role (`specialNotes[2].text` for a restricted note's text). */
  withheld: string[];
  breakGlass: boolean;
  repeatCaller: RepeatCallerStatus;
  /**
   * A restricted (R) or very restricted (V) record: its address, telephone numbers, practice,
   * pharmacy and contacts are withheld from every role (listed in `withheld`); a break-glass read
   * (`readRestricted`) releases them.
   */
  restricted: { confidentiality: 'R' | 'V'; withheld: string[] } | null;
  /** The record's version: an edit names it, and is refused (409) when the record moved on. */
  version: number;
}

/** One entry of a record's history: what kind of change, which fields (never their values), who, when. */
export interface PatientHistoryEntry {
  at: string;
  type: 'registered' | 'details_changed' | 'special_note_added';
  /** The member of staff's display name, or the system that did it. */
  by: string;
  fields: string[];
  /** The note's kind, for a special note. */
  kind?: SpecialNoteKind;
  /** The case a special note was added from. */
  caseId?: string;
}

/** The withheld part of a restricted record, as released to a break-glass read. */
export interface RestrictedView {
  patientId: string;
  confidentiality: 'R' | 'V';
  fields: RestrictedPart;
}

export interface PatientSummary {
  patientId: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  /** Age in whole years today: "born 1980" is easier to check with a caller as "44". */
  ageYears: number;
  sex: PatientRecord['sex'];
  nhsNumber: string | null;
  postcode: string | null;
  /**
   * The first line of the main address (`7 Harbour Row`, `Flat 2`): two people at one postcode are
   * told apart by it. The whole address is in the record, read (and audited) on selection.
   */
  addressLine: string | null;
  /** The registered GP practice's name, or its ODS code when the index has no name. */
  practice: string | null;
  homeSiteId: string;
  /** The date (and time) of death, when the patient has died. */
  deceasedAt: string | null;
  /** A restricted record: no postcode is shown, address and contacts are withheld. */
  restricted: boolean;
  /** 100 for an NHS number match; otherwise the name, date of birth and postcode match score. */
  score: number;
  match: Omit<PatientMatch, 'score'> | { nhsNumber: 'exact' };
}

/**
 * `dateOfBirth` is an ISO date or a year on its own (`1980`); without `familyName`, a full date and
 * the postcode (the route refuses anything less).
 */
export type PatientSearch =
  { nhsNumber: string } | { familyName?: string; givenName?: string; dateOfBirth: string; postcode?: string };

export type ImportLineReport =
  { line: number; ok: true; patientId: string } | { line: number; ok: false; errors: FieldIssue[] };

export interface ImportReport {
  imported: number;
  failed: number;
  /** Every non-blank line, in order. */
  lines: ImportLineReport[];
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
    /**
     * `clock` is "now" for the repeat-caller window; without it, the wall time of the ledger's
     * hybrid logical clock (the node's clock, never behind an event this node has seen).
     */
    readonly options: { tenantFilter: boolean; clock?: Clock } = { tenantFilter: true },
  ) {}

  private nowMs(): number {
    return this.options.clock ? this.options.clock.nowMs() : parseHlc(this.ledger.hlc.tick()).wallMs;
  }

  /** One patient's row of the index, or undefined (each caller decides what a missing one means). */
  private async patientRow(tenant: string, patientId: string): Promise<PatientsTable | undefined> {
    return this.store.withTenant(tenant, async (trx) => {
      let q = patientsDb(trx).selectFrom('patients').selectAll().where('patient_id', '=', patientId);
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      return q.executeTakeFirst();
    });
  }

  /**
   * Name and NHS number of each patient, for the audit trail: an auditor must see whose record was
   * opened. Only these two fields leave, never the record; the trail's exports are audited by the
   * audit routes.
   */
  async identitiesForAudit(
    tenant: string,
    patientIds: readonly string[],
  ): Promise<Map<string, { name: string; nhsNumber: string | null }>> {
    if (patientIds.length === 0) return new Map();
    const rows = await this.store.withTenant(tenant, async (trx) => {
      let q = patientsDb(trx)
        .selectFrom('patients')
        .select(['patient_id', 'nhs_number', 'record'])
        .where('patient_id', 'in', [...new Set(patientIds)]);
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      return q.execute();
    });
    return new Map(
      rows.map((r) => {
        const rec = currentRecord(JSON.parse(r.record) as PatientRecord, this.nowMs());
        return [r.patient_id, { name: `${rec.givenName} ${rec.familyName}`, nhsNumber: r.nhs_number }];
      }),
    );
  }

  private async requireSite(ctx: RequestContext, homeSiteId: string): Promise<void> {
    const sites = await this.accounts.sites(ctx.tenant);
    if (!sites.some((s) => s.siteId === homeSiteId))
      throw new ValidationError([{ path: 'body.homeSiteId', message: 'is not a site of your provider' }]);
  }

  /**
   * Which records carry this NHS number (ids only, at most two: one is a match, two say it is not
   * safe to pick), for a case another system sent (a 999 validation request) that names the
   * patient. Nothing of a record is read or returned; the match, and who asked, is recorded in the
   * ledger with the case it opens (`inbound.validation_requested`), which is the audit of it.
   */
  async idsWithNhsNumber(tenant: string, nhsNumber: string): Promise<string[]> {
    const rows = await this.store.withTenant(tenant, async (trx) => {
      let q = patientsDb(trx)
        .selectFrom('patients')
        .select('patient_id')
        .where('nhs_number', '=', nhsNumber)
        .orderBy('patient_id')
        .limit(2);
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      return q.execute();
    });
    return rows.map((r) => r.patient_id);
  }

  /**
   * A patient's date of birth, for a check made on the server (is a pathway for this patient's
   * age?). It is never returned to the caller, so it is not audited as a read of the record.
   */
  async dateOfBirth(tenant: string, patientId: string): Promise<string | null> {
    return (await this.patientRow(tenant, patientId))?.date_of_birth ?? null;
  }

  /**
   * A patient's date of birth and recorded sex, for a Directory of Services search made on the
   * server for a case (services by age and sex). Never returned as the record, so not audited as a
   * read of it (the search audits its read of the case).
   */
  async directoryFacts(
    tenant: string,
    patientId: string,
  ): Promise<{ dateOfBirth: string; sex: PatientRecord['sex'] } | null> {
    const row = await this.patientRow(tenant, patientId);
    if (!row) return null;
    return { dateOfBirth: row.date_of_birth, sex: (JSON.parse(row.record) as PatientRecord).sex };
  }

  /**
   * What identifying a patient on a case is checked against: the date of birth (a pathway's age
   * range) and whether the record says the patient has died. Never returned to the caller, so not
   * audited as a read of the record.
   */
  async identityFacts(
    tenant: string,
    patientId: string,
  ): Promise<{ dateOfBirth: string; deceasedAt: string | null } | null> {
    const row = await this.patientRow(tenant, patientId);
    if (!row) return null;
    const record = JSON.parse(row.record) as PatientRecord;
    return { dateOfBirth: row.date_of_birth, deceasedAt: record.deceasedAt ?? null };
  }

  /**
   * What the CAS queue shows of each case's patient, for many patients in a few reads: name, age
   * today, sex, date of death, the kinds of special notes, and the repeat-caller flag. The text of
   * a note is never returned here (the case screen reads the record, audited, for that).
   *
   * Special notes follow the sites rule of the record: a patient whose home site is not one of the
   * caller's has `specialNotes: 'withheld'` (the queue says so and the case screen offers
   * break-glass with a reason); never an empty list, which would read as "no notes". The queue's
   * own read is audited by the queue, with these fields named.
   */
  async queueFacts(
    ctx: Pick<RequestContext, 'tenant' | 'siteIds'>,
    patientIds: readonly string[],
  ): Promise<Map<string, QueuePatientFacts>> {
    const out = new Map<string, QueuePatientFacts>();
    const nowMs = this.nowMs();
    const today = new Date(nowMs).toISOString();
    for (let i = 0; i < patientIds.length; i += LOOKUP_CHUNK) {
      const chunk = patientIds.slice(i, i + LOOKUP_CHUNK);
      const [rows, counts] = await this.store.withTenant(ctx.tenant, async (trx) => {
        let q = patientsDb(trx)
          .selectFrom('patients')
          .select(['patient_id', 'home_site_id', 'record', 'date_of_birth'])
          .where('patient_id', 'in', chunk);
        if (this.options.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
        // Cases received in the repeat-caller window, counted per patient in one read.
        const perPatient = casesPerPatient(trx, ctx.tenant, chunk, nowMs - REPEAT_CALLER_WINDOW_MS, nowMs, {
          tenantFilter: this.options.tenantFilter,
        });
        return Promise.all([q.execute(), perPatient]);
      });
      for (const row of rows) {
        const record = currentRecord(JSON.parse(row.record) as PatientRecord, nowMs);
        const atOwnSite = ctx.siteIds.includes(row.home_site_id);
        const kinds = [...new Set(record.specialNotes.map((n) => n.kind))];
        out.set(row.patient_id, {
          name: `${record.givenName} ${record.familyName}`,
          ageYears: ageInYears(row.date_of_birth, today),
          sex: record.sex,
          deceasedAt: record.deceasedAt ?? null,
          specialNotes: atOwnSite ? kinds : 'withheld',
          repeatCaller: (counts.get(row.patient_id) ?? 0) >= REPEAT_CALLER_THRESHOLD,
        });
      }
    }
    return out;
  }

  /**
   * The access layer's rules for a write of new records at a home site: the site rule of the record
   * (own sites, or break-glass with a stated reason: true when it was), and no field the
   * caller's roles cannot read (`clinicalNotes`, `accessInstructions`): 403 naming the field, nothing
   * stored.
   */
  private async requireWritable(
    ctx: RequestContext,
    homeSiteId: string,
    records: readonly PatientRecord[],
    route: string,
    path: (index: number, field: string) => string,
    breakGlassReason?: string,
  ): Promise<boolean> {
    const site = await requireSiteAccess(ctx, 'patient', homeSiteId, {
      auditor: this.auditor,
      route,
      breakGlassReason,
    });
    const refused = records.flatMap((r, i) => unwritablePatientFields(ctx.roles, r).map((f) => path(i, f)));
    if (refused.length > 0) {
      await this.auditor.denied(
        ctx,
        refused.some((f) => f.endsWith('clinicalNotes'))
          ? 'patients.clinical_notes.read'
          : 'patients.access_instructions.read',
        route,
      );
      throw new ForbiddenError(
        `your role cannot read, and so cannot write, ${refused.join(', ')}: leave ${refused.length > 1 ? 'them' : 'it'} out, or ask a colleague whose role holds it`,
      );
    }
    return site.via === 'break_glass';
  }

  /**
   * Registers a patient. An NHS number already in the index is refused, naming the record that has
   * it (checked again inside the commit, so two registrations racing each other make one record):
   * two records for one person split their history and special notes.
   */
  async register(
    ctx: RequestContext,
    homeSiteId: string,
    whole: PatientRecord,
    breakGlassReason?: string,
  ): Promise<string> {
    await this.requireSite(ctx, homeSiteId);
    const breakGlass = await this.requireWritable(
      ctx,
      homeSiteId,
      [whole],
      'POST /api/v1/patients',
      (_, f) => `body.record.${f}`,
      breakGlassReason,
    );
    const patientId = randomUUID();
    const nhsNumber = whole.nhsNumber;
    const { record, restricted } = splitRestricted(whole);
    await this.ledger.append(
      [
        {
          tenant: ctx.tenant,
          type: 'patient.registered',
          actor: actorOf(ctx),
          payload: { patientId, homeSiteId, record, ...(restricted ? { restricted } : {}) },
        },
        accessEvent(ctx, {
          action: 'write',
          resourceType: 'patient',
          resourceId: patientId,
          breakGlass,
          ...(breakGlass ? { reason: breakGlassReason!.trim() } : {}),
          fields: Object.keys(whole),
        }),
      ],
      nhsNumber
        ? {
            guard: async (trx) => {
              // A system transaction (no row-level security): the tenant condition is applied here.
              const existing = await patientsDb(trx)
                .selectFrom('patients')
                .select('patient_id')
                .where('tenant', '=', ctx.tenant)
                .where('nhs_number', '=', nhsNumber)
                .executeTakeFirst();
              if (existing)
                throw new ConflictError(
                  `a patient with this NHS number is already in the index (patient ${existing.patient_id}): open that record instead of registering another`,
                );
            },
          }
        : {},
    );
    return patientId;
  }

  /**
   * One patient's record, filtered for the caller's role, special notes first, with the
   * repeat-caller status. Outside the caller's sites it needs a stated reason and the break-glass
   * permission, and the access is flagged for review.
   */
  async read(ctx: RequestContext, patientId: string, breakGlassReason?: string): Promise<PatientView> {
    const row = await this.patientRow(ctx.tenant, patientId);
    if (!row) throw new NotFoundError('patient');
    const breakGlass = await this.breakGlassNeeded(
      ctx,
      row.home_site_id,
      breakGlassReason,
      'GET /api/v1/patients/:patientId',
    );
    // Names, addresses and registrations with history: the current ones by today's clock.
    const full = currentRecord(JSON.parse(row.record) as PatientRecord, this.nowMs());
    const withheld: string[] = [];
    const restricted = isRestricted(full) ? await this.restrictedFieldNames(ctx, patientId) : null;
    if (restricted) withheld.push(...restricted);
    // The field rules of the access policy (core accounts/access.ts), as for every other reader.
    const redacted = redactPatientFields(ctx.roles, full);
    withheld.push(...redacted.withheld);
    const { specialNotes, ...record } = redacted.record;
    const notes: SpecialNoteView[] = specialNotes ?? [];
    // Special notes and how to get into the home come first in every view: they change what a call
    // handler or a crew does next.
    const { accessInstructions, ...others } = record;
    const ordered: PatientRecordView = {
      specialNotes: notes,
      ...(accessInstructions !== undefined ? { accessInstructions } : {}),
      ...others,
    };
    const repeatCaller = await this.repeatCaller(ctx, patientId, this.nowMs());
    await this.auditor.access(ctx, {
      action: 'read',
      resourceType: 'patient',
      resourceId: patientId,
      reason: breakGlass ? breakGlassReason!.trim() : undefined,
      breakGlass,
      fields: [...Object.keys(ordered), 'repeatCaller'],
    });
    return {
      patientId,
      homeSiteId: row.home_site_id,
      record: ordered,
      withheld,
      breakGlass,
      repeatCaller,
      restricted: restricted
        ? { confidentiality: full.confidentiality as 'R' | 'V', withheld: restricted }
        : null,
      version: Number(row.version),
    };
  }

  /**
   * Changes a registered patient's details. Only fields that differ from the record are stored
   * (`patient.details_changed`, with their names in `fields`); nothing changed stores nothing. The
   * record must still be at `version` inside the commit, else 409: an edit made on a stale screen
   * would silently undo someone else's. The sites rule of reads applies (own sites, or break-glass
   * with a reason). A restricted record's withheld fields go to its restricted part only.
   */
  async edit(
    ctx: RequestContext,
    patientId: string,
    version: number,
    requested: PatientChanges,
    breakGlassReason?: string,
  ): Promise<{ patientId: string; version: number; changed: EditableField[] }> {
    const row = await this.patientRow(ctx.tenant, patientId);
    if (!row) throw new NotFoundError('patient');
    const breakGlass = await this.breakGlassNeeded(
      ctx,
      row.home_site_id,
      breakGlassReason,
      'PATCH /api/v1/patients/:patientId',
    );
    if (Number(row.version) !== version) throw staleVersion();
    const general = currentRecord(JSON.parse(row.record) as PatientRecord, this.nowMs());
    const restrictedRecord = isRestricted(general);
    const before: Record<string, unknown> = restrictedRecord
      ? {
          ...general,
          ...currentRecord((await this.restrictedPart(ctx.tenant, patientId)) ?? {}, this.nowMs()),
        }
      : general;
    const changed = EDITABLE_FIELDS.filter(
      (f) => requested[f] !== undefined && canonicalJson(requested[f]) !== canonicalJson(before[f] ?? null),
    );
    if (changed.length === 0) return { patientId, version, changed };
    const only = Object.fromEntries(changed.map((f) => [f, requested[f]])) as PatientChanges;
    const { changes, restricted } = splitRestrictedChanges(only, restrictedRecord);
    await this.ledger.append(
      [
        {
          tenant: ctx.tenant,
          type: 'patient.details_changed',
          actor: actorOf(ctx),
          payload: { patientId, version, fields: changed, changes, ...(restricted ? { restricted } : {}) },
        },
        accessEvent(ctx, {
          action: 'write',
          resourceType: 'patient',
          resourceId: patientId,
          reason: breakGlass ? breakGlassReason!.trim() : undefined,
          breakGlass,
          fields: changed,
        }),
      ],
      {
        guard: async (trx) => {
          // Inside the commit: another edit may have been stored since the record was read above.
          const now = await patientsDb(trx)
            .selectFrom('patients')
            .select('version')
            .where('tenant', '=', ctx.tenant)
            .where('patient_id', '=', patientId)
            .executeTakeFirst();
          if (!now || Number(now.version) !== version) throw staleVersion();
        },
      },
    );
    return { patientId, version: version + 1, changed };
  }

  /**
   * Adds a special note to a patient's record (the sites rule of reads applies). From a case, the
   * case is named in the event.
   */
  async addSpecialNote(
    ctx: RequestContext,
    patientId: string,
    note: { kind: SpecialNoteKind; text: string },
    breakGlassReason?: string,
  ): Promise<void> {
    const { breakGlass, reason } = await this.requireReadable(
      ctx,
      patientId,
      breakGlassReason,
      'POST /api/v1/patients/:patientId/special-notes',
    );
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'patient.special_note_added',
        actor: actorOf(ctx),
        payload: { patientId, note },
      },
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'patient',
        resourceId: patientId,
        reason,
        breakGlass,
        fields: ['specialNotes'],
      }),
    ]);
  }

  /**
   * Raises a safeguarding concern from a case: the case records it (its timeline shows who and when)
   * and the patient's record gets a safeguarding special note with the concern and the case, in one
   * commit, so the next clinician sees it on the case and on the patient. The case must be at one of
   * the caller's sites and have an identified patient.
   */
  async raiseSafeguardingConcern(
    ctx: RequestContext,
    caseId: string,
    concern: string,
  ): Promise<{ caseId: string; patientId: string }> {
    const row = await this.store.withTenant(ctx.tenant, (trx) =>
      caseSiteAndPatient(trx, ctx.tenant, caseId, { tenantFilter: this.options.tenantFilter }),
    );
    if (!row) throw new NotFoundError('case');
    // The access layer's rule for cases (own site, across sites), as `CaseService.get` applies it.
    const decision = siteDecision(ctx, 'case', row.site_id);
    if (!decision.allowed) throw new ForbiddenError(decision.reason);
    const patientId = row.patient_id;
    if (!patientId)
      throw new ConflictError(
        'no patient is identified on this case: identify the patient first, then raise the concern',
      );
    const text = concern.trim();
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'case.safeguarding_concern_raised',
        actor: actorOf(ctx),
        payload: { caseId, patientId, concern: text },
      },
      {
        tenant: ctx.tenant,
        type: 'patient.special_note_added',
        actor: actorOf(ctx),
        payload: { patientId, caseId, note: { kind: 'safeguarding', text } },
      },
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'patient',
        resourceId: patientId,
        breakGlass: false,
        fields: ['specialNotes'],
      }),
    ]);
    return { caseId, patientId };
  }

  /**
   * Every change to a patient's record, oldest first: registration, edits and special notes, with
   * who (display name) and when and which fields, never the values. The sites rule of reads
   * applies; the read is audited.
   */
  async history(
    ctx: RequestContext,
    patientId: string,
    breakGlassReason?: string,
  ): Promise<PatientHistoryEntry[]> {
    const { breakGlass, reason } = await this.requireReadable(
      ctx,
      patientId,
      breakGlassReason,
      'GET /api/v1/patients/:patientId/history',
    );
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['type', 'actor', 'hlc', 'payload'])
        .where('tenant', '=', ctx.tenant)
        .where('subject', '=', `patient:${patientId}`)
        .where('type', 'in', ['patient.registered', 'patient.details_changed', 'patient.special_note_added'])
        .orderBy('hlc')
        .orderBy('node')
        .orderBy('seq')
        .execute(),
    );
    const userIds = [
      ...new Set(rows.filter((r) => r.actor.startsWith('user:')).map((r) => r.actor.slice(5))),
    ];
    const names = await this.accounts.displayNames(ctx.tenant, userIds);
    const entries = rows.map((r): PatientHistoryEntry => {
      const p = JSON.parse(r.payload) as Record<string, unknown>;
      const by = r.actor.startsWith('user:')
        ? (names.get(r.actor.slice(5)) ?? 'a former member of staff')
        : r.actor;
      const at = new Date(Number(r.hlc.slice(0, 15))).toISOString();
      if (r.type === 'patient.details_changed')
        return { at, type: 'details_changed', by, fields: p.fields as string[] };
      if (r.type === 'patient.special_note_added') {
        const note = p.note as { kind: SpecialNoteKind };
        return {
          at,
          type: 'special_note_added',
          by,
          fields: ['specialNotes'],
          kind: note.kind,
          ...(typeof p.caseId === 'string' ? { caseId: p.caseId } : {}),
        };
      }
      const fields = [
        ...Object.keys(p.record as object),
        ...Object.keys((p.restricted as object | undefined) ?? {}),
      ].sort();
      return { at, type: 'registered', by, fields };
    });
    await this.auditor.access(ctx, {
      action: 'read',
      resourceType: 'patient',
      resourceId: patientId,
      reason,
      breakGlass,
      fields: ['history'],
    });
    return entries;
  }

  /** Which fields a restricted record withholds (names only: the values stay where they are). */
  private async restrictedFieldNames(ctx: RequestContext, patientId: string): Promise<string[]> {
    const part = await this.restrictedPart(ctx.tenant, patientId);
    return part ? Object.keys(part).sort() : [];
  }

  private async restrictedPart(tenant: string, patientId: string): Promise<RestrictedPart | null> {
    const row = await this.store.withTenant(tenant, async (trx) => {
      let q = patientsDb(trx)
        .selectFrom('patient_restricted')
        .select('fields')
        .where('patient_id', '=', patientId);
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      return q.executeTakeFirst();
    });
    return row ? (JSON.parse(row.fields) as RestrictedPart) : null;
  }

  /**
   * Break-glass read of what a restricted (R or V) record withholds: address, telephone numbers,
   * practice, pharmacy, contacts (current ones by today's clock, with their history). Needs the
   * break-glass permission (checked by the route) and a stated reason; records an audit event of its
   * own, flagged break-glass with the reason and the fields released, before anything is returned.
   */
  async readRestricted(ctx: RequestContext, patientId: string, reason: string): Promise<RestrictedView> {
    const row = await this.patientRow(ctx.tenant, patientId);
    if (!row) throw new NotFoundError('patient');
    const record = JSON.parse(row.record) as PatientRecord;
    if (!isRestricted(record))
      throw new ConflictError('this record is not restricted: nothing is withheld, open it as usual');
    const part = (await this.restrictedPart(ctx.tenant, patientId)) ?? {};
    const fields = currentRecord(part, this.nowMs());
    await this.auditor.access(ctx, {
      action: 'read',
      resourceType: 'patient',
      resourceId: patientId,
      reason: reason.trim(),
      breakGlass: true,
      fields: Object.keys(fields).map((f) => `restricted.${f}`),
    });
    return { patientId, confidentiality: record.confidentiality as 'R' | 'V', fields };
  }

  /**
   * Whether reading this patient's record needs break-glass: false inside the caller's sites; outside
   * them, true when the caller holds the permission and gave a reason (at least 10 characters),
   * otherwise refused (and the refusal audited). One rule for the record and what hangs off it.
   */
  private async breakGlassNeeded(
    ctx: RequestContext,
    homeSiteId: string,
    breakGlassReason: string | undefined,
    route: string,
  ): Promise<boolean> {
    const decision = siteDecision(ctx, 'patient', homeSiteId, { breakGlassReason });
    if (decision.allowed) return decision.via === 'break_glass';
    // A refused attempt to open a record outside one's scope is itself worth an auditor's eye.
    await this.auditor.denied(ctx, 'patients.break_glass', route);
    throw new ForbiddenError(decision.reason);
  }

  /**
   * Checks the caller may read this patient's record (as `read` does: own sites, or break-glass with
   * a reason), for views built on it such as the previous encounters. Returns whether it was a
   * break-glass access; the caller audits what it shows with that flag. NotFound for another
   * provider's id.
   */
  async requireReadable(
    ctx: RequestContext,
    patientId: string,
    breakGlassReason: string | undefined,
    route: string,
  ): Promise<{ breakGlass: boolean; reason?: string }> {
    const row = await this.patientRow(ctx.tenant, patientId);
    if (!row) throw new NotFoundError('patient');
    const breakGlass = await this.breakGlassNeeded(ctx, row.home_site_id, breakGlassReason, route);
    return breakGlass ? { breakGlass, reason: breakGlassReason!.trim() } : { breakGlass };
  }

  /**
   * The identity and registered practice a message to the patient's GP needs (the Post Event Message
   * at a case's close), read on the provider's behalf: not limited to the closer's sites, because the
   * practice must hear of the case whichever site closed it. Special notes are not returned. Audited
   * as a read for that purpose.
   */
  async readForPracticeMessage(
    ctx: RequestContext,
    patientId: string,
  ): Promise<Omit<PatientRecord, 'specialNotes'> | null> {
    const row = await this.patientRow(ctx.tenant, patientId);
    if (!row) return null;
    const { specialNotes: _notes, ...general } = currentRecord(
      JSON.parse(row.record) as PatientRecord,
      this.nowMs(),
    );
    const record: Omit<PatientRecord, 'specialNotes'> = { ...general };
    if (isRestricted(general)) {
      // The patient's own practice hears of the case even for a restricted record: it already knows
      // the patient. Only the practice is taken from the withheld part.
      const practice = currentRecord(
        (await this.restrictedPart(ctx.tenant, patientId)) ?? {},
        this.nowMs(),
      ).registeredPractice;
      if (practice) record.registeredPractice = practice;
    }
    await this.auditor.access(ctx, {
      action: 'read',
      resourceType: 'patient',
      resourceId: patientId,
      breakGlass: false,
      fields: [...Object.keys(record), 'purpose:post_event_message'],
    });
    return record;
  }

  /**
   * How many cases of this patient were received in the 96 hours up to `atMs` (both ends included),
   * and whether that makes a repeat caller (3 or more, the current case included). Not audited by
   * itself: callers audit the view it is part of.
   */
  async repeatCaller(ctx: RequestContext, patientId: string, atMs: number): Promise<RepeatCallerStatus> {
    const perPatient = await this.store.withTenant(ctx.tenant, (trx) =>
      casesPerPatient(trx, ctx.tenant, [patientId], atMs - REPEAT_CALLER_WINDOW_MS, atMs, {
        tenantFilter: this.options.tenantFilter,
      }),
    );
    const cases96h = perPatient.get(patientId) ?? 0;
    return { cases96h, flagged: cases96h >= REPEAT_CALLER_THRESHOLD };
  }

  /**
   * By NHS number (exact); or by date of birth with the family name, or with the postcode when the
   * family name is not known, with an optional given name and postcode. The date of birth matches
   * exactly, or with day and month swapped (always listed after the exact ones), or by year when
   * only the year is given; names tolerate typing errors, accents, spacing and Unicode forms; the
   * candidates come back ranked, best first. Audited like a read. Matches outside the caller's
   * sites are left out of `patients` and only named in `elsewhere` (id and home site).
   */
  async search(
    ctx: RequestContext,
    query: PatientSearch,
  ): Promise<{ patients: PatientSummary[]; elsewhere: { patientId: string; homeSiteId: string }[] }> {
    let results: PatientSummary[];
    if ('nhsNumber' in query) {
      const rows = await this.store.withTenant(ctx.tenant, async (trx) => {
        let q = patientsDb(trx)
          .selectFrom('patients')
          .selectAll()
          .where('nhs_number', '=', query.nhsNumber)
          .orderBy('patient_id')
          .limit(SEARCH_RESULT_LIMIT);
        if (this.options.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
        return q.execute();
      });
      results = rows.map((r) => summary(r, 100, { nhsNumber: 'exact' }, this.nowMs()));
    } else {
      const asked = query.dateOfBirth;
      const rows = await this.store.withTenant(ctx.tenant, async (trx) => {
        let q = patientsDb(trx).selectFrom('patients').selectAll();
        if (/^\d{4}$/.test(asked))
          // ISO dates sort as text: the whole year is one range of the date-of-birth index.
          q = q.where('date_of_birth', '>=', `${asked}-01-01`).where('date_of_birth', '<=', `${asked}-12-31`);
        else {
          const swapped = swapDayAndMonth(asked);
          q = q.where('date_of_birth', 'in', swapped ? [asked, swapped] : [asked]);
        }
        q = q.orderBy('patient_id').limit(SEARCH_SCAN_LIMIT);
        if (this.options.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
        return q.execute();
      });
      const scored: PatientSummary[] = [];
      for (const r of rows) {
        const rec = JSON.parse(r.record) as PatientRecord;
        const m = matchPatient(query, {
          familyName: rec.familyName,
          givenName: rec.givenName,
          dateOfBirth: r.date_of_birth,
          postcodes: r.postcodes === '' ? [] : r.postcodes.split(' '),
        });
        if (!m) continue;
        const { score, ...match } = m;
        scored.push(summary(r, score, match, this.nowMs()));
      }
      const dateRank = (p: PatientSummary) =>
        'dateOfBirth' in p.match ? DATE_OF_BIRTH_RANK[p.match.dateOfBirth] : 0;
      results = scored
        .sort(
          (a, b) =>
            dateRank(a) - dateRank(b) ||
            b.score - a.score ||
            a.familyName.localeCompare(b.familyName) ||
            a.givenName.localeCompare(b.givenName) ||
            a.patientId.localeCompare(b.patientId),
        )
        .slice(0, SEARCH_RESULT_LIMIT);
    }
    // The access layer's site rule: a match outside the caller's sites is only named (its id and home
    // site, for a break-glass read with a reason), never shown.
    const elsewhere = results
      .filter((r) => !siteDecision(ctx, 'patient', r.homeSiteId).allowed)
      .map((r) => ({ patientId: r.patientId, homeSiteId: r.homeSiteId }));
    results = results.filter((r) => siteDecision(ctx, 'patient', r.homeSiteId).allowed);
    await this.auditor.access(ctx, {
      action: 'search',
      resourceType: 'patient',
      breakGlass: false,
      fields: [
        'givenName',
        'familyName',
        'dateOfBirth',
        'nhsNumber',
        'postcode',
        'sex',
        'addressLine',
        'registeredPractice',
      ],
    });
    return { patients: results, elsewhere };
  }

  /**
   * Initial load of a provider's patient index from FHIR R4 Patient resources, one per NDJSON line.
   *
   * Not all-or-nothing: every line is checked on its own, the valid ones are stored (in one ledger
   * append, so together or not at all) and every line is reported: `{ line, ok, patientId }` or
   * `{ line, ok: false, errors: [{ path, message }] }`. A provider's extract has some bad records;
   * the report lets them be fixed and sent again. Sending the same file again stores nothing twice:
   * a line whose NHS number is already in the index (or earlier in the file) is reported instead.
   * Messages name the element and never repeat its value. One audit event covers the import.
   */
  async importFhirPatients(ctx: RequestContext, homeSiteId: string, ndjson: string): Promise<ImportReport> {
    await this.requireSite(ctx, homeSiteId);
    const lines: (ImportLineReport | { line: number; ok: true; record: PatientRecord; nhsPath: string })[] =
      [];
    const firstLineOf = new Map<string, number>();
    for (const { line, text } of ndjsonLines(ndjson)) {
      const r = patientFromFhirLine(text, this.nowMs());
      if (!r.ok) {
        lines.push({ line, ok: false, errors: r.errors });
        continue;
      }
      const nhs = r.record.nhsNumber!;
      const earlier = firstLineOf.get(nhs);
      if (earlier !== undefined) {
        lines.push({
          line,
          ok: false,
          errors: [{ path: r.nhsNumberPath, message: `repeats the NHS number of line ${earlier}` }],
        });
        continue;
      }
      firstLineOf.set(nhs, line);
      lines.push({ line, ok: true, record: r.record, nhsPath: r.nhsNumberPath });
    }
    const parsed = lines.filter((l) => 'record' in l);
    await this.requireWritable(
      ctx,
      homeSiteId,
      parsed.map((l) => l.record),
      'POST /api/v1/patients/import',
      (i, field) => `line ${parsed[i]!.line}: ${field}`,
    );

    const known = await this.store.withTenant(ctx.tenant, (trx) =>
      this.knownNhsNumbers(trx, ctx.tenant, [...firstLineOf.keys()]),
    );
    const duplicate = 'a patient with this NHS number is already in the index (not imported again)';
    const report: ImportLineReport[] = [];
    const drafts: EventDraft[] = [];
    const fields = new Set<string>();
    for (const l of lines) {
      if (!('record' in l)) {
        report.push(l);
        continue;
      }
      if (known.has(l.record.nhsNumber!)) {
        report.push({ line: l.line, ok: false, errors: [{ path: l.nhsPath, message: duplicate }] });
        continue;
      }
      const patientId = randomUUID();
      const { record, restricted } = splitRestricted(l.record);
      drafts.push({
        tenant: ctx.tenant,
        type: 'patient.registered',
        actor: actorOf(ctx),
        payload: { patientId, homeSiteId, record, ...(restricted ? { restricted } : {}) },
      });
      for (const f of Object.keys(l.record)) fields.add(f);
      report.push({ line: l.line, ok: true, patientId });
    }
    const audit = accessEvent(ctx, {
      action: 'write',
      resourceType: 'patient',
      breakGlass: false,
      fields: [...fields].sort(),
    });
    const numbers = drafts.map((d) => (d.payload as { record: PatientRecord }).record.nhsNumber!);
    await this.ledger.append([...drafts, audit], {
      // Checked again inside the commit: another import or registration may have added one of these
      // numbers since the check above. Then nothing of this import is stored.
      guard: async (trx) => {
        if ((await this.knownNhsNumbers(trx, ctx.tenant, numbers)).size > 0)
          throw new ConflictError(
            'another import or registration added some of these NHS numbers meanwhile: nothing was stored, send the file again',
          );
      },
    });
    const imported = report.filter((l) => l.ok).length;
    return { imported, failed: report.length - imported, lines: report };
  }

  private async knownNhsNumbers(trx: Tx, tenant: string, numbers: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < numbers.length; i += LOOKUP_CHUNK) {
      const chunk = numbers.slice(i, i + LOOKUP_CHUNK);
      // The guard runs in a system transaction (no row-level security): the tenant condition is
      // always applied here.
      const rows = await patientsDb(trx)
        .selectFrom('patients')
        .select('nhs_number')
        .where('tenant', '=', tenant)
        .where('nhs_number', 'in', chunk)
        .execute();
      for (const r of rows) if (r.nhs_number) found.add(r.nhs_number);
    }
    return found;
  }
}

function staleVersion(): ConflictError {
  return new ConflictError(
    'this record was changed by someone else since you opened it: open it again to see their change, then make yours',
  );
}

function summary(
  r: PatientsTable,
  score: number,
  match: PatientSummary['match'],
  nowMs: number,
): PatientSummary {
  // Only the current name, address and practice: an ended one would point at the wrong person.
  const rec = currentRecord(JSON.parse(r.record) as PatientRecord, nowMs);
  const firstLine = rec.address?.split(',')[0]?.trim();
  const practice = rec.registeredPractice;
  return {
    patientId: r.patient_id,
    givenName: rec.givenName,
    familyName: rec.familyName,
    dateOfBirth: rec.dateOfBirth,
    ageYears: ageInYears(rec.dateOfBirth, new Date(nowMs).toISOString()),
    sex: rec.sex,
    nhsNumber: r.nhs_number,
    postcode: rec.postcode ?? null,
    addressLine: firstLine ? firstLine : null,
    practice: practice ? (practice.name ?? practice.odsCode) : null,
    homeSiteId: r.home_site_id,
    deceasedAt: rec.deceasedAt ?? null,
    restricted: isRestricted(rec),
    score,
    match,
  };
}
