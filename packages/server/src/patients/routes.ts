import { nameKey, normalisePostcode, normaliseNhsNumber, patientRecordSchema } from '@holdfast/core';
import { z } from 'zod';
import { BODY_LIMIT } from '../http/app.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { ndjsonLimitProblem } from './fhir.ts';
import type { PatientService } from './service.ts';

const nhsNumber = z.string().transform((value, ctx) => {
  const r = normaliseNhsNumber(value);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.value;
});

/** A name typed into a search: it must keep some letters or digits once folded. */
const searchName = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .refine((v) => nameKey(v) !== '', 'must contain letters');

const searchPostcode = z
  .string()
  .max(16)
  .refine(
    (v) => /^[A-Z0-9]{0,8}$/.test(normalisePostcode(v)),
    'must be a postcode (letters and digits, e.g. LS1 4AP)',
  );

const ndjsonText = z
  .string()
  .max(BODY_LIMIT)
  .superRefine((text, ctx) => {
    const problem = ndjsonLimitProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Patient identification: register, read, search (exact or fuzzy) and the initial FHIR load. */
export function patientRoutes(patients: PatientService): RouteSpec[] {
  return [
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients',
      summary: 'Register a patient in the local index',
      access: { permission: 'patients.write' },
      body: z.strictObject({
        homeSiteId: z.string().uuid('must be a site id'),
        record: patientRecordSchema.extend({ nhsNumber: nhsNumber.optional() }),
      }),
      async handler({ ctx, body, reply }) {
        const patientId = await patients.register(ctx, body.homeSiteId, body.record);
        return reply.code(201).send({ patientId });
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/patients/:patientId',
      summary:
        "A patient's record, special notes first, filtered for your role, with the repeat-caller flag (3+ cases in 96 h); every view is audited",
      access: { permission: 'patients.read' },
      params: z.strictObject({ patientId: z.string().uuid('must be a patient id') }),
      async handler({ ctx, params, request }) {
        const reason = request.headers['x-break-glass-reason'];
        return patients.read(
          ctx,
          params.patientId,
          typeof reason === 'string' ? reason.slice(0, 500) : undefined,
        );
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/restricted',
      summary:
        'Break-glass read of what a restricted (R or V) record withholds: address, telephone, practice, pharmacy, contacts. Needs a stated `reason`; recorded as its own audit event flagged break-glass',
      access: { permission: 'patients.break_glass' },
      params: z.strictObject({ patientId: z.string().uuid('must be a patient id') }),
      body: z.strictObject({
        reason: z
          .string('must state why you need the withheld details')
          .trim()
          .min(10, 'must say why you need the withheld details (at least 10 characters)')
          .max(500),
      }),
      async handler({ ctx, params, body }) {
        return patients.readRestricted(ctx, params.patientId, body.reason);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/search',
      summary:
        'Find patients by NHS number, or by family name and date of birth with an optional given name and postcode (typo-tolerant, ranked; in the body, never the URL)',
      access: { permission: 'patients.search' },
      body: z.union([
        z.strictObject({ nhsNumber }),
        z.strictObject({
          familyName: searchName,
          givenName: searchName.optional(),
          dateOfBirth: z.iso.date(),
          postcode: searchPostcode.optional(),
        }),
      ]),
      async handler({ ctx, body }) {
        return { patients: await patients.search(ctx, body) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/import',
      summary:
        'Initial load of the patient index: FHIR R4 Patient resources as NDJSON text in `ndjson` (up to 1 MiB). Valid lines are stored, each line is reported with the paths of its problems; NHS numbers already in the index are not imported again',
      access: { permission: 'patients.write' },
      body: z.strictObject({
        homeSiteId: z.string().uuid('must be a site id'),
        ndjson: ndjsonText,
      }),
      async handler({ ctx, body }) {
        return patients.importFhirPatients(ctx, body.homeSiteId, body.ndjson);
      },
    }),
  ];
}
