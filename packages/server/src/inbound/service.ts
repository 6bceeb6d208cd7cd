import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  canonicalJson,
  FINISHED_MESSAGE_STATES,
  NotFoundError,
  type CaseEvent,
  type Clock,
  type InboundPatientMatch,
} from '@holdfast/core';
import type { AccountsService } from '../accounts/service.ts';
import type { CasesTable } from '../cases/projection.ts';
import type { CaseService, CommandOutcome } from '../cases/service.ts';
import { outgoingIssues, validateOutgoing } from '../fhir/validate.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import { endpointAddress, type MessagingService } from '../messaging/service.ts';
import { classifyAnswer } from '../messaging/transport-http.ts';
import { nameBasedUuid } from '../node/ids.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store } from '../store/store.ts';
import {
  answerBundle,
  InboundRefusal,
  isReferralRequest,
  isValidationRequest,
  outcomeBundle,
  outcomeText,
  readEnvelope,
  readReferralRequest,
  readValidationRequest,
  type MessageEnvelope,
  type ValidationOutcome,
} from './bundles.ts';
import { inboundDb, type AmbulanceValidationsTable, type InboundMessagesTable } from './projection.ts';

/**
 * A sending system's credential, configured on the node: a bearer token kept only as its SHA-256
 * (hex), naming the provider (tenant), the endpoint it is (message.endpoint_set), and the site whose
 * CAS queue takes the cases it sends. The tenant of everything a message does comes from here only.
 */
export interface InboundCredential {
  tenant: string;
  endpointId: string;
  siteId: string;
  tokenSha256: string;
}

/**
 * Validation windows when the request carries no deadline, in minutes by category. Sample settings
 * for demonstration, not clinically validated: a provider sets its own (`inboundValidationMinutes`).
 */
export const DEFAULT_VALIDATION_MINUTES: Readonly<Record<3 | 4, number>> = { 3: 30, 4: 60 };

/**
 * The window of a referral into the CAS that gives no deadline: a sample setting for demonstration,
 * not clinically validated.
 */
export const DEFAULT_REFERRAL_MINUTES = 120;

/** How long the outcome may take to be accepted before the shift manager is told. */
const OUTCOME_FAIL_AFTER_MS = 10 * 60_000;
/** The longest validation window a request may ask for (a disposition's own limit). */
const MAX_WINDOW_MINUTES = 14 * 24 * 60;

export interface InboundOptions {
  credentials: readonly InboundCredential[];
  validationMinutes?: Readonly<Record<3 | 4, number>>;
}

/** What the sender is answered: a FHIR response message, with its HTTP status. */
export interface InboundAnswer {
  status: number;
  bundle: Record<string, unknown>;
  /** True when the message had been taken before: nothing new was stored. */
  replayed: boolean;
}

/**
 * Facts another module adds to the commit of a later answer to one of our messages (a referral's
 * service saying the patient did not attend): given the message it answers and the answer itself.
 */
export type ResponseHook = (
  tenant: string,
  answered: { messageId: string; endpointId: string; kind: string },
  inbound: { messageId: string; bundle: Record<string, unknown> },
) => Promise<EventDraft[]>;

/** Thrown inside the commit when the same message was taken meanwhile (a racing repeat). */
class AlreadyTaken extends Error {}

/** Where an ambulance validation stands, for the CAS queue's marking. */
export interface ValidationMark {
  incidentReference: string;
  category: number;
  deadline: string;
  deadlineFrom: string;
  patientMatch: InboundPatientMatch;
}

/**
 * Messages in from other systems (issue 10): a 999 validation request opens a case in the CAS queue
 * with its own deadline, in the same commit as the record of the message; the clinician's outcome
 * is queued back to the sender through the outbox with the outcome itself; a business answer to one
 * of our messages records it accepted or rejected. Every message is taken once per sender and
 * MessageHeader.id: a repeat gets the same answer and stores nothing.
 */
