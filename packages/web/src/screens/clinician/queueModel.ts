import type { CaseDetail, QueueCase } from '../../lib/types.ts';
import { timingAt } from '../../components/Timing.tsx';

export const QUEUE_STATUSES = new Set(['queued', 'claimed', 'in_consultation']);

/**
 * Lower is more urgent among equal deadlines (as the server's queue orders): escalated, NEWS2 high,
 * medium or a single 3, then unknown risk (no score, a partial one, NEWS2 not used), and a complete
 * low score last. A partial score is never ranked as low.
 */
export function priority(c: Pick<QueueCase, 'escalated' | 'news2'>): number {
  if (c.escalated) return 0;
  if (c.news2?.band === 'high') return 1;
  if (c.news2?.band === 'medium' || c.news2?.band === 'low_medium') return 2;
  if (c.news2?.band === 'low' && c.news2.total !== null) return 4;
  return 3;
}

const parsed = new WeakMap<QueueCase, { deadlineMs: number; receivedMs: number }>();

/** The row's deadline and received instants as numbers, parsed once per row object. */
export function timesOf(c: QueueCase): { deadlineMs: number; receivedMs: number } {
  let t = parsed.get(c);
  if (!t) {
    t = { deadlineMs: Date.parse(c.deadline), receivedMs: Date.parse(c.receivedAt) };
    parsed.set(c, t);
  }
  return t;
}

export function compareQueue(a: QueueCase, b: QueueCase): number {
  const d = timesOf(a).deadlineMs - timesOf(b).deadlineMs;
  if (d !== 0) return d;
  const p = priority(a) - priority(b);
  if (p !== 0) return p;
  return a.caseId < b.caseId ? -1 : a.caseId > b.caseId ? 1 : 0;
}

/** A queue row from a case read (what a live update fetches), or null when it is not in the queue. */
export function queueRowFrom(c: CaseDetail, nowMs: number): QueueCase | null {
  if (!QUEUE_STATUSES.has(c.status) || !c.disposition) return null;
  const received = Date.parse(c.receivedAt);
  const timeframe = Math.max(1, c.disposition.timeframeMinutes ?? 1);
  const deadline = c.deadline ? Date.parse(c.deadline) : received + timeframe * 60_000;
  return {
    caseId: c.caseId,
    siteId: c.siteId,
    status: c.status,
    claimedBy: c.claimedBy,
    claimedByName: c.claimedByName ?? null,
    patientId: c.patientId,
    escalated: c.escalated,
    failedCallbackAttempts: c.failedCallbackAttempts,
    presentingComplaint: c.presentingComplaint,
    callerName: c.caller.name,
    callbackNumber: c.caller.callbackNumber,
    disposition: {
      dxCode: c.disposition.dxCode,
      label: c.disposition.label,
      skillSet: c.disposition.skillSet,
      timeframeMinutes: timeframe,
      ...(c.disposition.notice ? { notice: c.disposition.notice } : {}),
    },
    receivedAt: c.receivedAt,
    deadline: new Date(deadline).toISOString(),
    deadlineLondon: '',
    remainingSeconds: Math.round((deadline - nowMs) / 1000),
    timing: timingAt(deadline, received, nowMs),
    news2: c.news2,
    news2NotApplicable: c.news2NotApplicable ?? null,
  };
}

/** The list with `caseId` replaced by `row` (or removed when row is null), kept in queue order. */
export function upsertRow(list: readonly QueueCase[], caseId: string, row: QueueCase | null): QueueCase[] {
  const without = list.filter((c) => c.caseId !== caseId);
  if (!row) return without;
  const mark = list.find((c) => c.caseId === caseId)?.ambulanceValidation;
  if (row.ambulanceValidation === undefined && mark) row = { ...row, ambulanceValidation: mark };
  // A case read does not carry the patient's date of death: the row keeps the queue read's.
  const before = list.find((c) => c.caseId === caseId);
  const died = before?.patientDeceasedAt;
  if (row.patientDeceasedAt === undefined && died) row = { ...row, patientDeceasedAt: died };
  // Nor the patient's name and flags: kept from the queue read while the case keeps its patient
  // (the next full read, within a minute, brings a newly identified one).
  if (row.patient === undefined && before?.patient && before.patient.patientId === row.patientId)
    row = { ...row, patient: before.patient };
  let lo = 0;
  let hi = without.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareQueue(without[mid]!, row) < 0) lo = mid + 1;
    else hi = mid;
  }
  without.splice(lo, 0, row);
  return without;
}

/**
 * What a case event alone says about a row: the ledger's event type fixes the new status (a claim
 * makes it claimed, a release queued, a close takes it out of the queue). The screen shows that at
 * once and then re-reads the case for the rest (who holds it, NEWS2, escalation). `undefined`: the
 * type says nothing certain about the row; `null`: the case leaves the queue.
 */
export function provisionalRow(row: QueueCase, type: string): QueueCase | null | undefined {
  switch (type) {
    case 'case.claimed':
    case 'case.transferred':
      // Held by a clinician not yet known here: never shown as "held by you" before the re-read.
      return { ...row, status: 'claimed', claimedBy: row.claimedBy ?? 'pending' };
    case 'case.released':
      return { ...row, status: 'queued', claimedBy: null };
    case 'case.consultation_started':
      return { ...row, status: 'in_consultation' };
    case 'case.closed':
    case 'case.referred':
    case 'case.ambulance_requested':
    case 'case.follow_up_arranged':
      return null;
    default:
      return undefined;
  }
}
