import { TERMINAL_STATUSES } from '@holdfast/core';
import { sql } from 'kysely';
import { caseHasTelephonyCall } from '../telephony/reads.ts';
import { toNumber, type Tx } from '../store/store.ts';
import { casesDb, type CasesTable } from './projection.ts';

/**
 * What other modules may read of the cases table, each read a function over the caller's
 * transaction (so a report or a downtime pack reads one consistent snapshot). Modules never query
 * `cases` themselves: its columns and indexes are this module's to change (the architecture test
 * enforces it). `tenantFilter: false` is the test switch that leaves tenancy to PostgreSQL's RLS.
 */
export interface CaseReadScope {
  tenantFilter: boolean;
  siteId?: string;
}

/** The queue figures' columns of the cases in `statuses` (the shift dashboard). */
export function casesInStatuses(trx: Tx, tenant: string, statuses: readonly string[], scope: CaseReadScope) {
  return casesDb(trx)
    .selectFrom('cases')
    .select([
      'case_id',
      'site_id',
      'status',
      'received_at',
      'timeframe_minutes',
      'escalated',
      'failed_callbacks',
      'disposition_label',
      'claimed_by',
    ])
    .where('status', 'in', [...statuses])
    .$if(scope.tenantFilter, (q) => q.where('tenant', '=', tenant))
    .$if(scope.siteId !== undefined, (q) => q.where('site_id', '=', scope.siteId!))
    .execute();
}

/** The cases whose `column` falls in [fromMs, toMs), with `column` and `closed_at` (per-hour figures). */
async function casesWithin(
  trx: Tx,
  tenant: string,
  column: 'received_at' | 'deadline_at',
  fromMs: number,
  toMs: number,
  scope: CaseReadScope,
) {
  const rows = await casesDb(trx)
    .selectFrom('cases')
    .select([column, 'closed_at'])
    .where(column, '>=', fromMs)
    .where(column, '<', toMs)
    .$if(scope.tenantFilter, (q) => q.where('tenant', '=', tenant))
    .$if(scope.siteId !== undefined, (q) => q.where('site_id', '=', scope.siteId!))
    .execute();
  return rows.map((r) => ({
    at: Number(r[column]),
    closedAt: r.closed_at === null ? null : Number(r.closed_at),
  }));
}

/** When each case received in [fromMs, toMs) was received (calls per hour). */
export async function receivedTimes(
  trx: Tx,
  tenant: string,
  fromMs: number,
  toMs: number,
  scope: CaseReadScope,
): Promise<number[]> {
  return (await casesWithin(trx, tenant, 'received_at', fromMs, toMs, scope)).map((r) => r.at);
}

/** The deadlines in [fromMs, toMs) that passed while their case was still open (breaches per hour). */
export async function breachedDeadlines(
  trx: Tx,
  tenant: string,
  fromMs: number,
  toMs: number,
  scope: CaseReadScope,
): Promise<number[]> {
  return (await casesWithin(trx, tenant, 'deadline_at', fromMs, toMs, scope))
    .filter((r) => r.closedAt === null || r.closedAt > r.at)
    .map((r) => r.at);
}

/** A case's lifecycle fold and its compare-and-set version (deciding a reconciliation item). */
export function caseFoldRow(trx: Tx, tenant: string, caseId: string) {
  return casesDb(trx)
    .selectFrom('cases')
    .select(['state', 'reconciliation', 'version'])
    .where('tenant', '=', tenant)
    .where('case_id', '=', caseId)
    .executeTakeFirst();
}

/** A case's compare-and-set version, or undefined when there is no such case. */
export async function caseVersion(trx: Tx, tenant: string, caseId: string): Promise<number | undefined> {
  const row = await casesDb(trx)
    .selectFrom('cases')
    .select('version')
    .where('tenant', '=', tenant)
    .where('case_id', '=', caseId)
    .executeTakeFirst();
  return row ? Number(row.version) : undefined;
}

/** The site a case belongs to and the patient identified on it. */
export function caseSiteAndPatient(trx: Tx, tenant: string, caseId: string, scope: CaseReadScope) {
  return casesDb(trx)
    .selectFrom('cases')
    .select(['site_id', 'patient_id'])
    .where('case_id', '=', caseId)
    .$if(scope.tenantFilter, (q) => q.where('tenant', '=', tenant))
    .executeTakeFirst();
}

