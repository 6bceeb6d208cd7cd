import {
  nameKey,
  normalisePostcode,
  normaliseNhsNumber,
  parseDateOfBirth,
  patientChangesSchema,
  patientRecordSchema,
  SPECIAL_NOTE_KINDS,
} from '@holdfast/core';
import { z } from 'zod';
import { BODY_LIMIT } from '../http/app.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { ndjsonLimitProblem } from './fhir.ts';
import type { PatientSearch, PatientService } from './service.ts';

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

/**
 * A date of birth typed into a search: day first (`03/05/1980`) or ISO (`1980-05-03`), or a year on
 * its own (`1980`); given back as ISO or the year. Never month first, whatever the browser's language.
 */
const searchDateOfBirth = z.string().transform((value, ctx) => {
  const r = parseDateOfBirth(value, {
    allowYearOnly: true,
    // The server's calendar date is "today": a birth after it is a typing error.
    today: new Date().toISOString().slice(0, 10),
  });
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.kind === 'date' ? r.iso : r.year;
});

/**
 * A search by what the caller knows: the NHS number alone; or a date of birth (full, or only the
 * year) with the family name; or the full date of birth with the postcode when the family name is
 * not known. A given name and a postcode narrow and rank any of the last two.
 */
const searchBody = z
  .strictObject({
    nhsNumber: nhsNumber.optional(),
    familyName: searchName.optional(),
    givenName: searchName.optional(),
    dateOfBirth: searchDateOfBirth.optional(),
    postcode: searchPostcode.optional(),
  })
  .superRefine((b, ctx) => {
    const others = (['familyName', 'givenName', 'dateOfBirth', 'postcode'] as const).filter(
      (k) => b[k] !== undefined,
    );
    if (b.nhsNumber !== undefined) {
      for (const k of others)
        ctx.addIssue({ code: 'custom', path: [k], message: 'search by NHS number alone, or leave it out' });
      return;
    }
    if (b.dateOfBirth === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['dateOfBirth'],
        message: 'is needed to search without an NHS number (a year on its own will do with the family name)',
      });
      return;
    }
    if (b.familyName !== undefined) return;
    if (b.dateOfBirth.length === 4)
      ctx.addIssue({
        code: 'custom',
        path: ['familyName'],
        message: 'is needed when only the year of birth is known',
      });
    else if (b.postcode === undefined || normalisePostcode(b.postcode) === '')
      ctx.addIssue({
        code: 'custom',
        path: ['familyName'],
        message: 'is needed, or the postcode with the full date of birth',
      });
  })
  .transform((b): PatientSearch => {
    if (b.nhsNumber !== undefined) return { nhsNumber: b.nhsNumber };
    return {
      dateOfBirth: b.dateOfBirth!,
      ...(b.familyName !== undefined ? { familyName: b.familyName } : {}),
      ...(b.givenName !== undefined ? { givenName: b.givenName } : {}),
      ...(b.postcode !== undefined ? { postcode: b.postcode } : {}),
    };
  });

