import { sql } from 'kysely';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';
import type { BookingRequested, ReferralChosen, ReferralDidNotAttend } from './events.ts';

/**
 * Referrals and bookings as rows: one per referral (the choice, a did-not-attend, the alerts
 * acknowledged) and one per booking asked for. The answer of the service is the outbox message's
 * state (messages table), read beside the row: it is not copied here, so each row depends only on
 * its own subject's events.
 */
export interface ReferralsTable {
  tenant: string;
  referral_id: string;
  case_id: string;
  service_id: string;
  route: string;
  message_id: string | null;
  /** The whole `referral.chosen` payload, JSON. */
  chosen: string;
  chosen_at_ms: number;
  /** The choice's place in the ledger: the latest referral of a case is the one chosen last. */
  chosen_hlc: string;
  safeguarding: number;
  did_not_attend_at_ms: number | null;
  did_not_attend_safeguarding: number;
  /** Alerts acknowledged: JSON list of {alert, atMs, reason, actor}. */
  acknowledged: string;
}

export interface BookingsTable {
  tenant: string;
  booking_id: string;
  case_id: string;
  message_id: string;
  /** The whole `referral.booking_requested` payload, JSON. */
  requested: string;
  requested_at_ms: number;
  requested_hlc: string;
}

export type ReferralTables = { referrals: ReferralsTable; referral_bookings: BookingsTable };

export function referralsDb(db: Db | Tx) {
  return db.withTables<ReferralTables>();
}

export interface AcknowledgedAlert {
  alert: string;
  atMs: number;
  reason: string;
  actor: string;
}

const folds = foldsTypes('referral.');

export const referralsProjection: Projection = {
  name: 'referrals',
  version: 1,
  tables: ['referrals', 'referral_bookings'],
  folds,
  async create(trx) {
    await sql`create table referrals (
      tenant text not null,
      referral_id text not null,
      case_id text not null,
      service_id text not null,
      route text not null,
      message_id text,
      chosen text not null,
      chosen_at_ms bigint not null,
      chosen_hlc text not null,
      safeguarding integer not null,
      did_not_attend_at_ms bigint,
      did_not_attend_safeguarding integer not null,
      acknowledged text not null,
      primary key (tenant, referral_id)
    )`.execute(trx);
    await sql`create index referrals_case on referrals (tenant, case_id)`.execute(trx);
    await sql`create table referral_bookings (
      tenant text not null,
      booking_id text not null,
      case_id text not null,
      message_id text not null,
      requested text not null,
      requested_at_ms bigint not null,
      requested_hlc text not null,
      primary key (tenant, booking_id)
    )`.execute(trx);
    await sql`create index referral_bookings_case on referral_bookings (tenant, case_id)`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = referralsDb(trx);
    if (e.type === 'referral.chosen') {
      const p = e.payload as ReferralChosen;
      await db
        .insertInto('referrals')
        .values({
          tenant: e.tenant,
          referral_id: p.referralId,
          case_id: p.caseId,
          service_id: p.service.serviceId,
          route: p.route,
          message_id: p.messageId,
          chosen: JSON.stringify(p),
          chosen_at_ms: p.atMs,
          chosen_hlc: e.hlc,
          safeguarding: p.safeguarding ? 1 : 0,
          did_not_attend_at_ms: null,
          did_not_attend_safeguarding: 0,
          acknowledged: '[]',
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    } else if (e.type === 'referral.did_not_attend') {
      const p = e.payload as ReferralDidNotAttend;
      // The first report stands (two nodes may each have taken one while apart).
      await db
        .updateTable('referrals')
        .set({ did_not_attend_at_ms: p.atMs, did_not_attend_safeguarding: p.safeguarding ? 1 : 0 })
        .where('tenant', '=', e.tenant)
        .where('referral_id', '=', p.referralId)
        .where('did_not_attend_at_ms', 'is', null)
        .execute();
    } else if (e.type === 'referral.alert_acknowledged') {
      const p = e.payload as { referralId: string; alert: string; atMs: number; reason: string };
      const row = await db
        .selectFrom('referrals')
        .select('acknowledged')
        .where('tenant', '=', e.tenant)
        .where('referral_id', '=', p.referralId)
        .executeTakeFirst();
      if (!row) return;
      const list = JSON.parse(row.acknowledged) as AcknowledgedAlert[];
      list.push({ alert: p.alert, atMs: p.atMs, reason: p.reason, actor: e.actor });
      await db
        .updateTable('referrals')
        .set({ acknowledged: JSON.stringify(list) })
        .where('tenant', '=', e.tenant)
        .where('referral_id', '=', p.referralId)
        .execute();
    } else if (e.type === 'referral.booking_requested') {
      const p = e.payload as BookingRequested;
      await db
        .insertInto('referral_bookings')
        .values({
          tenant: e.tenant,
          booking_id: p.bookingId,
          case_id: p.caseId,
          message_id: p.messageId,
          requested: JSON.stringify(p),
          requested_at_ms: p.atMs,
          requested_hlc: e.hlc,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  },
  async resetSubject(trx, tenant, subject) {
    const db = referralsDb(trx);
    if (subject.startsWith('referral:'))
      await db
        .deleteFrom('referrals')
        .where('tenant', '=', tenant)
        .where('referral_id', '=', subject.slice('referral:'.length))
        .execute();
    else if (subject.startsWith('booking:'))
      await db
        .deleteFrom('referral_bookings')
        .where('tenant', '=', tenant)
        .where('booking_id', '=', subject.slice('booking:'.length))
        .execute();
  },
};
