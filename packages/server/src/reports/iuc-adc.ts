import {
  CALL_TIMING_ITEMS,
  callTimingMeasures,
  ConflictError,
  REPORTING_SETTING_WORDS,
  ValidationError,
  type CallTimingValues,
  type Clock,
} from '@holdfast/core';
import { SAMPLE_DX_CODES, type DxCodeTable } from '@holdfast/core/triage/dx-codes';
import { z } from 'zod';
import { providerName } from '../accounts/reads.ts';
import { tallyCases, type CaseTally } from '../cases/reads.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { Store } from '../store/store.ts';
import { telephonyMonth, type TelephonyMonth } from '../telephony/service.ts';
import { readProviderSettings, type ProviderSettingsView } from './provider-settings.ts';

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
 *   final disposition and counts in no E item. A clinician who upgrades a case to an ambulance after
 *   assessing it makes the ambulance its final disposition (E02, and no longer the E item it had).
 * - Calls come from the telephony where it reports them (telephony/): a call offered to the queue is
 *   received (A01), answered (A03) or abandoned (B02) by its own timestamps, and only such calls are
 *   timed (B01, B03–B07). A case tied to a telephony call counts as that call; a case with no telephony
 *   record (telephony down, or not connected) is the fallback, counted by the adviser's answered/
 *   abandoned entry and untimed. The report says how many calls came from each.
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

/** A group of the month's cases (the `cases` module reads them: `tallyCases`). */
export type { CaseTally } from '../cases/reads.ts';

/**
 * The case's final disposition for reporting, or null: the latest one reached, unless the case is
 * back in triage (a clinician re-triaged it and no new disposition has been reached yet).
 */
export function finalDisposition(
  t: Pick<CaseTally, 'dispositionKind' | 'status'> & Partial<Pick<CaseTally, 'outcome'>>,
): string | null {
  if (t.status === 'in_triage') return null;
  // A clinician's upgrade after assessment sends an ambulance whatever triage reached.
  if (t.outcome === 'upgrade_to_ambulance') return 'ambulance';
  return t.dispositionKind;
}

/** What the month's items are computed from. */
export interface MonthFacts {
  cases: readonly CaseTally[];
  telephony: TelephonyMonth;
  /** The Dx table: which ed_utc codes are a type 1/2 emergency department (E04). */
  dxCodes: DxCodeTable;
}

const EMPTY_TELEPHONY: TelephonyMonth = { offered: [], endedDuringIntroduction: 0 };

const sumCases = (f: MonthFacts, count: (t: CaseTally) => number): number =>
  f.cases.reduce((sum, t) => sum + count(t), 0);

/**
 * The kind a final disposition is reported as. Cases from before dental and pharmacy dispositions
 * were recorded as such carry 'other': their Dx code says what they were.
 */
const reportedKind = (t: CaseTally, f: MonthFacts): string | null => {
  const kind = finalDisposition(t);
  if (kind !== 'other' || t.dxCode === null) return kind;
  return f.dxCodes.get(t.dxCode)?.kind ?? kind;
};

const dispositionCount =
  (want: (kind: string, t: CaseTally, f: MonthFacts) => boolean = () => true) =>
  (f: MonthFacts): number =>
    sumCases(f, (t) => {
      const kind = reportedKind(t, f);
      return kind !== null && want(kind, t, f) ? t.calls : 0;
    });

/** Cases with no telephony record: the adviser's answered/abandoned entry is all there is. */
const manual = (count: (t: CaseTally) => number) => (f: MonthFacts) =>
  sumCases(f, (t) => (t.linked ? 0 : count(t)));

const timings = new WeakMap<MonthFacts, CallTimingValues>();
/** B01–B07 from the telephony's timestamps (core telephony/measures.ts), computed once per month. */
const timing = (item: keyof CallTimingValues) => (f: MonthFacts) => {
  let values = timings.get(f);
  if (!values) timings.set(f, (values = callTimingMeasures(f.telephony.offered)));
  return values[item];
};
const telephonyAnswered = (f: MonthFacts) =>
  f.telephony.offered.filter((c) => c.answeredAtMs !== null).length;

/**
 * E04 is attendance at a type 1 or 2 emergency department (urgent-care reference facts, IUC ADC
 * "E04 attend type 1/2 ED"): an ed_utc disposition counts only when its Dx code sends the patient to
 * an emergency department, never to an urgent treatment centre.
 */
const typeOneOrTwoEd = (kind: string, t: CaseTally, f: MonthFacts): boolean =>
  kind === 'ed_utc' && t.dxCode !== null && f.dxCodes.get(t.dxCode)?.attends === 'emergency_department';

export interface IucAdcItemDefinition {
  item: string;
  label: string;
  value(f: MonthFacts): number;
}

const timingLabel = (item: string): string => CALL_TIMING_ITEMS.find((d) => d.item === item)!.label;

