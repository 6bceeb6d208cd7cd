import { z } from 'zod';
import { WALL_CLOCK_TIME } from './opening-times.ts';
import { CAPACITY_STATUSES, SERVICE_TYPES, WEEKDAYS } from './types.ts';

/**
 * The checks a directory service passes wherever it enters: an admin's edit, a directory file, the
 * ledger event. Messages are plain words; values are never repeated back.
 */

/** A symptom group id as triage pathways name it ('chest-pain'). */
export const SYMPTOM_GROUP = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A service's id: a UUID, as every id of ours is (the ODS code is the name people know it by). */
export const SERVICE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A UK postcode as people write it: outward code, space optional, inward code. */
export const UK_POSTCODE_AS_WRITTEN = /^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$/;

/** A postcode written the one way the directory and the postcode table keep it: capitals, one space. */
export function postcodeAsWritten(text: string): string {
  const compact = text.replace(/\s+/g, '').toUpperCase();
  return compact.length > 3 ? `${compact.slice(0, -3)} ${compact.slice(-3)}` : compact;
}

const sessionSchema = z.strictObject({
  opens: z
    .string()
    .regex(WALL_CLOCK_TIME, 'must be a time of day as HH:MM')
    .refine((t) => t !== '24:00', 'must be 23:59 or earlier (a session cannot open at 24:00)'),
  closes: z.string().regex(WALL_CLOCK_TIME, 'must be a time of day as HH:MM (24:00 for midnight)'),
});
const sessionsSchema = z.array(sessionSchema).max(12, 'at most 12 sessions a day');

export const openingTimesSchema = z.strictObject({
  alwaysOpen: z.boolean(),
  weekly: z.strictObject(
    Object.fromEntries(WEEKDAYS.map((d) => [d, sessionsSchema])) as Record<
      (typeof WEEKDAYS)[number],
      typeof sessionsSchema
    >,
  ),
  bankHolidays: sessionsSchema.nullable(),
  exceptions: z
    .array(
      z.strictObject({
        date: z.iso.date('must be a date as YYYY-MM-DD'),
        sessions: sessionsSchema,
        note: z
          .string()
          .trim()
          .min(1)
          .max(200)
          .regex(/^[^;()]*$/, 'must not contain semicolons or brackets')
          .optional(),
      }),
    )
    .max(400),
});

const dxCode = z
  .string()
  .max(32)
  .regex(/^[A-Za-z0-9-]+$/, 'must be a Dx code (letters, digits and hyphens)');

export const referralRouteSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('message'),
    endpointId: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must name a message endpoint'),
  }),
  z.strictObject({ kind: z.literal('phone'), phone: z.string().trim().min(3).max(40) }),
  z.strictObject({ kind: z.literal('walk_in') }),
]);

/** A service as staff define it: everything but its live capacity. */
export const directoryServiceDefinitionSchema = z
  .strictObject({
    serviceId: z.string().regex(SERVICE_ID, 'must be a service id (a UUID in lower case)'),
    name: z.string().trim().min(1).max(200),
    odsCode: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9]{3,10}$/, 'must be an ODS code (3 to 10 letters and digits)'),
    type: z.enum(SERVICE_TYPES),
    address: z.array(z.string().trim().min(1).max(200)).min(1).max(6),
    postcode: z
      .string()
      .trim()
      .regex(UK_POSTCODE_AS_WRITTEN, 'must be a UK postcode')
      .transform(postcodeAsWritten),
    latitude: z
      .number()
      .min(49, 'must be a UK latitude (49 to 61)')
      .max(61, 'must be a UK latitude (49 to 61)'),
    longitude: z
      .number()
      .min(-9, 'must be a UK longitude (-9 to 2.1)')
      .max(2.1, 'must be a UK longitude (-9 to 2.1)'),
    phone: z.string().trim().min(3).max(40).nullable(),
    openingTimes: openingTimesSchema,
    dispositions: z.array(dxCode).min(1, 'must list at least one Dx code').max(200),
    symptomGroups: z.array(z.string().regex(SYMPTOM_GROUP, 'must be a symptom group id')).max(200),
    ageRange: z
      .strictObject({
        minYears: z.number().int().min(0).max(130),
        maxYears: z.number().int().min(0).max(130).nullable(),
      })
      .refine((r) => r.maxYears === null || r.maxYears >= r.minYears, {
        message: 'the oldest age is below the youngest',
        path: ['maxYears'],
      }),
    sexes: z.array(z.enum(['male', 'female'])).max(2),
    referral: referralRouteSchema,
    booking: z
      .strictObject({
        slotsEndpointId: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must name a message endpoint'),
      })
      .nullable(),
    notClinicallyValidated: z.boolean(),
  })
  .superRefine((s, ctx) => {
    const dates = new Set<string>();
    s.openingTimes.exceptions.forEach((e, i) => {
      if (dates.has(e.date))
        ctx.addIssue({
          code: 'custom',
          path: ['openingTimes', 'exceptions', i, 'date'],
          message: 'the same date is listed twice',
        });
      dates.add(e.date);
    });
  });
export type DirectoryServiceDefinition = z.infer<typeof directoryServiceDefinitionSchema>;

export const capacitySchema = z.strictObject({
  status: z.enum(CAPACITY_STATUSES),
  note: z.string().trim().min(1).max(500).optional(),
});
