import {
  canonicalJson,
  endpointSchema,
  foldMessage,
  type Endpoint,
  type MessageEvent,
  type MessageStatus,
} from '@holdfast/core';
import { sql } from 'kysely';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

/**
 * The outbox as rows: one per message (its folded status, and the Bundle to send), and one per
 * configured endpoint. A message's row depends only on its own events, so the engine can refold it
 * when a fact about it arrives out of ledger order from another node.
 */
export interface MessagesTable {
  tenant: string;
  message_id: string;
  kind: string;
  endpoint_id: string;
  case_id: string | null;
  site_id: string | null;
  state: string;
  queued_at_ms: number;
  fail_at_ms: number;
  next_attempt_at_ms: number;
  lease_node: string | null;
  lease_until_ms: number | null;
  origin_node: string;
  /** The folded MessageStatus, canonical JSON. */
  status: string;
  /** The FHIR Bundle to send, canonical JSON. */
  bundle: string;
  updated_hlc: string;
}

export interface MessageEndpointsTable {
  tenant: string;
  endpoint_id: string;
  ods_code: string | null;
  /** The Endpoint, canonical JSON. */
  endpoint: string;
  hlc: string;
}

export type MessagingTables = { messages: MessagesTable; message_endpoints: MessageEndpointsTable };

export function messagingDb(db: Db | Tx) {
  return db.withTables<MessagingTables>();
}

export function statusOf(row: Pick<MessagesTable, 'status'>): MessageStatus {
  return JSON.parse(row.status) as MessageStatus;
}

/** Every endpoint of a provider (a handful): one read for a delivery pass or a list. */
export async function readEndpoints(db: Db | Tx, tenant: string): Promise<Endpoint[]> {
  const rows = await messagingDb(db)
    .selectFrom('message_endpoints')
    .select('endpoint')
    .where('tenant', '=', tenant)
    .orderBy('endpoint_id')
    .execute();
  return rows.map(endpointOf);
}

export function endpointOf(row: Pick<MessageEndpointsTable, 'endpoint'>): Endpoint {
  return endpointSchema.parse(JSON.parse(row.endpoint));
}

const folds = foldsTypes('message.');

export const messagingProjection: Projection = {
  name: 'messaging',
  version: 1,
  tables: ['messages', 'message_endpoints'],
  folds,
  async create(trx) {
    await sql`create table messages (
      tenant text not null,
      message_id text not null,
      kind text not null,
      endpoint_id text not null,
      case_id text,
      site_id text,
      state text not null,
      queued_at_ms bigint not null,
      fail_at_ms bigint not null,
      next_attempt_at_ms bigint not null,
      lease_node text,
      lease_until_ms bigint,
      origin_node text not null,
      status text not null,
      bundle text not null,
      updated_hlc text not null,
      primary key (tenant, message_id)
    )`.execute(trx);
    await sql`create index messages_state on messages (tenant, state, next_attempt_at_ms)`.execute(trx);
    await sql`create index messages_case on messages (tenant, case_id)`.execute(trx);
    await sql`create table message_endpoints (
      tenant text not null,
      endpoint_id text not null,
      ods_code text,
      endpoint text not null,
      hlc text not null,
      primary key (tenant, endpoint_id)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = messagingDb(trx);
    if (e.type === 'message.endpoint_set') {
      const endpoint = endpointSchema.parse(e.payload);
      const row = {
        tenant: e.tenant,
        endpoint_id: endpoint.endpointId,
        ods_code: endpoint.odsCode,
        endpoint: canonicalJson(endpoint),
        hlc: e.hlc,
      };
      await db
        .insertInto('message_endpoints')
        .values(row)
        .onConflict((oc) =>
          oc
            .columns(['tenant', 'endpoint_id'])
            .doUpdateSet({ ods_code: row.ods_code, endpoint: row.endpoint, hlc: row.hlc }),
        )
        .execute();
      return;
    }
    const messageId = (e.payload as { messageId: string }).messageId;
    const existing = await db
      .selectFrom('messages')
      .select('status')
      .where('tenant', '=', e.tenant)
      .where('message_id', '=', messageId)
      .executeTakeFirst();
    const before = existing ? statusOf(existing) : null;
    const after = foldMessage(before, { type: e.type, payload: e.payload } as MessageEvent);
    if (!after || after === before) return;
    // A row is only ever inserted by `message.queued` (a fact before it folds to nothing), and the
    // Bundle is never updated: the other facts need not read it back.
    const bundle =
      e.type === 'message.queued' ? canonicalJson((e.payload as { bundle: unknown }).bundle) : '';
    const row: MessagesTable = {
      tenant: e.tenant,
      message_id: after.messageId,
      kind: after.kind,
      endpoint_id: after.endpointId,
      case_id: after.caseId,
      site_id: after.siteId,
      state: after.state,
      queued_at_ms: after.queuedAtMs,
      fail_at_ms: after.failAtMs,
      next_attempt_at_ms: after.nextAttemptAtMs,
      lease_node: after.lease?.node ?? null,
      lease_until_ms: after.lease?.untilMs ?? null,
      origin_node: after.originNode,
      status: canonicalJson(after),
      bundle,
      updated_hlc: e.hlc,
    };
    if (!existing) {
      await db.insertInto('messages').values(row).execute();
      return;
    }
    const { tenant: _t, message_id: _m, bundle: _b, ...changed } = row;
    await db
      .updateTable('messages')
      .set(changed)
      .where('tenant', '=', e.tenant)
      .where('message_id', '=', messageId)
      .execute();
  },
  async resetSubject(trx, tenant, subject) {
    const db = messagingDb(trx);
    if (subject.startsWith('message:'))
      await db
        .deleteFrom('messages')
        .where('tenant', '=', tenant)
        .where('message_id', '=', subject.slice('message:'.length))
        .execute();
    else if (subject.startsWith('endpoint:'))
      await db
        .deleteFrom('message_endpoints')
        .where('tenant', '=', tenant)
        .where('endpoint_id', '=', subject.slice('endpoint:'.length))
        .execute();
  },
};