/** How many cases each patient had received in [fromMs, toMs] (the repeat-caller rule). */
export async function casesPerPatient(
  trx: Tx,
  tenant: string,
  patientIds: readonly string[],
  fromMs: number,
  toMs: number,
  scope: CaseReadScope,
): Promise<Map<string, number>> {
  if (patientIds.length === 0) return new Map();
  const rows = await casesDb(trx)
    .selectFrom('cases')
    .select(['patient_id', (eb) => eb.fn.countAll<number | string>().as('n')])
    .where('patient_id', 'in', [...patientIds])
    .where('received_at', '>=', fromMs)
    .where('received_at', '<=', toMs)
    .$if(scope.tenantFilter, (q) => q.where('tenant', '=', tenant))
    .groupBy('patient_id')
    .execute();
  return new Map(rows.map((r) => [r.patient_id!, Number(r.n)]));
}

/** The open cases of `siteIds`, oldest call first, at most `limit` (the downtime pack). */
export function openCasesOfSites(
  trx: Tx,
  tenant: string,
  siteIds: readonly string[],
  limit: number,
): Promise<CasesTable[]> {
  if (siteIds.length === 0) return Promise.resolve([]);
  return casesDb(trx)
    .selectFrom('cases')
    .selectAll()
    .where('tenant', '=', tenant)
    .where('site_id', 'in', [...siteIds])
    .where('status', 'not in', [...TERMINAL_STATUSES])
    .orderBy('received_at')
    .limit(limit)
    .execute();
}

/**
 * Cases of one month grouped by latest disposition kind and status, with the call facts summed:
 * what the `cases` read model gives for the month, and all the items need. One case is a tally of
 * `calls: 1`.
 */
export interface CaseTally {
  /** The latest disposition reached, or null if none was. */
  dispositionKind: string | null;
  /** Its Dx code (which service an ed_utc disposition sends the patient to). */
  dxCode: string | null;
  status: string;
  /** The latest consultation outcome (an upgrade to an ambulance changes the final disposition). */
  outcome: string | null;
  /** 1 when the case is tied to a telephony call: the call is counted from the telephony's record. */
  linked: number;
  calls: number;
  /** Calls answered (`answered_at` set). */
  answered: number;
  /** Calls abandoned before they were answered (`abandoned_at` set). */
  abandoned: number;
  /** Calls on which triage was started (`triaged = 1`). */
  triaged: number;
  /** Cases on which a clinician started a consultation (`assessed = 1`). */
  assessed: number;
}

/** The cases received in [fromMs, toMs), grouped (a few dozen rows however many calls). */
export async function tallyCases(
  trx: Tx,
  tenant: string,
  fromMs: number,
  toMs: number,
  scope: CaseReadScope,
): Promise<CaseTally[]> {
  const linked = sql<number>`case when ${caseHasTelephonyCall(sql.ref('cases.tenant'), sql.ref('cases.case_id'))} then 1 else 0 end`;
  const rows = await casesDb(trx)
    .selectFrom('cases')
    .select([
      'disposition_kind',
      'dx_code',
      'status',
      'outcome',
      linked.as('linked'),
      sql<string | number>`count(*)`.as('calls'),
      sql<string | number>`count(answered_at)`.as('answered'),
      sql<string | number>`count(abandoned_at)`.as('abandoned'),
      sql<string | number>`sum(triaged)`.as('triaged'),
      sql<string | number>`sum(assessed)`.as('assessed'),
    ])
    .where('received_at', '>=', fromMs)
    .where('received_at', '<', toMs)
    .$if(scope.tenantFilter, (q) => q.where('tenant', '=', tenant))
    .groupBy(['disposition_kind', 'dx_code', 'status', 'outcome', sql`5`])
    .execute();
  return rows.map((r) => ({
    dispositionKind: r.disposition_kind,
    dxCode: r.dx_code,
    status: r.status,
    outcome: r.outcome,
    linked: toNumber(r.linked),
    calls: toNumber(r.calls),
    answered: toNumber(r.answered),
    abandoned: toNumber(r.abandoned),
    triaged: toNumber(r.triaged),
    assessed: toNumber(r.assessed),
  }));
}
