import { createHash, timingSafeEqual } from 'node:crypto';
import {
  ConflictError,
  normalisePhoneLine,
  TELEPHONY_CALL_EVENTS,
  TELEPHONY_CALL_ID,
  UnauthenticatedError,
  ValidationError,
  type Clock,
  type TelephonyCallEventName,
  type TelephonyLink,
  type TimedCall,
} from '@holdfast/core';
import { z } from 'zod';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { Store, Tx } from '../store/store.ts';
import { telephonyDb, type TelephonyCallsTable } from './projection.ts';

/**
 * A telephony platform's credential, configured on the node (`telephonyCredentials`): the provider
 * (tenant) and the system's id, with its bearer token kept only as its SHA-256 (hex). The tenant of
 * every event the system sends comes from here only.
 */
export interface TelephonyCredential {
  tenant: string;
  systemId: string;
  tokenSha256: string;
}

/**
 * How far ahead of this node's clock an event's time may be: telephony clocks drift a little. Beyond
 * it the time is wrong (a mistyped year, a clock years out), and a call dated in the future would
 * count in a month not yet reported and sort first in every queue.
 */
export const TELEPHONY_CLOCK_SKEW_MS = 2 * 60_000;

/** A case opened this long after the call was answered may still be tied to it by the caller's line. */
export const LINE_MATCH_BEFORE_MS = 30 * 60_000;
/** …and this long before (the telephony's clock and the node's differ a little). */
export const LINE_MATCH_AFTER_MS = 5 * 60_000;

const isoTime = z.iso.datetime({
  offset: true,
  message: 'must be an ISO 8601 time with its zone, e.g. 2026-11-29T03:04:05Z',
});

/**
 * One call event as the telephony (CTI) sends it: its call id, what happened, when, and the caller's
 * line (the CLI; left out when withheld).
 */
export const telephonyEventBody = z.strictObject({
  callId: z
    .string()
    .regex(TELEPHONY_CALL_ID, 'must be the telephony’s call id: 1 to 64 letters, digits and . _ : @ -'),
  event: z.enum(TELEPHONY_CALL_EVENTS),
  at: isoTime,
  /** Left out when the caller withheld their number. */
  callerLine: z.string().max(40, 'must be at most 40 characters').optional(),
});
export type TelephonyEventBody = z.infer<typeof telephonyEventBody>;

/** What the telephony is told: the call as recorded, and whether this event was new. */
export interface TelephonyAnswer {
  status: 200 | 201;
  body: {
    callId: string;
    event: TelephonyCallEventName;
    /** False when this event had been recorded before: nothing new was stored. */
    recorded: boolean;
    offeredAt: string | null;
    answeredAt: string | null;
    abandonedAt: string | null;
    /** The case the call is tied to, once an adviser opened one for it. */
    caseId: string | null;
  };
}

const COLUMN = { offered: 'offered_at', answered: 'answered_at', abandoned: 'abandoned_at' } as const;

/** Thrown inside the commit when the same event was recorded meanwhile (a racing repeat). */
class RecordedMeanwhile extends Error {}

/**
 * Call events in from the provider's telephony, and the tie between a telephony call and the case
 * an adviser opens for it. Each event is stored once per call and event name: a repeat with the same
 * time is answered as before and stores nothing; the same event with another time is a conflict.
 */
