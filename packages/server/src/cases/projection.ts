import { evolve, initialCaseState, type CaseEvent, type CaseState } from '@holdfast/core';
import { sql } from 'kysely';
import type { Projection, ProjectedEvent } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

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
  news2_total: number | null;
  news2_band: string | null;
  outcome: string | null;
  updated_hlc: string;
}

export type CaseTables = { cases: CasesTable };

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

export const casesProjection: Projection = {
  name: 'cases',
  version: 1,
  tables: ['cases'],
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
      outcome text,
      updated_hlc text not null,
      primary key (tenant, case_id)
    )`.execute(trx);
    await sql`create index cases_queue on cases (tenant, status, deadline_at)`.execute(trx);
    await sql`create index cases_received on cases (tenant, received_at)`.execute(trx);
    await sql`create index cases_patient on cases (tenant, patient_id, received_at)`.execute(trx);
  },
  async apply(trx, e) {
    if (!e.type.startsWith('case.')) return;
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
          caller: JSON.stringify(p.caller),
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
          outcome: null,
          updated_hlc: e.hlc,
        })
        .execute();
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
    if (!applyFact(e, row, changes)) applyLifecycle(e, row, changes);
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
  },
};

function applyFact(e: ProjectedEvent, row: CasesTable, changes: Partial<CasesTable>): boolean {
  const p = e.payload as Record<string, unknown>;
  switch (e.type) {
    case 'case.patient_identified':
      changes.patient_id = String(p.patientId);
      return true;
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
      const news2 = p.news2 as { total: number; band: string } | undefined;
      if (news2) {
        changes.news2_total = news2.total;
        changes.news2_band = news2.band;
      }
      return true;
    }
    case 'case.advice_given':
      return true;
    default:
      return false;
  }
}

function applyLifecycle(e: ProjectedEvent, row: CasesTable, changes: Partial<CasesTable>): void {
  const state = evolve(JSON.parse(row.state) as CaseState, { type: e.type, payload: e.payload } as CaseEvent);
  changes.state = JSON.stringify(state);
  changes.status = state.status;
  changes.claimed_by = state.claimantId;
  changes.escalated = state.escalated ? 1 : 0;
  changes.failed_callbacks = state.failedCallbackAttempts;
  const at = eventTimeMs(e);
  const p = e.payload as Record<string, unknown>;
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
    case 'case.closed':
      changes.closed_at = at;
      return;
    default:
      return;
  }
}
