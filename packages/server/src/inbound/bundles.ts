import { caseReference, normaliseNhsNumber, type FieldIssue } from '@holdfast/core';
import { nameBasedUuid } from '../node/ids.ts';
import {
  ACT_CODE_SYSTEM,
  HOLDFAST_CASE_SYSTEM,
  HOLDFAST_SYSTEM_BASE,
  NHS_NUMBER_SYSTEM,
} from '../fhir/codes.ts';

/**
 * Reading the message Bundles other systems send, and building the ones we answer with. A request
 * is read only after it passed the FHIR validator (fhir/validate.ts); what this file checks is what
 * a validation request must carry for the CAS to act on it. Problems name the element by path,
 * never its value.
 */

/** The ambulance response category as a coding (our own system: there is no national one to use). */
export const AMBULANCE_CATEGORY_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/CodeSystem/ambulance-response-category`;
/** What a validation outcome says, as a coding on the Task we answer with. */
export const VALIDATION_OUTCOME_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/CodeSystem/ambulance-validation-outcome`;
/** Message events we take: a referral/request (a 999 validation request), or an answer to ours. */
const REQUEST_EVENTS = new Set(['servicerequest-request']);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() ? v.trim() : null);

/** A refusal with its HTTP status (400 bad FHIR, 422 a message we cannot act on) and fields. */
export class InboundRefusal extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 422,
    readonly issues: readonly FieldIssue[],
    readonly title: string,
  ) {
    super(title);
  }
}

const refuse = (status: InboundRefusal['status'], path: string, message: string, title = message) =>
  new InboundRefusal(status, [{ path, message }], title);

export interface MessageEnvelope {
  bundle: Json;
  header: Json;
  /** MessageHeader.id: with the sender, the idempotency key. */
  messageId: string;
  /** Set when the message answers another (MessageHeader.response). */
  response: { identifier: string | null; code: string | null } | null;
  eventCode: string | null;
}

/** The longest string any element may hold (no narrative or answer we take comes near it). */
export const MAX_STRING_LENGTH = 20_000;

/**
 * The path, in the REST API's words (`body.entry.1.resource.status`), of an element the FHIR
 * validator names (`Bundle.entry[1].resource.status`): what our other routes answer, beside FHIRPath.
 * A segment that cannot be a FHIR element name (an operator key a client slipped in) ends it: the
 * element at fault is the one that holds it.
 */
export function bodyPathOf(fhirPath: string): string {
  const segments = fhirPath
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .slice(1);
  const valid: string[] = [];
  for (const segment of segments) {
    if (!/^([A-Za-z][A-Za-z0-9_]*|\d+)$/.test(segment)) break;
    valid.push(segment);
  }
  return ['body', ...valid].join('.');
}

