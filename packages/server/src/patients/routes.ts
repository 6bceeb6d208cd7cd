import { normaliseNhsNumber, patientRecordSchema } from '@holdfast/core';
import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { PatientService } from './service.ts';

const nhsNumber = z.string().transform((value, ctx) => {
  const r = normaliseNhsNumber(value);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.value;
});

/** Patient identification (the clinical core extends this: fuzzy search, FHIR import, GP details). */
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
      summary: "A patient's record, special notes first, filtered for your role; every view is audited",
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
      url: '/api/v1/patients/search',
      summary:
        'Find patients by NHS number, or by family name and date of birth (in the body, never the URL)',
      access: { permission: 'patients.search' },
      body: z.union([
        z.strictObject({ nhsNumber }),
        z.strictObject({ familyName: z.string().trim().min(1).max(100), dateOfBirth: z.iso.date() }),
      ]),
      async handler({ ctx, body }) {
        return { patients: await patients.search(ctx, body) };
      },
    }),
  ];
}
