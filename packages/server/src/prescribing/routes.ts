import { PRESCRIPTION_CHECKS } from '@holdfast/core';
import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { ALLERGY_SOURCES } from './events.ts';
import { PrescriptionBlockedError, type PrescribingService } from './service.ts';

const caseParams = z.strictObject({ caseId: z.string().uuid('must be a case id') });
const patientParams = z.strictObject({ patientId: z.string().uuid('must be a patient id') });
const prescriptionParams = z.strictObject({ prescriptionId: z.string().uuid('must be a prescription id') });
const words = (what: string, max = 2000) =>
  z.string(what).trim().min(1, what).max(max, `must be at most ${max} characters`);
const source = z.enum(ALLERGY_SOURCES, {
  message: 'must be caller, record or clinician (who the fact came from)',
});
const reason = z.strictObject({ reason: words('give the reason') });

const medicineCode = (missing: string) =>
  z.string(missing).regex(/^\d{6,18}$/, 'must be a medicine code from the formulary');

const draft = z.strictObject({
  medicineCode: medicineCode('choose a medicine'),
  doseMg: z.number('give the dose in mg').positive('must be more than 0 mg').max(100_000, 'is far too large'),
  frequencyPerDay: z
    .number('say how many times a day')
    .int('must be a whole number of times a day')
    .min(1, 'must be at least once a day')
    .max(24, 'must be at most 24 times a day'),
  durationDays: z
    .number('give the duration in days')
    .int('must be a whole number of days')
    .min(1, 'must be at least 1 day')
    .max(366, 'must be at most 366 days'),
  quantity: z.number('give the quantity').positive('must be more than 0').max(100_000, 'is far too large'),
  quantityWords: z.string().trim().max(200, 'must be at most 200 characters').nullable().optional(),
  directions: words('give the directions for the patient', 1000),
});
const patientFacts = {
  weightKg: z
    .number()
    .positive('must be more than 0 kg')
    .max(500, 'must be at most 500 kg')
    .nullable()
    .optional(),
  pregnant: z.boolean('must be true or false').nullable().optional(),
  renalImpairment: z.boolean('must be true or false').nullable().optional(),
};
const pharmacy = z.union(
  [
    z.literal('nominated'),
    z.strictObject({ odsCode: z.string().regex(/^[A-Z0-9]{3,6}$/, 'must be an ODS code, e.g. FA123') }),
    z.strictObject({ serviceId: z.string().uuid('must be a service id from the directory') }),
  ],
  { message: 'must be "nominated", {odsCode} or {serviceId} of a community pharmacy' },
);

const toDraft = (d: z.infer<typeof draft>) => ({ ...d, quantityWords: d.quantityWords?.trim() || null });