/** Values JSON can carry but FHIR cannot: a number out of range, an over-long string. */
function unstorableValue(value: unknown, path: string): { path: string; message: string } | null {
  if (typeof value === 'number' && !Number.isFinite(value))
    return { path, message: 'must be a number FHIR can hold' };
  if (typeof value === 'string' && value.length > MAX_STRING_LENGTH)
    return { path, message: `must be at most ${MAX_STRING_LENGTH} characters` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unstorableValue(value[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      const found = unstorableValue(item, `${path}.${key}`);
      if (found) return found;
    }
  }
  return null;
}

/** The Bundle's shape as a message: type message, a MessageHeader first, with an id. */
export function readEnvelope(body: unknown): MessageEnvelope {
  if (!isObject(body)) throw refuse(400, 'Bundle', 'must be a FHIR Bundle (a JSON object)');
  const unstorable = unstorableValue(body, 'Bundle');
  if (unstorable) throw refuse(400, unstorable.path, unstorable.message, 'The message cannot be read');
  if (body.resourceType !== 'Bundle') throw refuse(400, 'Bundle.resourceType', 'must be Bundle');
  if (body.type !== 'message') throw refuse(400, 'Bundle.type', 'must be message');
  // Every entry's type first: the validator can only name the entry of a resource it cannot type.
  const entries = asArray(body.entry);
  entries.forEach((entry, i) => {
    const resource = isObject(entry) ? entry.resource : undefined;
    if (isObject(resource) && typeof resource.resourceType !== 'string')
      throw refuse(400, `Bundle.entry[${i}].resource.resourceType`, 'must name the resource type');
  });
  const header = entries[0];
  const resource = isObject(header) ? header.resource : undefined;
  if (!isObject(resource)) throw refuse(400, 'Bundle.entry[0].resource', 'must be the MessageHeader');
  if (resource.resourceType !== 'MessageHeader')
    throw refuse(400, 'Bundle.entry[0].resource.resourceType', 'must be MessageHeader');
  const id = text(resource.id);
  if (!id || !/^[A-Za-z0-9\-.]{1,64}$/.test(id))
    throw refuse(400, 'Bundle.entry[0].resource.id', 'must be the message id (a FHIR id)');
  const response = isObject(resource.response)
    ? { identifier: text(resource.response.identifier), code: text(resource.response.code) }
    : null;
  const coding = isObject(resource.eventCoding) ? resource.eventCoding : null;
  return { bundle: body, header: resource, messageId: id, response, eventCode: text(coding?.code) };
}

export function isValidationRequest(envelope: MessageEnvelope): boolean {
  return envelope.response === null && envelope.eventCode !== null && REQUEST_EVENTS.has(envelope.eventCode);
}

/** What a 999 validation request carries, read from its ServiceRequest and what that points at. */
export interface ValidationRequest {
  /** Where the ServiceRequest is in the Bundle (for problems that name its fields). */
  at: string;
  category: 1 | 2 | 3 | 4;
  incidentReference: string;
  presentingComplaint: string;
  /** By when the ambulance service wants the answer, if it said. */
  deadlineAtMs: number | null;
  caller: { name: string; relationship: CallerRelationship; callbackNumber: string };
  location: string;
  /** The patient's NHS number, when the Patient carries a valid one. */
  nhsNumber: string | null;
  /** The patient's date of birth (YYYY-MM-DD), when the Patient gives a full one. */
  birthDate: string | null;
}

type CallerRelationship = 'self' | 'parent' | 'carer' | 'relative' | 'friend' | 'professional' | 'other';
const RELATIONSHIPS: readonly CallerRelationship[] = [
  'self',
  'parent',
  'carer',
  'relative',
  'friend',
  'professional',
  'other',
];
const PHONE = /^\+?[0-9 ()-]{6,20}$/;

/** The entries of a Bundle with their paths, found by fullUrl or by `Type/id`. */
class Entries {
  readonly list: { resource: Json; path: string; fullUrl: string | null }[] = [];

  constructor(bundle: Json) {
    asArray(bundle.entry).forEach((e, i) => {
      if (isObject(e) && isObject(e.resource))
        this.list.push({
          resource: e.resource,
          path: `Bundle.entry[${i}].resource`,
          fullUrl: text(e.fullUrl),
        });
    });
  }

  resolve(reference: unknown): { resource: Json; path: string } | null {
    const ref = isObject(reference) ? text(reference.reference) : null;
    if (!ref) return null;
    return (
      this.list.find(
        (e) =>
          e.fullUrl === ref ||
          `${String(e.resource.resourceType)}/${String(e.resource.id)}` === ref ||
          (e.fullUrl !== null && e.fullUrl.endsWith(`/${ref}`)),
      ) ?? null
    );
  }

  first(type: string): { resource: Json; path: string } | null {
    return this.list.find((e) => e.resource.resourceType === type) ?? null;
  }
}

/**
 * Reads a validation request. The category is a ServiceRequest.category coding in
 * AMBULANCE_CATEGORY_SYSTEM (code 1-4) or, as our own ambulance request writes it, the text
 * "Ambulance response category N"; the incident reference is ServiceRequest.identifier[0]; the
 * deadline ServiceRequest.occurrencePeriod.end; the call-back number a phone of the RelatedPerson
 * in supportingInfo (else of the Patient).
 */
export function readValidationRequest(envelope: MessageEnvelope): ValidationRequest {
  const entries = new Entries(envelope.bundle);
  const focus = asArray(envelope.header.focus)[0];
  const found = entries.resolve(focus) ?? entries.first('ServiceRequest');
  if (!found || found.resource.resourceType !== 'ServiceRequest')
    throw refuse(422, 'Bundle.entry[0].resource.focus', 'must point at the ServiceRequest to validate');
  const sr = found.resource;
  const at = found.path;

  const category = categoryOf(sr);
  if (category === null)
    throw refuse(
      422,
      `${at}.category`,
      `must carry the ambulance response category (a coding in ${AMBULANCE_CATEGORY_SYSTEM}, 1-4)`,
    );
  const incidentReference = text(asArray(sr.identifier).filter(isObject)[0]?.value);
  if (!incidentReference || incidentReference.length > 64)
    throw refuse(422, `${at}.identifier[0].value`, 'must be the 999 incident reference (1-64 characters)');
  const reason = asArray(sr.reasonCode).filter(isObject)[0];
  const complaint = text(reason?.text) ?? text(isObject(sr.code) ? sr.code.text : null);
  if (!complaint)
    throw refuse(422, `${at}.reasonCode[0].text`, 'must say what is wrong (the presenting complaint)');

  let deadlineAtMs: number | null = null;
  const end = isObject(sr.occurrencePeriod) ? text(sr.occurrencePeriod.end) : null;
  if (end) {
    deadlineAtMs = Date.parse(end);
    if (!Number.isFinite(deadlineAtMs) || !/T\d\d:\d\d/.test(end))
      throw refuse(422, `${at}.occurrencePeriod.end`, 'must be a date and time with its zone');
  }

  const patient = entries.resolve(sr.subject) ?? entries.first('Patient');
  const patientResource = patient?.resource.resourceType === 'Patient' ? patient.resource : null;
  const caller = callerOf(entries, sr, at, patientResource, patient?.path ?? null);
  const locationEntry = entries.resolve(asArray(sr.locationReference)[0]);
  const location =
    (locationEntry && isObject(locationEntry.resource.address)
      ? text(locationEntry.resource.address.text)
      : null) ??
    text(locationEntry?.resource.description) ??
    'Not given by the ambulance service';

  return {
    at,
    category,
    incidentReference,
    presentingComplaint: complaint.slice(0, 300),
    deadlineAtMs,
    caller,
    location: location.slice(0, 300),
    nhsNumber: patientResource ? nhsNumberOf(patientResource) : null,
    birthDate: patientResource ? birthDateOf(patientResource) : null,
  };
}

/**
 * Whether a request is a referral into the CAS queue (BaRS, e.g. 999 → CAS) rather than a 999
 * validation: its ServiceRequest carries no ambulance response category.
 */
export function isReferralRequest(envelope: MessageEnvelope): boolean {
  const entries = new Entries(envelope.bundle);
  const found = entries.resolve(asArray(envelope.header.focus)[0]) ?? entries.first('ServiceRequest');
  return found?.resource.resourceType === 'ServiceRequest' && categoryOf(found.resource) === null;
}

/** What a referral into the CAS carries. */
export interface ReferralRequest {
  at: string;
  /** The sender's own reference (ServiceRequest.identifier[0]), when given. */
  senderReference: string | null;
  /** Who sent it, in words (MessageHeader.source.name). */
  senderName: string;
  presentingComplaint: string;
  /** What the sender asks for (ServiceRequest.code.text), when it says. */
  request: string | null;
  deadlineAtMs: number | null;
  caller: ValidationRequest['caller'];
  location: string;
  nhsNumber: string | null;
  birthDate: string | null;
}

/**
 * Reads a referral: the presenting complaint (`reasonCode[0].text`, else `code.text`), the
 * deadline (`occurrencePeriod.end`), the caller (a RelatedPerson in supportingInfo with a phone, else
 * the Patient's phone) and where the patient is (a Location), as a validation request is read.
 */
export function readReferralRequest(envelope: MessageEnvelope): ReferralRequest {
  const entries = new Entries(envelope.bundle);
  const found = entries.resolve(asArray(envelope.header.focus)[0]) ?? entries.first('ServiceRequest');
  if (!found || found.resource.resourceType !== 'ServiceRequest')
    throw refuse(422, 'Bundle.entry[0].resource.focus', 'must point at the ServiceRequest of the referral');
  const sr = found.resource;
  const at = found.path;
  const reason = asArray(sr.reasonCode).filter(isObject)[0];
  const request = text(isObject(sr.code) ? sr.code.text : null);
  const complaint = text(reason?.text) ?? request;
  if (!complaint)
    throw refuse(422, `${at}.reasonCode[0].text`, 'must say what is wrong (the presenting complaint)');
  let deadlineAtMs: number | null = null;
  const end = isObject(sr.occurrencePeriod) ? text(sr.occurrencePeriod.end) : null;
  if (end) {
    deadlineAtMs = Date.parse(end);
    if (!Number.isFinite(deadlineAtMs) || !/T\d\d:\d\d/.test(end))
      throw refuse(422, `${at}.occurrencePeriod.end`, 'must be a date and time with its zone');
  }
  const patient = entries.resolve(sr.subject) ?? entries.first('Patient');
  const patientResource = patient?.resource.resourceType === 'Patient' ? patient.resource : null;
  const caller = callerOf(entries, sr, at, patientResource, patient?.path ?? null);
  const locationEntry = entries.resolve(asArray(sr.locationReference)[0]);
  const location =
    (locationEntry && isObject(locationEntry.resource.address)
      ? text(locationEntry.resource.address.text)
      : null) ??
    text(locationEntry?.resource.description) ??
    'Not given by the referring service';
  const source = isObject(envelope.header.source) ? text(envelope.header.source.name) : null;
  const senderReference = text(asArray(sr.identifier).filter(isObject)[0]?.value);
  return {
    at,
    senderReference: senderReference ? senderReference.slice(0, 64) : null,
    senderName: (source ?? 'another service').slice(0, 100),
    presentingComplaint: complaint.slice(0, 300),
    request: request ? request.slice(0, 200) : null,
    deadlineAtMs,
    caller,
    location: location.slice(0, 300),
    nhsNumber: patientResource ? nhsNumberOf(patientResource) : null,
    birthDate: patientResource ? birthDateOf(patientResource) : null,
  };
}

/** A full date of birth (a year or a month alone cannot be compared with a record's). */
function birthDateOf(patient: Json): string | null {
  const value = text(patient.birthDate);
  return value !== null && /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : null;
}

function categoryOf(sr: Json): 1 | 2 | 3 | 4 | null {
  for (const c of asArray(sr.category).filter(isObject)) {
    for (const coding of asArray(c.coding).filter(isObject))
      if (coding.system === AMBULANCE_CATEGORY_SYSTEM && /^[1-4]$/.test(String(coding.code)))
        return Number(coding.code) as 1 | 2 | 3 | 4;
    const m = /^Ambulance response category ([1-4])$/.exec(text(c.text) ?? '');
    if (m) return Number(m[1]) as 1 | 2 | 3 | 4;
  }
  return null;
}

function callerOf(
  entries: Entries,
  sr: Json,
  at: string,
  patient: Json | null,
  patientPath: string | null,
): ValidationRequest['caller'] {
  const related = asArray(sr.supportingInfo)
    .map((r) => entries.resolve(r))
    .find((e) => e?.resource.resourceType === 'RelatedPerson');
  const person = related?.resource ?? patient;
  const path = related?.path ?? patientPath;
  if (!person || !path)
    throw refuse(
      422,
      `${at}.supportingInfo`,
      'must point at the caller (a RelatedPerson with a phone number)',
    );
  const telecoms = asArray(person.telecom).filter(isObject);
  const index = telecoms.findIndex((t) => t.system === 'phone');
  const phone = index >= 0 ? text(telecoms[index]!.value) : null;
  if (!phone) throw refuse(422, `${path}.telecom`, 'must carry the call-back number (a phone)');
  if (!PHONE.test(phone))
    throw refuse(422, `${path}.telecom[${index}].value`, 'must be a telephone number, e.g. 07700 900123');
  const name = asArray(person.name).filter(isObject)[0];
  const nameText =
    text(name?.text) ?? ([...asArray(name?.given), name?.family].map(text).filter(Boolean).join(' ') || null);
  const relationshipText = (
    text(asArray(person.relationship).filter(isObject)[0]?.text) ?? ''
  ).toLowerCase() as CallerRelationship;
  return {
    name: (nameText ?? 'Caller (name not given)').slice(0, 100),
    relationship: related ? (RELATIONSHIPS.includes(relationshipText) ? relationshipText : 'other') : 'self',
    callbackNumber: phone,
  };
}

function nhsNumberOf(patient: Json): string | null {
  for (const identifier of asArray(patient.identifier).filter(isObject)) {
    if (identifier.system !== NHS_NUMBER_SYSTEM) continue;
    const checked = normaliseNhsNumber(String(identifier.value ?? ''));
    if (checked.ok) return checked.value;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// What we send back.

export interface AnswerInput {
  tenant: string;
  node: string;
  endpointId: string;
  /** The sender's MessageHeader.id. */
  inboundMessageId: string;
  receivedAtMs: number;
  /** The case it opened, named by our short reference. */
  caseId: string | null;
}

/**
 * The FHIR response message to a message we took (code ok), the same for every repeat: its id and
 * timestamp come from the message it answers, not the moment of asking.
 */
export function answerBundle(input: AnswerInput): Record<string, unknown> {
  const key = `${input.tenant}/${input.endpointId}/${input.inboundMessageId}/answer`;
  const headerId = nameBasedUuid(key);
  const focusId = nameBasedUuid(`${key}/encounter`);
  const header = {
    resourceType: 'MessageHeader',
    id: headerId,
    eventCoding: { system: `${HOLDFAST_SYSTEM_BASE}/CodeSystem/message-event`, code: 'acknowledgement' },
    source: { name: 'Holdfast', endpoint: `urn:holdfast:${input.tenant}:${input.node}` },
    response: { identifier: input.inboundMessageId, code: 'ok' },
    // The case it opened; for an answer to one of ours, a note that it was recorded.
    focus: [{ reference: `urn:uuid:${focusId}` }],
  };
  const entries: Record<string, unknown>[] = [{ fullUrl: `urn:uuid:${headerId}`, resource: header }];
  if (!input.caseId)
    entries.push({
      fullUrl: `urn:uuid:${focusId}`,
      resource: {
        resourceType: 'OperationOutcome',
        id: focusId,
        issue: [{ severity: 'information', code: 'informational', details: { text: 'recorded' } }],
      },
    });
  else
    entries.push({
      fullUrl: `urn:uuid:${focusId}`,
      resource: {
        resourceType: 'Encounter',
        id: focusId,
        // The case reference staff use on the phone: the first identifier is our reference.
        identifier: [{ system: HOLDFAST_CASE_SYSTEM, value: caseReference(input.caseId) }],
        status: 'planned',
        class: { system: ACT_CODE_SYSTEM, code: 'VR', display: 'virtual' },
      },
    });
  return {
    resourceType: 'Bundle',
    id: nameBasedUuid(`${key}/bundle`),
    type: 'message',
    timestamp: new Date(input.receivedAtMs).toISOString(),
    entry: entries,
  };
}

export type ValidationOutcome =
  { ambulanceNeeded: true; category: 1 | 2 | 3 | 4 } | { ambulanceNeeded: false; disposition: string };

export function outcomeText(outcome: ValidationOutcome): string {
  return outcome.ambulanceNeeded
    ? `Ambulance still needed, category ${outcome.category}`
    : `Ambulance not needed: ${outcome.disposition}`;
}

export interface OutcomeInput {
  messageId: string;
  tenant: string;
  node: string;
  destination: { name: string; endpoint: string };
  inboundMessageId: string;
  incidentReference: string;
  caseId: string;
  sentAtIso: string;
  outcome: ValidationOutcome;
}

/**
 * The clinician's outcome as a FHIR response message to the validation request
 * (MessageHeader.response.identifier = its MessageHeader.id, code ok), focused on a completed Task
 * that names the incident and says whether the ambulance is still needed, and at which category.
 */
export function outcomeBundle(input: OutcomeInput): Record<string, unknown> {
  const taskId = nameBasedUuid(`${input.messageId}/task`);
  const words = outcomeText(input.outcome);
  const header = {
    resourceType: 'MessageHeader',
    id: input.messageId,
    eventCoding: { system: `${HOLDFAST_SYSTEM_BASE}/CodeSystem/message-event`, code: 'validation-outcome' },
    destination: [{ name: input.destination.name, endpoint: input.destination.endpoint }],
    source: { name: 'Holdfast', endpoint: `urn:holdfast:${input.tenant}:${input.node}` },
    response: { identifier: input.inboundMessageId, code: 'ok' },
    focus: [{ reference: `urn:uuid:${taskId}` }],
  };
  const task = {
    resourceType: 'Task',
    id: taskId,
    identifier: [{ system: HOLDFAST_CASE_SYSTEM, value: caseReference(input.caseId) }],
    status: 'completed',
    intent: 'order',
    code: { text: 'Clinical validation of a 999 ambulance disposition' },
    businessStatus: {
      coding: [
        {
          system: VALIDATION_OUTCOME_SYSTEM,
          code: input.outcome.ambulanceNeeded ? 'ambulance-needed' : 'ambulance-not-needed',
        },
      ],
      text: words,
    },
    authoredOn: input.sentAtIso,
    note: [{ text: `999 incident ${input.incidentReference}: ${words}` }],
    ...(input.outcome.ambulanceNeeded
      ? {
          output: [
            {
              type: { coding: [{ system: AMBULANCE_CATEGORY_SYSTEM, code: 'category' }] },
              valueCodeableConcept: {
                coding: [{ system: AMBULANCE_CATEGORY_SYSTEM, code: String(input.outcome.category) }],
                text: `Ambulance response category ${input.outcome.category}`,
              },
            },
          ],
        }
      : {}),
  };
  return {
    resourceType: 'Bundle',
    id: nameBasedUuid(`${input.messageId}/bundle`),
    type: 'message',
    timestamp: input.sentAtIso,
    entry: [
      { fullUrl: `urn:uuid:${input.messageId}`, resource: header },
      { fullUrl: `urn:uuid:${taskId}`, resource: task },
    ],
  };
}
