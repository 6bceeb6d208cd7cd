import { APPOINTMENT_KINDS, defineEventType, diarySessionSchema, slotTemplateSchema } from '@holdfast/core';
import { z } from 'zod';

/**
 * Treatment-centre appointments (C6). Diary events (a centre, its templates, sessions and slots, and
 * who owns each slot) have the centre as subject, so a centre's diary and the custody of its slots
 * fold in ledger order on every node. Bookings have the case as subject.
 *
 * Custody: the slots of a session are owned by the centre's home node when the session is planned;
 * ownership moves only by `booking.slots_allocated` / `booking.slots_returned` written by the current
 * owner in its own chain. A booking is written only by the slot's owner (service.ts).
 */
const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const uuid = z.string().uuid();
const words = (max: number) => z.string().trim().min(1).max(max);
/** Ids a person chooses for a centre, room or template: short, URL-safe. */
export const BOOKING_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const shortId = z.string().regex(BOOKING_ID);
/** Node ids as `holdfast init` makes them. */
const nodeId = z.string().min(1).max(200);
const slotId = z.string().min(1).max(200);
const kind = z.enum(APPOINTMENT_KINDS);

const centreSubject = (p: { centreId: string }) => `centre:${p.centreId}`;
const caseSubject = (p: { caseId: string }) => `case:${p.caseId}`;

/** Core's template and session shapes: the diary's rules are written once. */
export const templateSchema = slotTemplateSchema;

export const centreDefined = defineEventType({
  type: 'booking.centre_defined',
  v: 1,
  description:
    'A treatment centre (a site of the provider) with its address, rooms and home node (its own site node, or the hub).',
  schema: z.strictObject({
    centreId: shortId,
    siteId: uuid,
    name: words(200),
    address: words(500),
    postcode: words(12),
    lat: z.number().min(-90).max(90),
    lon: z.number().min(-180).max(180),
    phone: words(40),
    homeNodeId: nodeId,
    homeNodeName: words(200),
    rooms: z
      .array(z.strictObject({ roomId: shortId, name: words(120) }))
      .min(1)
      .max(50),
    timeframeNote: words(500).nullable(),
  }),
  subjectOf: centreSubject,
});

export const templateDefined = defineEventType({
  type: 'booking.template_defined',
  v: 1,
  description: 'A slot template of a centre: slot length, patients per slot, the kinds of case it takes.',
  schema: z.strictObject({ centreId: shortId, template: templateSchema }),
  subjectOf: centreSubject,
});

export const sessionPlanned = defineEventType({
  type: 'booking.session_planned',
  v: 1,
  description:
    "A clinician's session at a centre (room, local date and times, the template as it was), with the slots it makes; the centre's home node owns them.",
  schema: z.strictObject({
    centreId: shortId,
    session: diarySessionSchema,
    /** The centre's home node when the session was planned: it owns every slot. */
    homeNodeId: nodeId,
    slots: z
      .array(z.strictObject({ slotId, startMs: ms, endMs: ms, startLocal: z.string().min(16).max(16) }))
      .min(1)
      .max(500),
  }),
  subjectOf: centreSubject,
});

export const sessionCancelled = defineEventType({
  type: 'booking.session_cancelled',
  v: 1,
  description: 'A planned session was cancelled, with the reason (its slots take no more bookings).',
  schema: z.strictObject({ centreId: shortId, sessionId: z.string().min(1).max(128), reason: words(2000) }),
  subjectOf: centreSubject,
});

export const allocationPolicySet = defineEventType({
  type: 'booking.allocation_policy_set',
  v: 1,
  description:
    "How many of each session's slots the centre's home node hands to another node (the 111 call centre, the CAS) in advance, and how long before the session they come back.",
  schema: z.strictObject({
    centreId: shortId,
    toNodeId: nodeId,
    toNodeName: words(200),
    /** Exactly one of share (0–1 of the session's slots) and count. */
    share: z.number().min(0).max(1).nullable(),
    count: z.number().int().min(0).max(500).nullable(),
    cutoffMinutesBeforeStart: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 60),
  }),
  subjectOf: centreSubject,
});

export const slotsAllocated = defineEventType({
  type: 'booking.slots_allocated',
  v: 1,
  description:
    'The current owner of these slots hands them to another node until returnAtMs (only the owner may write this).',
  schema: z.strictObject({
    centreId: shortId,
    sessionId: z.string().min(1).max(128),
    slotIds: z.array(slotId).min(1).max(500),
    toNodeId: nodeId,
    returnAtMs: ms,
  }),
  subjectOf: centreSubject,
});

