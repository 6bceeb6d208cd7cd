import { PostgresAdapter, sql, type QueryCreator } from 'kysely';
import { canonicalJson } from '@holdfast/core';
import { foldsTypes, type ProjectedEvent, type Projection } from '../projections/projection.ts';
import type { CoreDatabase } from '../store/schema.ts';
import type { Db, Tx } from '../store/store.ts';
import type {
  AllocationPolicySet,
  Booked,
  CentreDefined,
  SessionPlanned,
  SlotsAllocated,
  SlotsReturned,
  SlotTemplateData,
  WalkIn,
} from './events.ts';

/**
 * Diaries, custody of slots and appointments as rows. A centre's rows (its definition, templates,
 * sessions, slots, who owns each slot, allocations, policies) depend only on the centre's events, folded
 * in ledger order; an appointment's row only on its case's booking events. The scheme's invariant
 * (each booking written by the slot's owner at that point of ledger order, never more bookings than
 * places) is re-checked by core's custody fold over the ledger (service.ts `custodyViolations`).
 */
export interface BookingCentresTable {
  tenant: string;
  centre_id: string;
  site_id: string;
  home_node_id: string;
  /** The latest `booking.centre_defined` payload, JSON. */
  defined: string;
}

export interface BookingTemplatesTable {
  tenant: string;
  centre_id: string;
  template_id: string;
  template: string;
}

export interface BookingSessionsTable {
  tenant: string;
  centre_id: string;
  session_id: string;
  date: string;
  /** The session as planned (with its template), JSON. */
  session: string;
  cancelled_reason: string | null;
}

export interface BookingSlotsTable {
  tenant: string;
  slot_id: string;
  centre_id: string;
  session_id: string;
  date: string;
  start_ms: number | string;
  end_ms: number | string;
  start_local: string;
  capacity: number | string;
  kinds: string;
  /** The node that owns the slot at the end of the centre's events in ledger order. */
  owner_node: string;
  /**
   * The standing (not cancelled) appointments in the slot: always the count of its rows in
   * booking_appointments, recounted whenever a booking or cancellation of the slot is folded, a
   * case's appointments are refolded, or the slot is (re)made. Kept here so the booking path and the
   * options read one row per slot instead of counting appointments on every call.
   */
  booked: number | string;
  blocked_reason: string | null;
  session_cancelled: number | string;
}

export interface BookingAllocationsTable {
  tenant: string;
  centre_id: string;
  session_id: string;
  from_node: string;
  to_node: string;
  slot_ids: string;
  return_at_ms: number | string;
  hlc: string;
}

export interface BookingPoliciesTable {
  tenant: string;
  centre_id: string;
  to_node: string;
  policy: string;
}

export interface BookingAppointmentsTable {
  tenant: string;
  booking_id: string;
  case_id: string;
  centre_id: string;
  slot_id: string | null;
  kind: string;
  /** booked | arrived | seen | did_not_attend | cancelled */
  status: string;
  start_ms: number | string;
  /** The `booking.booked` (or `booking.walk_in`) payload, JSON. */
  booked: string;
  walk_in: number | string;
  /** Where the booking sits in ledger order, and which node wrote it. */
  hlc: string;
  node: string;
  seq: number | string;
  arrived_at_ms: number | string | null;
  seen: string | null;
  dna_at_ms: number | string | null;
  cancelled: string | null;
  cancelled_hlc: string | null;
  cancelled_node: string | null;
  cancelled_seq: number | string | null;
}

export type BookingTables = {
  booking_centres: BookingCentresTable;
  booking_templates: BookingTemplatesTable;
  booking_sessions: BookingSessionsTable;
  booking_slots: BookingSlotsTable;
  booking_allocations: BookingAllocationsTable;
  booking_policies: BookingPoliciesTable;
  booking_appointments: BookingAppointmentsTable;
};

export function bookingDb(db: Db | Tx) {
  return db.withTables<BookingTables>();
}

