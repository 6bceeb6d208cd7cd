import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';

/**
 * Call events from the provider's telephony (CTI): each is a fact with the time the telephony gives
 * it, so the national call-answering measures (IUC ADC B01–B07) are computed from real timings and
 * not from an "answered" yes/no typed by staff.
 *
 * - `offered`: the introductory message has finished and the call is offered to the call-handling
 *   queue. The national clock for answering starts here ("calls answered within 60 s of the
 *   introductory message", urgent-care reference facts, out-of-hours timeframes).
 * - `answered`: a call handler picked the call up.
 * - `abandoned`: the caller hung up before anyone answered. Without an `offered` before it, the caller
 *   hung up during the introductory message: recorded, but not a call abandoned in the queue.
 *
 * One call is one subject (`telephony:<call id>`); the telephony's call id is the idempotency key
 * with the event name: a repeat with the same time stores nothing.
 */

export const TELEPHONY_CALL_EVENTS = ['offered', 'answered', 'abandoned'] as const;
export type TelephonyCallEventName = (typeof TELEPHONY_CALL_EVENTS)[number];

/** The telephony's own call id: visible ASCII without spaces, as CTI systems give them. */
export const TELEPHONY_CALL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$/;
/** A system id as configured on the node (which telephony platform sent the event). */
export const TELEPHONY_SYSTEM_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const callId = z.string().regex(TELEPHONY_CALL_ID);

export const telephonyCallEvent = defineEventType({
  type: 'telephony.call_event',
  v: 1,
  description: 'The telephony reported a call offered to the queue, answered, or abandoned, at a time.',
  schema: z.strictObject({
    callId,
    /** The telephony system (its credential), never from the body. */
    systemId: z.string().regex(TELEPHONY_SYSTEM_ID),
    event: z.enum(TELEPHONY_CALL_EVENTS),
    /** When it happened, by the telephony's clock (epoch ms). */
    atMs: ms,
    /** The caller's line in digits (a UK number as 0…), or null when withheld. */
    callerLine: z
      .string()
      .regex(/^[0-9]{3,20}$/)
      .nullable(),
  }),
  subjectOf: (p) => `telephony:${p.callId}`,
});

/** How a telephony call was tied to the case the adviser opened for it. */
export const TELEPHONY_LINKS = ['call_id', 'caller_line'] as const;
export type TelephonyLink = (typeof TELEPHONY_LINKS)[number];

export const telephonyCallLinked = defineEventType({
  type: 'telephony.call_linked',
  v: 1,
  description: 'A telephony call was tied to the case opened for it (by its call id or the caller’s line).',
  schema: z.strictObject({
    callId,
    caseId: z.string().uuid(),
    by: z.enum(TELEPHONY_LINKS),
  }),
  subjectOf: (p) => `telephony:${p.callId}`,
});

export type TelephonyCallEvent = z.infer<typeof telephonyCallEvent.schema>;
export type TelephonyCallLinked = z.infer<typeof telephonyCallLinked.schema>;

export const TELEPHONY_EVENT_TYPES = [telephonyCallEvent, telephonyCallLinked];

/**
 * A phone number as digits for matching a caller's line with the call-back number an adviser typed:
 * spaces, dashes and brackets dropped, +44 / 0044 read as the UK trunk 0. Null when nothing is left
 * to match on (withheld, or not a number).
 */
export function normalisePhoneLine(text: string | null | undefined): string | null {
  if (!text) return null;
  let digits = text.replace(/[\s\-().]/g, '');
  if (digits.startsWith('+44')) digits = `0${digits.slice(3)}`;
  else if (digits.startsWith('0044')) digits = `0${digits.slice(4)}`;
  else if (digits.startsWith('+')) digits = digits.slice(1);
  return /^[0-9]{3,20}$/.test(digits) ? digits : null;
}