export const slotsReturned = defineEventType({
  type: 'booking.slots_returned',
  v: 1,
  description: 'The holder of allocated slots gives them back (at the cut-off, or by hand).',
  schema: z.strictObject({
    centreId: shortId,
    slotIds: z.array(slotId).min(1).max(500),
    toNodeId: nodeId,
  }),
  subjectOf: centreSubject,
});

const blockBody = z.strictObject({
  centreId: shortId,
  slotIds: z.array(slotId).min(1).max(500),
  reason: words(2000),
});

export const slotsBlocked = defineEventType({
  type: 'booking.slots_blocked',
  v: 1,
  description: 'Slots taken out of use with a reason (bookings already made stand).',
  schema: blockBody,
  subjectOf: centreSubject,
});

export const slotsReleased = defineEventType({
  type: 'booking.slots_released',
  v: 1,
  description: 'Blocked slots put back into use, with a reason.',
  schema: blockBody,
  subjectOf: centreSubject,
});

export const booked = defineEventType({
  type: 'booking.booked',
  v: 1,
  description:
    "An appointment booked for a case in a slot, written by the slot's owner node; outside the case's timeframe only with a clinician's reason.",
  schema: z.strictObject({
    bookingId: uuid,
    slotId,
    centreId: shortId,
    caseId: uuid,
    patientId: uuid.nullable(),
    /** The name the patient was booked under (the record's, else the caller's words), for reception. */
    patientName: words(200),
    kind,
    startMs: ms,
    startLocal: z.string().min(16).max(16),
    timeframeMinutes: z.number().int().min(0).max(100_000).nullable(),
    outsideTimeframeReason: words(2000).nullable(),
    /** The booking this one replaces (a rebook: cancelled in the same commit). */
    rebookOf: uuid.nullable(),
    byUserId: uuid,
    atMs: ms,
  }),
  subjectOf: caseSubject,
});

export const cancelled = defineEventType({
  type: 'booking.cancelled',
  v: 1,
  description: 'An appointment was cancelled, with the reason (the place is free again for its owner).',
  schema: z.strictObject({ bookingId: uuid, caseId: uuid, reason: words(2000), atMs: ms }),
  subjectOf: caseSubject,
});

export const arrived = defineEventType({
  type: 'booking.arrived',
  v: 1,
  description: 'The patient arrived at the centre for the appointment (recorded at reception).',
  schema: z.strictObject({ bookingId: uuid, caseId: uuid, atMs: ms }),
  subjectOf: caseSubject,
});

export const walkIn = defineEventType({
  type: 'booking.walk_in',
  v: 1,
  description: 'A patient walked in at the centre: a case opened at the desk, arrived at once.',
  schema: z.strictObject({
    bookingId: uuid,
    caseId: uuid,
    centreId: shortId,
    patientId: uuid.nullable(),
    patientName: words(200),
    kind,
    timeframeMinutes: z.number().int().min(0).max(100_000).nullable(),
    atMs: ms,
  }),
  subjectOf: caseSubject,
});

export const seen = defineEventType({
  type: 'booking.seen',
  v: 1,
  description: 'The patient was seen at the centre, by whom.',
  schema: z.strictObject({ bookingId: uuid, caseId: uuid, clinicianId: uuid, atMs: ms }),
  subjectOf: caseSubject,
});

export const didNotAttend = defineEventType({
  type: 'booking.did_not_attend',
  v: 1,
  description: 'The patient did not attend the appointment.',
  schema: z.strictObject({ bookingId: uuid, caseId: uuid, atMs: ms }),
  subjectOf: caseSubject,
});

export const BOOKING_EVENT_TYPES = [
  centreDefined,
  templateDefined,
  sessionPlanned,
  sessionCancelled,
  allocationPolicySet,
  slotsAllocated,
  slotsReturned,
  slotsBlocked,
  slotsReleased,
  booked,
  cancelled,
  arrived,
  walkIn,
  seen,
  didNotAttend,
];

export type CentreDefined = z.infer<typeof centreDefined.schema>;
export type SlotTemplateData = z.infer<typeof templateSchema>;
export type SessionPlanned = z.infer<typeof sessionPlanned.schema>;
export type AllocationPolicySet = z.infer<typeof allocationPolicySet.schema>;
export type SlotsAllocated = z.infer<typeof slotsAllocated.schema>;
export type SlotsReturned = z.infer<typeof slotsReturned.schema>;
export type Booked = z.infer<typeof booked.schema>;
export type WalkIn = z.infer<typeof walkIn.schema>;