export class TelephonyService {
  private readonly tokens: { hash: Buffer; credential: TelephonyCredential }[];

  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    credentials: readonly TelephonyCredential[],
  ) {
    this.tokens = credentials.map((credential) => ({
      hash: Buffer.from(credential.tokenSha256, 'hex'),
      credential,
    }));
  }

  /**
   * The credential an `Authorization: Bearer …` header names, or a 401. As for messages in
   * (inbound/service.ts): the token's SHA-256 is compared with every configured one in constant time.
   */
  authenticate(authorization: string | undefined): TelephonyCredential {
    const token = /^Bearer ([\x21-\x7e]{16,512})$/.exec(authorization ?? '')?.[1];
    const refused = new UnauthenticatedError(
      'the telephony system is not known: send the bearer token configured for it',
    );
    if (!token) throw refused;
    const presented = createHash('sha256').update(token).digest();
    let found: TelephonyCredential | null = null;
    for (const { hash, credential } of this.tokens)
      if (hash.length === presented.length && timingSafeEqual(hash, presented)) found = credential;
    if (!found) throw refused;
    return found;
  }

  /** Records one call event from an authenticated telephony system. */
  async record(credential: TelephonyCredential, input: TelephonyEventBody): Promise<TelephonyAnswer> {
    const atMs = Date.parse(input.at);
    if (atMs > this.clock.nowMs() + TELEPHONY_CLOCK_SKEW_MS)
      throw new ValidationError([
        {
          path: 'body.at',
          message: `is in the future: more than ${TELEPHONY_CLOCK_SKEW_MS / 60_000} minutes ahead of this node's clock`,
        },
      ]);
    const callerLine = input.callerLine ? normalisePhoneLine(input.callerLine) : null;
    if (input.callerLine && callerLine === null)
      throw new ValidationError([
        {
          path: 'body.callerLine',
          message: 'must be a phone number (digits, spaces, + ( ) -), or null if withheld',
        },
      ]);
    const { tenant } = credential;
    const earlier = await this.store.withTenant(tenant, (trx) => this.call(trx, tenant, input.callId));
    const settled = this.settled(earlier, input.event, atMs);
    if (settled) return answer(earlier!, input.event, false);
    let recorded = true;
    try {
      await this.ledger.append(
        [
          {
            tenant,
            type: 'telephony.call_event',
            actor: `system:telephony:${credential.systemId}`,
            payload: {
              callId: input.callId,
              systemId: credential.systemId,
              event: input.event,
              atMs,
              callerLine,
            },
          },
        ],
        {
          guard: async (trx) => {
            if (this.settled(await this.call(trx, tenant, input.callId), input.event, atMs))
              throw new RecordedMeanwhile();
          },
        },
      );
    } catch (error) {
      if (!(error instanceof RecordedMeanwhile)) throw error;
      recorded = false; // a racing repeat stored it first: answered as a repeat
    }
    const now = await this.store.withTenant(tenant, (trx) => this.call(trx, tenant, input.callId));
    return answer(now!, input.event, recorded);
  }

  /**
   * Whether this event is already recorded (true: answer as before), or refused as contradicting what
   * is; false when it is new and may be stored.
   */
  private settled(row: TelephonyCallsTable | null, event: TelephonyCallEventName, atMs: number): boolean {
    if (!row) return false;
    const held = row[COLUMN[event]];
    if (held !== null) {
      if (Number(held) === atMs) return true;
      throw new ConflictError(`this call's ${event} event was recorded before with another time`);
    }
    if (event === 'answered' && row.abandoned_at !== null)
      throw new ConflictError('this call was recorded as abandoned: it cannot also be answered');
    if (event === 'abandoned' && row.answered_at !== null)
      throw new ConflictError('this call was recorded as answered: it cannot also be abandoned');
    const offered = row.offered_at === null ? null : Number(row.offered_at);
    if (event !== 'offered' && offered !== null && atMs < offered)
      throw new ValidationError([{ path: 'body.at', message: 'is before the call was offered' }]);
    const ended = row.answered_at ?? row.abandoned_at;
    if (event === 'offered' && ended !== null && atMs > Number(ended))
      throw new ValidationError([
        { path: 'body.at', message: 'is after the call was answered or abandoned' },
      ]);
    return false;
  }

  private async call(trx: Tx, tenant: string, callId: string): Promise<TelephonyCallsTable | null> {
    const row = await telephonyDb(trx)
      .selectFrom('telephony_calls')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('call_id', '=', callId)
      .executeTakeFirst();
    return row ?? null;
  }

  /**
   * The fact that ties a telephony call to the case an adviser opens for it, for the case's own
   * commit: by the call id the adviser's screen carries (a screen-pop), else by the caller's line — the
   * latest call from that line answered in the half hour before the case, not tied to another case.
   * No tie: the case counts as a call entered by hand, and the telephony call as a call of its own.
   */
  async linkDrafts(
    tenant: string,
    actor: string,
    opened: { caseId: string; telephonyCallId?: string; callbackNumber: string | null; receivedAtMs: number },
  ): Promise<EventDraft[]> {
    const link = await this.store.withTenant(tenant, async (trx) => {
      if (opened.telephonyCallId !== undefined) {
        const row = await this.call(trx, tenant, opened.telephonyCallId);
        if (row?.case_id && row.case_id !== opened.caseId)
          throw new ValidationError([
            { path: 'body.telephonyCallId', message: 'is already tied to another case' },
          ]);
        return { callId: opened.telephonyCallId, by: 'call_id' as TelephonyLink };
      }
      const line = normalisePhoneLine(opened.callbackNumber);
      if (line === null) return null;
      const row = await telephonyDb(trx)
        .selectFrom('telephony_calls')
        .select('call_id')
        .where('tenant', '=', tenant)
        .where('caller_line', '=', line)
        .where('case_id', 'is', null)
        .where('answered_at', '>=', opened.receivedAtMs - LINE_MATCH_BEFORE_MS)
        .where('answered_at', '<=', opened.receivedAtMs + LINE_MATCH_AFTER_MS)
        .orderBy('answered_at', 'desc')
        .orderBy('call_id')
        .executeTakeFirst();
      return row ? { callId: row.call_id, by: 'caller_line' as TelephonyLink } : null;
    });
    if (!link) return [];
    return [{ tenant, type: 'telephony.call_linked', actor, payload: { ...link, caseId: opened.caseId } }];
  }
}

