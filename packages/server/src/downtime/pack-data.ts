import {
  caseReference,
  mayReadNoteText,
  isRestricted,
  type CaseState,
  type PatientRecord,
  type Role,
  type SpecialNoteKind,
} from '@holdfast/core';
import { formatLondonDateTime } from '@holdfast/core/queue/priority';
import { displayNamesOf, providerName, sitesOf } from '../accounts/reads.ts';
import type { CasesTable } from '../cases/projection.ts';
import { openCasesOfSites } from '../cases/reads.ts';
import { currentRecordsOf } from '../patients/reads.ts';
import type { Store } from '../store/store.ts';

/**
 * What a downtime pack holds, read from the projections of one node: the open cases of some sites
 * (call-backs first), each with what staff need to carry on on paper. Pure data: the PDF is drawn
 * from it by `renderDowntimePack`.
 */

/** At most this many open cases go into one pack (more would be a book, not a pack). */
export const PACK_CASE_LIMIT = 2_000;

/** Statuses in which a clinician call-back is owed: the CAS queue. */
const CALLBACK_STATUSES = new Set(['queued', 'claimed', 'in_consultation', 'follow_up_arranged']);

/**
 * Statuses of a call still with the health adviser who took it (no disposition confirmed yet): if
 * systems fail now, that adviser carries on on paper and must find the call in the pack.
 */
const WITH_ADVISER_STATUSES = new Set(['call_received', 'answered', 'in_triage', 'disposition_reached']);

/** Statuses in which a clinician holds the case. */
const HELD_STATUSES = new Set(['claimed', 'in_consultation']);

export const NOTE_LABELS: Record<SpecialNoteKind, string> = {
  end_of_life: 'End of life',
  dnacpr: 'DNACPR',
  safeguarding: 'Safeguarding',
  care_plan: 'Care plan',
  other: 'Note',
};

export interface PackCase {
  caseId: string;
  /** The short reference staff write on paper and the case screen shows (core `caseReference`). */
  reference: string;
  /**
   * Who holds the case (display name): the clinician while it is claimed or in consultation, the
   * adviser who took the call while it is in progress with them; null otherwise.
   */
  heldBy: string | null;
  siteName: string;
  status: string;
  /** Patient name, or the caller's when no patient has been identified yet. */
  patientName: string;
  patientIdentified: boolean;
  nhsNumber: string | null;
  dateOfBirth: string | null;
  /** The date (and time) of death, when the patient has died (a relative may be calling). */
  deceasedAt: string | null;
  /**
   * A restricted record: its address and contacts are not in the general record, so not in the pack
   * either; the pack says so.
   */
  restricted: boolean;
  callbackNumber: string;
  disposition: string | null;
  /** Shown with dispositions from the sample protocols. */
  sample: boolean;
  receivedAtMs: number;
  /** When the disposition's window ends (received + timeframe); null before a disposition. */
  deadlineMs: number | null;
  specialNotes: string[];
}

export interface KeyContact {
  name: string;
  phone: string;
  note?: string;
}

export interface DowntimePackData {
  providerName: string;
  tenant: string;
  sites: { siteId: string; name: string }[];
  generatedAtMs: number;
  generatedBy: string;
  /** Cases owed a clinician call-back, deadline first. */
  callbacks: PackCase[];
  /** Calls in progress with health advisers (no disposition confirmed yet), oldest call first. */
  withAdvisers: PackCase[];
  /** Every other open case, deadline first (cases without one last, oldest first). */
  otherOpen: PackCase[];
  /** True when there were more open cases than `PACK_CASE_LIMIT`. */
  truncated: boolean;
  contacts: KeyContact[];
  /** Cars, crews and home visits in progress (the dispatch module's), when the node dispatches. */
  dispatch?: PackDispatch;
  /** Each treatment centre's appointments for the next hours (the booking module's), when it has centres. */
  appointments?: PackAppointments;
}

/** Treatment-centre appointments (C6) on paper: each centre of the pack's sites with its list. */
export interface PackAppointments {
  /** The list runs from an hour before this (a patient late or waiting) to `hours` after it. */
  fromMs: number;
  hours: number;
  centres: {
    centreId: string;
    name: string;
    address: string;
    phone: string;
    appointments: {
      caseId: string;
      reference: string;
      startLocal: string;
      patientName: string;
      kind: string;
      state: 'booked' | 'arrived';
    }[];
  }[];
}

/** Home visits (C7) on paper: each car with its crew and status, each open visit with its car. */
export interface PackDispatch {
  vehicles: { callSign: string; status: string; crew: string; position: string; visit: string | null }[];
  visits: {
    caseId: string;
    reference: string;
    deadlineMs: number;
    timing: string;
    address: string;
    reason: string;
    car: string | null;
    /** Only where the reader's role may see the way in (core mayReadVisitAccessInstructions). */
    accessInstructions: string | null;
  }[];
}

export interface PackScope {
  tenant: string;
  /** Sites whose cases go in; all the provider's sites when absent. */
  siteIds?: readonly string[];
  /** Roles whose field-level rules decide which special-note text is printed. */
  roles: readonly Role[];
  generatedBy: string;
  nowMs: number;
  contacts: readonly KeyContact[];
}

/** Deadline order: earliest deadline first, then cases with no deadline, oldest call first. */
export function byDeadline(a: PackCase, b: PackCase): number {
  const da = a.deadlineMs ?? Number.POSITIVE_INFINITY;
  const db = b.deadlineMs ?? Number.POSITIVE_INFINITY;
  if (da !== db) return da < db ? -1 : 1;
  return a.receivedAtMs - b.receivedAtMs || a.caseId.localeCompare(b.caseId);
}