/** Allergies and current medication on the patient, the formulary, and prescriptions of a case (C9). */
export function prescribingRoutes(prescribing: PrescribingService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/formulary',
      summary:
        "The provider's formulary: every medicine with its dose rules, cautions and interactions (sample content is marked not clinically validated)",
      access: { permission: 'patients.read' },
      async handler() {
        return prescribing.formularyView();
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/patients/:patientId/allergies-medication',
      summary:
        "The patient's allergies and current medication, each with where it came from, who said so and when",
      access: { permission: 'patients.read' },
      params: patientParams,
      async handler({ ctx, params }) {
        return prescribing.allergiesAndMedication(ctx, params.patientId);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/allergies',
      summary: 'Record an allergy on the patient, with who said so (the caller, the record, a clinician)',
      access: { permission: 'patients.edit' },
      params: patientParams,
      body: z.strictObject({
        allergen: words('name the allergen (a medicine, a class such as penicillin, a food)', 200),
        allergyClass: z
          .string()
          .trim()
          .regex(/^[a-z0-9_ -]{1,60}$/i, 'must be a class name such as penicillin or nsaid')
          .optional(),
        reaction: words('describe the reaction', 500).optional(),
        source,
        reportedBy: words('say who said so', 200),
      }),
      async handler({ ctx, params, body }) {
        return prescribing.recordAllergy(ctx, params.patientId, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/allergies/:allergyId/remove',
      summary: 'Remove a recorded allergy (recorded in error, or disproved), with the reason',
      access: { permission: 'patients.edit' },
      params: patientParams.extend({ allergyId: z.string().uuid('must be an allergy id') }),
      body: reason,
      async handler({ ctx, params, body }) {
        return prescribing.removeAllergy(ctx, params.patientId, params.allergyId, body.reason);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/medication',
      summary: 'Record a medicine the patient takes now, with who said so',
      access: { permission: 'patients.edit' },
      params: patientParams,
      body: z.strictObject({
        name: words('name the medicine', 200),
        code: medicineCode('must be a medicine code from the formulary').optional(),
        dose: words('give the dose', 200).optional(),
        source,
        reportedBy: words('say who said so', 200),
      }),
      async handler({ ctx, params, body }) {
        return prescribing.recordMedication(ctx, params.patientId, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/medication/:medicationId/stop',
      summary: 'Stop a recorded current medicine (or remove one recorded in error), with the reason',
      access: { permission: 'patients.edit' },
      params: patientParams.extend({ medicationId: z.string().uuid('must be a medication id') }),
      body: reason,
      async handler({ ctx, params, body }) {
        return prescribing.stopMedication(ctx, params.patientId, params.medicationId, body.reason);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/prescriptions/check',
      summary:
        "Run the prescribing checks on a draft (allergy, dose, daily maximum, duplicates, interactions, controlled-drug rules, cautions) with the patient's facts used",
      access: { permission: 'cases.prescribe' },
      params: caseParams,
      body: z.strictObject({ draft, ...patientFacts }),
      async handler({ ctx, params, body }) {
        return prescribing.check(ctx, params.caseId, { ...body, draft: toDraft(body.draft) });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/prescriptions',
      summary:
        'Issue a prescription from your consultation: the checks are run again here (a hard stop, or a warning without an override reason, is refused 409); sent to the pharmacy through the outbox in the same commit, or for the paper route when the pharmacy takes no messages',
      access: { permission: 'cases.prescribe' },
      params: caseParams,
      body: z.strictObject({
        draft,
        overrides: z
          .array(
            z.strictObject({
              check: z.enum(PRESCRIPTION_CHECKS, { message: 'must name one of the checks' }),
              reason: words('give the reason for overriding the warning'),
            }),
          )
          .max(20, 'must list at most 20 overrides'),
        pharmacy,
        ...patientFacts,
      }),
      async handler({ ctx, params, body, reply }) {
        try {
          const prescription = await prescribing.issue(ctx, params.caseId, {
            ...body,
            draft: toDraft(body.draft),
          });
          return reply.code(201).send({ prescription });
        } catch (error) {
          if (!(error instanceof PrescriptionBlockedError)) throw error;
          return reply.code(409).send({
            type: 'urn:holdfast:problem:prescription_blocked',
            title: 'The prescription cannot be issued',
            status: 409,
            code: 'prescription_blocked',
            detail: error.message,
            problems: error.problems,
            checks: error.checks,
          });
        }
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/prescriptions',
      summary:
        "The case's prescriptions and where each stands: queued, sent, received, dispensed, rejected, failed (print it), cancelled or printed",
      access: { permission: 'cases.read' },
      params: caseParams,
      async handler({ ctx, params }) {
        return { prescriptions: await prescribing.list(ctx, params.caseId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/prescriptions/:prescriptionId/cancel',
      summary:
        'Cancel a prescription before it is dispensed, with the reason (a cancellation message to the pharmacy when it had been sent)',
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
      summary:
        'Record that a prescription the pharmacy could not be sent is printed for the paper route (it can then never be sent without a cancellation)',
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
      summary: 'The printable paper prescription, once its printing was recorded',
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
