import { caseReference, normaliseNhsNumber, ValidationError } from '@holdfast/core';
import type { AccountsService } from '../accounts/service.ts';
import type { CaseService } from '../cases/service.ts';
import type { RequestContext } from '../http/context.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store } from '../store/store.ts';
import { auditDb, type AuditLogTable } from './projection.ts';

/** Reads of one record by one user this close together are one row of the trail (the ledger keeps each). */
export const GROUP_READS_WITHIN_MS = 60_000;

export interface TrailFilters {
  /** An NHS number as typed (spaces or hyphens allowed): every access to that patient and their cases. */
  nhsNumber?: string;
  /** A user's login name or part of their display name (any case). */
  userName?: string;
  patientId?: string;
  userId?: string;
  from?: string;
  to?: string;
  breakGlass?: boolean;
  /** Only events of these kinds. */
  kinds?: AuditKind[];
  limit: number;
  before?: string;
}

export interface TrailRow {
  /** The newest event of the row. */
  at: string;
  /** The oldest event of the row (the same as `at` for one event). */
  firstAt: string;
  /** How many ledger events the row stands for (repeated reads grouped). */
  count: number;
  /** What happened, in plain words. */
  event: string;
  type: string;
  action: string;
  user: { userId: string; name: string | null } | null;
  roles: string[];
  record: {
    kind: string;
    id: string;
    /** The case reference (DDDD-DDDD) for a case. */
    reference: string | null;
    patientName: string | null;
    nhsNumber: string | null;
  } | null;
  outcome: string | null;
  reason: string | null;
  breakGlass: boolean;
  /** The newest event's place in the ledger. */
  ledger: { node: string; seq: number };
}

/** The kinds of event an auditor can filter by. */
export const AUDIT_KINDS = ['access', 'sign_in', 'account', 'denied', 'export'] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** The audit_log types of each kind. */
const TYPES_OF_KIND: Record<Exclude<AuditKind, 'account'>, string[]> = {
  access: ['audit.access'],
  sign_in: ['audit.sign_in'],
  denied: ['audit.denied'],
  export: ['audit.export', 'audit.downtime_pack'],
};

const ACCOUNT_WORDS: Record<string, string> = {
  'account.created': 'Created user',
  'account.roles_changed': 'Changed roles of',
  'account.password_set': 'Set the password of',
  'account.disabled': 'Disabled user',
  'account.enabled': 'Enabled user',
  'account.mfa_reset': 'Reset the second factor of',
  'account.totp_enrolled': 'Enrolled an authenticator app:',
  'account.passkey_registered': 'Registered a passkey:',
  'account.recovery_code_used': 'Used a recovery code:',
};

/** Plain words for an account event, naming the account and, for roles, the roles given. */
function accountWords(row: Pick<AuditLogTable, 'action' | 'detail'>, accountName: string | null): string {
  const detail = JSON.parse(row.detail || '{}') as { roles?: string[]; mustChange?: boolean; actor?: string };
  let words = `${ACCOUNT_WORDS[row.action] ?? row.action} ${accountName ?? 'a user'}`;
  if (row.action === 'account.password_set' && detail.mustChange)
    words += ' (temporary: to change at sign-in)';
  if (detail.roles && (row.action === 'account.created' || row.action === 'account.roles_changed'))
    words += ` (roles: ${detail.roles.join(', ')})`;
  if (detail.actor && !detail.actor.startsWith('user:')) words += ` by ${detail.actor}`;
  return words;
}

const SIGN_IN_STEPS: Record<string, string> = {
  password: 'password',
  totp: 'authenticator code',
  recovery_code: 'recovery code',
  passkey: 'passkey',
};

/** The plain words an auditor reads for an audit row. */
export function eventWords(
  row: Pick<AuditLogTable, 'type' | 'action' | 'resource_type' | 'outcome'>,
): string {
  switch (row.type) {
    case 'audit.sign_in': {
      const step = row.action.slice('sign_in.'.length);
      if (step === 'sign_out') return 'Signed out';
      const how = SIGN_IN_STEPS[step] ?? step;
      if (row.outcome === 'success') return `Signed in (${how})`;
      if (row.outcome === 'locked') return `Sign-in refused: account locked (${how})`;
      if (row.outcome === 'throttled') return `Sign-in refused: too many attempts (${how})`;
      return `Sign-in failed (${how})`;
    }
    case 'audit.denied':
      return 'Refused: not permitted';
    case 'audit.access': {
      const what = row.resource_type === 'case' ? 'a case' : 'a patient record';
      if (row.action === 'read') return `Opened ${what}`;
      if (row.action === 'write') return `Changed ${what}`;
      if (row.action === 'search')
        return row.resource_type === 'case' ? 'Searched cases' : 'Searched patients';
      return `${row.action} ${what}`;
    }
    case 'audit.downtime_pack':
      return 'Made a downtime pack (patient data on paper)';
    case 'audit.export':
      return 'Exported the audit trail';
    default:
      return row.type;
  }
}