export async function collectPackData(store: Store, scope: PackScope): Promise<DowntimePackData> {
  const { tenant } = scope;
  return store.withTenant(tenant, async (trx) => {
    const allSites = await sitesOf(trx, tenant);
    const sites = scope.siteIds ? allSites.filter((s) => scope.siteIds!.includes(s.siteId)) : allSites;
    const name = await providerName(trx, tenant);
    const rows = await openCasesOfSites(
      trx,
      tenant,
      sites.map((s) => s.siteId),
      PACK_CASE_LIMIT + 1,
    );
    const truncated = rows.length > PACK_CASE_LIMIT;
    const kept = rows.slice(0, PACK_CASE_LIMIT);
    const patientIds = [...new Set(kept.map((r) => r.patient_id).filter((p): p is string => !!p))];
    const patients = await currentRecordsOf(trx, tenant, patientIds, scope.nowMs);
    // Who took the calls still with advisers: the user who recorded each call (its case.opened).
    const takenBy = new Map<string, string>();
    const inProgress = kept.filter((r) => WITH_ADVISER_STATUSES.has(r.status));
    for (let i = 0; i < inProgress.length; i += 500) {
      const opened = await trx
        .selectFrom('ledger_events')
        .select(['subject', 'actor'])
        .where('tenant', '=', tenant)
        .where(
          'subject',
          'in',
          inProgress.slice(i, i + 500).map((r) => `case:${r.case_id}`),
        )
        .where('type', '=', 'case.opened')
        .execute();
      for (const e of opened)
        if (e.subject && e.actor.startsWith('user:'))
          takenBy.set(e.subject.slice('case:'.length), e.actor.slice(5));
    }
    // Who holds the claimed cases, by the name colleagues know them by.
    const holderIds = [
      ...new Set([...kept.map((r) => r.claimed_by), ...takenBy.values()].filter((u): u is string => !!u)),
    ];
    const holders = await displayNamesOf(trx, tenant, holderIds);
    const siteName = new Map(sites.map((s) => [s.siteId, s.name]));
    const cases = kept.map((row) =>
      packCase(row, siteName.get(row.site_id) ?? row.site_id, patients, holders, takenBy, scope.roles),
    );
    cases.sort(byDeadline);
    return {
      providerName: name ?? tenant,
      tenant,
      sites,
      generatedAtMs: scope.nowMs,
      generatedBy: scope.generatedBy,
      callbacks: cases.filter((c) => CALLBACK_STATUSES.has(c.status)),
      withAdvisers: cases
        .filter((c) => WITH_ADVISER_STATUSES.has(c.status))
        .sort((a, b) => a.receivedAtMs - b.receivedAtMs || a.caseId.localeCompare(b.caseId)),
      otherOpen: cases.filter(
        (c) => !CALLBACK_STATUSES.has(c.status) && !WITH_ADVISER_STATUSES.has(c.status),
      ),
      truncated,
      contacts: [...scope.contacts],
    };
  });
}

function packCase(
  row: CasesTable,
  siteName: string,
  patients: Map<string, PatientRecord>,
  holders: ReadonlyMap<string, string>,
  takenBy: ReadonlyMap<string, string>,
  roles: readonly Role[],
): PackCase {
  const state = JSON.parse(row.state) as CaseState;
  const caller = JSON.parse(row.caller) as { name: string; callbackNumber: string };
  const patient = row.patient_id ? patients.get(row.patient_id) : undefined;
  const receivedAtMs = Number(row.received_at);
  const deadlineMs =
    row.deadline_at !== null
      ? Number(row.deadline_at)
      : row.timeframe_minutes !== null
        ? receivedAtMs + Number(row.timeframe_minutes) * 60_000
        : null;
  const notes = (patient?.specialNotes ?? []).map((note) => {
    const label = NOTE_LABELS[note.kind];
    // The access layer's field rule (core accounts/access.ts), as on every screen.
    if (!mayReadNoteText(roles, note.kind)) return `${label}: a note exists (text for clinical staff only)`;
    return `${label}: ${note.text}`;
  });
  const holderId = HELD_STATUSES.has(state.status)
    ? row.claimed_by
    : WITH_ADVISER_STATUSES.has(state.status)
      ? (takenBy.get(row.case_id) ?? null)
      : null;
  return {
    caseId: row.case_id,
    reference: caseReference(row.case_id),
    heldBy: holderId ? (holders.get(holderId) ?? 'a colleague (name not known on this node)') : null,
    siteName,
    status: state.status,
    patientName: patient ? `${patient.givenName} ${patient.familyName}` : `Caller: ${caller.name}`,
    patientIdentified: !!patient,
    nhsNumber: patient?.nhsNumber ?? null,
    dateOfBirth: patient?.dateOfBirth ?? null,
    deceasedAt: patient?.deceasedAt ?? null,
    restricted: patient ? isRestricted(patient) : false,
    callbackNumber: caller.callbackNumber,
    disposition: row.disposition_label
      ? `${row.dx_code ? `${row.dx_code} ` : ''}${row.disposition_label}`
      : row.disposition_kind,
    sample: Number(row.sample) === 1,
    receivedAtMs,
    deadlineMs,
    specialNotes: notes,
  };
}

/** "Sun 29 Nov 2026 09:00 GMT": what staff read on the wall clock. */
export function londonTime(ms: number): string {
  return formatLondonDateTime(ms);
}
