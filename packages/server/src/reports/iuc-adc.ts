import { ValidationError, type Clock } from '@holdfast/core';
import { sql } from 'kysely';
import { z } from 'zod';
import { accountsDb } from '../accounts/projection.ts';
import { casesDb } from '../cases/projection.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { toNumber, type Store, type Tx } from '../store/store.ts';

/**
 * The IUC Aggregate Data Collection (national urgent-care reporting, C13): the monthly counts a
 * provider returns, computed from the `cases` read model (itself folded from the ledger), and the
 * CSV in the national layout.
 *
 * Counting rules shared by every item:
 * - A call belongs to the reporting month in which it was received (`received_at`), the month being
 *   the calendar month in UK time (Europe/London), so a call at 23:30 UTC on 31 March in summer time
 *   (00:30 BST on 1 April) is April's.
 * - One case is one call, counted once. A case re-triaged to another disposition counts by its
 *   latest disposition only; while a re-triage is under way (the case is back in triage) it has no
 *   final disposition and counts in no E item.
 */

// ---- reporting period ------------------------------------------------------------------------------

/** A reporting month: its text and the UTC instants of its first and first-after-last milliseconds. */
export interface ReportingPeriod {
  /** `YYYY-MM` */
  period: string;
  year: number;
  /** 1–12 */
  month: number;
  /** UK midnight starting the 1st of the month, as UTC epoch ms. */
  startMs: number;
  /** UK midnight starting the 1st of the next month, as UTC epoch ms (exclusive). */
  endMs: number;
}

const PERIOD_FORMAT = /^(\d{4})-(\d{2})$/;
const PERIOD_HINT = 'must be a month as YYYY-MM, e.g. 2026-03';
const FIRST_YEAR = 1970;

/** Why `text` is not a reporting month, or null when it is one. */
function periodProblem(text: string): string | null {
  const m = PERIOD_FORMAT.exec(text);
  if (!m) return PERIOD_HINT;
  const month = Number(m[2]);
  if (month < 1 || month > 12) return `${PERIOD_HINT} (the month is 01 to 12)`;
  if (Number(m[1]) < FIRST_YEAR) return `${PERIOD_HINT} (from ${FIRST_YEAR})`;
  return null;
}

/** Built once: constructing an Intl formatter is far slower than using one. */
const londonNumeric = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** UK wall-clock fields of a UTC instant. */
function londonFields(ms: number): {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
} {
  const parts: Partial<Record<Intl.DateTimeFormatPartTypes, number>> = {};
  for (const p of londonNumeric.formatToParts(ms)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const get = (t: Intl.DateTimeFormatPartTypes): number => {
    const v = parts[t];
    if (v === undefined || Number.isNaN(v)) throw new Error(`Intl gave no ${t} for Europe/London`);
    return v;
  };
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour'),
    minute: get('minute'),
    second: get('second'),
  };
}

