import { ROLES, ROTA_LOCATION_KINDS, defineEventType } from '@holdfast/core';
import { z } from 'zod';

/**
 * The rota (C12). A shift is its own subject (`shift:<id>`): planned, changed (the whole shift
 * again), cancelled. A staffing minimum is its own subject too (`rota-minimum:<id>`, one id per
 * role, location and time of day), the newest in ledger order standing; a minimum of 0 switches it off.
 */
const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const location = z.strictObject({
  kind: z.enum(ROTA_LOCATION_KINDS),
  id: z.string().trim().min(1).max(128).nullable(),
});
const shift = {
  shiftId: z.string().uuid(),
  userId: z.string().uuid(),
  userName: z.string().trim().min(1).max(200),
  role: z.enum(ROLES),
  location,
  startMs: ms,
  endMs: ms,
};
const wall = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);

export const shiftPlanned = defineEventType({
  type: 'rota.shift_planned',
  v: 1,
  description: 'A shift was put on the rota: who, in which role, where, from when to when.',
  schema: z.strictObject({ ...shift, source: z.enum(['entered', 'imported']) }),
  subjectOf: (p) => `shift:${p.shiftId}`,
});

export const shiftChanged = defineEventType({
  type: 'rota.shift_changed',
  v: 1,
  description: 'A shift on the rota was changed (the whole shift as it now stands).',
  schema: z.strictObject(shift),
  subjectOf: (p) => `shift:${p.shiftId}`,
});

export const shiftCancelled = defineEventType({
  type: 'rota.shift_cancelled',
  v: 1,
  description: 'A shift was taken off the rota, with the reason.',
  schema: z.strictObject({ shiftId: z.string().uuid(), reason: z.string().trim().min(1).max(2000) }),
  subjectOf: (p) => `shift:${p.shiftId}`,
});

export const minimumSet = defineEventType({
  type: 'rota.minimum_set',
  v: 1,
  description:
    'The fewest people of a role wanted at a location (all day, or between two UK times of day); 0 removes it.',
  schema: z.strictObject({
    minimumId: z.string().uuid(),
    role: z.enum(ROLES),
    location,
    minimum: z.number().int().min(0).max(1000),
    fromLocal: wall.nullable(),
    toLocal: wall.nullable(),
  }),
  subjectOf: (p) => `rota-minimum:${p.minimumId}`,
});

export const ROTA_EVENT_TYPES = [shiftPlanned, shiftChanged, shiftCancelled, minimumSet];

export type ShiftPlanned = z.infer<typeof shiftPlanned.schema>;
export type ShiftChanged = z.infer<typeof shiftChanged.schema>;
export type MinimumSet = z.infer<typeof minimumSet.schema>;