/**
 * The audit trail as auditors read it: names and NHS numbers instead of ids, filters by NHS number and
 * user name, repeated reads grouped. It asks the accounts, patients and cases services for names and
 * ids; the trail's own rows come from the audit projection.
 */
export class AuditTrailService {
  constructor(
    private readonly store: Store,
    private readonly accounts: AccountsService,
    private readonly patients: PatientService,
    private readonly cases: CaseService,
    private readonly options: { tenantFilter: boolean },
  ) {}

  /**
   * The ids a filter names. An NHS number or user name that matches nothing is refused in words
   * (an empty trail would read as "nobody looked at this record").
   */
  async resolve(
    ctx: RequestContext,
    filters: Pick<TrailFilters, 'nhsNumber' | 'userName' | 'patientId' | 'userId'>,
    path: 'body' | 'query' = 'body',
  ): Promise<{ patientIds: string[] | null; resourceIds: string[] | null; userIds: string[] | null }> {
    let patientIds: string[] | null = filters.patientId ? [filters.patientId] : null;
    if (filters.nhsNumber !== undefined) {
      const nhs = normaliseNhsNumber(filters.nhsNumber);
      if (!nhs.ok) throw new ValidationError([{ path: `${path}.nhsNumber`, message: nhs.message }]);
      const ids = await this.patients.idsWithNhsNumber(ctx.tenant, nhs.value);
      if (ids.length === 0)
        throw new ValidationError([
          { path: `${path}.nhsNumber`, message: 'matches no patient on record: check the number' },
        ]);
      patientIds = patientIds ? patientIds.filter((p) => ids.includes(p)) : ids;
    }
    let resourceIds: string[] | null = null;
    if (patientIds) {
      // A patient's trail includes their cases (a case read shows the patient's details too).
      const caseIds = (
        await Promise.all(patientIds.map((p) => this.cases.caseIdsOfPatient(ctx, p, 1000)))
      ).flat();
      resourceIds = [...patientIds, ...caseIds];
    }
    let userIds: string[] | null = filters.userId ? [filters.userId] : null;
    if (filters.userName !== undefined) {
      const wanted = filters.userName.trim().toLowerCase();
      const users = (await this.accounts.list(ctx.tenant)).filter(
        (u) => u.username.toLowerCase() === wanted || u.displayName.toLowerCase().includes(wanted),
      );
      if (users.length === 0)
        throw new ValidationError([
          { path: `${path}.userName`, message: 'matches no user of your provider: check the name' },
        ]);
      const ids = users.map((u) => u.userId);
      userIds = userIds ? userIds.filter((u) => ids.includes(u)) : ids;
    }
    return { patientIds, resourceIds, userIds };
  }

  /** The signed-in user's display name (for an export's footer). */
  async userName(ctx: RequestContext): Promise<string | null> {
    return (await this.accounts.displayNames(ctx.tenant, [ctx.userId])).get(ctx.userId) ?? null;
  }

