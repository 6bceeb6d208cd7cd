import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { zodIssuesToFieldIssues } from '../ledger/registry.ts';
import {
  DIARY_TIME_ZONE,
  LOCAL_DATE,
  LOCAL_TIME,
  addLocalDays,
  localToUtcMs,
  minutesOfTime,
  utcMsToLocal,
} from './time.ts';

/**
 * Treatment-centre diaries (C6): slot templates, clinician sessions and the slots a session is cut
 * into. A session is planned in local wall-clock time; its slots follow real elapsed time from the
 * session's first instant to its last, so a session across a clock change is as long as the clocks on
 * the wall say (01:00–03:00 on the spring-forward night is one hour, on the autumn night three).
 */

export const APPOINTMENT_KINDS = [
  'urgent_face_to_face',
  'routine',
  'dressing',
  'prescription_collection',
] as const;
export type AppointmentKind = (typeof APPOINTMENT_KINDS)[number];

export const APPOINTMENT_KIND_WORDS: Record<AppointmentKind, string> = {
  urgent_face_to_face: 'Urgent face to face',
  routine: 'Routine',
  dressing: 'Dressing',
  prescription_collection: 'Prescription collection',
};

/** Longest session: a day and a night. Longer would be two sessions. */
export const MAX_SESSION_MINUTES = 24 * 60;
export const MAX_PATIENTS_PER_SLOT = 50;

const diaryId = z
  .string({ error: 'must be an identifier' })
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - only');

export const appointmentKindSchema = z.enum(APPOINTMENT_KINDS, {
  error: `must be one of ${APPOINTMENT_KINDS.join(', ')}`,
});

export const slotTemplateSchema = z.strictObject({
  templateId: diaryId,
  name: z
    .string({ error: 'must be a name' })
    .trim()
    .min(1, 'must not be empty')
    .max(100, 'must be at most 100 characters'),
  slotMinutes: z
    .number({ error: 'must be a number of minutes' })
    .int('must be whole minutes')
    .min(5, 'must be at least 5 minutes')
    .max(240, 'must be at most 240 minutes'),
  patientsPerSlot: z
    .number({ error: 'must be a number of patients' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(MAX_PATIENTS_PER_SLOT, `must be at most ${MAX_PATIENTS_PER_SLOT}`),
  kinds: z
    .array(appointmentKindSchema, { error: 'must be a list of appointment kinds' })
    .min(1, 'must name at least one kind of appointment')
    .refine((ks) => new Set(ks).size === ks.length, 'must not name a kind twice'),
});
export type SlotTemplate = z.infer<typeof slotTemplateSchema>;

export const diarySessionSchema = z.strictObject({
  sessionId: diaryId,
  centreId: diaryId,
  roomId: diaryId,
  clinicianId: diaryId.nullable(),
  clinicianName: z
    .string({ error: 'must be a name' })
    .trim()
    .min(1, 'must not be empty')
    .max(200, 'must be at most 200 characters'),
  date: z.string({ error: 'must be a date' }).regex(LOCAL_DATE, 'must be a date as YYYY-MM-DD'),
  startLocal: z.string({ error: 'must be a time' }).regex(LOCAL_TIME, 'must be a time as HH:mm'),
  endLocal: z.string({ error: 'must be a time' }).regex(LOCAL_TIME, 'must be a time as HH:mm'),
  template: slotTemplateSchema,
});
/** `date` is the local calendar date the session starts on; an end at or before the start is the next day. */
export type DiarySession = z.infer<typeof diarySessionSchema>;

export interface Slot {
  /** `${sessionId}/${n}`, n from 1 in time order: the same on every node. */
  slotId: string;
  sessionId: string;
  centreId: string;
  roomId: string;
  startMs: number;
  endMs: number;
  /** 'YYYY-MM-DD HH:mm' in the diary's zone (Europe/London). */
  startLocal: string;
  /**
   * The zone's offset at the start, in minutes: on the autumn night 01:30 happens twice, and this
   * (60 for BST, 0 for GMT) tells the two apart.
   */
  utcOffsetMinutes: number;
  capacity: number;
  kinds: AppointmentKind[];
}

function parse<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(zodIssuesToFieldIssues(r.error, prefix));
  return r.data;
}

/** A session's first and last instants. An end at or before the start runs past midnight. */
export function sessionBounds(
  session: Pick<DiarySession, 'date' | 'startLocal' | 'endLocal'>,
  timeZone: string = DIARY_TIME_ZONE,
): { startMs: number; endMs: number } {
  const startMin = minutesOfTime(session.startLocal, 'startLocal');
  const endMin = minutesOfTime(session.endLocal, 'endLocal');
  const endDate = endMin <= startMin ? addLocalDays(session.date, 1) : session.date;
  return {
    startMs: localToUtcMs(session.date, session.startLocal, timeZone),
    endMs: localToUtcMs(endDate, session.endLocal, timeZone),
  };
}

/**
 * The slots of a session, in time order. Slots are `slotMinutes` of real time from the session's
 * start; a last piece shorter than a slot is not a slot. Throws ValidationError (naming the field) for
 * a malformed session, or one longer than a day or too short for a single slot.
 */
export function generateSlots(session: DiarySession, timeZone: string = DIARY_TIME_ZONE): Slot[] {
  const s = parse(diarySessionSchema, session, 'session');
  const { startMs, endMs } = sessionBounds(s, timeZone);
  if (endMs - startMs > MAX_SESSION_MINUTES * 60_000) {
    throw new ValidationError([
      { path: 'session.endLocal', message: 'a session must be at most 24 hours long' },
    ]);
  }
  const slotMs = s.template.slotMinutes * 60_000;
  if (endMs - startMs < slotMs) {
    throw new ValidationError([
      {
        path: 'session.endLocal',
        message: `the session is shorter than one ${s.template.slotMinutes}-minute slot`,
      },
    ]);
  }
  const slots: Slot[] = [];
  for (let n = 1, at = startMs; at + slotMs <= endMs; n++, at += slotMs) {
    const local = utcMsToLocal(at, timeZone);
    slots.push({
      slotId: `${s.sessionId}/${n}`,
      sessionId: s.sessionId,
      centreId: s.centreId,
      roomId: s.roomId,
      startMs: at,
      endMs: at + slotMs,
      startLocal: `${local.date} ${local.time}`,
      utcOffsetMinutes: local.utcOffsetMinutes,
      capacity: s.template.patientsPerSlot,
      kinds: [...s.template.kinds],
    });
  }
  return slots;
}

/** The session id and slot number of a slot id (`${sessionId}/${n}`), or null if it is not one. */
export function parseSlotId(slotId: string): { sessionId: string; n: number } | null {
  const at = slotId.lastIndexOf('/');
  if (at <= 0) return null;
  const n = Number(slotId.slice(at + 1));
  if (!Number.isInteger(n) || n < 1 || String(n) !== slotId.slice(at + 1)) return null;
  return { sessionId: slotId.slice(0, at), n };
}