function answer(row: TelephonyCallsTable, event: TelephonyCallEventName, recorded: boolean): TelephonyAnswer {
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    status: recorded ? 201 : 200,
    body: {
      callId: row.call_id,
      event,
      recorded,
      offeredAt: iso(row.offered_at),
      answeredAt: iso(row.answered_at),
      abandonedAt: iso(row.abandoned_at),
      caseId: row.case_id,
    },
  };
}

/** The month's telephony calls, for the IUC ADC return. */
export interface TelephonyMonth {
  /** Calls offered to the queue in the month (after the introductory message), with their timings. */
  offered: (TimedCall & { caseId: string | null })[];
  /** Calls that ended during the introductory message in the month: recorded, counted in no item. */
  endedDuringIntroduction: number;
}

/**
 * The telephony calls of a month: offered in it, or (never offered) abandoned in it. Read inside the
 * report's transaction, scoped to the tenant.
 */
export async function telephonyMonth(
  trx: Tx,
  tenant: string,
  period: { startMs: number; endMs: number },
  tenantFilter = true,
): Promise<TelephonyMonth> {
  let offeredQ = telephonyDb(trx)
    .selectFrom('telephony_calls')
    .select(['offered_at', 'answered_at', 'abandoned_at', 'case_id'])
    .where('offered_at', '>=', period.startMs)
    .where('offered_at', '<', period.endMs);
  let introQ = telephonyDb(trx)
    .selectFrom('telephony_calls')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .where('offered_at', 'is', null)
    .where('abandoned_at', '>=', period.startMs)
    .where('abandoned_at', '<', period.endMs);
  if (tenantFilter) {
    offeredQ = offeredQ.where('tenant', '=', tenant);
    introQ = introQ.where('tenant', '=', tenant);
  }
  const rows = await offeredQ.execute();
  const intro = await introQ.executeTakeFirst();
  const ms = (v: number | null) => (v === null ? null : Number(v));
  return {
    offered: rows.map((r) => ({
      offeredAtMs: ms(r.offered_at),
      answeredAtMs: ms(r.answered_at),
      abandonedAtMs: ms(r.abandoned_at),
      caseId: r.case_id,
    })),
    endedDuringIntroduction: Number(intro?.n ?? 0),
  };
}