const CENTRE_TABLES = [
  'booking_centres',
  'booking_templates',
  'booking_sessions',
  'booking_slots',
  'booking_allocations',
  'booking_policies',
] as const;

/**
 * Sets each given slot's `booked` to the number of its standing appointments. A recount, not an
 * increment: the result depends only on the appointment rows, so it is the same whichever subject
 * (the centre's or a case's) was folded or refolded last.
 */
async function recountSlots(
  trx: Tx,
  tenant: string,
  where: { slotIds: readonly string[] } | { sessionId: string },
) {
  if ('slotIds' in where && where.slotIds.length === 0) return;
  const which =
    'slotIds' in where ? sql`slot_id in (${sql.join(where.slotIds)})` : sql`session_id = ${where.sessionId}`;
  await sql`update booking_slots set booked = ${STANDING_IN_SLOT} where tenant = ${tenant} and ${which}`.execute(
    trx,
  );
}

/** The number of standing appointments of the `booking_slots` row being updated. */
const STANDING_IN_SLOT = sql<number>`(
  select count(*) from booking_appointments a
  where a.tenant = booking_slots.tenant and a.slot_id = booking_slots.slot_id and a.status <> 'cancelled'
)`;

/**
 * Stores a new appointment and recounts its slot (if it has one). On PostgreSQL in one statement: the
 * insert in a `with`, whose row the recount's snapshot does not yet see, so it is added (none when the
 * appointment was already stored). Booking is on the critical path of every adviser waiting for a place,
 * and each statement is a round trip with the ledger's write lock held.
 */
async function insertAppointment(trx: Tx, row: BookingAppointmentsTable): Promise<void> {
  const db = bookingDb(trx);
  const insert = (into: QueryCreator<CoreDatabase & BookingTables>) =>
    into
      .insertInto('booking_appointments')
      .values(row)
      .onConflict((oc) => oc.doNothing());
  if (row.slot_id === null) {
    await insert(db).execute();
  } else if (trx.getExecutor().adapter instanceof PostgresAdapter) {
    await db
      .with('inserted', (w) => insert(w).returning('slot_id'))
      .updateTable('booking_slots')
      .set({ booked: sql<number>`${STANDING_IN_SLOT} + (select count(*) from inserted)` })
      .where('tenant', '=', row.tenant)
      .where('slot_id', '=', row.slot_id)
      .execute();
  } else {
    await insert(db).execute();
    await recountSlots(trx, row.tenant, { slotIds: [row.slot_id] });
  }
}

