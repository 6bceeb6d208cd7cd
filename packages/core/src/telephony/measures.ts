/**
 * The call-answering measures of the IUC Aggregate Data Collection (section B), computed from the
 * telephony's timestamps. Pure: the caller picks the month's calls.
 *
 * Sources, and what is our reading of them:
 * - The urgent-care reference facts (IUC ADC main items) name B02 "calls abandoned", and the national
 *   out-of-hours quality requirements measure answering "within 60 s of the introductory message"
 *   (and "under 5% abandoned"). So every clock here starts when the call is offered to the queue at
 *   the end of the introductory message, and a caller who hangs up during that message was never
 *   waiting to be answered: not abandoned (B02) and not timed.
 * - B03–B07 are the answer-time and abandon-time measures as Holdfast reports them: totals in whole
 *   seconds (a mean is the total divided by its count, A03 or B02) and centiles by the nearest-rank
 *   method, rounded up to whole seconds so a centile never flatters. Check the item numbers against
 *   the published IUC ADC specification of the year before a return is submitted.
 */

/** One call's timings from the telephony (epoch ms); null where the event did not happen. */
export interface TimedCall {
  offeredAtMs: number | null;
  answeredAtMs: number | null;
  abandonedAtMs: number | null;
}

export interface CallTimingItem {
  item: 'B01' | 'B02' | 'B03' | 'B04' | 'B05' | 'B06' | 'B07';
  label: string;
}

/** The section B items in the order of the national layout. */
export const CALL_TIMING_ITEMS: readonly CallTimingItem[] = [
  { item: 'B01', label: 'Calls answered within 60 seconds' },
  { item: 'B02', label: 'Calls abandoned' },
  { item: 'B03', label: 'Total time to answer calls (seconds)' },
  { item: 'B04', label: '95th centile time to answer (seconds)' },
  { item: 'B05', label: '90th centile time to answer (seconds)' },
  { item: 'B06', label: 'Total time to abandon calls (seconds)' },
  { item: 'B07', label: '95th centile time to abandon (seconds)' },
];

/** "Calls answered within 60 s of the introductory message" (out-of-hours quality requirements). */
export const ANSWER_WITHIN_MS = 60_000;

export type CallTimingValues = Record<CallTimingItem['item'], number>;

/**
 * The p-th centile (0 < p ≤ 1) of `values` by nearest rank: the smallest value with at least p of
 * all values at or below it. 0 for no values (the report says there were none).
 */
export function nearestRankCentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1]!;
}

const wholeSecondsUp = (ms: number): number => Math.ceil(ms / 1000);
const totalSeconds = (ms: readonly number[]): number => Math.round(ms.reduce((a, b) => a + b, 0) / 1000);

/** How long each offered call waited before it was answered, and before it was abandoned (ms). */
export function callWaits(calls: readonly TimedCall[]): { toAnswer: number[]; toAbandon: number[] } {
  const toAnswer: number[] = [];
  const toAbandon: number[] = [];
  for (const c of calls) {
    if (c.offeredAtMs === null) continue; // ended during the introductory message: never waiting
    if (c.answeredAtMs !== null) toAnswer.push(Math.max(0, c.answeredAtMs - c.offeredAtMs));
    else if (c.abandonedAtMs !== null) toAbandon.push(Math.max(0, c.abandonedAtMs - c.offeredAtMs));
  }
  return { toAnswer, toAbandon };
}

/** B01–B07 of the given calls (already chosen for the month). */
export function callTimingMeasures(calls: readonly TimedCall[]): CallTimingValues {
  const { toAnswer, toAbandon } = callWaits(calls);
  return {
    B01: toAnswer.filter((w) => w <= ANSWER_WITHIN_MS).length,
    B02: toAbandon.length,
    B03: totalSeconds(toAnswer),
    B04: wholeSecondsUp(nearestRankCentile(toAnswer, 0.95)),
    B05: wholeSecondsUp(nearestRankCentile(toAnswer, 0.9)),
    B06: totalSeconds(toAbandon),
    B07: wholeSecondsUp(nearestRankCentile(toAbandon, 0.95)),
  };
}
