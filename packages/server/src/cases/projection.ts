import {
  canonicalJson,
  consultationNews2,
  foldCaseEvent,
  initialCaseState,
  initialReconciliationFold,
  reconciliationResolved,
  TERMINAL_STATUSES,
  type CaseFold,
  type CaseState,
  type HeldEvent,
  type ReconciliationFold,
} from '@holdfast/core';
import { sql } from 'kysely';
import { foldsTypes, type Projection, type ProjectedEvent } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';
import {
  createReconciliationTable,
  deleteReconciliationItemsOfCase,
  writeReconciliationItems,
} from '../reconciliation/projection.ts';

/** One row per case: the lifecycle state, the queue fields and what national reporting counts. */
export interface CasesTable {
  tenant: string;
  case_id: string;
  site_id: string;
  /** Lifecycle state (core `CaseState`) as JSON: the service decides commands against it. */
  state: string;
  status: string;
  /** Bumped by every event of the case: the compare-and-set key for commands. */
  version: number;
  received_at: number;
  answered_at: number | null;
  abandoned_at: number | null;
  closed_at: number | null;
  caller: string;
  /** Who opened the case (the ledger actor of `case.opened`, `user:<id>`): their open calls. */
  opened_by: string | null;
  patient_id: string | null;
  location: string;
  complaint: string;
  pathway_id: string | null;
  pathway_version: string | null;
  /** Triage answers in order, including superseded ones (JSON array). */
  answers: string;
  disposition_kind: string | null;
  dx_code: string | null;
  disposition_label: string | null;
  skill_set: string | null;
  timeframe_minutes: number | null;
  ambulance_category: number | null;
  care_advice: string;
  sample: number;
  deadline_at: number | null;
  claimed_by: string | null;
  escalated: number;
  failed_callbacks: number;
  triaged: number;
  assessed: number;
  /** NEWS2 of the latest consultation record with observations: null unless all 7 were scored. */
  news2_total: number | null;
  /** Null when unknown: a partial set not yet above low (or no score). */
  news2_band: string | null;
  /** How many of the 7 parameters the latest score has; null when there is no score. */
  news2_present: number | null;
  /** Why NEWS2 was not computed ('under_16', 'pregnant'), when it was not. */
  news2_not_applicable: string | null;
  /** Welfare checks recorded on the case, oldest first (JSON array). */
  welfare_checks: string;
  outcome: string | null;
  /** Reconciliation fold state (core `ReconciliationFold`) as JSON: items, held branch, consultation. */
  reconciliation: string;
  /** Open reconciliation items on this case: the case shows it needs a person's decision. */
  open_reconciliation: number;
  updated_hlc: string;
}

/**
 * Which case a client's Idempotency-Key opened, per tenant and user (the actor who sent it), so a
 * retried POST /api/v1/calls finds its case instead of opening another. From `case.opened`.
 */
export interface CallRequestsTable {
  tenant: string;
  actor: string;
  idempotency_key: string;
  case_id: string;
  request_hash: string;
}

export type CaseTables = { cases: CasesTable; call_requests: CallRequestsTable };

export function casesDb(db: Db | Tx) {
  return db.withTables<CaseTables>();
}

/** Wall-clock milliseconds of an event, from its hybrid logical clock. */
export function eventTimeMs(e: { hlc: string }): number {
  return Number(e.hlc.slice(0, 15));
}

export interface TriageAnswerRecord {
  nodeId: string;
  value: string | string[] | number;
  supersedes: boolean;
  at: number;
}

const folds = foldsTypes('case.', reconciliationResolved.type);

