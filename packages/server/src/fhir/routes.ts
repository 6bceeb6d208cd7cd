import { normaliseNhsNumber, ValidationError } from '@holdfast/core';
import type { CapabilityStatement, Resource } from '@medplum/fhirtypes';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { authedRoute, publicRoute, type RouteSpec } from '../http/routes.ts';
import { NHS_NUMBER_SYSTEM } from './codes.ts';
import { NEWS2_ID_SUFFIX, searchsetBundle } from './mapping.ts';
import { FHIR_CONTENT_TYPE, FHIR_R4_PATH } from './outcome.ts';
import type { CaseResourceType, FhirService } from './service.ts';
import { validateOutgoing } from './validate.ts';

/**
 * The read-only FHIR R4 API at /fhir/R4, for staff of the provider. Same session, permissions,
 * tenant isolation and audit as the REST API (the routes are in the same registry and call the
 * same services); answers are application/fhir+json; errors are OperationOutcomes (http/errors.ts
 * sends them for every path under /fhir).
 */

const DEFAULT_COUNT = 20;
const MAX_COUNT = 100;
/** A patient has at most this many cases searched (newest first). */
const MAX_CASES_PER_PATIENT = 500;

/**
 * Holdfast's FHIR ids: a record's or case's UUID, and for an Observation the case's UUID, the
 * consultation's key and the parameter (mapping.ts `news2ObservationId`; a bare UUID is allowed
 * there too, and simply not found). Anything else cannot be one of ours: refused as bad input
 * rather than looked up.
 */
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const uuidIdSchema = z.string().regex(new RegExp(`^${UUID}$`), 'must be a Holdfast FHIR id (a UUID)');
const observationIdSchema = z
  .string()
  .regex(
    new RegExp(`^${UUID}(-[A-Za-z0-9]{1,12}-(${Object.values(NEWS2_ID_SUFFIX).join('|')}))?$`),
    'must be a Holdfast Observation id',
  );
const idParams = (type: string) =>
  z.strictObject({ id: type === 'Observation' ? observationIdSchema : uuidIdSchema });
const paging = {
  _count: z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(1, `must be from 1 to ${MAX_COUNT}`)
    .max(MAX_COUNT, `must be from 1 to ${MAX_COUNT}`)
    .default(DEFAULT_COUNT),
  _offset: z.coerce.number({ error: 'must be a whole number' }).int().min(0).max(1_000_000).default(0),
};

/** `Type/id` or a bare id, as a search parameter's reference value. */
const referenceTo = (type: string) =>
  z
    .string()
    .transform((v) => (v.startsWith(`${type}/`) ? v.slice(type.length + 1) : v))
    .pipe(uuidIdSchema);

