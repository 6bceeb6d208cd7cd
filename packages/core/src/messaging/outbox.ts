import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { pemNotSent } from './pem.ts';

/**
 * The outbox: every message to another system (an ambulance request, a Post Event Message to a GP,
 * a referral, a prescription) is a fact in the ledger, so it survives crashes, syncs and restores like
 * any other. Its delivery is facts too, in this order:
 *
 *   queued → sent → delivered (the receiver's transport took it) → accepted | rejected (the
 *   receiver's business answer)
 *
 * or `failed` when nothing was delivered and accepted by the message's deadline, which alerts a
 * person. A person can retry a failed message or cancel one that has not been answered, with a
 * reason. Nothing is shown as done before the receiver has said so.
 *
 * One node delivers a message at a time: it holds a lease recorded in the ledger (`message.leased`),
 * renewed while it works and taken over by another node only after it lapses. The message id is the
 * idempotency key that travels with every attempt (the FHIR MessageHeader.id), so a receiver drops
 * the repeats that retries and take-overs can cause.
 *
 * The fold below is pure and depends only on the message's own events; facts from two nodes that
 * were apart (both delivered it, say) fold to the same state in any order.
 */

export const MESSAGE_KINDS = [
  /** 999 handover: a request for an ambulance to the ambulance service (C8). */
  'ambulance_request',
  /** Post Event Message to the patient's registered practice (C11). */
  'post_event_message',
  /** A referral to another service (C10). */
  'referral',
  /** An appointment booking at another service. */
  'booking',
  /** A prescription to a pharmacy (C9). */
  'prescription',
  /** The answer to a message that came in (a CAS validation outcome back to 999). */
  'response',
] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

export const MESSAGE_STATES = [
  'queued',
  'sent',
  'delivered',
  'accepted',
  'rejected',
  'failed',
  'cancelled',
] as const;
export type MessageState = (typeof MESSAGE_STATES)[number];

/** States in which the receiver has answered or a person has ended it: nothing more is sent. */
export const FINISHED_MESSAGE_STATES: readonly MessageState[] = ['accepted', 'rejected', 'cancelled'];

const messageId = z.string().uuid('must be a message id (a UUID)');
const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const reason = z.string().trim().min(1).max(2000);
const nodeId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/);