export const casesProjection: Projection = {
  name: 'cases',
  // 2: reconciliation (collisions become items instead of failing the fold).
  // 3: call_requests (the Idempotency-Key of each call).
  // 4: NEWS2 partial scores (no total, parameters present), NEWS2 not applicable, welfare checks.
  // 5: opened_by (each adviser's open calls), calls ended without a disposition.
  version: 5,
  tables: ['cases', 'reconciliation_items', 'call_requests'],
  folds,
  async create(trx) {
    await sql`create table cases (
      tenant text not null,
      case_id text not null,
      site_id text not null,
      state text not null,
      status text not null,
      version integer not null,
      received_at bigint not null,
      answered_at bigint,
      abandoned_at bigint,
      closed_at bigint,
      caller text not null,
      opened_by text,
      patient_id text,
      location text not null,
      complaint text not null,
      pathway_id text,
      pathway_version text,
      answers text not null,
      disposition_kind text,
      dx_code text,
      disposition_label text,
      skill_set text,
      timeframe_minutes integer,
      ambulance_category integer,
      care_advice text not null,
      sample integer not null,
      deadline_at bigint,
      claimed_by text,
      escalated integer not null,
      failed_callbacks integer not null,
      triaged integer not null,
      assessed integer not null,
      news2_total integer,
      news2_band text,
      news2_present integer,
      news2_not_applicable text,
      welfare_checks text not null,
      outcome text,
      reconciliation text not null,
      open_reconciliation integer not null,
      updated_hlc text not null,
      primary key (tenant, case_id)
    )`.execute(trx);
    await sql`create index cases_queue on cases (tenant, status, deadline_at)`.execute(trx);
    await sql`create index cases_received on cases (tenant, received_at)`.execute(trx);
    await sql`create index cases_patient on cases (tenant, patient_id, received_at)`.execute(trx);
    await sql`create index cases_opened_by on cases (tenant, opened_by, status)`.execute(trx);
    await createReconciliationTable(trx);
    // The primary key is the last line of defence against one key opening two cases on one node.
    await sql`create table call_requests (
      tenant text not null,
      actor text not null,
      idempotency_key text not null,
      case_id text not null,
      request_hash text not null,
      primary key (tenant, actor, idempotency_key)
    )`.execute(trx);
    await sql`create index call_requests_case on call_requests (tenant, case_id)`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = casesDb(trx);
    const p = e.payload as Record<string, unknown> & { caseId: string };
    if (e.type === 'case.opened') {
      const state: CaseState = initialCaseState(p.caseId);
      await db
        .insertInto('cases')
        .values({
          tenant: e.tenant,
          case_id: p.caseId,
          site_id: String(p.siteId),
          state: JSON.stringify(state),
          status: state.status,
          version: 1,
          received_at: Date.parse(String(p.receivedAt)),
          answered_at: null,
          abandoned_at: null,
          closed_at: null,
          // Canonical: a local append's payload and an imported one differ in key order, and
          // every node must hold the same row.
          caller: canonicalJson(p.caller),
          opened_by: e.actor,
          patient_id: (p.patientId as string | undefined) ?? null,
          location: String(p.location),
          complaint: String(p.presentingComplaint),
          pathway_id: null,
          pathway_version: null,
          answers: '[]',
          disposition_kind: null,
          dx_code: null,
          disposition_label: null,
          skill_set: null,
          timeframe_minutes: null,
          ambulance_category: null,
          care_advice: '[]',
          sample: 0,
          deadline_at: null,
          claimed_by: null,
          escalated: 0,
          failed_callbacks: 0,
          triaged: 0,
          assessed: 0,
          news2_total: null,
          news2_band: null,
          news2_present: null,
          news2_not_applicable: null,
          welfare_checks: '[]',
          outcome: null,
          reconciliation: JSON.stringify(initialReconciliationFold()),
          open_reconciliation: 0,
          updated_hlc: e.hlc,
        })
        .execute();
      const idempotency = p.idempotency as { key: string; requestHash: string } | undefined;
      if (idempotency) {
        await db
          .insertInto('call_requests')
          .values({
            tenant: e.tenant,
            actor: e.actor,
            idempotency_key: idempotency.key,
            case_id: p.caseId,
            request_hash: idempotency.requestHash,
          })
          // Another node may have opened a case under the same key (the user retried there while
          // the two were apart): both cases stay, the first to arrive answers later retries here.
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      return;
    }
    const row = await db
      .selectFrom('cases')
      .selectAll()
      .where('tenant', '=', e.tenant)
      .where('case_id', '=', p.caseId)
      .executeTakeFirst();
    if (!row) return; // an event for a case this node has not seen opened yet: refolded when it arrives
    const changes: Partial<CasesTable> = { version: Number(row.version) + 1, updated_hlc: e.hlc };
    if (!applyFact(e, row, changes)) await applyLifecycle(trx, e, row, changes);
    await db
      .updateTable('cases')
      .set(changes)
      .where('tenant', '=', e.tenant)
      .where('case_id', '=', p.caseId)
      .execute();
  },
  async resetSubject(trx, tenant, subject) {
    if (!subject.startsWith('case:')) return;
    await casesDb(trx)
      .deleteFrom('cases')
      .where('tenant', '=', tenant)
      .where('case_id', '=', subject.slice(5))
      .execute();
    await casesDb(trx)
      .deleteFrom('call_requests')
      .where('tenant', '=', tenant)
      .where('case_id', '=', subject.slice(5))
      .execute();
    await deleteReconciliationItemsOfCase(trx, tenant, subject.slice(5));
  },
};

function applyFact(e: ProjectedEvent, row: CasesTable, changes: Partial<CasesTable>): boolean {
  const p = e.payload as Record<string, unknown>;
  switch (e.type) {
    case 'case.patient_identified':
      changes.patient_id = String(p.patientId);
      return true;
    case 'case.callback_number_confirmed': {
      // Shown with the caller wherever the case is: this number was read back and agreed.
      const caller = JSON.parse(row.caller) as Record<string, unknown>;
      if (caller.callbackNumber === p.callbackNumber)
        changes.caller = canonicalJson({ ...caller, callbackNumberReadBack: true });
      return true;
    }
    case 'case.triage_pathway_selected':
      changes.pathway_id = String(p.pathwayId);
      changes.pathway_version = String(p.pathwayVersion);
      return true;
    case 'case.triage_answered': {
      const answers = JSON.parse(row.answers) as TriageAnswerRecord[];
      answers.push({
        nodeId: String(p.nodeId),
        value: p.value as TriageAnswerRecord['value'],
        supersedes: Boolean(p.supersedes),
        at: eventTimeMs(e),
      });
      changes.answers = JSON.stringify(answers);
      return true;
    }
    case 'case.disposition_details':
      changes.dx_code = String(p.dxCode);
      changes.disposition_label = String(p.label);
      changes.skill_set = String(p.skillSet);
      changes.timeframe_minutes = Number(p.timeframeMinutes);
      changes.ambulance_category = p.ambulanceCategory === undefined ? null : Number(p.ambulanceCategory);
      changes.care_advice = JSON.stringify(p.careAdvice);
      changes.sample = p.sample ? 1 : 0;
      return true;
    case 'case.consultation_recorded': {
      // The latest record with observations sets the case's NEWS2 (a record of notes only keeps it).
      const news2 = consultationNews2(e.v, p);
      if (news2?.kind === 'score') {
        changes.news2_total = news2.total;
        changes.news2_band = news2.band;
        changes.news2_present = news2.present;
        changes.news2_not_applicable = null;
      } else if (news2?.kind === 'not_applicable') {
        changes.news2_total = null;
        changes.news2_band = null;
        changes.news2_present = null;
        changes.news2_not_applicable = news2.reason;
      }
      return true;
    }
    case 'case.news2_outcome_confirmed':
      return true;
    case 'case.advice_given':
    case 'case.released_at_session_end':
    case 'case.note_added':
    case 'case.disposition_corrected':
    case 'case.paper_record_entered':
      return true;
    default:
      return false;
  }
}

/**
 * A lifecycle event or a reconciliation decision, through core `foldCaseEvent`: an event that cannot
 * follow the case's state is held and raises (or joins) a reconciliation item instead of failing
 * the fold, so an import never sticks on a collision and every node raises the same items.
 */
async function applyLifecycle(
  trx: Tx,
  e: ProjectedEvent,
  row: CasesTable,
  changes: Partial<CasesTable>,
): Promise<void> {
  const before: CaseFold = {
    state: JSON.parse(row.state) as CaseState,
    recon: JSON.parse(row.reconciliation) as ReconciliationFold,
  };
  const step = foldCaseEvent(before, e);
  const state = step.fold.state;
  changes.state = JSON.stringify(state);
  changes.reconciliation = canonicalJson(step.fold.recon);
  changes.open_reconciliation = step.fold.recon.items.filter((i) => i.status === 'open').length;
  changes.status = state.status;
  changes.claimed_by = state.claimantId;
  changes.escalated = state.escalated ? 1 : 0;
  changes.failed_callbacks = state.failedCallbackAttempts;
  const at = eventTimeMs(e);
  for (const applied of step.appliedEvents) lifecycleFields(applied, row, changes, at);
  if (e.type === reconciliationResolved.type && state.status !== before.state.status) {
    // A decision moved the case (reopened, released): keep the reporting fields true to the state.
    if (TERMINAL_STATUSES.includes(before.state.status)) {
      changes.closed_at = null;
      changes.abandoned_at = null;
    }
    if (state.status === 'queued' && row.deadline_at === null) {
      changes.deadline_at = Number(row.received_at) + Number(row.timeframe_minutes ?? 0) * 60_000;
    }
  }
  if (step.changedItems.length > 0) {
    await writeReconciliationItems(trx, e.tenant, row.site_id, step.changedItems);
  }
}

/** The queue and reporting fields an applied lifecycle event sets. */
function lifecycleFields(e: HeldEvent, row: CasesTable, changes: Partial<CasesTable>, at: number): void {
  const p = e.payload;
  switch (e.type) {
    case 'case.call_answered':
      changes.answered_at = at;
      return;
    case 'case.call_abandoned':
      changes.abandoned_at = at;
      return;
    case 'case.triage_started':
      changes.triaged = 1;
      return;
    case 'case.disposition_reached':
      changes.disposition_kind = String(p.kind);
      return;
    case 'case.disposition_withdrawn':
      changes.disposition_kind = null;
      return;
    case 'case.queued_for_clinician':
      // The clock started when the call came in: deadline = call time + the disposition's timeframe.
      changes.deadline_at = Number(row.received_at) + Number(row.timeframe_minutes ?? 0) * 60_000;
      return;
    case 'case.consultation_started':
      changes.assessed = 1;
      return;
    case 'case.outcome_recorded':
      changes.outcome = String(p.outcome);
      return;
    case 'case.welfare_check_recorded': {
      const checks = JSON.parse(changes.welfare_checks ?? row.welfare_checks) as unknown[];
      checks.push({
        recordedBy: String(p.recordedBy),
        recordedAt: new Date(at).toISOString(),
        checkedBy: String(p.checkedBy),
        checkedAt: String(p.checkedAt),
        outcome: String(p.outcome),
        ...(p.details === undefined ? {} : { details: String(p.details) }),
      });
      changes.welfare_checks = JSON.stringify(checks);
      return;
    }
    case 'case.closed':
      changes.closed_at = at;
      return;
    case 'case.call_ended':
      // When the call ended (the encounter's end); no practice message follows (that is for a close).
      changes.closed_at = at;
      changes.disposition_kind = null;
      return;
    default:
      return;
  }
}