export class InboundService {
  private readonly tokens: { hash: Buffer; credential: InboundCredential }[];
  private readonly validationMinutes: Readonly<Record<3 | 4, number>>;

  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly deps: {
      cases: CaseService;
      patients: PatientService;
      messaging: MessagingService;
      accounts: AccountsService;
    },
    options: InboundOptions,
  ) {
    this.tokens = options.credentials.map((credential) => ({
      hash: Buffer.from(credential.tokenSha256, 'hex'),
      credential,
    }));
    this.validationMinutes = options.validationMinutes ?? DEFAULT_VALIDATION_MINUTES;
  }

  private readonly responseHooks: ResponseHook[] = [];

  addResponseHook(hook: ResponseHook): void {
    this.responseHooks.push(hook);
  }

  /**
   * The credential a request's `Authorization: Bearer …` names, or a 401 refusal. The token's hash
   * is compared with every configured one in constant time, so timing tells nothing of which.
   */
  authenticate(authorization: string | undefined): InboundCredential {
    const token = /^Bearer ([\x21-\x7e]{16,512})$/.exec(authorization ?? '')?.[1];
    const refused = new InboundRefusal(
      401,
      [{ path: 'headers.authorization', message: 'must be the bearer token configured for your system' }],
      'The sending system is not known: send its bearer token',
    );
    if (!token) throw refused;
    const presented = createHash('sha256').update(token).digest();
    let found: InboundCredential | null = null;
    for (const { hash, credential } of this.tokens)
      if (hash.length === presented.length && timingSafeEqual(hash, presented)) found = credential;
    if (!found) throw refused;
    return found;
  }

  /** Takes one message Bundle from an authenticated sender. */
  async process(credential: InboundCredential, body: unknown): Promise<InboundAnswer> {
    const { tenant, endpointId } = credential;
    const endpoint = await this.deps.messaging.endpoint(tenant, endpointId);
    if (!endpoint)
      throw new InboundRefusal(
        403,
        [],
        'The credential names no endpoint of its provider: ask the provider to configure it',
      );
    const envelope = readEnvelope(body);
    const bundleSha256 = sha256Of(envelope.bundle);
    const earlier = await this.taken(tenant, endpointId, envelope.messageId);
    if (earlier) return this.replay(credential, earlier, bundleSha256);
    const issues = outgoingIssues(envelope.bundle as never);
    if (issues.length > 0)
      throw new InboundRefusal(
        400,
        issues.slice(0, 50).map((i) => ({ path: i.path, message: withoutQuotes(i.message) })),
        'The message is not valid FHIR R4',
      );
    try {
      if (envelope.response) return await this.takeResponse(credential, envelope, bundleSha256);
      if (isValidationRequest(envelope) && isReferralRequest(envelope))
        return await this.takeReferral(credential, envelope, bundleSha256);
      if (isValidationRequest(envelope)) return await this.takeValidation(credential, envelope, bundleSha256);
    } catch (error) {
      if (!(error instanceof AlreadyTaken)) throw error;
      const taken = await this.taken(tenant, endpointId, envelope.messageId);
      if (!taken) throw error;
      return this.replay(credential, taken, bundleSha256);
    }
    throw new InboundRefusal(
      422,
      [
        {
          path: 'Bundle.entry[0].resource.eventCoding.code',
          message:
            'must be servicerequest-request (a 999 validation request), or the message must answer one of ours (MessageHeader.response)',
        },
      ],
      'This endpoint takes 999 validation requests and answers to our messages',
    );
  }

  /** A 999 Category 3/4 call to validate: a case in the CAS queue, with the record of the message. */
  private async takeValidation(
    credential: InboundCredential,
    envelope: MessageEnvelope,
    bundleSha256: string,
  ): Promise<InboundAnswer> {
    const { tenant, endpointId, siteId } = credential;
    const request = readValidationRequest(envelope);
    if (request.category === 1 || request.category === 2)
      throw new InboundRefusal(
        422,
        [{ path: `${request.at}.category`, message: 'Category 1 and 2 calls are not validated by the CAS' }],
        'Category 1 and 2 calls are not validated by the CAS: they are dispatched',
      );
    const category = request.category;
    if (!(await this.deps.accounts.sites(tenant)).some((s) => s.siteId === siteId))
      throw new Error(
        `the inbound credential of endpoint ${endpointId} names a site its provider does not have`,
      );
    const now = this.clock.nowMs();
    const deadlineAtMs = request.deadlineAtMs ?? now + this.validationMinutes[category] * 60_000;
    // The queue's deadline is the call time plus whole minutes: rounded down, never later than asked.
    const timeframeMinutes = Math.max(1, Math.floor((deadlineAtMs - now) / 60_000));
    if (timeframeMinutes > MAX_WINDOW_MINUTES)
      throw new InboundRefusal(
        422,
        [{ path: `${request.at}.occurrencePeriod.end`, message: 'must be within two weeks' }],
        'The validation deadline is too far ahead',
      );
    const { patientId, match } = await this.matchPatient(tenant, request.nhsNumber, request.birthDate);
    const caseId = randomUUID();
    const actor = `endpoint:${endpointId}`;
    const answer = this.answerFor(credential, envelope.messageId, now, caseId);
    const drafts: EventDraft[] = [
      ...this.deps.cases.openingDrafts(tenant, actor, {
        caseId,
        input: {
          siteId,
          receivedAt: new Date(now).toISOString(),
          caller: request.caller,
          ...(patientId ? { patientId } : {}),
          location: request.location,
          presentingComplaint: request.presentingComplaint,
        },
        before: [
          { type: 'answer_call' },
          { type: 'start_triage' },
          { type: 'reach_disposition', kind: 'ambulance', timeframeMinutes },
        ],
        facts: [
          {
            tenant,
            type: 'case.disposition_details',
            actor,
            payload: {
              caseId,
              pathwayId: 'ambulance-validation',
              dxCode: `AMBVAL-C${category}`,
              label: `999 ambulance validation, category ${category} (incident ${request.incidentReference})`,
              skillSet: 'clinician',
              timeframeMinutes,
              ambulanceCategory: category,
              careAdvice: [],
              sample: false,
            },
          },
        ],
        after: [{ type: 'queue_for_clinician' }],
      }),
      {
        tenant,
        type: 'inbound.validation_requested',
        actor,
        payload: {
          caseId,
          endpointId,
          inboundMessageId: envelope.messageId,
          incidentReference: request.incidentReference,
          category,
          deadlineAtMs,
          deadlineFrom: request.deadlineAtMs === null ? 'default' : 'message',
          patientMatch: match,
        },
      },
      this.receivedDraft(credential, envelope, bundleSha256, now, {
        kind: 'ambulance_validation',
        caseId,
        answersMessageId: null,
      }),
    ];
    await this.appendOnce(credential, envelope.messageId, drafts);
    return { status: 200, bundle: answer, replayed: false };
  }

  /**
   * A referral from another service (BaRS, e.g. 999 → CAS, not a validation): a case in the CAS
   * queue with the referral's deadline (else `DEFAULT_REFERRAL_MINUTES`), in the same commit as
   * the record of the message. The patient is matched as for a validation request.
   */
  private async takeReferral(
    credential: InboundCredential,
    envelope: MessageEnvelope,
    bundleSha256: string,
  ): Promise<InboundAnswer> {
    const { tenant, endpointId, siteId } = credential;
    const referral = readReferralRequest(envelope);
    if (!(await this.deps.accounts.sites(tenant)).some((s) => s.siteId === siteId))
      throw new Error(
        `the inbound credential of endpoint ${endpointId} names a site its provider does not have`,
      );
    const now = this.clock.nowMs();
    const deadlineAtMs = referral.deadlineAtMs ?? now + DEFAULT_REFERRAL_MINUTES * 60_000;
    const timeframeMinutes = Math.max(1, Math.floor((deadlineAtMs - now) / 60_000));
    if (timeframeMinutes > MAX_WINDOW_MINUTES)
      throw new InboundRefusal(
        422,
        [{ path: `${referral.at}.occurrencePeriod.end`, message: 'must be within two weeks' }],
        'The referral deadline is too far ahead',
      );
    const { patientId } = await this.matchPatient(tenant, referral.nhsNumber, referral.birthDate);
    const caseId = randomUUID();
    const actor = `endpoint:${endpointId}`;
    const label = `Referral from ${referral.senderName}${referral.senderReference ? ` (reference ${referral.senderReference})` : ''}${referral.request ? `: ${referral.request}` : ''}`;
    const drafts: EventDraft[] = [
      ...this.deps.cases.openingDrafts(tenant, actor, {
        caseId,
        input: {
          siteId,
          receivedAt: new Date(now).toISOString(),
          caller: referral.caller,
          ...(patientId ? { patientId } : {}),
          location: referral.location,
          presentingComplaint: referral.presentingComplaint,
        },
        before: [
          { type: 'answer_call' },
          { type: 'start_triage' },
          { type: 'reach_disposition', kind: 'speak_to_primary_care', timeframeMinutes },
        ],
        facts: [
          {
            tenant,
            type: 'case.disposition_details',
            actor,
            payload: {
              caseId,
              pathwayId: 'referral-in',
              dxCode: 'REFERRAL-IN',
              label: label.slice(0, 300),
              skillSet: 'clinician',
              timeframeMinutes,
              careAdvice: [],
              sample: false,
            },
          },
        ],
        after: [{ type: 'queue_for_clinician' }],
      }),
      this.receivedDraft(credential, envelope, bundleSha256, now, {
        kind: 'referral',
        caseId,
        answersMessageId: null,
      }),
    ];
    await this.appendOnce(credential, envelope.messageId, drafts);
    return {
      status: 200,
      bundle: this.answerFor(credential, envelope.messageId, now, caseId),
      replayed: false,
    };
  }

  /** A business answer to one of our messages: accepted or rejected, recorded on it. */
  private async takeResponse(
    credential: InboundCredential,
    envelope: MessageEnvelope,
    bundleSha256: string,
  ): Promise<InboundAnswer> {
    const { tenant, endpointId } = credential;
    const answers = envelope.response?.identifier ?? '';
    const notOurs = new InboundRefusal(
      404,
      [
        {
          path: 'Bundle.entry[0].resource.response.identifier',
          message: 'is not the id of a message we sent',
        },
      ],
      'No message of ours has that id',
    );
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(answers)) throw notOurs;
    const message = await this.deps.messaging
      .get(systemContext(tenant, endpointId), answers)
      .catch((error: unknown) => {
        if (error instanceof NotFoundError) throw notOurs;
        throw error;
      });
    if (message.endpointId !== endpointId)
      throw new InboundRefusal(
        403,
        [
          {
            path: 'Bundle.entry[0].resource.response.identifier',
            message: 'names a message that was not sent to your system',
          },
        ],
        'Only the system a message was sent to may answer it',
      );
    const now = this.clock.nowMs();
    // The same reading of an answer as when it comes back on the HTTP request itself.
    const outcome = classifyAnswer(200, JSON.stringify(envelope.bundle), answers);
    const drafts: EventDraft[] = [
      this.receivedDraft(credential, envelope, bundleSha256, now, {
        kind: 'response',
        caseId: null,
        answersMessageId: answers,
      }),
    ];
    const actor = `endpoint:${endpointId}`;
    // The receiver's first answer stands: a later one is recorded as received and changes nothing.
    if (!FINISHED_MESSAGE_STATES.includes(message.state)) {
      if (outcome.kind === 'accepted')
        drafts.push({
          tenant,
          type: 'message.accepted',
          actor,
          payload: { messageId: answers, atMs: now, reference: outcome.reference },
        });
      else if (outcome.kind === 'rejected')
        drafts.push({
          tenant,
          type: 'message.rejected',
          actor,
          payload: { messageId: answers, atMs: now, reason: outcome.reason },
        });
    }
    for (const hook of this.responseHooks)
      drafts.push(
        ...(await hook(
          tenant,
          { messageId: answers, endpointId, kind: message.kind },
          { messageId: envelope.messageId, bundle: envelope.bundle },
        )),
      );
    await this.appendOnce(credential, envelope.messageId, drafts);
    return {
      status: 200,
      bundle: this.answerFor(credential, envelope.messageId, now, null),
      replayed: false,
    };
  }

  /**
   * The command hook (CaseService): when the clinician's outcome on an ambulance validation case is
   * known — the ambulance is still needed (an upgrade, with its category) or not (advice and close,
   * a referral, an appointment, a visit) — its answer to the ambulance service is queued in the same
   * commit. Once per case: the message id comes from the request, and one already queued is not
   * queued again. Never a Post Event Message: the ambulance service gets the outcome, the practice
   * (if any) the PEM.
   */
  async commandDrafts(ctx: RequestContext, { row, events }: CommandOutcome): Promise<EventDraft[]> {
    const outcome = validationOutcomeOf(events, row);
    if (!outcome) return [];
    const validation = await this.validation(ctx.tenant, row.case_id);
    if (!validation) return [];
    const messageId = nameBasedUuid(
      `${ctx.tenant}/${validation.endpoint_id}/${validation.inbound_message_id}/outcome`,
    );
    const sent = await this.deps.messaging.list(ctx, { caseId: row.case_id, kind: 'response' });
    if (sent.some((m) => m.messageId === messageId)) return [];
    const endpoint = await this.deps.messaging.endpoint(ctx.tenant, validation.endpoint_id);
    const words = outcomeText(outcome);
    return [
      this.deps.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
        messageId,
        kind: 'response',
        endpointId: validation.endpoint_id,
        caseId: row.case_id,
        siteId: row.site_id,
        bundle: outcomeBundle({
          messageId,
          tenant: ctx.tenant,
          node: this.ledger.node,
          destination: {
            name: endpoint?.name ?? validation.endpoint_id,
            endpoint: endpoint
              ? endpointAddress(endpoint)
              : `urn:holdfast:endpoint:${validation.endpoint_id}`,
          },
          inboundMessageId: validation.inbound_message_id,
          incidentReference: validation.incident_reference,
          caseId: row.case_id,
          sentAtIso: new Date(this.clock.nowMs()).toISOString(),
          outcome,
        }),
        summary: `Validation outcome: ${words}`.slice(0, 200),
        failAfterMs: OUTCOME_FAIL_AFTER_MS,
      }),
    ];
  }

  /** The ambulance validation marks of these cases (the CAS queue shows them). */
  /** Whether the case came from another system for validation (a 999 call sent to the CAS). */
  async isValidationCase(tenant: string, caseId: string): Promise<boolean> {
    return (await this.validation(tenant, caseId)) !== null;
  }

  async marks(tenant: string, caseIds: readonly string[]): Promise<Map<string, ValidationMark>> {
    const marks = new Map<string, ValidationMark>();
    if (caseIds.length === 0) return marks;
    const rows = await this.store.withTenant(tenant, async (trx) => {
      const found: AmbulanceValidationsTable[] = [];
      for (let i = 0; i < caseIds.length; i += 500)
        found.push(
          ...(await inboundDb(trx)
            .selectFrom('ambulance_validations')
            .selectAll()
            .where('tenant', '=', tenant)
            .where('case_id', 'in', caseIds.slice(i, i + 500))
            .execute()),
        );
      return found;
    });
    for (const r of rows)
      marks.set(r.case_id, {
        incidentReference: r.incident_reference,
        category: Number(r.category),
        deadline: new Date(Number(r.deadline_at_ms)).toISOString(),
        deadlineFrom: r.deadline_from,
        patientMatch: r.patient_match as InboundPatientMatch,
      });
    return marks;
  }

  private async validation(tenant: string, caseId: string): Promise<AmbulanceValidationsTable | null> {
    const row = await this.store.withTenant(tenant, (trx) =>
      inboundDb(trx)
        .selectFrom('ambulance_validations')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('case_id', '=', caseId)
        .executeTakeFirst(),
    );
    return row ?? null;
  }

  /**
   * One record, never a new one made silently: several records with the number match none. A
   * number typed wrong at the ambulance service can be another person's number in our index: when
   * the message gives a date of birth and the record's differs, the case is left unidentified for
   * the clinician rather than filed under that person (with their special notes and history).
   */
  private async matchPatient(
    tenant: string,
    nhsNumber: string | null,
    birthDate: string | null,
  ): Promise<{ patientId: string | null; match: InboundPatientMatch }> {
    if (!nhsNumber) return { patientId: null, match: 'no_nhs_number' };
    const ids = await this.deps.patients.idsWithNhsNumber(tenant, nhsNumber);
    if (ids.length > 1) return { patientId: null, match: 'several' };
    if (ids.length === 0) return { patientId: null, match: 'not_found' };
    if (birthDate !== null && (await this.deps.patients.dateOfBirth(tenant, ids[0]!)) !== birthDate)
      return { patientId: null, match: 'details_differ' };
    return { patientId: ids[0]!, match: 'matched' };
  }

  private receivedDraft(
    credential: InboundCredential,
    envelope: MessageEnvelope,
    bundleSha256: string,
    now: number,
    what: {
      kind: 'ambulance_validation' | 'response' | 'referral';
      caseId: string | null;
      answersMessageId: string | null;
    },
  ): EventDraft {
    return {
      tenant: credential.tenant,
      type: 'inbound.received',
      actor: `endpoint:${credential.endpointId}`,
      payload: {
        endpointId: credential.endpointId,
        messageId: envelope.messageId,
        kind: what.kind,
        receivedAtMs: now,
        bundleSha256,
        caseId: what.caseId,
        answersMessageId: what.answersMessageId,
        bundle: envelope.bundle,
      },
    };
  }

  /** Appends a message's facts unless it was taken meanwhile (checked again inside the commit). */
  private async appendOnce(
    credential: InboundCredential,
    messageId: string,
    drafts: EventDraft[],
  ): Promise<void> {
    await this.ledger.append(drafts, {
      guard: async (trx) => {
        const row = await inboundDb(trx)
          .selectFrom('inbound_messages')
          .select('message_id')
          .where('tenant', '=', credential.tenant)
          .where('endpoint_id', '=', credential.endpointId)
          .where('message_id', '=', messageId)
          .executeTakeFirst();
        if (row) throw new AlreadyTaken();
      },
    });
  }

  private async taken(
    tenant: string,
    endpointId: string,
    messageId: string,
  ): Promise<InboundMessagesTable | null> {
    const row = await this.store.withTenant(tenant, (trx) =>
      inboundDb(trx)
        .selectFrom('inbound_messages')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('endpoint_id', '=', endpointId)
        .where('message_id', '=', messageId)
        .executeTakeFirst(),
    );
    return row ?? null;
  }

  /** A repeat: the answer the first one got, nothing stored; the same id with other content is refused. */
  private replay(
    credential: InboundCredential,
    earlier: InboundMessagesTable,
    bundleSha256: string,
  ): InboundAnswer {
    if (earlier.bundle_sha256 !== bundleSha256)
      throw new InboundRefusal(
        409,
        [{ path: 'Bundle.entry[0].resource.id', message: 'was sent before with other content' }],
        'This message id was taken before with other content: send a new message with a new id',
      );
    return {
      status: 200,
      bundle: this.answerFor(credential, earlier.message_id, Number(earlier.received_at_ms), earlier.case_id),
      replayed: true,
    };
  }

  private answerFor(
    credential: InboundCredential,
    messageId: string,
    receivedAtMs: number,
    caseId: string | null,
  ): Record<string, unknown> {
    // Checked like everything we send: a fault of ours is a 500, never a malformed answer.
    return validateOutgoing(
      answerBundle({
        tenant: credential.tenant,
        node: this.ledger.node,
        endpointId: credential.endpointId,
        inboundMessageId: messageId,
        receivedAtMs,
        caseId,
      }) as never,
    ) as unknown as Record<string, unknown>;
  }
}