export const ENDPOINT_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const messageQueued = defineEventType({
  type: 'message.queued',
  v: 1,
  description: 'A message to another system, ready to be delivered (the FHIR Bundle as JSON).',
  schema: z.strictObject({
    messageId,
    kind: z.enum(MESSAGE_KINDS),
    /** The configured endpoint it goes to (see message.endpoint_set). */
    endpointId: z.string().regex(ENDPOINT_ID),
    caseId: z.string().uuid().nullable(),
    siteId: z.string().uuid().nullable(),
    /** The node that queued it: it delivers first. */
    originNode: nodeId,
    queuedAtMs: ms,
    /** Not delivered and accepted by then: failed, and a person is alerted. */
    failAtMs: ms,
    /** The FHIR Bundle (type message or document), already validated. */
    bundle: z.record(z.string(), z.unknown()),
    /** What it is, in words, for lists and alerts (never patient data). */
    summary: z.string().trim().min(1).max(200),
    /**
     * Why the message failed validation before it left (fields by path, never values): such a
     * message is recorded, never sent, and fails at once so that a person is told.
     */
    invalid: z
      .array(z.strictObject({ path: z.string().max(300), message: z.string().max(500) }))
      .max(50)
      .optional(),
  }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageLeased = defineEventType({
  type: 'message.leased',
  v: 1,
  description: 'This node delivers the message until the lease expires (taken, renewed or taken over).',
  schema: z.strictObject({ messageId, node: nodeId, untilMs: ms }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageAttemptFailed = defineEventType({
  type: 'message.attempt_failed',
  v: 1,
  description: 'One delivery attempt did not reach the receiver, or it answered "try again".',
  schema: z.strictObject({
    messageId,
    node: nodeId,
    attempt: z.number().int().min(1),
    /** What went wrong, without patient data: "connection refused", "HTTP 503". */
    problem: z.string().trim().min(1).max(500),
    nextAttemptAtMs: ms,
  }),
  subjectOf: (p) => `message:${p.messageId}`,
});

/** v1: no transport that sends without an immediate acknowledgement. */
export const messageSentV1 = defineEventType({
  type: 'message.sent',
  v: 1,
  description: 'The message left this node (handed to the transport: an HTTP request, a mailbox file).',
  schema: z.strictObject({ messageId, node: nodeId, attempt: z.number().int().min(1), atMs: ms }),
  subjectOf: (p) => `message:${p.messageId}`,
});

/**
 * v2 adds optional fields only (every v1 payload reads as v2), for a transport whose acknowledgement
 * comes later and by another way (a mailbox: the delivery report is read back from its in/ folder).
 * A new version rather than a wider v1: a node still on v1 refuses it by its version.
 */
export const messageSent = defineEventType({
  type: 'message.sent',
  v: 2,
  description: 'The message left this node (handed to the transport: an HTTP request, a mailbox file).',
  schema: z.strictObject({
    messageId,
    node: nodeId,
    attempt: z.number().int().min(1),
    atMs: ms,
    /**
     * Not placed again before then, unless a person retries it: the transport's acknowledgement is
     * awaited (the mailbox's delivery report). Absent: the transport answered at once.
     */
    awaitAcknowledgementUntilMs: ms.optional(),
    /** How it left, in words ("placed in mailbox gp-riverside"), never patient data. */
    note: z.string().trim().min(1).max(200).optional(),
  }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageDelivered = defineEventType({
  type: 'message.delivered',
  v: 1,
  description: "The receiver's transport acknowledged the message.",
  schema: z.strictObject({
    messageId,
    node: nodeId,
    atMs: ms,
    /** "HTTP 200", "mailbox delivery report". */
    acknowledgement: z.string().trim().min(1).max(200),
  }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageAccepted = defineEventType({
  type: 'message.accepted',
  v: 1,
  description: 'The receiver accepted the message (its business acknowledgement).',
  schema: z.strictObject({
    messageId,
    atMs: ms,
    /** The receiver's own reference (the ambulance service's incident number), when it gave one. */
    reference: z.string().trim().min(1).max(200).nullable(),
  }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageRejected = defineEventType({
  type: 'message.rejected',
  v: 1,
  description: 'The receiver refused the message, saying why.',
  schema: z.strictObject({ messageId, atMs: ms, reason }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageFailed = defineEventType({
  type: 'message.failed',
  v: 1,
  description: 'Not delivered and accepted by its deadline: a person must act.',
  schema: z.strictObject({ messageId, atMs: ms, reason }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageRetried = defineEventType({
  type: 'message.retried',
  v: 1,
  description: 'A person sent a failed message again, with a new deadline.',
  schema: z.strictObject({ messageId, atMs: ms, failAtMs: ms, reason }),
  subjectOf: (p) => `message:${p.messageId}`,
});

export const messageCancelled = defineEventType({
  type: 'message.cancelled',
  v: 1,
  description: 'A person stopped a message the receiver had not answered, with a reason.',
  schema: z.strictObject({ messageId, atMs: ms, reason }),
  subjectOf: (p) => `message:${p.messageId}`,
});

/** How a provider reaches another system. Endpoints are facts, so a site holds them with its hub gone. */
export const endpointSchema = z.strictObject({
  endpointId: z.string().regex(ENDPOINT_ID, 'must be 1-64 lower-case letters, digits, . _ -'),
  /** Who it is, in words: "North Ambulance Service", "Riverside Surgery". */
  name: z.string().trim().min(1).max(200),
  /** What it receives. */
  kinds: z.array(z.enum(MESSAGE_KINDS)).min(1),
  /** ODS code of the receiving organisation (a GP practice is found by it). */
  odsCode: z
    .string()
    .regex(/^[A-Z0-9]{3,10}$/, 'must be an ODS code: 3-10 capital letters and digits')
    .nullable(),
  transport: z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('http'),
      /** Where a message Bundle is POSTed. */
      url: z
        .string()
        .url()
        .regex(/^https?:\/\//, 'must be an http(s) URL'),
      /** A client certificate configured on each node under this name (files never enter the ledger). */
      clientCertificate: z.string().regex(ENDPOINT_ID).nullable(),
    }),
    z.strictObject({
      type: z.literal('mailbox'),
      /** The mailbox's folder on each node: out/ for messages, in/ for acknowledgements. */
      mailbox: z
        .string()
        .regex(ENDPOINT_ID, 'must be a mailbox name (its folder under messaging.mailboxRoot)'),
    }),
  ]),
  /** A phone number staff can use instead (read out on screen when a message cannot go). */
  phone: z.string().trim().min(3).max(40).nullable(),
  /** Seconds within which the receiver must accept before staff are told to act (999: 30). */
  acceptWithinSeconds: z
    .number()
    .int()
    .min(5)
    .max(7 * 86_400),
});
export type Endpoint = z.infer<typeof endpointSchema>;

export const endpointSet = defineEventType({
  type: 'message.endpoint_set',
  v: 1,
  description: 'A receiving system the provider sends to, added or changed.',
  schema: endpointSchema,
  subjectOf: (p) => `endpoint:${p.endpointId}`,
});

export type MessageQueued = z.infer<typeof messageQueued.schema>;

/** What the outbox knows of one message. */
export interface MessageStatus {
  messageId: string;
  kind: MessageKind;
  endpointId: string;
  caseId: string | null;
  siteId: string | null;
  summary: string;
  originNode: string;
  state: MessageState;
  queuedAtMs: number;
  failAtMs: number;
  attempts: number;
  /** When the next attempt is due (0: now). */
  nextAttemptAtMs: number;
  lease: { node: string; untilMs: number } | null;
  lastProblem: string | null;
  sentAtMs: number | null;
  deliveredAtMs: number | null;
  answeredAtMs: number | null;
  reference: string | null;
  /** Why it was rejected, failed or cancelled. */
  reason: string | null;
  /** It failed validation before it left: it can never be sent (nor retried) as it is. */
  invalid: boolean;
}

export type MessageEvent =
  | { type: 'message.queued'; payload: MessageQueued }
  | { type: 'message.leased'; payload: z.infer<typeof messageLeased.schema> }
  | { type: 'message.attempt_failed'; payload: z.infer<typeof messageAttemptFailed.schema> }
  | { type: 'message.sent'; payload: z.infer<typeof messageSent.schema> }
  | { type: 'message.delivered'; payload: z.infer<typeof messageDelivered.schema> }
  | { type: 'message.accepted'; payload: z.infer<typeof messageAccepted.schema> }
  | { type: 'message.rejected'; payload: z.infer<typeof messageRejected.schema> }
  | { type: 'message.failed'; payload: z.infer<typeof messageFailed.schema> }
  | { type: 'message.retried'; payload: z.infer<typeof messageRetried.schema> }
  | { type: 'message.cancelled'; payload: z.infer<typeof messageCancelled.schema> };

const RANK: Record<MessageState, number> = {
  queued: 0,
  sent: 1,
  failed: 1,
  delivered: 2,
  accepted: 3,
  rejected: 3,
  cancelled: 3,
};

/**
 * Folds one message event into its status. Transport facts only move a message forward (a late
 * "attempt failed" from a node that lost its lease does not undo "delivered"); the receiver's answer
 * stands whatever came before it, including a deadline that passed (the receiver is the truth), and
 * the first answer stands over a later one.
 */
export function foldMessage(state: MessageStatus | null, event: MessageEvent): MessageStatus | null {
  if (event.type === 'message.queued') {
    if (state) return state; // the same message queued twice (an import replayed): nothing new
    const p = event.payload;
    return {
      messageId: p.messageId,
      kind: p.kind,
      endpointId: p.endpointId,
      caseId: p.caseId,
      siteId: p.siteId,
      summary: p.summary,
      originNode: p.originNode,
      state: 'queued',
      queuedAtMs: p.queuedAtMs,
      failAtMs: p.failAtMs,
      attempts: 0,
      nextAttemptAtMs: 0,
      lease: null,
      lastProblem: null,
      sentAtMs: null,
      deliveredAtMs: null,
      answeredAtMs: null,
      reference: null,
      reason: null,
      invalid: false,
      ...(p.invalid && p.invalid.length > 0
        ? {
            state: 'failed' as const,
            invalid: true,
            reason: `not sent: the message is not valid FHIR: ${p.invalid
              .slice(0, 5)
              .map((i) => `${i.path}: ${i.message}`)
              .join('; ')}`.slice(0, 2000),
          }
        : {}),
    };
  }
  if (!state) return null; // facts about a message whose queuing has not arrived yet: refolded later
  const advance = (to: MessageState): MessageState => (RANK[to] > RANK[state.state] ? to : state.state);
  switch (event.type) {
    case 'message.leased':
      return { ...state, lease: { node: event.payload.node, untilMs: event.payload.untilMs } };
    case 'message.attempt_failed':
      return {
        ...state,
        attempts: Math.max(state.attempts, event.payload.attempt),
        lastProblem: event.payload.problem,
        nextAttemptAtMs: Math.max(state.nextAttemptAtMs, event.payload.nextAttemptAtMs),
      };
    case 'message.sent':
      return {
        ...state,
        state: state.state === 'failed' ? 'failed' : advance('sent'),
        attempts: Math.max(state.attempts, event.payload.attempt),
        sentAtMs: state.sentAtMs ?? event.payload.atMs,
        nextAttemptAtMs: Math.max(state.nextAttemptAtMs, event.payload.awaitAcknowledgementUntilMs ?? 0),
      };
    case 'message.delivered':
      return {
        ...state,
        state: RANK[state.state] >= 3 ? state.state : 'delivered',
        deliveredAtMs: state.deliveredAtMs ?? event.payload.atMs,
      };
    case 'message.accepted':
    case 'message.rejected': {
      if (state.state === 'accepted' || state.state === 'rejected') return state;
      const accepted = event.type === 'message.accepted';
      return {
        ...state,
        state: accepted ? 'accepted' : 'rejected',
        answeredAtMs: event.payload.atMs,
        reference: accepted ? event.payload.reference : state.reference,
        reason: accepted ? null : event.payload.reason,
        lease: null,
      };
    }
    case 'message.failed':
      if (RANK[state.state] >= 3) return state; // answered before the deadline fact arrived
      return { ...state, state: 'failed', reason: event.payload.reason, lease: null };
    case 'message.retried':
      if (state.state !== 'failed' || state.invalid) return state;
      return {
        ...state,
        state: state.sentAtMs === null ? 'queued' : 'sent',
        failAtMs: event.payload.failAtMs,
        nextAttemptAtMs: 0,
        reason: null,
      };
    case 'message.cancelled':
      if (RANK[state.state] >= 3) return state;
      return { ...state, state: 'cancelled', reason: event.payload.reason, lease: null };
  }
}

/** Whether this node may deliver the message now: its own live lease, or nobody's live lease. */
export function mayDeliver(
  status: MessageStatus,
  node: string,
  nowMs: number,
  options: { takeOverAfterMs: number },
): boolean {
  if (FINISHED_MESSAGE_STATES.includes(status.state) || status.state === 'failed') return false;
  // Delivered: waiting for the receiver's answer, which comes to us; nothing to send again.
  if (status.state === 'delivered') return false;
  if (status.nextAttemptAtMs > nowMs) return false;
  if (!status.lease)
    return status.originNode === node || nowMs >= status.queuedAtMs + options.takeOverAfterMs;
  if (status.lease.node === node) return true;
  // Another node's lease: only once it has lapsed (plus a margin, for clocks a little apart).
  return nowMs >= status.lease.untilMs + options.takeOverAfterMs;
}

/** Delay before attempt n+1 after n failures: 1, 2, 4 … s, at most `capMs`. */
export function retryDelayMs(failedAttempts: number, capMs: number): number {
  return Math.min(capMs, 1000 * 2 ** Math.max(0, Math.min(20, failedAttempts - 1)));
}

/**
 * 999 handover by phone: the ambulance service did not accept the electronic request in time (or it
 * could not be sent), so the adviser phoned it and read the details out. Recorded with the message
 * it replaces, which is cancelled in the same commit so the ambulance service is not asked twice.
 */
export const ambulancePhoned = defineEventType({
  type: 'handover.ambulance_phoned',
  v: 1,
  description: 'The ambulance request was handed over by phone.',
  schema: z.strictObject({
    caseId: z.string().uuid(),
    /** The electronic request it replaces, if one was queued. */
    messageId: messageId.nullable(),
    atMs: ms,
    /** Who took the call at the ambulance service (name or call-taker number). */
    spokeTo: z.string().trim().min(1, 'say who took the call').max(200),
    /** The ambulance service's incident reference, if they gave one. */
    reference: z.string().trim().min(1).max(200).nullable(),
  }),
  subjectOf: (p) => `handover:${p.caseId}`,
});

export const MESSAGING_EVENT_TYPES = [
  messageQueued,
  messageLeased,
  messageAttemptFailed,
  messageSentV1,
  messageSent,
  messageDelivered,
  messageAccepted,
  messageRejected,
  messageFailed,
  messageRetried,
  messageCancelled,
  endpointSet,
  ambulancePhoned,
  pemNotSent,
];
