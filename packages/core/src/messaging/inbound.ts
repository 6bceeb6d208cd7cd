import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { ENDPOINT_ID } from './outbox.ts';

/**
 * Messages in: other systems (the ambulance service) post FHIR message Bundles to the node. Each one
 * that is taken is a fact (`inbound.received`), keyed by the sender's endpoint and its
 * MessageHeader.id, with the answer we gave, so a repeat gets the same answer and creates nothing.
 *
 * - A 999 validation request (Category 3 or 4) opens a case in the CAS queue in the same commit
 *   (`inbound.validation_requested` marks it as an ambulance validation with the incident reference,
 *   category and deadline); the clinician's outcome goes back as a `response` message.
 * - A business answer to one of our own messages (MessageHeader.response.identifier = our message
 *   id) records message.accepted or message.rejected on it, in the same commit.
 */

/** Kinds as first defined (inbound.received v1). */
const INBOUND_KINDS_V1 = ['ambulance_validation', 'response'] as const;
/** v2 adds `referral`: a referral from another service (999 → CAS) that opens a case in the queue. */
export const INBOUND_KINDS = [...INBOUND_KINDS_V1, 'referral'] as const;
export type InboundKind = (typeof INBOUND_KINDS)[number];

/** A FHIR id (R4 `id` datatype): the sender's MessageHeader.id. */
export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Ambulance Response Programme categories the CAS validates (1 and 2 are dispatched, not validated). */
export const VALIDATED_AMBULANCE_CATEGORIES = [3, 4] as const;
export type ValidatedAmbulanceCategory = (typeof VALIDATED_AMBULANCE_CATEGORIES)[number];

/** How an inbound case's patient was matched by NHS number, as first defined (validation_requested v1). */
const INBOUND_PATIENT_MATCHES_V1 = ['matched', 'not_found', 'several', 'no_nhs_number'] as const;

/**
 * How an inbound case's patient was matched (never a new record made silently). `details_differ`:
 * one record has the NHS number but another date of birth than the message gives, so the number
 * may be mistyped and the case is left unidentified for the clinician.
 */
export const INBOUND_PATIENT_MATCHES = [...INBOUND_PATIENT_MATCHES_V1, 'details_differ'] as const;
export type InboundPatientMatch = (typeof INBOUND_PATIENT_MATCHES)[number];

const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const endpointId = z.string().regex(ENDPOINT_ID);

const inboundReceivedFields = {
  /** The sending system, from its credential (never from the message). */
  endpointId,
  /** The sender's MessageHeader.id: with the endpoint, the idempotency key. */
  messageId: z.string().regex(FHIR_ID),
  kind: z.enum(INBOUND_KINDS),
  receivedAtMs: ms,
  /** SHA-256 of the Bundle as received: the same id with other content is refused. */
  bundleSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The case it opened (a validation request). */
  caseId: z.string().uuid().nullable(),
  /** Our outbox message it answers (a response). */
  answersMessageId: z.string().uuid().nullable(),
  bundle: z.record(z.string(), z.unknown()),
};

/** v1 (frozen: events stored under it stay readable). */
export const inboundReceivedV1 = defineEventType({
  type: 'inbound.received',
  v: 1,
  description: 'A message from another system was taken (the Bundle as JSON, and what we answered).',
  schema: z.strictObject({ ...inboundReceivedFields, kind: z.enum(INBOUND_KINDS_V1) }),
  subjectOf: (p) => `inbound:${p.endpointId}:${p.messageId}`,
});

/** v2 adds the `referral` kind; every v1 payload reads as v2. */
export const inboundReceived = defineEventType({
  type: 'inbound.received',
  v: 2,
  description: 'A message from another system was taken (the Bundle as JSON, and what we answered).',
  schema: z.strictObject(inboundReceivedFields),
  subjectOf: (p) => `inbound:${p.endpointId}:${p.messageId}`,
});

const validationRequestedFields = {
  caseId: z.string().uuid(),
  endpointId,
  inboundMessageId: z.string().regex(FHIR_ID),
  /** The ambulance service's own reference (its 999 incident number). */
  incidentReference: z.string().trim().min(1).max(64),
  category: z.union([z.literal(3), z.literal(4)]),
  /** By when the validation must be done. */
  deadlineAtMs: ms,
  /** Whether the deadline came in the message or is this node's default for the category. */
  deadlineFrom: z.enum(['message', 'default']),
};

/** v1 (frozen: events stored under it stay readable). */
export const validationRequestedV1 = defineEventType({
  type: 'inbound.validation_requested',
  v: 1,
  description: 'The ambulance service asked the CAS to validate a Category 3 or 4 call (a case opened).',
  schema: z.strictObject({ ...validationRequestedFields, patientMatch: z.enum(INBOUND_PATIENT_MATCHES_V1) }),
  subjectOf: (p) => `validation:${p.caseId}`,
});

/** v2 adds the `details_differ` match; every v1 payload reads as v2. */
export const validationRequested = defineEventType({
  type: 'inbound.validation_requested',
  v: 2,
  description: 'The ambulance service asked the CAS to validate a Category 3 or 4 call (a case opened).',
  schema: z.strictObject({ ...validationRequestedFields, patientMatch: z.enum(INBOUND_PATIENT_MATCHES) }),
  subjectOf: (p) => `validation:${p.caseId}`,
});

export type InboundReceived = z.infer<typeof inboundReceived.schema>;
export type ValidationRequested = z.infer<typeof validationRequested.schema>;

export const INBOUND_EVENT_TYPES = [
  inboundReceivedV1,
  inboundReceived,
  validationRequestedV1,
  validationRequested,
];
