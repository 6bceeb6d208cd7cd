import type { SpecialNoteKind } from '../patients/events.ts';
import { hasPermission, type Permission, type Role } from './roles.ts';

/**
 * The access policy: one place that says which subjects (a patient's record, a case and what hangs
 * off it) a user may read and write at a site, and which fields of a patient's record their roles
 * may see and therefore write. Every module's service asks it; no route decides for itself.
 *
 * Sites. Work is scoped to the user's sites:
 * - a case is read and acted on at its own site, by users of that site, by those who work across
 *   sites (`queue.all_sites`), and by those who worked on it (the adviser who took a call for another
 *   site, a clinician who held it);
 * - a patient's record is read and written at its home site; outside one's sites it needs
 *   break-glass (the permission and a stated reason, flagged for review). Working across sites does
 *   not open records: a shift manager breaks glass like anyone else;
 * - registering a patient is a write at the home site chosen, under the record's rule.
 * A user with no sites sees nothing site-scoped (only the cases they worked on).
 *
 * Fields. A role that cannot read a field cannot write it: clinical notes need
 * `patients.clinical_notes.read`, access instructions for the home need
 * `patients.access_instructions.read`, and the text of a safeguarding note goes to the roles that act
 * on it (clinical staff, and those sending someone to the home).
 */
export interface Viewer {
  roles: readonly Role[];
  siteIds: readonly string[];
}

export type SubjectKind = 'patient' | 'case';

export type SiteDecision =
  | { allowed: true; via: 'own_site' | 'all_sites' | 'involved' | 'break_glass' }
  | {
      allowed: false;
      /** Break-glass would open it: the caller holds the permission but gave no (or too short a) reason. */
      breakGlassPossible: boolean;
      /** Plain words for the refusal (names no patient). */
      reason: string;
    };

/** A stated break-glass reason must be at least this long. */
export const BREAK_GLASS_REASON_MIN = 10;

/**
 * Whether `viewer` may read or write a subject of `kind` at `siteId`. `involved`: the viewer acted on
 * the case before (cases only). `breakGlassReason`: the reason stated for opening a record outside
 * one's sites (patients only).
 */
export function siteDecision(
  viewer: Viewer,
  kind: SubjectKind,
  siteId: string,
  context: { involved?: boolean; breakGlassReason?: string | undefined } = {},
): SiteDecision {
  if (viewer.siteIds.includes(siteId)) return { allowed: true, via: 'own_site' };
  if (kind === 'case') {
    if (hasPermission(viewer.roles, 'queue.all_sites')) return { allowed: true, via: 'all_sites' };
    if (context.involved) return { allowed: true, via: 'involved' };
    return {
      allowed: false,
      breakGlassPossible: false,
      reason:
        viewer.siteIds.length === 0
          ? 'you have no sites yet, so you see no cases: ask your administrator to add your sites'
          : 'this case belongs to a site that is not one of yours',
    };
  }
  const holds = hasPermission(viewer.roles, 'patients.break_glass');
  const reasoned = (context.breakGlassReason?.trim().length ?? 0) >= BREAK_GLASS_REASON_MIN;
  if (holds && reasoned) return { allowed: true, via: 'break_glass' };
  return {
    allowed: false,
    breakGlassPossible: holds,
    reason: holds
      ? `this patient is outside your sites: state a reason (at least ${BREAK_GLASS_REASON_MIN} characters) in the X-Break-Glass-Reason header; the access is flagged for review`
      : 'this patient is outside your sites',
  };
}

/** The sites whose cases a viewer lists (queues, open calls, downtime packs): theirs, or all. */
export function caseListSites(viewer: Viewer): readonly string[] | 'all' {
  return hasPermission(viewer.roles, 'queue.all_sites') ? 'all' : viewer.siteIds;
}

/** Fields of a patient's record only some roles may read, and so write. */
export const PROTECTED_PATIENT_FIELDS = {
  clinicalNotes: 'patients.clinical_notes.read',
  accessInstructions: 'patients.access_instructions.read',
} as const satisfies Record<string, Permission>;
export type ProtectedPatientField = keyof typeof PROTECTED_PATIENT_FIELDS;

/**
 * Special notes whose text only some roles see. Everyone who may read the record sees that such a
 * note exists (it changes what they do next: pass the call to a clinician); the text goes to the
 * roles that act on it.
 */
