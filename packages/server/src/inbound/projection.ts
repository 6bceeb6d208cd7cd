import { sql } from 'kysely';
import type { InboundReceived, ValidationRequested } from '@holdfast/core';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

/**
 * Messages in as rows: one per message taken (by sender and MessageHeader.id: the idempotency key)
 * and one per ambulance validation case (its marking on the CAS queue). Each row depends only on its
 * own subject's one event.
 */
export interface InboundMessagesTable {
  tenant: string;
  endpoint_id: string;
  message_id: string;
  kind: string;
  received_at_ms: number;
  bundle_sha256: string;
  case_id: string | null;
  answers_message_id: string | null;
}

export interface AmbulanceValidationsTable {
  tenant: string;
  case_id: string;
  endpoint_id: string;
  inbound_message_id: string;
  incident_reference: string;
  category: number;
  deadline_at_ms: number;
  deadline_from: string;
  patient_match: string;
}

export type InboundTables = {
  inbound_messages: InboundMessagesTable;
  ambulance_validations: AmbulanceValidationsTable;
};

export function inboundDb(db: Db | Tx) {
  return db.withTables<InboundTables>();
}

const folds = foldsTypes('inbound.');

export const inboundProjection: Projection = {
  name: 'inbound',
  version: 1,
  tables: ['inbound_messages', 'ambulance_validations'],
  folds,
  async create(trx) {
    // The primary key is the last line of defence against one message taken twice on one node.
    await sql`create table inbound_messages (
      tenant text not null,
      endpoint_id text not null,
      message_id text not null,
      kind text not null,
      received_at_ms bigint not null,
      bundle_sha256 text not null,
      case_id text,
      answers_message_id text,
      primary key (tenant, endpoint_id, message_id)
    )`.execute(trx);
    await sql`create table ambulance_validations (
      tenant text not null,
      case_id text not null,
      endpoint_id text not null,
      inbound_message_id text not null,
      incident_reference text not null,
      category integer not null,
      deadline_at_ms bigint not null,
      deadline_from text not null,
      patient_match text not null,
      primary key (tenant, case_id)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = inboundDb(trx);
    if (e.type === 'inbound.received') {
      const p = e.payload as InboundReceived;
      await db
        .insertInto('inbound_messages')
        .values({
          tenant: e.tenant,
          endpoint_id: p.endpointId,
          message_id: p.messageId,
          kind: p.kind,
          received_at_ms: p.receivedAtMs,
          bundle_sha256: p.bundleSha256,
          case_id: p.caseId,
          answers_message_id: p.answersMessageId,
        })
        // Taken on two nodes while they were apart: the first to arrive here stands.
        .onConflict((oc) => oc.doNothing())
        .execute();
    } else if (e.type === 'inbound.validation_requested') {
      const p = e.payload as ValidationRequested;
      await db
        .insertInto('ambulance_validations')
        .values({
          tenant: e.tenant,
          case_id: p.caseId,
          endpoint_id: p.endpointId,
          inbound_message_id: p.inboundMessageId,
          incident_reference: p.incidentReference,
          category: p.category,
          deadline_at_ms: p.deadlineAtMs,
          deadline_from: p.deadlineFrom,
          patient_match: p.patientMatch,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  },
  async resetSubject(trx, tenant, subject) {
    const db = inboundDb(trx);
    if (subject.startsWith('inbound:')) {
      const rest = subject.slice('inbound:'.length);
      // Endpoint ids have no colon, so the first one ends it.
      const at = rest.indexOf(':');
      await db
        .deleteFrom('inbound_messages')
        .where('tenant', '=', tenant)
        .where('endpoint_id', '=', rest.slice(0, at))
        .where('message_id', '=', rest.slice(at + 1))
        .execute();
    } else if (subject.startsWith('validation:')) {
      await db
        .deleteFrom('ambulance_validations')
        .where('tenant', '=', tenant)
        .where('case_id', '=', subject.slice('validation:'.length))
        .execute();
    }
  },
};