const ndjsonText = z
  .string()
  .max(BODY_LIMIT)
  .superRefine((text, ctx) => {
    const problem = ndjsonLimitProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const patientParams = z.strictObject({ patientId: z.string().uuid('must be a patient id') });

/** The reason given for a break-glass access, from its header (the sites rule of reads). */
function breakGlassReason(headers: Record<string, unknown>): string | undefined {
  const reason = headers['x-break-glass-reason'];
  return typeof reason === 'string' ? reason.slice(0, 500) : undefined;
}

const editBody = z.strictObject({
  version: z
    .number('must be the version of the record you are changing')
    .int('must be the version of the record you are changing')
    .min(1, 'must be the version of the record you are changing'),
  changes: patientChangesSchema.refine(
    (c) => Object.values(c).some((v) => v !== undefined),
    'must name at least one field to change',
  ),
});

/** Patient identification: register, read, search (exact or fuzzy) and the initial FHIR load. */
export function patientRoutes(patients: PatientService): RouteSpec[] {
  return [
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients',
      summary:
        'Register a patient in the local index, at one of your sites (another site needs break-glass: X-Break-Glass-Reason); fields your role cannot read (clinical notes, access instructions) are refused by name',
      access: { permission: 'patients.write' },
      body: z.strictObject({
        homeSiteId: z.string().uuid('must be a site id'),
        record: patientRecordSchema.extend({ nhsNumber: nhsNumber.optional() }),
      }),
      async handler({ ctx, body, reply, request }) {
        const patientId = await patients.register(
          ctx,
          body.homeSiteId,
          body.record,
          breakGlassReason(request.headers),
        );
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
        return patients.read(ctx, params.patientId, breakGlassReason(request.headers));
      },
    }),
    authedRoute({
      method: 'PATCH',
      url: '/api/v1/patients/:patientId',
      summary:
        "Change a patient's address, phones, practice, pharmacy, interpreter need, emergency contacts or allergies. Give the record's `version`: a record changed since is refused (409). Only changed fields are stored; every change is kept with who and when",
      access: { permission: 'patients.edit' },
      params: patientParams,
      body: editBody,
      async handler({ ctx, params, body, request }) {
        return patients.edit(
          ctx,
          params.patientId,
          body.version,
          body.changes,
          breakGlassReason(request.headers),
        );
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/patients/:patientId/history',
      summary:
        "Every change to a patient's record (registration, edits, special notes): who, when and which fields, never the values; audited",
      access: { permission: 'patients.read' },
      params: patientParams,
      async handler({ ctx, params, request }) {
        return { history: await patients.history(ctx, params.patientId, breakGlassReason(request.headers)) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/:patientId/special-notes',
      summary:
        "Add a special note to a patient's record (end of life, DNACPR, safeguarding, care plan, other)",
      access: { permission: 'patients.edit' },
      params: patientParams,
      body: z.strictObject({
        kind: z.enum(SPECIAL_NOTE_KINDS, `must be one of: ${SPECIAL_NOTE_KINDS.join(', ')}`),
        text: z
          .string('must say what the note is')
          .trim()
          .min(1, 'must say what the note is')
          .max(2000, 'must be at most 2000 characters'),
      }),
      async handler({ ctx, params, body, request, reply }) {
        await patients.addSpecialNote(ctx, params.patientId, body, breakGlassReason(request.headers));
        return reply.code(201).send({ patientId: params.patientId });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/safeguarding-concerns',
      summary:
        "Raise a safeguarding concern from a case: recorded on the case's timeline and as a safeguarding special note on its patient, with who and when",
      access: { permission: 'patients.edit' },
      params: z.strictObject({ caseId: z.string().uuid('must be a case id') }),
      body: z.strictObject({
        concern: z
          .string('must describe the concern')
          .trim()
          .min(1, 'must describe the concern')
          .max(2000, 'must be at most 2000 characters'),
      }),
      async handler({ ctx, params, body, reply }) {
        return reply
          .code(201)
          .send(await patients.raiseSafeguardingConcern(ctx, params.caseId, body.concern));
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
      url: '/api/v1/patients/:patientId/break-glass',
      summary:
        "Break-glass read of a patient's record outside your sites (its special notes with it), for a case you are working. Needs a stated `reason`; the read is audited flagged break-glass with the reason. The same as the record read with X-Break-Glass-Reason, with the reason in the body (any characters)",
      access: { permission: 'patients.break_glass' },
      params: patientParams,
      body: z.strictObject({
        reason: z
          .string('must state why you need the record')
          .trim()
          .min(10, 'must say why you need the record (at least 10 characters)')
          .max(500, 'must be at most 500 characters'),
      }),
      async handler({ ctx, params, body }) {
        return patients.read(ctx, params.patientId, body.reason);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/patients/search',
      summary:
        'Find patients by NHS number; or by date of birth (dd/mm/yyyy, ISO, or a year alone) with the family name; or by full date of birth and postcode. Given name and postcode narrow and rank. Typo-tolerant, a day/month-swapped date found after exact ones; in the body, never the URL',
      access: { permission: 'patients.search' },
      search: true,
      body: searchBody,
      async handler({ ctx, body }) {
        return patients.search(ctx, body);
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
