import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { SAMPLE_DX_CODES } from '../triage/dx-codes.ts';
import { londonTimeToUtcMs, nextWorkingDay, pemDueAtMs } from './working-days.ts';

/**
 * The Post Event Message (C11): when a case ends, the patient's registered practice is told what
 * happened, by 08:00 on the next working day. This module holds the pure rules; the server module
 * `pem/` gathers the case and queues the message.
 */

/**
 * Dispositions for which a PEM is never sent (the published rule: Dx28, Dx52, Dx60, Dx22, Dx23, Dx45,
 * Dx46, Dx63), plus any code the Dx table marks the same way (the sample dental codes).
 */
export const PEM_NEVER_SEND_DX: ReadonlySet<string> = new Set([
  'Dx28',
  'Dx52',
  'Dx60',
  'Dx22',
  'Dx23',
  'Dx45',
  'Dx46',
  'Dx63',
  ...[...SAMPLE_DX_CODES.values()].filter((d) => d.neverSendsPostEventMessage).map((d) => d.code),
]);

export const PEM_NOT_SENT_REASONS = [
  /** The disposition is on the never-send list. */
  'never_send_disposition',
  /** Nobody identified the patient, so there is no practice to tell. */
  'no_patient',
  /** The patient's record names no registered practice. */
  'no_registered_practice',
  /** The practice is known but no Post Event Message endpoint is configured for its ODS code. */
  'no_practice_endpoint',
] as const;
export type PemNotSentReason = (typeof PEM_NOT_SENT_REASONS)[number];

export interface PemCaseFacts {
  /** The disposition's code (a Dx code or a sample code), if one was reached. */
  dxCode: string | null;
  /** The disposition's kind (contact_primary_care, self_care …). */
  dispositionKind: string | null;
  dispositionLabel: string | null;
  /** The window the disposition gives the patient, in minutes (0 or null: none). */
  timeframeMinutes: number | null;
  /** Consultation outcomes in the order recorded. */
  outcomes: readonly string[];
  closedAtMs: number;
  /** Prescriptions issued on the case (C9), cancelled ones left out. */
  prescriptionsIssued?: number;
}

export type PemType = 'for_action' | 'for_information';

export interface PemContent {
  type: PemType;
  /** For action: what the practice is asked to do, and by when (ms). */
  action: { what: string; byMs: number } | null;
  dueAtMs: number;
}

/**
 * For action or for information. The rule: a PEM is "for action" when the outcome leaves something
 * for the practice to do —
 *   - the disposition is `contact_primary_care` (the patient was told to contact their own practice):
 *     the practice is asked to expect the contact and see or speak to the patient;
 *   - a clinician prescribed out of hours (`prescribe` outcome): the practice is asked to review the
 *     medicine and update the record.
 * By when: the end of core hours (18:30 London) on the next working day, or the end of the
 * disposition's own window if that is later. Every other outcome is "for information".
 */
export function pemContent(facts: PemCaseFacts): PemContent {
  const dueAtMs = pemDueAtMs(facts.closedAtMs);
  const asks: string[] = [];
  if (facts.dispositionKind === 'contact_primary_care')
    asks.push(
      `The patient was advised to contact the practice (${facts.dispositionLabel ?? facts.dxCode ?? 'primary care'}): expect their contact and see or speak to them`,
    );
  if (facts.outcomes.includes('prescribe') || (facts.prescriptionsIssued ?? 0) > 0)
    asks.push('A medicine was prescribed out of hours: review it and update the patient record');
  if (asks.length === 0) return { type: 'for_information', action: null, dueAtMs };
  const endOfCoreHours = londonTimeToUtcMs(nextWorkingDay(facts.closedAtMs), 18) + 30 * 60_000;
  const windowEnd = facts.timeframeMinutes ? facts.closedAtMs + facts.timeframeMinutes * 60_000 : 0;
  return {
    type: 'for_action',
    action: { what: asks.join('. '), byMs: Math.max(endOfCoreHours, windowEnd) },
    dueAtMs,
  };
}

/** Whether the disposition forbids a PEM. */
export function pemNeverSent(dxCode: string | null): boolean {
  return dxCode !== null && PEM_NEVER_SEND_DX.has(dxCode);
}

/**
 * A case ended without a Post Event Message, and why: recorded in the same commit as the close, so
 * the PEM report lists the cases whose practice was never told (no practice, no endpoint).
 */
export const pemNotSent = defineEventType({
  type: 'pem.not_sent',
  v: 1,
  description: 'A closed case sent no Post Event Message, with the reason.',
  schema: z.strictObject({
    caseId: z.string().uuid(),
    reason: z.enum(PEM_NOT_SENT_REASONS),
    /** The practice's ODS code when one is registered (no_practice_endpoint). */
    odsCode: z.string().max(16).nullable(),
    dxCode: z.string().max(64).nullable(),
    closedAtMs: z.number().int().min(0),
    dueAtMs: z.number().int().min(0),
  }),
  subjectOf: (p) => `pem:${p.caseId}`,
});