/** How far UK wall time is ahead of UTC at `ms`: 0 in winter (GMT), one hour in summer (BST). */
function londonOffsetMs(ms: number): number {
  const f = londonFields(ms);
  const wall = Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

/**
 * The UTC instant of UK midnight starting the 1st of `month`. Clocks change at 01:00 UTC on the last
 * Sunday of March and October, never at midnight on the 1st, so midnight on the 1st exists exactly
 * once; the offset is read at the candidate instant and checked again there.
 */
function londonMonthStartMs(year: number, month: number): number {
  const wall = Date.UTC(year, month - 1, 1);
  let at = wall - londonOffsetMs(wall);
  at = wall - londonOffsetMs(at);
  return at;
}

/** The reporting month (`YYYY-MM`, UK calendar) a UTC instant falls in. */
export function londonMonthOf(ms: number): string {
  const f = londonFields(ms);
  return `${String(f.year).padStart(4, '0')}-${String(f.month).padStart(2, '0')}`;
}

/** Parses `YYYY-MM`; anything else (month 13, `2026-3`, …) is a ValidationError at `path`. */
export function parseReportingPeriod(text: string, path = 'query.period'): ReportingPeriod {
  const problem = periodProblem(text);
  if (problem) throw new ValidationError([{ path, message: problem }]);
  const [year, month] = text.split('-').map(Number) as [number, number];
  return {
    period: text,
    year,
    month,
    startMs: londonMonthStartMs(year, month),
    endMs: month === 12 ? londonMonthStartMs(year + 1, 1) : londonMonthStartMs(year, month + 1),
  };
}

// ---- items ------------------------------------------------------------------------------------------

/**
 * Cases of one month grouped by latest disposition kind and status, with the call facts summed:
 * what the `cases` read model gives for the month, and all the items need. One case is a tally of
 * `calls: 1`.
 */
export interface CaseTally {
  /** The latest disposition reached, or null if none was. */
  dispositionKind: string | null;
  status: string;
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

/**
 * The case's final disposition for reporting, or null: the latest one reached, unless the case is
 * back in triage (a clinician re-triaged it and no new disposition has been reached yet).
 */
export function finalDisposition(t: Pick<CaseTally, 'dispositionKind' | 'status'>): string | null {
  if (t.dispositionKind === null) return null;
  if (t.status === 'in_triage') return null;
  return t.dispositionKind;
}

const dispositionCount =
  (...kinds: string[]) =>
  (t: CaseTally): number => {
    const kind = finalDisposition(t);
    return kind !== null && (kinds.length === 0 || kinds.includes(kind)) ? t.calls : 0;
  };

export interface IucAdcItemDefinition {
  item: string;
  label: string;
  count(t: CaseTally): number;
}

/** The items this seed computes, in the order of the national specification. */
export const IUC_ADC_ITEMS: readonly IucAdcItemDefinition[] = [
  /** A01: every call received in the month, answered or not. */
  { item: 'A01', label: 'Calls received', count: (t) => t.calls },
  /** A03: calls received in the month that were answered. */
  { item: 'A03', label: 'Calls answered', count: (t) => t.answered },
  /** B02: calls received in the month that the caller abandoned before they were answered. */
  { item: 'B02', label: 'Calls abandoned', count: (t) => t.abandoned },
  /** C01: calls on which triage was started (a pathway was selected). */
  { item: 'C01', label: 'Calls triaged', count: (t) => t.triaged },
  /** D01: calls a clinician assessed: a consultation was started on the case. */
  { item: 'D01', label: 'Calls assessed by a clinician or clinical adviser', count: (t) => t.assessed },
  /** E01: every final disposition, whatever its kind (dental, pharmacy and other included). */
  { item: 'E01', label: 'Final dispositions (total)', count: dispositionCount() },
  /** E02: ambulance dispositions. */
  { item: 'E02', label: 'Ambulance dispositions', count: dispositionCount('ambulance') },
  /** E04: attend an emergency department or urgent treatment centre (type 1/2 ED). */
  { item: 'E04', label: 'Attend type 1/2 ED', count: dispositionCount('ed_utc') },
  /**
   * E07: contact primary care where a booking could be made. Holdfast books nothing yet, so no
   * disposition is bookable: always 0, and every contact-primary-care disposition is E08.
   */
  { item: 'E07', label: 'Contact primary care (bookable)', count: () => 0 },
  /** E08: contact primary care, not bookable: every contact_primary_care disposition (see E07). */
  {
    item: 'E08',
    label: 'Contact primary care (not bookable)',
    count: dispositionCount('contact_primary_care'),
  },
  /** E10: speak to primary care where a booking could be made: always 0 until booking exists. */
  { item: 'E10', label: 'Speak to primary care (bookable)', count: () => 0 },
  /** E11: speak to primary care, not bookable: every speak_to_primary_care disposition (see E10). */
  {
    item: 'E11',
    label: 'Speak to primary care (not bookable)',
    count: dispositionCount('speak_to_primary_care'),
  },
  /** E16: self-care dispositions. */
  { item: 'E16', label: 'Self-care', count: dispositionCount('self_care') },
];

export const IUC_ADC_NOTICE =
  'E07 and E10 (bookable primary care) are 0 until appointment booking exists: every contact or speak-to primary care disposition is counted as not bookable (E08, E11).';

export interface IucAdcItemValue {
  item: string;
  label: string;
  value: number;
}

/** Pure: the items from the month's tallies. */
export function iucAdcItems(tallies: readonly CaseTally[]): IucAdcItemValue[] {
  return IUC_ADC_ITEMS.map((d) => ({
    item: d.item,
    label: d.label,
    value: tallies.reduce((sum, t) => sum + d.count(t), 0),
  }));
}

// ---- reading the store --------------------------------------------------------------------------------

export interface TenantScope {
  /** Test switch: omit the tenant condition, so only PostgreSQL RLS keeps tenants apart. */
  tenantFilter: boolean;
}

/** The month's cases of `tenant`, grouped (a few dozen rows however many calls). */
async function tallyCases(
  trx: Tx,
  tenant: string,
  period: ReportingPeriod,
  scope: TenantScope,
): Promise<CaseTally[]> {
  let q = casesDb(trx)
    .selectFrom('cases')
    .select([
      'disposition_kind',
      'status',
      sql<string | number>`count(*)`.as('calls'),
      sql<string | number>`count(answered_at)`.as('answered'),
      sql<string | number>`count(abandoned_at)`.as('abandoned'),
      sql<string | number>`sum(triaged)`.as('triaged'),
      sql<string | number>`sum(assessed)`.as('assessed'),
    ])
    .where('received_at', '>=', period.startMs)
    .where('received_at', '<', period.endMs)
    .groupBy(['disposition_kind', 'status']);
  if (scope.tenantFilter) q = q.where('tenant', '=', tenant);
  const rows = await q.execute();
  return rows.map((r) => ({
    dispositionKind: r.disposition_kind,
    status: r.status,
    calls: toNumber(r.calls),
    answered: toNumber(r.answered),
    abandoned: toNumber(r.abandoned),
    triaged: toNumber(r.triaged),
    assessed: toNumber(r.assessed),
  }));
}

/** Who the return is from, as the national layout names it. */
export interface IucAdcIdentity {
  orgCode: string;
  orgName: string;
  contractCode: string;
  contractName: string;
  regionCode: string;
  regionName: string;
}

export const UNKNOWN = 'UNKNOWN';

export interface IucAdcReport {
  period: string;
  /** The month as UTC instants: [from, to). */
  from: string;
  to: string;
  generatedAt: string;
  org: { code: string; name: string };
  contract: { code: string; name: string };
  region: { code: string; name: string };
  items: IucAdcItemValue[];
  notice: string;
}

export interface IucAdcOptions extends TenantScope {
  /** For `generatedAt` (default: the wall clock). */
  clock?: Clock;
  /**
   * National identifiers by tenant. Unset fields default to the tenant id (org code), the tenant's
   * name (org name) and UNKNOWN (contract and region).
   */
  identities?: Readonly<Record<string, Partial<IucAdcIdentity>>>;
}

const wallClock: Clock = { nowMs: () => Date.now() };

/** The tenant's identity for the return: configured values, else its id and name, else UNKNOWN. */
async function iucAdcIdentity(trx: Tx, tenant: string, options: IucAdcOptions): Promise<IucAdcIdentity> {
  let q = accountsDb(trx).selectFrom('tenants').select('name');
  if (options.tenantFilter) q = q.where('tenant', '=', tenant);
  const row = await q.executeTakeFirst();
  const identities = options.identities ?? {};
  const configured = Object.hasOwn(identities, tenant) ? identities[tenant]! : {};
  return {
    orgCode: configured.orgCode ?? tenant,
    orgName: configured.orgName ?? row?.name ?? UNKNOWN,
    contractCode: configured.contractCode ?? UNKNOWN,
    contractName: configured.contractName ?? UNKNOWN,
    regionCode: configured.regionCode ?? UNKNOWN,
    regionName: configured.regionName ?? UNKNOWN,
  };
}

/**
 * The month's return for one tenant, read in one transaction scoped to it (RLS on PostgreSQL) and,
 * unless the test switch says otherwise, with a tenant condition on every query.
 */
export async function computeIucAdc(
  store: Store,
  tenant: string,
  period: ReportingPeriod,
  options: IucAdcOptions = { tenantFilter: true },
): Promise<IucAdcReport> {
  const { tallies, identity } = await store.withTenant(tenant, async (trx) => ({
    tallies: await tallyCases(trx, tenant, period, options),
    identity: await iucAdcIdentity(trx, tenant, options),
  }));
  return {
    period: period.period,
    from: new Date(period.startMs).toISOString(),
    to: new Date(period.endMs).toISOString(),
    generatedAt: new Date((options.clock ?? wallClock).nowMs()).toISOString(),
    org: { code: identity.orgCode, name: identity.orgName },
    contract: { code: identity.contractCode, name: identity.contractName },
    region: { code: identity.regionCode, name: identity.regionName },
    items: iucAdcItems(tallies),
    notice: IUC_ADC_NOTICE,
  };
}

// ---- CSV ----------------------------------------------------------------------------------------------

export const IUC_ADC_CSV_HEADER = [
  'REPORTING_PERIOD',
  'ORG_CODE',
  'ORG_NAME',
  'CONTRACT_CODE',
  'CONTRACT_NAME',
  'REGION_CODE',
  'REGION_NAME',
  'ITEM_NUMBER',
  'VALUE',
] as const;

/** A spreadsheet reads a cell starting with one of these as a formula (or may, after trimming). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One text field for a CSV a spreadsheet will open: a value a spreadsheet would take for a formula
 * gets a leading apostrophe (OWASP CSV injection), then RFC 4180 quoting when it holds a quote,
 * comma, line break, or a semicolon or tab (separators in some spreadsheet locales).
 */
export function csvTextField(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",;\t\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The return in the national CSV layout: the header, then one row per item; CRLF line ends. */
export function iucAdcCsv(report: IucAdcReport): string {
  const lines = [IUC_ADC_CSV_HEADER.join(',')];
  for (const i of report.items) {
    const text = [
      report.period,
      report.org.code,
      report.org.name,
      report.contract.code,
      report.contract.name,
      report.region.code,
      report.region.name,
      i.item,
    ].map(csvTextField);
    lines.push([...text, String(i.value)].join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

// ---- route ----------------------------------------------------------------------------------------------

/** The pattern is in the schema (and so in the OpenAPI document); the month and year are checked after. */
const periodQuery = z
  .string({ error: PERIOD_HINT })
  .regex(PERIOD_FORMAT, PERIOD_HINT)
  .superRefine((text, check) => {
    const problem = PERIOD_FORMAT.test(text) ? periodProblem(text) : null;
    if (problem) check.addIssue({ code: 'custom', message: problem });
  });

/** `GET /api/v1/reports/iuc-adc`: the caller's provider's IUC ADC items for a month, JSON or CSV. */
export function reportRoutes(store: Store, options: IucAdcOptions = { tenantFilter: true }): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/reports/iuc-adc',
      summary:
        'IUC ADC items of your provider for a UK calendar month (period=YYYY-MM); format=csv gives the national CSV layout',
      access: { permission: 'reports.read' },
      query: z.strictObject({
        period: periodQuery,
        format: z.enum(['json', 'csv']).default('json'),
      }),
      async handler({ ctx, query, reply }) {
        const report = await computeIucAdc(store, ctx.tenant, parseReportingPeriod(query.period), options);
        if (query.format === 'json') return report;
        const name = `iuc-adc-${ctx.tenant.replace(/[^A-Za-z0-9-]/g, '_')}-${report.period}.csv`;
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${name}"`)
          .send(iucAdcCsv(report));
      },
    }),
  ];
}