  /** A page of the trail, newest first, with names; `next` is the cursor of the following page. */
  async page(
    ctx: RequestContext,
    filters: TrailFilters,
  ): Promise<{ rows: TrailRow[]; events: number; next: string | null; resolved: Resolved }> {
    const resolved = await this.resolve(ctx, filters);
    const hlcOf = (iso: string) => `${String(Date.parse(iso)).padStart(15, '0')}-000000`;
    const raw = await this.store.withTenant(ctx.tenant, async (trx) => {
      let q = auditDb(trx)
        .selectFrom('audit_log')
        .selectAll()
        .orderBy('hlc', 'desc')
        .orderBy('node')
        .orderBy('seq', 'desc')
        .limit(filters.limit);
      if (this.options.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
      // An empty list after filtering (say, a patient id and an NHS number of another patient) matches nothing.
      if (resolved.resourceIds) q = q.where('resource_id', 'in', ['', ...resolved.resourceIds]);
      if (resolved.userIds) q = q.where('user_id', 'in', ['', ...resolved.userIds]);
      if (filters.from) q = q.where('hlc', '>=', hlcOf(filters.from));
      if (filters.to) q = q.where('hlc', '<', hlcOf(filters.to));
      if (filters.breakGlass !== undefined) q = q.where('break_glass', '=', filters.breakGlass ? 1 : 0);
      if (filters.kinds && filters.kinds.length > 0) {
        const kinds = filters.kinds;
        const types = kinds.flatMap((k) => (k === 'account' ? [] : TYPES_OF_KIND[k]));
        q = q.where((eb) =>
          eb.or([
            eb('type', 'in', ['', ...types]),
            ...(kinds.includes('account') ? [eb('resource_type', '=', 'user')] : []),
          ]),
        );
      }
      if (filters.before) q = q.where('hlc', '<', filters.before);
      return q.execute();
    });
    return {
      rows: await this.named(ctx, groupRepeatedReads(raw)),
      events: raw.length,
      next: raw.length === filters.limit ? raw[raw.length - 1]!.hlc : null,
      resolved,
    };
  }

  /** Users' display names and patients' names and NHS numbers for the rows. */
  private async named(ctx: RequestContext, groups: Grouped[]): Promise<TrailRow[]> {
    const userIds = groups.flatMap((g) => [
      ...(g.row.user_id ? [g.row.user_id] : []),
      ...(g.row.resource_type === 'user' && g.row.resource_id ? [g.row.resource_id] : []),
    ]);
    const caseIds = groups.flatMap((g) =>
      g.row.resource_type === 'case' && g.row.resource_id ? [g.row.resource_id] : [],
    );
    const [names, patientOfCase] = await Promise.all([
      this.accounts.displayNames(ctx.tenant, userIds),
      this.cases.patientsOfCases(ctx.tenant, caseIds),
    ]);
    const patientIds = groups.flatMap((g) =>
      g.row.resource_type === 'patient' && g.row.resource_id ? [g.row.resource_id] : [],
    );
    const identities = await this.patients.identitiesForAudit(ctx.tenant, [
      ...patientIds,
      ...patientOfCase.values(),
    ]);
    return groups.map(({ row, count, firstHlc }) => {
      const patientId =
        row.resource_type === 'case' && row.resource_id
          ? (patientOfCase.get(row.resource_id) ?? null)
          : row.resource_id;
      const identity = patientId && row.resource_type !== 'user' ? (identities.get(patientId) ?? null) : null;
      return {
        at: instantOf(row.hlc),
        firstAt: instantOf(firstHlc),
        count,
        event:
          row.resource_type === 'user'
            ? accountWords(row, row.resource_id ? (names.get(row.resource_id) ?? null) : null)
            : eventWords(row),
        type: row.type,
        action: row.action,
        user: row.user_id ? { userId: row.user_id, name: names.get(row.user_id) ?? null } : null,
        roles: JSON.parse(row.roles) as string[],
        record:
          row.resource_type && row.resource_id
            ? {
                kind: row.resource_type,
                id: row.resource_id,
                reference: row.resource_type === 'case' ? caseReference(row.resource_id) : null,
                patientName: identity?.name ?? null,
                nhsNumber: identity?.nhsNumber ?? null,
              }
            : null,
        outcome: row.outcome,
        reason: row.reason,
        breakGlass: Number(row.break_glass) === 1,
        ledger: { node: row.node, seq: Number(row.seq) },
      };
    });
  }
}

type Resolved = Awaited<ReturnType<AuditTrailService['resolve']>>;

interface Grouped {
  row: AuditLogTable;
  count: number;
  firstHlc: string;
}

function instantOf(hlc: string): string {
  return new Date(Number(hlc.slice(0, 15))).toISOString();
}

/**
 * Rows newest first; a plain read (not break-glass) of the same record by the same user within a
 * minute of the newest read of its group joins that group, even with other users' events between.
 */
export function groupRepeatedReads(rows: readonly AuditLogTable[]): Grouped[] {
  const out: Grouped[] = [];
  const open = new Map<string, { group: Grouped; newestMs: number }>();
  for (const row of rows) {
    const groupable =
      row.type === 'audit.access' &&
      row.action === 'read' &&
      row.resource_id &&
      Number(row.break_glass) === 0;
    if (!groupable) {
      out.push({ row, count: 1, firstHlc: row.hlc });
      continue;
    }
    const key = `${row.user_id}|${row.resource_type}|${row.resource_id}`;
    const ms = Number(row.hlc.slice(0, 15));
    const current = open.get(key);
    if (current && current.newestMs - ms <= GROUP_READS_WITHIN_MS) {
      current.group.count++;
      current.group.firstHlc = row.hlc;
      continue;
    }
    const group = { row, count: 1, firstHlc: row.hlc };
    open.set(key, { group, newestMs: ms });
    out.push(group);
  }
  return out;
}
