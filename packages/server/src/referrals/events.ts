import { defineEventType, ENDPOINT_ID } from '@holdfast/core';
import { z } from 'zod';

/**
 * Referrals and bookings to other services (C10). A referral is the choice of a service for a case,
 * recorded with what was offered; for a service that takes messages, the BaRS referral itself is a
 * `message.queued` (kind `referral`) in the same commit, and its answer (accepted with the receiver's
 * reference, rejected with a reason) is the outbox's. What comes after — the patient did not attend,
 * a shift manager acknowledged the alert — are facts of the referral's own subject, so its row
 * depends on its own events only.
 */

const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const uuid = z.string().uuid();
const words = z.string().trim().min(1).max(2000);

export const REFERRAL_ROUTES = ['message', 'phone', 'walk_in'] as const;
export type ReferralRouteKind = (typeof REFERRAL_ROUTES)[number];

/** The service as it was when chosen (the directory may change later; the referral names this one). */
const chosenService = z.strictObject({
  serviceId: z.string().trim().min(1).max(100),
  name: z.string().trim().min(1).max(200),
  odsCode: z.string().trim().max(20),
  type: z.string().trim().min(1).max(60),
  phone: z.string().trim().max(40).nullable(),
});

export const referralChosen = defineEventType({
  type: 'referral.chosen',
  v: 1,
  description:
    'A service was chosen for a case (with the services offered), and referred by message, by phone, or the patient told to walk in.',
  schema: z.strictObject({
    referralId: uuid,
    caseId: uuid,
    service: chosenService,
    route: z.enum(REFERRAL_ROUTES),
    /** The message endpoint and the outbox message of a `message` referral. */
    endpointId: z.string().regex(ENDPOINT_ID).nullable(),
    messageId: uuid.nullable(),
    /** The directory search whose ranked list was shown, when the screen names it. */
    searchId: z.string().trim().min(1).max(100).nullable(),
    /** Service ids in the order the ranked list showed them. */
    offered: z.array(z.string().trim().min(1).max(100)).max(200),
    /** Why the first-ranked service was not chosen (required when it was not). */
    reasonIfNotFirst: words.nullable(),
    /** A phone referral: who took it at the service, and their reference. */
    phoned: z
      .strictObject({
        spokeTo: z.string().trim().min(1).max(200),
        reference: z.string().trim().min(1).max(200).nullable(),
      })
      .nullable(),
    /** The patient had a safeguarding flag when referred (a concern on the case or a note on the record). */
    safeguarding: z.boolean(),
    /** The clinician whose consultation outcome it was; null for an adviser's disposition. */
    byClinicianId: uuid.nullable(),
    atMs: ms,
  }),
  subjectOf: (p) => `referral:${p.referralId}`,
});

export const referralDidNotAttend = defineEventType({
  type: 'referral.did_not_attend',
  v: 1,
  description: 'The service the patient was referred to says the patient did not attend.',
  schema: z.strictObject({
    referralId: uuid,
    caseId: uuid,
    /** The service's endpoint that said so, and its message. */
    endpointId: z.string().regex(ENDPOINT_ID),
    inboundMessageId: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/),
    atMs: ms,
    /** A safeguarding flag on the patient at the time: the shift manager is alerted. */
    safeguarding: z.boolean(),
  }),
  subjectOf: (p) => `referral:${p.referralId}`,
});

export const REFERRAL_ALERTS = ['rejected', 'did_not_attend'] as const;

export const referralAlertAcknowledged = defineEventType({
  type: 'referral.alert_acknowledged',
  v: 1,
  description:
    "A shift manager acknowledged a referral's alert (a rejection, a did-not-attend), saying what was done.",
  schema: z.strictObject({
    referralId: uuid,
    caseId: uuid,
    alert: z.enum(REFERRAL_ALERTS),
    atMs: ms,
    reason: words,
  }),
  subjectOf: (p) => `referral:${p.referralId}`,
});

export const bookingRequested = defineEventType({
  type: 'referral.booking_requested',
  v: 1,
  description:
    'A slot at a service was asked for (a BaRS booking queued through the outbox); booked only once the service accepts it.',
  schema: z.strictObject({
    bookingId: uuid,
    caseId: uuid,
    service: chosenService,
    endpointId: z.string().regex(ENDPOINT_ID),
    messageId: uuid,
    slot: z.strictObject({
      slotId: z.string().trim().min(1).max(64),
      start: z.string().trim().min(1).max(40),
      end: z.string().trim().min(1).max(40),
    }),
    atMs: ms,
  }),
  subjectOf: (p) => `booking:${p.bookingId}`,
});

export const REFERRAL_EVENT_TYPES = [
  referralChosen,
  referralDidNotAttend,
  referralAlertAcknowledged,
  bookingRequested,
];

export type ReferralChosen = z.infer<typeof referralChosen.schema>;
export type ReferralDidNotAttend = z.infer<typeof referralDidNotAttend.schema>;
export type BookingRequested = z.infer<typeof bookingRequested.schema>;