/** The items this seed computes, in the order of the national specification. */
export const IUC_ADC_ITEMS: readonly IucAdcItemDefinition[] = [
  /** A01: every call received in the month: offered by the telephony, or entered by hand. */
  {
    item: 'A01',
    label: 'Calls received',
    value: (f) => f.telephony.offered.length + manual((t) => t.calls)(f),
  },
  /** A03: calls received in the month that were answered. */
  {
    item: 'A03',
    label: 'Calls answered',
    value: (f) => telephonyAnswered(f) + manual((t) => t.answered)(f),
  },
  /** B01: answered within 60 s of the introductory message (telephony-timed calls only). */
  { item: 'B01', label: timingLabel('B01'), value: timing('B01') },
  /**
   * B02: calls abandoned: offered, then the caller hung up before anyone answered; plus, untimed,
   * the calls entered by hand as abandoned when the telephony has no record of them.
   */
  {
    item: 'B02',
    label: timingLabel('B02'),
    value: (f) => timing('B02')(f) + manual((t) => t.abandoned)(f),
  },
  { item: 'B03', label: timingLabel('B03'), value: timing('B03') },
  { item: 'B04', label: timingLabel('B04'), value: timing('B04') },
  { item: 'B05', label: timingLabel('B05'), value: timing('B05') },
  { item: 'B06', label: timingLabel('B06'), value: timing('B06') },
  { item: 'B07', label: timingLabel('B07'), value: timing('B07') },
  /** C01: calls on which triage was started (a pathway was selected). */
  { item: 'C01', label: 'Calls triaged', value: (f) => sumCases(f, (t) => t.triaged) },
  /** D01: calls a clinician assessed: a consultation was started on the case. */
  {
    item: 'D01',
    label: 'Calls assessed by a clinician or clinical adviser',
    value: (f) => sumCases(f, (t) => t.assessed),
  },
  /** E01: every final disposition, whatever its kind (dental, pharmacy, UTC and other included). */
  { item: 'E01', label: 'Final dispositions (total)', value: dispositionCount() },
  /** E02: ambulance dispositions, a clinician's upgrade after assessment included. */
  { item: 'E02', label: 'Ambulance dispositions', value: dispositionCount((k) => k === 'ambulance') },
  /** E04: attend a type 1/2 emergency department (not an urgent treatment centre: see typeOneOrTwoEd). */
  { item: 'E04', label: 'Attend type 1/2 ED', value: dispositionCount(typeOneOrTwoEd) },
  /**
   * E07: contact primary care where a booking could be made. Holdfast books nothing yet, so no
   * disposition is bookable: always 0, and every contact-primary-care disposition is E08.
   */
  { item: 'E07', label: 'Contact primary care (bookable)', value: () => 0 },
  /** E08: contact primary care, not bookable: every contact_primary_care disposition (see E07). */
  {
    item: 'E08',
    label: 'Contact primary care (not bookable)',
    value: dispositionCount((k) => k === 'contact_primary_care'),
  },
  /** E10: speak to primary care where a booking could be made: always 0 until booking exists. */
  { item: 'E10', label: 'Speak to primary care (bookable)', value: () => 0 },
  /** E11: speak to primary care, not bookable: every speak_to_primary_care disposition (see E10). */
  {
    item: 'E11',
    label: 'Speak to primary care (not bookable)',
    value: dispositionCount((k) => k === 'speak_to_primary_care'),
  },
  /** E12: contact or speak to a dental service (urgent-care reference facts, IUC ADC E12). */
  { item: 'E12', label: 'Contact or speak to dental', value: dispositionCount((k) => k === 'dental') },
  /** E16: self-care dispositions. */
  { item: 'E16', label: 'Self-care', value: dispositionCount((k) => k === 'self_care') },
];

export const IUC_ADC_NOTICE =
  'E07 and E10 (bookable primary care) are 0 until appointment booking exists: every contact or speak-to primary care disposition is counted as not bookable (E08, E11).';

export interface IucAdcItemValue {
  item: string;
  label: string;
  value: number;
}

/** Pure: the items from the month's case tallies and telephony calls. */
export function iucAdcItems(
  tallies: readonly CaseTally[],
  telephony: TelephonyMonth = EMPTY_TELEPHONY,
  dxCodes: DxCodeTable = SAMPLE_DX_CODES,
): IucAdcItemValue[] {
  const facts: MonthFacts = { cases: tallies, telephony, dxCodes };
  return IUC_ADC_ITEMS.map((d) => ({ item: d.item, label: d.label, value: d.value(facts) }));
}

/** Where the month's calls came from, so a reader knows how much of section B is timed. */
export interface CallSources {
  /** Calls the telephony offered to the queue in the month (timed). */
  telephonyCalls: number;
  /** …of which tied to the case an adviser opened for them. */
  telephonyCallsWithCase: number;
  /** …and with no case (hung up, wrong number, or not tied): counted from the telephony alone. */
  telephonyCallsWithoutCase: number;
  /** Calls that ended during the introductory message: recorded, counted in no item. */
  endedDuringIntroduction: number;
  /** Cases with no telephony record, counted by the adviser's answered/abandoned entry (untimed). */
  casesEnteredByHand: number;
}