export const RESTRICTED_NOTE_KINDS: Partial<Record<SpecialNoteKind, readonly Permission[]>> = {
  safeguarding: ['patients.clinical_notes.read', 'patients.access_instructions.read'],
};

/** Whether the viewer's roles may read (and so write) a protected field of a patient's record. */
export function mayReadField(roles: readonly Role[], field: ProtectedPatientField): boolean {
  return hasPermission(roles, PROTECTED_PATIENT_FIELDS[field]);
}

/** Whether the viewer's roles may read (and so write) the text of a special note of this kind. */
export function mayReadNoteText(roles: readonly Role[], kind: SpecialNoteKind): boolean {
  const needs = RESTRICTED_NOTE_KINDS[kind];
  return !needs || needs.some((p) => hasPermission(roles, p));
}

/**
 * The roles among `roles` that read what a patient told a clinician in confidence: clinical notes, or
 * the text of a restricted special note (a safeguarding concern). Granting one is a clinical grant (a
 * recorded reason, an alert to the other administrators): the same rule as the reads above, so a
 * role that reads safeguarding text can never be granted as if it were clerical.
 */
export function rolesReadingConfidences(roles: readonly Role[]): Role[] {
  const restrictedKinds = Object.keys(RESTRICTED_NOTE_KINDS) as SpecialNoteKind[];
  return roles.filter(
    (role) =>
      mayReadField([role], 'clinicalNotes') || restrictedKinds.some((kind) => mayReadNoteText([role], kind)),
  );
}

/**
 * A patient's record as the viewer's roles may see it: protected fields they cannot read are left
 * out and a restricted note keeps its kind but not its text. `withheld` names what was left out
 * (`clinicalNotes`, `specialNotes[2].text`).
 */
export function redactPatientFields<
  R extends { clinicalNotes?: unknown; accessInstructions?: unknown; specialNotes?: readonly N[] },
  N extends { kind: SpecialNoteKind; text: string },
>(
  roles: readonly Role[],
  record: R,
): {
  record: Omit<R, 'specialNotes'> & {
    specialNotes?: ({ kind: SpecialNoteKind; text: string } | { kind: SpecialNoteKind; withheld: true })[];
  };
  withheld: string[];
} {
  const withheld: string[] = [];
  const out: Record<string, unknown> = { ...record };
  for (const field of Object.keys(PROTECTED_PATIENT_FIELDS) as ProtectedPatientField[]) {
    if (mayReadField(roles, field)) continue;
    if (out[field] !== undefined) withheld.push(field);
    delete out[field];
  }
  if (record.specialNotes)
    out.specialNotes = record.specialNotes.map((note, i) => {
      if (mayReadNoteText(roles, note.kind)) return note;
      withheld.push(`specialNotes[${i}].text`);
      return { kind: note.kind, withheld: true as const };
    });
  return { record: out as ReturnType<typeof redactPatientFields<R, N>>['record'], withheld };
}

/**
 * The fields of a patient write (a registration) that the viewer's roles cannot read, and so may not
 * write: `clinicalNotes`, `accessInstructions`. Empty when all may be written. A safeguarding note is
 * the one exception by design: whoever hears a concern records it (the adviser on the phone), even
 * though its text then goes only to the roles that act on it.
 */
export function unwritablePatientFields(
  roles: readonly Role[],
  write: { clinicalNotes?: unknown; accessInstructions?: unknown },
): ProtectedPatientField[] {
  return (Object.keys(PROTECTED_PATIENT_FIELDS) as ProtectedPatientField[]).filter(
    (field) => write[field] !== undefined && write[field] !== null && !mayReadField(roles, field),
  );
}

/**
 * Home visits (C7): how to get into the home (a key-safe code, entry arrangements) goes to the crew
 * of the car sent to the visit while they are on shift for it, and to clinicians (who arrange and
 * review visits); the dispatcher sees the address, not the way in. The one rule for every reader of
 * a visit (the visit, the board, the crew's phone, the downtime pack).
 */
export function mayReadVisitAccessInstructions(
  roles: readonly Role[],
  context: { crewOfAllocatedCar: boolean },
): boolean {
  return context.crewOfAllocatedCar || hasPermission(roles, 'consultations.write');
}