/** The outcome a command gives an ambulance validation case, if it gives one. */
function validationOutcomeOf(events: readonly CaseEvent[], row: CasesTable): ValidationOutcome | null {
  for (const e of events)
    if (e.type === 'case.ambulance_requested') return { ambulanceNeeded: true, category: e.payload.category };
  for (const e of events) {
    if (e.type !== 'case.outcome_recorded') continue;
    switch (e.payload.outcome) {
      case 'advice_and_close':
        return { ambulanceNeeded: false, disposition: 'advice given by a CAS clinician, case closed' };
      case 'refer':
        return { ambulanceNeeded: false, disposition: 'referred to another service' };
      case 'book_appointment':
        return { ambulanceNeeded: false, disposition: 'an appointment was arranged' };
      case 'home_visit':
        return { ambulanceNeeded: false, disposition: 'a home visit was arranged' };
      // Not an answer yet: a prescription comes before the final outcome, a re-triage decides
      // again, and an upgrade is answered by its ambulance_requested event above.
      case 'prescribe':
      case 'retriage':
      case 'upgrade_to_ambulance':
        break;
    }
  }
  if (events.some((e) => e.type === 'case.closed'))
    return { ambulanceNeeded: false, disposition: row.disposition_label ?? 'case closed' };
  return null;
}

/** Reads through other services on behalf of a sending system (they use only the tenant). */
function systemContext(tenant: string, endpointId: string): RequestContext {
  return {
    tenant,
    userId: nameBasedUuid(`endpoint:${tenant}:${endpointId}`),
    username: `endpoint:${endpointId}`,
    roles: [],
    siteIds: [],
    sessionId: 'inbound',
    system: true,
    address: 'inbound',
  };
}

function sha256Of(bundle: Record<string, unknown>): string {
  let text: string;
  try {
    text = canonicalJson(bundle);
  } catch {
    throw new InboundRefusal(
      400,
      [{ path: 'Bundle', message: 'is not valid JSON for FHIR' }],
      'Not valid JSON',
    );
  }
  return createHash('sha256').update(text).digest('hex');
}

/** A validator may quote the offending value: quoted text is left out of what we answer. */
function withoutQuotes(message: string): string {
  return message.replace(/"[^"]*"/g, '"…"').slice(0, 500);
}