async function applyCentreEvent(trx: Tx, e: ProjectedEvent): Promise<void> {
  const db = bookingDb(trx);
  const tenant = e.tenant;
  switch (e.type) {
    case 'booking.centre_defined': {
      const p = e.payload as CentreDefined;
      await db
        .insertInto('booking_centres')
        .values({
          tenant,
          centre_id: p.centreId,
          site_id: p.siteId,
          home_node_id: p.homeNodeId,
          defined: canonicalJson(p),
        })
        .onConflict((oc) =>
          oc.columns(['tenant', 'centre_id']).doUpdateSet({
            site_id: p.siteId,
            home_node_id: p.homeNodeId,
            defined: canonicalJson(p),
          }),
        )
        .execute();
      return;
    }
    case 'booking.template_defined': {
      const p = e.payload as { centreId: string; template: SlotTemplateData };
      await db
        .insertInto('booking_templates')
        .values({
          tenant,
          centre_id: p.centreId,
          template_id: p.template.templateId,
          template: canonicalJson(p.template),
        })
        .onConflict((oc) =>
          oc
            .columns(['tenant', 'centre_id', 'template_id'])
            .doUpdateSet({ template: canonicalJson(p.template) }),
        )
        .execute();
      return;
    }
    case 'booking.session_planned': {
      const p = e.payload as SessionPlanned;
      const s = p.session;
      await db
        .insertInto('booking_sessions')
        .values({
          tenant,
          centre_id: p.centreId,
          session_id: s.sessionId,
          date: s.date,
          session: canonicalJson(s),
          cancelled_reason: null,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
      for (const slot of p.slots) {
        await db
          .insertInto('booking_slots')
          .values({
            tenant,
            slot_id: slot.slotId,
            centre_id: p.centreId,
            session_id: s.sessionId,
            date: s.date,
            start_ms: slot.startMs,
            end_ms: slot.endMs,
            start_local: slot.startLocal,
            capacity: s.template.patientsPerSlot,
            kinds: canonicalJson(s.template.kinds),
            owner_node: p.homeNodeId,
            booked: 0,
            blocked_reason: null,
            session_cancelled: 0,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      // Bookings of these slots may have been read before the session (from another node, or when
      // the centre is refolded).
      await recountSlots(trx, tenant, { sessionId: s.sessionId });
      return;
    }
    case 'booking.session_cancelled': {
      const p = e.payload as { centreId: string; sessionId: string; reason: string };
      await db
        .updateTable('booking_sessions')
        .set({ cancelled_reason: p.reason })
        .where('tenant', '=', tenant)
        .where('session_id', '=', p.sessionId)
        .where('cancelled_reason', 'is', null)
        .execute();
      await db
        .updateTable('booking_slots')
        .set({ session_cancelled: 1 })
        .where('tenant', '=', tenant)
        .where('session_id', '=', p.sessionId)
        .execute();
      return;
    }
    case 'booking.allocation_policy_set': {
      const p = e.payload as AllocationPolicySet;
      await db
        .insertInto('booking_policies')
        .values({ tenant, centre_id: p.centreId, to_node: p.toNodeId, policy: canonicalJson(p) })
        .onConflict((oc) =>
          oc.columns(['tenant', 'centre_id', 'to_node']).doUpdateSet({ policy: canonicalJson(p) }),
        )
        .execute();
      return;
    }
    case 'booking.slots_allocated':
    case 'booking.slots_returned': {
      const p = e.payload as SlotsAllocated | SlotsReturned;
      const moved: string[] = [];
      for (const slotId of p.slotIds) {
        const slot = await db
          .selectFrom('booking_slots')
          .select('owner_node')
          .where('tenant', '=', tenant)
          .where('slot_id', '=', slotId)
          .executeTakeFirst();
        // Only the owner hands a slot on: a hand-over by anyone else changes nothing here, and the
        // invariant check (core's custody fold over the ledger) raises it.
        const owned = slot?.owner_node === e.node && p.toNodeId !== e.node;
        if (owned) moved.push(slotId);
      }
      if (moved.length > 0)
        await db
          .updateTable('booking_slots')
          .set({ owner_node: p.toNodeId })
          .where('tenant', '=', tenant)
          .where('slot_id', 'in', moved)
          .execute();
      if (e.type === 'booking.slots_allocated') {
        const a = p as SlotsAllocated;
        await db
          .insertInto('booking_allocations')
          .values({
            tenant,
            centre_id: a.centreId,
            session_id: a.sessionId,
            from_node: e.node,
            to_node: a.toNodeId,
            slot_ids: canonicalJson(moved),
            return_at_ms: a.returnAtMs,
            hlc: e.hlc,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      return;
    }
    case 'booking.slots_blocked':
    case 'booking.slots_released': {
      const p = e.payload as { slotIds: string[]; reason: string };
      await db
        .updateTable('booking_slots')
        .set({ blocked_reason: e.type === 'booking.slots_blocked' ? p.reason : null })
        .where('tenant', '=', tenant)
        .where('slot_id', 'in', p.slotIds)
        .execute();
      return;
    }
  }
}

/**
 * The appointment row a `booking.booked` or `booking.walk_in` event makes: what the projection
 * stores, and what the booking service answers with once the event has committed.
 */
export function newAppointmentRow(e: {
  tenant: string;
  type: string;
  payload: unknown;
  hlc: string;
  node: string;
  seq: number;
}): BookingAppointmentsTable {
  const b = e.payload as Booked | WalkIn;
  const walk = e.type === 'booking.walk_in';
  return {
    tenant: e.tenant,
    booking_id: b.bookingId,
    case_id: b.caseId,
    centre_id: b.centreId,
    slot_id: walk ? null : (b as Booked).slotId,
    kind: b.kind,
    status: 'booked',
    start_ms: walk ? b.atMs : (b as Booked).startMs,
    booked: canonicalJson(b),
    walk_in: walk ? 1 : 0,
    hlc: e.hlc,
    node: e.node,
    seq: e.seq,
    arrived_at_ms: null,
    seen: null,
    dna_at_ms: null,
    cancelled: null,
    cancelled_hlc: null,
    cancelled_node: null,
    cancelled_seq: null,
  };
}

async function applyAppointmentEvent(trx: Tx, e: ProjectedEvent): Promise<void> {
  const db = bookingDb(trx);
  const tenant = e.tenant;
  const p = e.payload as { bookingId: string; atMs: number };
  const one = () =>
    db.updateTable('booking_appointments').where('tenant', '=', tenant).where('booking_id', '=', p.bookingId);
  switch (e.type) {
    case 'booking.booked':
    case 'booking.walk_in': {
      await insertAppointment(trx, newAppointmentRow(e));
      return;
    }
    case 'booking.cancelled': {
      await one()
        .set({
          status: 'cancelled',
          cancelled: canonicalJson({ ...p, actor: e.actor }),
          cancelled_hlc: e.hlc,
          cancelled_node: e.node,
          cancelled_seq: e.seq,
        })
        .where('cancelled', 'is', null)
        .execute();
      const row = await db
        .selectFrom('booking_appointments')
        .select('slot_id')
        .where('tenant', '=', tenant)
        .where('booking_id', '=', p.bookingId)
        .executeTakeFirst();
      if (row?.slot_id) await recountSlots(trx, tenant, { slotIds: [row.slot_id] });
      return;
    }
    case 'booking.arrived':
      await one()
        .set({ arrived_at_ms: p.atMs, status: 'arrived' })
        .where('arrived_at_ms', 'is', null)
        .where('status', 'in', ['booked', 'did_not_attend'])
        .execute();
      return;
    case 'booking.seen':
      await one()
        .set({ seen: canonicalJson(e.payload), status: 'seen' })
        .where('seen', 'is', null)
        .where('status', '!=', 'cancelled')
        .execute();
      return;
    case 'booking.did_not_attend':
      await one()
        .set({ dna_at_ms: p.atMs, status: 'did_not_attend' })
        .where('status', '=', 'booked')
        .execute();
      return;
  }
}

const folds = foldsTypes('booking.');

export const bookingProjection: Projection = {
  name: 'booking',
  version: 3,
  tables: [...CENTRE_TABLES, 'booking_appointments'],
  folds,
  async create(trx, dialect) {
    await sql`create table booking_centres (
      tenant text not null,
      centre_id text not null,
      site_id text not null,
      home_node_id text not null,
      defined text not null,
      primary key (tenant, centre_id)
    )`.execute(trx);
    await sql`create table booking_templates (
      tenant text not null,
      centre_id text not null,
      template_id text not null,
      template text not null,
      primary key (tenant, centre_id, template_id)
    )`.execute(trx);
    await sql`create table booking_sessions (
      tenant text not null,
      centre_id text not null,
      session_id text not null,
      date text not null,
      session text not null,
      cancelled_reason text,
      primary key (tenant, session_id)
    )`.execute(trx);
    await sql`create index booking_sessions_day on booking_sessions (tenant, centre_id, date)`.execute(trx);
    await sql`create table booking_slots (
      tenant text not null,
      slot_id text not null,
      centre_id text not null,
      session_id text not null,
      date text not null,
      start_ms bigint not null,
      end_ms bigint not null,
      start_local text not null,
      capacity integer not null,
      kinds text not null,
      owner_node text not null,
      booked integer not null,
      blocked_reason text,
      session_cancelled integer not null,
      primary key (tenant, slot_id)
    )`.execute(trx);
    await sql`create index booking_slots_day on booking_slots (tenant, centre_id, date)`.execute(trx);
    await sql`create index booking_slots_start on booking_slots (tenant, start_ms)`.execute(trx);
    // The open slots (a place free, not blocked, session not cancelled) of a centre in time order,
    // by owner and across owners: the booking options read each centre's first few through these
    // (service.ts candidateSlots). Slot ids in byte order, as core breaks ties in time.
    const slotIdBytes = dialect === 'postgres' ? sql`slot_id collate "C"` : sql`slot_id`;
    const open = sql`where booked < capacity and blocked_reason is null and session_cancelled = 0`;
    await sql`create index booking_slots_open_owner on booking_slots
      (tenant, centre_id, owner_node, start_ms, ${slotIdBytes}) ${open}`.execute(trx);
    await sql`create index booking_slots_open on booking_slots
      (tenant, centre_id, start_ms, ${slotIdBytes}) ${open}`.execute(trx);
    await sql`create table booking_allocations (
      tenant text not null,
      centre_id text not null,
      session_id text not null,
      from_node text not null,
      to_node text not null,
      slot_ids text not null,
      return_at_ms bigint not null,
      hlc text not null,
      primary key (tenant, session_id, to_node, hlc)
    )`.execute(trx);
    await sql`create index booking_allocations_due on booking_allocations (tenant, to_node, return_at_ms)`.execute(
      trx,
    );
    await sql`create table booking_policies (
      tenant text not null,
      centre_id text not null,
      to_node text not null,
      policy text not null,
      primary key (tenant, centre_id, to_node)
    )`.execute(trx);
    await sql`create table booking_appointments (
      tenant text not null,
      booking_id text not null,
      case_id text not null,
      centre_id text not null,
      slot_id text,
      kind text not null,
      status text not null,
      start_ms bigint not null,
      booked text not null,
      walk_in integer not null,
      hlc text not null,
      node text not null,
      seq bigint not null,
      arrived_at_ms bigint,
      seen text,
      dna_at_ms bigint,
      cancelled text,
      cancelled_hlc text,
      cancelled_node text,
      cancelled_seq bigint,
      primary key (tenant, booking_id)
    )`.execute(trx);
    await sql`create index booking_appointments_case on booking_appointments (tenant, case_id)`.execute(trx);
    await sql`create index booking_appointments_slot on booking_appointments (tenant, slot_id)`.execute(trx);
    await sql`create index booking_appointments_day on booking_appointments (tenant, centre_id, start_ms)`.execute(
      trx,
    );
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    if (e.subject?.startsWith('centre:')) await applyCentreEvent(trx, e);
    else await applyAppointmentEvent(trx, e);
  },
  async resetSubject(trx, tenant, subject) {
    const db = bookingDb(trx);
    if (subject.startsWith('centre:')) {
      const centreId = subject.slice('centre:'.length);
      for (const table of CENTRE_TABLES)
        await db.deleteFrom(table).where('tenant', '=', tenant).where('centre_id', '=', centreId).execute();
    } else if (subject.startsWith('case:')) {
      const caseId = subject.slice('case:'.length);
      const slots = await db
        .selectFrom('booking_appointments')
        .select('slot_id')
        .where('tenant', '=', tenant)
        .where('case_id', '=', caseId)
        .where('slot_id', 'is not', null)
        .execute();
      await db
        .deleteFrom('booking_appointments')
        .where('tenant', '=', tenant)
        .where('case_id', '=', caseId)
        .execute();
      await recountSlots(trx, tenant, { slotIds: [...new Set(slots.map((r) => r.slot_id!))] });
    }
  },
};