export function callSources(tallies: readonly CaseTally[], telephony: TelephonyMonth): CallSources {
  const withCase = telephony.offered.filter((c) => c.caseId !== null).length;
  return {
    telephonyCalls: telephony.offered.length,
    telephonyCallsWithCase: withCase,
    telephonyCallsWithoutCase: telephony.offered.length - withCase,
    endedDuringIntroduction: telephony.endedDuringIntroduction,
    casesEnteredByHand: tallies.reduce((sum, t) => sum + (t.linked ? 0 : t.calls), 0),
  };
}

// ---- reading the store --------------------------------------------------------------------------------

export interface TenantScope {
  /** Test switch: omit the tenant condition, so only PostgreSQL RLS keeps tenants apart. */
  tenantFilter: boolean;
}

export interface IucAdcReport {
  period: string;
  /** The month as UTC instants: [from, to). */
  from: string;
  to: string;
  generatedAt: string;
  /**
   * Who the return is from, from the provider's reporting settings (an admin sets them). A setting
   * not set is null here and named in `missingSettings`: the national CSV is refused until it is set,
   * so a return never goes out under a made-up code.
   */
  org: { code: string | null; name: string };
  contract: { code: string | null; name: string | null };
  region: { code: string | null; name: string | null };
  missingSettings: ProviderSettingsView['missing'];
  items: IucAdcItemValue[];
  callSources: CallSources;
  notice: string;
  /** What a reader must know about these figures (untimed calls, missing settings). */
  notices: string[];
}

export interface IucAdcOptions extends TenantScope {
  /** For `generatedAt` (default: the wall clock). */
  clock?: Clock;
  /** The Dx table (default: the sample table the protocol packs are checked against). */
  dxCodes?: DxCodeTable;
}

const wallClock: Clock = { nowMs: () => Date.now() };

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
  const { tallies, telephony, settings, name } = await store.withTenant(tenant, async (trx) => ({
    tallies: await tallyCases(trx, tenant, period.startMs, period.endMs, options),
    telephony: await telephonyMonth(trx, tenant, period, options.tenantFilter),
    settings: await readProviderSettings(trx, tenant, options.tenantFilter),
    name: (await providerName(trx, tenant, options)) ?? tenant,
  }));
  const s = settings.settings;
  const sources = callSources(tallies, telephony);
  const notices: string[] = [];
  if (settings.missing.length > 0)
    notices.push(
      `Not set in the provider's reporting settings: ${settings.missing.map((k) => REPORTING_SETTING_WORDS[k]).join(', ')}. The national CSV is refused until a provider admin sets them.`,
    );
  if (sources.casesEnteredByHand > 0)
    notices.push(
      `${sources.casesEnteredByHand} call(s) have no telephony record: counted in A01, A03 and B02 from the adviser's entry, and left out of the timed items B01 and B03–B07.`,
    );
  if (sources.telephonyCalls === 0)
    notices.push('No telephony calls in the month: B01 and B03–B07 are 0 because no call was timed.');
  return {
    period: period.period,
    from: new Date(period.startMs).toISOString(),
    to: new Date(period.endMs).toISOString(),
    generatedAt: new Date((options.clock ?? wallClock).nowMs()).toISOString(),
    org: { code: s.orgCode ?? null, name: s.orgName ?? name },
    contract: { code: s.contractCode ?? null, name: s.contractName ?? null },
    region: { code: s.regionCode ?? null, name: s.regionName ?? null },
    missingSettings: settings.missing,
    items: iucAdcItems(tallies, telephony, options.dxCodes ?? SAMPLE_DX_CODES),
    callSources: sources,
    notice: IUC_ADC_NOTICE,
    notices,
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

/**
 * The return in the national CSV layout: the header, then one row per item; CRLF line ends. Refused
 * (409) while a reporting setting is missing: a return under a made-up organisation, contract or
 * region code would be filed against the wrong one.
 */
export function iucAdcCsv(report: IucAdcReport): string {
  const { org, contract, region } = report;
  if (
    report.missingSettings.length > 0 ||
    org.code === null ||
    contract.code === null ||
    contract.name === null ||
    region.code === null ||
    region.name === null
  )
    throw new ConflictError(
      `the national return needs the provider's reporting settings: ${report.missingSettings.map((k) => REPORTING_SETTING_WORDS[k]).join(', ')} not set; a provider admin sets them (PUT /api/v1/admin/reporting-settings)`,
    );
  const lines = [IUC_ADC_CSV_HEADER.join(',')];
  for (const i of report.items) {
    const text = [
      report.period,
      org.code,
      org.name,
      contract.code,
      contract.name,
      region.code,
      region.name,
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