function base(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}${FHIR_R4_PATH}`;
}

function sendFhir(reply: FastifyReply, resource: Resource): FastifyReply {
  return reply.type(FHIR_CONTENT_TYPE).header('cache-control', 'no-store').send(resource);
}

/**
 * One page of a search as a searchset Bundle (`onPage` are the matches from `offset`, `total` all
 * of them), with self/next/previous links carrying the same search.
 */
function page(
  request: FastifyRequest,
  reply: FastifyReply,
  type: string,
  search: Record<string, string>,
  found: { onPage: readonly Resource[]; total: number },
  count: number,
  offset: number,
): FastifyReply {
  const link = (at: number) => {
    const q = new URLSearchParams({ ...search, _count: String(count), _offset: String(at) });
    return `${base(request)}/${type}?${q.toString()}`;
  };
  const links = [{ relation: 'self', url: link(offset) }];
  if (offset + count < found.total) links.push({ relation: 'next', url: link(offset + count) });
  if (offset > 0) links.push({ relation: 'previous', url: link(Math.max(0, offset - count)) });
  const bundle = searchsetBundle(base(request), found.onPage, found.total, links);
  return sendFhir(reply, validateOutgoing(bundle));
}

export function capabilityStatement(): CapabilityStatement {
  const caseSearch = [{ name: 'encounter', type: 'reference' as const }];
  const resource = (
    type: 'Patient' | 'Encounter' | CaseResourceType,
    searchParam: { name: string; type: 'token' | 'reference' }[],
  ) => ({
    type,
    interaction: [{ code: 'read' as const }, { code: 'search-type' as const }],
    searchParam: [...searchParam, { name: '_count', type: 'number' as const }],
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-12-04',
    publisher: 'Holdfast',
    kind: 'instance',
    software: { name: 'Holdfast' },
    implementation: { description: 'Holdfast urgent-care case management: read-only FHIR R4 API' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          description:
            'A Holdfast staff session (the hf_session cookie after password and second factor); the same permissions as the REST API; every patient and case read is audited',
        },
        resource: [
          resource('Patient', [{ name: 'identifier', type: 'token' }]),
          resource('Encounter', [{ name: 'patient', type: 'reference' }]),
          resource('ServiceRequest', caseSearch),
          resource('QuestionnaireResponse', caseSearch),
          resource('Observation', caseSearch),
          resource('Composition', caseSearch),
        ],
      },
    ],
  };
}

export function fhirRoutes(fhir: FhirService): RouteSpec[] {
  const caseTypes: CaseResourceType[] = [
    'ServiceRequest',
    'QuestionnaireResponse',
    'Observation',
    'Composition',
  ];
  const readCaseResource = (
    type: CaseResourceType,
    ctx: Parameters<FhirService['encounter']>[0],
    id: string,
  ) => {
    switch (type) {
      case 'Encounter':
        return fhir.encounter(ctx, id);
      case 'ServiceRequest':
        return fhir.serviceRequest(ctx, id);
      case 'QuestionnaireResponse':
        return fhir.questionnaireResponse(ctx, id);
      case 'Composition':
        return fhir.composition(ctx, id);
      case 'Observation':
        return fhir.observation(ctx, id);
    }
  };
  return [
    publicRoute({
      method: 'GET',
      url: `${FHIR_R4_PATH}/metadata`,
      summary: 'FHIR CapabilityStatement: what this read-only FHIR R4 API serves (no patient data)',
      access: { public: true },
      async handler({ reply }) {
        return sendFhir(reply, validateOutgoing(capabilityStatement()));
      },
    }),
    authedRoute({
      method: 'GET',
      url: `${FHIR_R4_PATH}/Patient/:id`,
      summary:
        'A patient as a UK Core-aligned FHIR Patient, filtered for your role; audited like the REST read',
      access: { permission: 'patients.read' },
      params: idParams('Patient'),
      async handler({ ctx, params: p, request, reply }) {
        const reason = request.headers['x-break-glass-reason'];
        return sendFhir(
          reply,
          await fhir.patient(ctx, p.id, typeof reason === 'string' ? reason.slice(0, 500) : undefined),
        );
      },
    }),
    authedRoute({
      method: 'GET',
      url: `${FHIR_R4_PATH}/Patient`,
      summary: `Patients by NHS number: identifier=${NHS_NUMBER_SYSTEM}|<NHS number>; audited as a search`,
      access: { permission: 'patients.search' },
      query: z.strictObject({ identifier: z.string().max(200), ...paging }),
      async handler({ ctx, query, request, reply }) {
        const [system, value, extra] = query.identifier.split('|');
        if (extra !== undefined || system !== NHS_NUMBER_SYSTEM || !value)
          throw new ValidationError([
            { path: 'query.identifier', message: `must be ${NHS_NUMBER_SYSTEM}|<NHS number>` },
          ]);
        const nhs = normaliseNhsNumber(value);
        if (!nhs.ok) throw new ValidationError([{ path: 'query.identifier', message: nhs.message }]);
        const found = await fhir.patientsByNhsNumber(ctx, nhs.value);
        return page(
          request,
          reply,
          'Patient',
          { identifier: query.identifier },
          sliced(found, query._count, query._offset),
          query._count,
          query._offset,
        );
      },
    }),
    authedRoute({
      method: 'GET',
      url: `${FHIR_R4_PATH}/Encounter/:id`,
      summary: 'A case as a FHIR Encounter; audited as a case read',
      access: { permission: 'cases.read' },
      params: idParams('Encounter'),
      async handler({ ctx, params: p, reply }) {
        return sendFhir(reply, await fhir.encounter(ctx, p.id));
      },
    }),
    authedRoute({
      method: 'GET',
      url: `${FHIR_R4_PATH}/Encounter`,
      summary: "A patient's cases as FHIR Encounters, newest first: patient=<Patient id>",
      access: { permission: 'cases.read' },
      query: z.strictObject({ patient: referenceTo('Patient'), ...paging }),
      async handler({ ctx, query, request, reply }) {
        const caseIds = await fhir.caseIdsOfPatient(ctx, query.patient, MAX_CASES_PER_PATIENT);
        // Only the requested page's cases are read (and audited).
        const onPage: Resource[] = [];
        for (const caseId of caseIds.slice(query._offset, query._offset + query._count))
          onPage.push(...(await fhir.ofCase(ctx, 'Encounter', caseId)));
        return page(
          request,
          reply,
          'Encounter',
          { patient: query.patient },
          { onPage, total: caseIds.length },
          query._count,
          query._offset,
        );
      },
    }),
    ...caseTypes.flatMap((type) => [
      authedRoute({
        method: 'GET',
        url: `${FHIR_R4_PATH}/${type}/:id`,
        summary: `A case's ${type}; audited as a case read`,
        access: { permission: 'cases.read' },
        params: idParams(type),
        async handler({ ctx, params: p, reply }) {
          return sendFhir(reply, await readCaseResource(type, ctx, p.id));
        },
      }),
      authedRoute({
        method: 'GET',
        url: `${FHIR_R4_PATH}/${type}`,
        summary: `A case's ${type} resources: encounter=<Encounter id> (the case id)`,
        access: { permission: 'cases.read' },
        query: z.strictObject({ encounter: referenceTo('Encounter'), ...paging }),
        async handler({ ctx, query, request, reply }) {
          const all = await fhir.ofCase(ctx, type, query.encounter);
          return page(
            request,
            reply,
            type,
            { encounter: query.encounter },
            sliced(all, query._count, query._offset),
            query._count,
            query._offset,
          );
        },
      }),
    ]),
  ];
}

function sliced(all: readonly Resource[], count: number, offset: number) {
  return { onPage: all.slice(offset, offset + count), total: all.length };
}
