import { PRESCRIPTION_CHECKS } from '@holdfast/core';
import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { FACT_SOURCES } from './events.ts';
import type { PrescribingService } from './service.ts';

/** Formulary, allergies and medication, and prescriptions (C9). (h18-web's thin stand-in.) */
const uuid = (what: string) => z.string().uuid(`must be ${what}`);
const text = (what: string, max = 200) =>
  z.string(what).trim().min(1, what).max(max, `must be at most ${max} characters`);
const reason = z.strictObject({ reason: text('give a reason', 2000) });
const patientParams = z.strictObject({ patientId: uuid('a patient id') });
const caseParams = z.strictObject({ caseId: uuid('a case id') });
const prescriptionParams = z.strictObject({ prescriptionId: uuid('a prescription id') });
const positive = (what: string, max: number) =>
  z.number(what).positive(`${what} must be more than 0`).max(max, `${what} must be at most ${max}`);

const draft = z.strictObject({
  medicineCode: z.string('choose a medicine').regex(/^\d{6,18}$/, 'choose a medicine from the formulary'),
  doseMg: positive('the dose', 100_000),
  frequencyPerDay: z.number('how often a day').int('a whole number of times a day').min(1).max(24),
  durationDays: z.number('for how many days').int('a whole number of days').min(1).max(366),
  quantity: positive('the quantity', 100_000),
  quantityWords: z.string().trim().max(200, 'must be at most 200 characters').nullable(),
  directions: text('write the directions', 2000),
});
const extra = {
  weightKg: z.number().positive('the weight must be more than 0').max(500).nullable().optional(),
  pregnant: z.boolean().nullable().optional(),
};
const source = z.enum(FACT_SOURCES, { message: 'say where it came from: caller, record or clinician' });

export function prescribingRoutes(prescribing: PrescribingService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/formulary',
      summary:
        'The formulary prescriptions are written from (sample content is marked not clinically validated)',
      access: { permission: 'cases.read' },
      async handler() {
        const { medicines, ...formulary } = prescribing.formulary();
        return { formulary, medicines };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/patients/:patientId/allergies-medication',
      summary: "The patient's allergies and current medication, each with where it came from and who said so",
      access: { permission: 'patients.read' },
      params: patientParams,
      async handler({ ctx, params }) {
        return prescribing.allergiesAndMedication(ctx, params.patientId);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/allergies',
      summary:
        'Record an allergy of the patient (from the caller, the record or a clinician), saying who said so',
      access: { permission: 'patients.edit' },
      params: patientParams,
      body: z.strictObject({
        allergen: text('name what the patient is allergic to'),
        allergyClass: z.string().trim().min(1).max(60).optional(),
        reaction: z.string().trim().min(1).max(500).optional(),
        source,
        reportedBy: text('say who said so'),
      }),
      async handler({ ctx, params, body, reply }) {
        reply.code(201);
        return prescribing.recordAllergy(ctx, params.patientId, {
          allergen: body.allergen,
          allergyClass: body.allergyClass ?? null,
          reaction: body.reaction ?? null,
          source: body.source,
          reportedBy: body.reportedBy,
        });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/allergies/:allergyId/remove',
      summary: 'Remove an allergy recorded in error, with a reason',
      access: { permission: 'patients.edit' },
      params: z.strictObject({ patientId: uuid('a patient id'), allergyId: uuid('an allergy id') }),
      body: reason,
      async handler({ ctx, params, body }) {
        await prescribing.removeAllergy(ctx, params.patientId, params.allergyId, body.reason);
        return { removed: true };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/medication',
      summary:
        'Record a medicine the patient takes now (from the caller, the record or a clinician), saying who said so',
      access: { permission: 'patients.edit' },
      params: patientParams,
      body: z.strictObject({
        name: text('name the medicine'),
        code: z
          .string()
          .regex(/^\d{6,18}$/, 'must be a formulary medicine code')
          .optional(),
        dose: z.string().trim().min(1).max(200).optional(),
        source,
        reportedBy: text('say who said so'),
      }),
      async handler({ ctx, params, body, reply }) {
        reply.code(201);
        return prescribing.recordMedication(ctx, params.patientId, {
          name: body.name,
          code: body.code ?? null,
          dose: body.dose ?? null,
          source: body.source,
          reportedBy: body.reportedBy,
        });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/medication/:medicationId/stop',
      summary: 'Stop a current medicine (or one recorded in error), with a reason',
      access: { permission: 'patients.edit' },
      params: z.strictObject({ patientId: uuid('a patient id'), medicationId: uuid('a medication id') }),
      body: reason,
      async handler({ ctx, params, body }) {
        await prescribing.stopMedication(ctx, params.patientId, params.medicationId, body.reason);
        return { stopped: true };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/prescriptions/check',
      summary: "Run the prescription checks against the case's patient (allergy, dose, daily maximum, …)",
      access: { permission: 'cases.prescribe' },
      params: caseParams,
      body: z.strictObject({ draft, ...extra }),
      async handler({ ctx, params, body }) {
        return prescribing.check(ctx, params.caseId, body.draft, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/prescriptions',
      summary:
        'Prescribe from the consultation: the checks run again; a hard stop or a warning without a reason refuses it (409); sent to the pharmacy through the outbox',
      access: { permission: 'cases.prescribe' },
      params: caseParams,
      body: z.strictObject({
        draft,
        overrides: z
          .array(
            z.strictObject({ check: z.enum(PRESCRIPTION_CHECKS), reason: text('give a reason to override') }),
          )
          .max(PRESCRIPTION_CHECKS.length),
        pharmacy: z.union(
          [
            z.literal('nominated'),
            z.strictObject({ odsCode: z.string().regex(/^[A-Z0-9]{3,10}$/, 'must be an ODS code') }),
            z.strictObject({ serviceId: uuid('a service id from the directory') }),
          ],
          { message: 'choose the pharmacy: nominated, or one from the directory' },
        ),
        ...extra,
      }),
      async handler({ ctx, params, body, reply }) {
        reply.code(201);
        return { prescription: await prescribing.prescribe(ctx, params.caseId, body) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/prescriptions',
      summary:
        "The case's prescriptions and where each stands (queued, sent, received, cancelled, printed, …)",
      access: { permission: 'cases.read' },
      params: caseParams,
      async handler({ ctx, params }) {
        return { prescriptions: await prescribing.list(ctx, params.caseId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/prescriptions/:prescriptionId/cancel',
      summary: 'Cancel a prescription before it is dispensed, with a reason',
      access: { permission: 'cases.prescribe' },
      params: prescriptionParams,
      body: reason,
      async handler({ ctx, params, body }) {
        return { prescription: await prescribing.cancel(ctx, params.prescriptionId, body.reason) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/prescriptions/:prescriptionId/print',
      summary: 'Record that a prescription whose message could not go is printed on paper instead',
      access: { permission: 'cases.prescribe' },
      params: prescriptionParams,
      body: reason,
      async handler({ ctx, params, body }) {
        return { prescription: await prescribing.print(ctx, params.prescriptionId, body.reason) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/prescriptions/:prescriptionId/pdf',
      summary: 'The printed prescription as a PDF (only once its printing is recorded)',
      access: { permission: 'cases.prescribe' },
      params: prescriptionParams,
      async handler({ ctx, params, reply }) {
        const pdf = await prescribing.pdf(ctx, params.prescriptionId);
        return reply
          .type('application/pdf')
          .header('content-disposition', 'inline; filename="prescription.pdf"')
          .send(pdf);
      },
    }),
  ];
}
