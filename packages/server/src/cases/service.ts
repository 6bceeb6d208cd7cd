import { createHash, randomUUID } from 'node:crypto';
import {
  canonicalJson,
  ConflictError,
  decide,
  evolve,
  ForbiddenError,
  hasPermission,
  initialCaseState,
  parseCaseReference,
  NotFoundError,
  ValidationError,
  type CaseCommand,
  type PaperRecordKind,
  type CaseEvent,
  type CaseState,
  type Clock,
} from '@holdfast/core';
import type { z } from 'zod';
import type { callerSchema, consultationRecorded } from '@holdfast/core';
import { accessEvent, type AccessFields, type Auditor } from '../audit/auditor.ts';
import { isStaffContext, requireSiteAccess } from '../access/sites.ts';
import { userIdsIn } from './record.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { Store, Tx } from '../store/store.ts';
import { casesDb, type CasesTable } from './projection.ts';
import type { AccountsService } from '../accounts/service.ts';
import { patientOnFile } from '../patients/reads.ts';
import { caseVersion } from './reads.ts';

/** Clocks on paper and on the server disagree by a few minutes: a written time this far out is taken. */
const PAPER_CLOCK_SLACK_MS = 5 * 60_000;

export interface OpenCaseInput {
  siteId: string;
  receivedAt?: string;
  answered: boolean;
  /** The telephony's id of the call, when the adviser's screen carries it. */
  telephonyCallId?: string;
  caller: z.infer<typeof callerSchema>;
  /** The call handler read the call-back number back to the caller, who agreed it (HTTP calls must). */
  callbackNumberReadBack?: boolean;
  patientId?: string;
  /** The adviser confirmed the call is about this patient although their record says they have died. */
  deceasedConfirmed?: boolean;
  location: string;
  presentingComplaint: string;
}

export interface StoredConsultation {
  /** The ledger event that recorded it. */
  eventId: string;
  /** Its event version (1: a partial NEWS2 was stored with a total; read it through consultationNews2). */
  v: number;
  /** Wall-clock time of the event's hybrid logical clock. */
  recordedAtMs: number;
  record: z.infer<typeof consultationRecorded.schema>;
}

/** One ledger event of a case, as `CaseService.history` reads it back. */
export interface CaseHistoryEvent {
  eventId: string;
  type: string;
  /** `user:<id>`, or another actor (a system, an inbound sender). */
  actor: string;
  node: string;
  /** Wall-clock time of the event's hybrid logical clock. */
  atMs: number;
  payload: Record<string, unknown>;
}

/** Thrown by a command's compare-and-set when the case moved on between reading and writing. */
class StaleCase extends Error {}

/** Thrown inside the commit when the call's Idempotency-Key opened a case meanwhile. */
class KeyAlreadyUsed extends Error {
  constructor(readonly caseId: string) {
    super('this Idempotency-Key opened a case meanwhile');
  }
}

/** A client's Idempotency-Key with the hash of what it sent under it. */
interface CallIdempotency {
  key: string;
  requestHash: string;
}

export interface OpenedCall {
  caseId: string;
  /** True when the key had opened this case before: nothing new was stored. */
  replayed: boolean;
}

/** What a close hook is given: the case as it stood, its state after the close, the other facts. */
export interface ClosingCase {
  row: CasesTable;
  state: CaseState;
  extra: readonly EventDraft[];
  closedAtMs: number;
}
export type CloseHook = (ctx: RequestContext, closing: ClosingCase) => Promise<EventDraft[]>;

/** What a command hook is given: the case as it stood, its state after the command, the events. */
export interface CommandOutcome {
  row: CasesTable;
  state: CaseState;
  events: readonly CaseEvent[];
}
export type CommandHook = (ctx: RequestContext, outcome: CommandOutcome) => Promise<EventDraft[]>;

/** What an open hook is given: the new case's id, what the adviser sent, and the call's time. */
export interface OpeningCall {
  caseId: string;
  input: OpenCaseInput;
  receivedAtMs: number;
}
export type OpenHook = (ctx: RequestContext, opening: OpeningCall) => Promise<EventDraft[]>;

/**
 * How far ahead of this node's clock a call's time may be (clocks of the adviser's machine and the
 * node differ a little). Beyond it the time is a mistake (a mistyped year): a call dated in the future
 * would sort first in every queue and count in a month not yet reported.
 */
export const CALL_CLOCK_SKEW_MS = 2 * 60_000;

/**
 * Cases: every command is decided by the core state machine against the case's current state,
 * and appended with a compare-and-set on the case's version, so two clinicians claiming one case at
 * the same moment cannot both win: the second is re-decided against the new state and told who has it.
 */
export class CaseService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly accounts: AccountsService,
    private readonly auditor: Auditor | null = null,
  ) {}

  /**
   * Facts that go with every close, whichever path closes the case (self-care confirmed, a
   * clinician's outcome, the close command): the Post Event Message to the patient's practice is
   * queued in the same commit as the close, so a case is never closed without it being decided.
   */
  private onClose: CloseHook | null = null;

  setCloseHook(hook: CloseHook): void {
    this.onClose = hook;
  }

  /**
   * Facts other modules add to a command's commit, decided from its events: the answer to the
   * system that sent the case (a CAS validation outcome back to the ambulance service) is queued
   * with the outcome itself, so one is never stored without the other.
   */
  private readonly commandHooks: CommandHook[] = [];

  addCommandHook(hook: CommandHook): void {
    this.commandHooks.push(hook);
  }

  /**
   * Facts other modules add to the commit that opens a call's case: the tie to the telephony's record
   * of the call, so its timings count for the case.
   */
  private readonly openHooks: OpenHook[] = [];

  addOpenHook(hook: OpenHook): void {
    this.openHooks.push(hook);
  }

  /**
   * Opens a case for a call: the case, its answered/abandoned event and the audit of the write are
   * one append, so they are stored together or not at all. With an Idempotency-Key, a retry of the
   * same request returns the case the key opened (checked again inside the commit, so two retries
   * racing each other still open one case).
   */
  async openCall(ctx: RequestContext, input: OpenCaseInput, idempotencyKey?: string): Promise<OpenedCall> {
    if (!(await this.accounts.sites(ctx.tenant)).some((s) => s.siteId === input.siteId)) {
      throw new ValidationError([{ path: 'body.siteId', message: 'is not a site of your provider' }]);
    }
    if (
      input.receivedAt !== undefined &&
      Date.parse(input.receivedAt) > this.clock.nowMs() + CALL_CLOCK_SKEW_MS
    ) {
      throw new ValidationError([
        {
          path: 'body.receivedAt',
          message: `is in the future: more than ${CALL_CLOCK_SKEW_MS / 60_000} minutes ahead of this node's clock`,
        },
      ]);
    }
    if (input.patientId) {
      const patient = await this.patientOnFile(ctx.tenant, input.patientId);
      if (!patient)
        throw new ValidationError([{ path: 'body.patientId', message: 'is not a patient of your provider' }]);
      // The same rule as identifying a patient on an open case (CaseViews.identify): a patient whose
      // record says they have died is never taken by default.
      if (patient.deceased && input.deceasedConfirmed !== true)
        throw new ValidationError([
          {
            path: 'body.deceasedConfirmed',
            message:
              'must be true to open the call for this patient: their record says they have died; confirm with the caller that the call is about them',
          },
        ]);
    }
    const idempotency: CallIdempotency | undefined =
      idempotencyKey === undefined
        ? undefined
        : {
            key: idempotencyKey,
            requestHash: createHash('sha256').update(canonicalJson(input)).digest('hex'),
          };
    if (idempotency) {
      const earlier = await this.store.withTenant(ctx.tenant, (trx) =>
        this.caseOpenedBy(trx, ctx, idempotency),
      );
      if (earlier) return { caseId: earlier, replayed: true };
    }
    const caseId = randomUUID();
    const receivedAt = input.receivedAt ?? new Date(this.clock.nowMs()).toISOString();
    const drafts: EventDraft[] = [
      {
        tenant: ctx.tenant,
        type: 'case.opened',
        actor: actorOf(ctx),
        payload: {
          caseId,
          siteId: input.siteId,
          receivedAt,
          caller: input.caller,
          ...(input.patientId ? { patientId: input.patientId } : {}),
          location: input.location,
          presentingComplaint: input.presentingComplaint,
          ...(idempotency ? { idempotency } : {}),
        },
      },
      ...(input.callbackNumberReadBack
        ? [
            {
              tenant: ctx.tenant,
              type: 'case.callback_number_confirmed',
              actor: actorOf(ctx),
              payload: { caseId, callbackNumber: input.caller.callbackNumber, method: 'read_back' },
            },
          ]
        : []),
      {
        tenant: ctx.tenant,
        type: input.answered ? 'case.call_answered' : 'case.call_abandoned',
        actor: actorOf(ctx),
        payload: { caseId },
      },
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        resourceId: caseId,
        breakGlass: false,
        fields: ['caller', 'location', 'presentingComplaint'],
      }),
    ];
    for (const hook of this.openHooks)
      drafts.push(...(await hook(ctx, { caseId, input, receivedAtMs: Date.parse(receivedAt) })));
    try {
      await this.ledger.append(
        drafts,
        idempotency
          ? {
              guard: async (trx) => {
                const earlier = await this.caseOpenedBy(trx, ctx, idempotency);
                if (earlier) throw new KeyAlreadyUsed(earlier);
              },
            }
          : {},
      );
    } catch (error) {
      if (error instanceof KeyAlreadyUsed) return { caseId: error.caseId, replayed: true };
      throw error;
    }
    return { caseId, replayed: false };
  }

  /**
   * The drafts that open a case sent by another system and take it through `before`, then the
   * `facts`, then `after` (each command decided by the core state machine), for a caller that
   * appends them in one commit with facts of its own (the record of the message that sent it).
   */
  openingDrafts(
    tenant: string,
    actor: string,
    opening: {
      caseId: string;
      input: Omit<OpenCaseInput, 'answered'> & { receivedAt: string };
      before: readonly CaseCommand[];
      facts: readonly EventDraft[];
      after: readonly CaseCommand[];
    },
  ): EventDraft[] {
    const { caseId, input } = opening;
    let state = initialCaseState(caseId);
    const decided = (commands: readonly CaseCommand[]): EventDraft[] =>
      commands.flatMap((c) =>
        decide(state, c).map((e) => {
          state = evolve(state, e);
          return { tenant, type: e.type, actor, payload: e.payload as Record<string, unknown> };
        }),
      );
    return [
      {
        tenant,
        type: 'case.opened',
        actor,
        payload: {
          caseId,
          siteId: input.siteId,
          receivedAt: input.receivedAt,
          caller: input.caller,
          ...(input.patientId ? { patientId: input.patientId } : {}),
          location: input.location,
          presentingComplaint: input.presentingComplaint,
        },
      },
      ...decided(opening.before),
      ...opening.facts,
      ...decided(opening.after),
    ];
  }

  /** Opens a case for a call without an Idempotency-Key (imports, simulations, tests). */
  async open(ctx: RequestContext, input: OpenCaseInput): Promise<string> {
    return (await this.openCall(ctx, input)).caseId;
  }

  /** The case this user's key opened before, if any; the same key with another request is refused. */
  private async caseOpenedBy(
    trx: Tx,
    ctx: RequestContext,
    idempotency: CallIdempotency,
  ): Promise<string | null> {
    const row = await casesDb(trx)
      .selectFrom('call_requests')
      .select(['case_id', 'request_hash'])
      .where('tenant', '=', ctx.tenant)
      .where('actor', '=', actorOf(ctx))
      .where('idempotency_key', '=', idempotency.key)
      .executeTakeFirst();
    if (!row) return null;
    if (row.request_hash !== idempotency.requestHash)
      throw new ConflictError(
        'this Idempotency-Key was sent before with a different call: send a new call with a new key',
      );
    return row.case_id;
  }

  /** The node's clock, for defaults such as when a welfare check was made. */
  nowMs(): number {
    return this.clock.nowMs();
  }

  /**
   * The case row, or NotFound (also for another provider's id). For a member of staff (a full
   * request context) the access layer's site rule applies, to reads and writes alike: the case's own
   * site, every site with `queue.all_sites`, or a case they worked on; otherwise 403, audited against
   * `route`. Every module reaches a case through here.
   */
  async get(
    ctx: Pick<RequestContext, 'tenant'>,
    caseId: string,
    trx?: Tx,
    route = 'case outside the caller’s sites',
  ): Promise<CasesTable> {
    const row = trx
      ? await this.readRow(trx, ctx.tenant, caseId)
      : await this.store.withTenant(ctx.tenant, (t) => this.readRow(t, ctx.tenant, caseId));
    return this.allowed(ctx, caseId, row, route);
  }

  /**
   * `get`, with `also` read in the same transaction (one round of the store instead of two: a
   * module that reads its own rows for the case on every request). `also` is given the case row as
   * stored, before any check, and may return nothing; the checks of `get` (not found, the site rule)
   * then apply as they would, and what `also` read is returned only when they pass.
   */
  async getWith<T>(
    ctx: Pick<RequestContext, 'tenant'>,
    caseId: string,
    also: (trx: Tx, row: CasesTable | undefined) => Promise<T>,
  ): Promise<{ row: CasesTable; also: T }> {
    const read = await this.store.withTenant(ctx.tenant, async (t) => {
      const row = await this.readRow(t, ctx.tenant, caseId);
      return { row, also: await also(t, row) };
    });
    return {
      row: await this.allowed(ctx, caseId, read.row, 'case outside the caller’s sites'),
      also: read.also,
    };
  }

  private readRow(t: Tx, tenant: string, caseId: string) {
    return casesDb(t)
      .selectFrom('cases')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('case_id', '=', caseId)
      .executeTakeFirst();
  }

  private async allowed(
    ctx: Pick<RequestContext, 'tenant'>,
    caseId: string,
    row: CasesTable | undefined,
    route: string,
  ): Promise<CasesTable> {
    if (!row) throw new NotFoundError('case');
    if (isStaffContext(ctx))
      await requireSiteAccess(ctx, 'case', row.site_id, {
        auditor: this.auditor,
        route,
        involved: async () => userIdsIn(await this.history(ctx, caseId)).includes(ctx.userId),
      });
    return row;
  }

  /**
   * Decides `command` against the case and appends the resulting events (plus any `extra` facts)
   * only if the case is still at the version decided on. One retry against fresh state. With
   * `audit`, the audit event of what the caller is shown goes into the same append: a command that
   * answers with the case is stored together with the record of that read, or neither is.
   */
  async command(
    ctx: RequestContext,
    caseId: string,
    command: CaseCommand | CaseCommand[],
    extra: (row: CasesTable, events: CaseEvent[]) => EventDraft[] = () => [],
    options: { audit?: AccessFields } = {},
  ): Promise<CaseEvent[]> {
    const commands = Array.isArray(command) ? command : [command];
    for (let attempt = 0; ; attempt++) {
      const row = await this.get(ctx, caseId);
      // Several commands (a disposition and the action it calls for) are decided in turn, each
      // against the state the previous one leads to, and stored together or not at all.
      let state = JSON.parse(row.state) as CaseState;
      const wasClosed = state.status === 'closed';
      const events: CaseEvent[] = [];
      for (const c of commands) {
        const produced = decide(state, c);
        for (const e of produced) state = evolve(state, e);
        events.push(...produced);
      }
      const extras = extra(row, events);
      const closing =
        !wasClosed && state.status === 'closed' && this.onClose
          ? await this.onClose(ctx, { row, state, extra: extras, closedAtMs: this.clock.nowMs() })
          : [];
      const hooked: EventDraft[] = [];
      for (const hook of this.commandHooks) hooked.push(...(await hook(ctx, { row, state, events })));
      const drafts: EventDraft[] = [
        // Facts that go with the command: the case's own (not lifecycle events, which only come
        // from decide), and the messages it sends (the outbox), committed together or not at all.
        ...extras.filter(
          (d) =>
            (d.type.startsWith('case.') ||
              d.type.startsWith('message.') ||
              d.type.startsWith('referral.') ||
              // A home visit's outcome closes its case in the same commit (dispatch module).
              d.type.startsWith('visit.') ||
              d.type.startsWith('vehicle.') ||
              d.type === 'audit.access') &&
            !isLifecycle(d.type) &&
            d.tenant === ctx.tenant,
        ),
        ...events.map((e) => ({
          tenant: ctx.tenant,
          type: e.type,
          actor: actorOf(ctx),
          payload: e.payload as Record<string, unknown>,
        })),
        ...(options.audit ? [accessEvent(ctx, options.audit)] : []),
        ...closing,
        ...hooked,
      ];
      try {
        await this.ledger.append(drafts, {
          guard: (trx) => this.expectVersion(trx, ctx.tenant, caseId, Number(row.version)),
        });
        return events;
      } catch (error) {
        if (error instanceof StaleCase && attempt === 0) continue;
        if (error instanceof StaleCase)
          throw new ConflictError('the case changed while you were acting on it: reload and try again');
        throw error;
      }
    }
  }

  /**
   * Appends facts (no state change) to a case that exists; with `expectedVersion`, only if the case
   * has not moved on since it was read (a triage answer decided against a stale walk is refused).
   */
  async appendFacts(
    ctx: RequestContext,
    caseId: string,
    drafts: EventDraft[],
    expectedVersion?: number,
  ): Promise<void> {
    await this.get(ctx, caseId);
    try {
      await this.ledger.append(
        drafts,
        expectedVersion === undefined
          ? {}
          : { guard: (trx) => this.expectVersion(trx, ctx.tenant, caseId, expectedVersion) },
      );
    } catch (error) {
      if (error instanceof StaleCase)
        throw new ConflictError('the case changed while you were acting on it: reload and try again');
      throw error;
    }
  }

  /**
   * The cases a short reference written on paper may name ("3F2A-9C1B": the first eight hex digits
   * of the case id, `caseReference`), among those the caller may open; usually one, and two only by
   * a rare clash, which the caller tells apart by the patient and call-back number. A whole case id
   * finds that case. One that names no case the caller may see is a 404, as an unknown id is.
   */
  async findByReference(
    ctx: RequestContext,
    reference: string,
  ): Promise<{ caseId: string; status: string; siteId: string; receivedAt: string }[]> {
    const named = parseCaseReference(reference);
    if (!named)
      throw new ValidationError([
        { path: 'params.reference', message: 'must be a case reference such as 3F2A-9C1B' },
      ]);
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      casesDb(trx)
        .selectFrom('cases')
        .selectAll()
        .where('tenant', '=', ctx.tenant)
        .where(
          'case_id',
          'caseId' in named ? '=' : 'like',
          'caseId' in named ? named.caseId : `${named.prefix}-%`,
        )
        .orderBy('received_at', 'desc')
        .limit(10)
        .execute(),
    );
    const found = [];
    for (const row of rows) {
      // The site rule `get` applies: a case of a site the caller does not work at is left out, and
      // the refusal audited, as any other read of it would be.
      const allowed = await this.allowed(ctx, row.case_id, row, 'case by reference').catch(
        (error: unknown) => {
          if (error instanceof ForbiddenError) return null;
          throw error;
        },
      );
      if (allowed)
        found.push({
          caseId: row.case_id,
          status: row.status,
          siteId: row.site_id,
          receivedAt: new Date(Number(row.received_at)).toISOString(),
        });
    }
    if (found.length === 0) throw new NotFoundError('case with that reference at your sites');
    return found;
  }

  /**
   * Records something done on paper while the system could not be used, on the case it belongs to
   * (`case.paper_record_entered`). Its time is the one written on the paper: not in the future, and
   * not before the case's call came in (paper about another case would be). Clinical notes are
   * entered by someone who may write consultations.
   */
  async enterPaperRecord(
    ctx: RequestContext,
    caseId: string,
    input: { kind: PaperRecordKind; happenedAt: string; writtenBy: string; text: string },
  ): Promise<void> {
    if (input.kind === 'clinical' && !hasPermission(ctx.roles, 'consultations.write'))
      throw new ForbiddenError('clinical notes from paper are entered by a clinician');
    const row = await this.get(ctx, caseId);
    const happened = Date.parse(input.happenedAt);
    if (happened > this.clock.nowMs() + PAPER_CLOCK_SLACK_MS)
      throw new ValidationError([{ path: 'body.happenedAt', message: 'is in the future' }]);
    if (happened < Number(row.received_at) - PAPER_CLOCK_SLACK_MS)
      throw new ValidationError([
        {
          path: 'body.happenedAt',
          message: `is before this case's call came in (${new Date(Number(row.received_at)).toISOString()}): check the case reference and the time on the paper`,
        },
      ]);
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'case.paper_record_entered',
        actor: actorOf(ctx),
        payload: { caseId, ...input, happenedAt: new Date(happened).toISOString() },
      },
    ]);
  }

  /** The patient each case is about (cases with no patient identified are left out), for the audit trail. */
  async patientsOfCases(tenant: string, caseIds: readonly string[]): Promise<Map<string, string>> {
    if (caseIds.length === 0) return new Map();
    const rows = await this.store.withTenant(tenant, (trx) =>
      casesDb(trx)
        .selectFrom('cases')
        .select(['case_id', 'patient_id'])
        .where('tenant', '=', tenant)
        .where('case_id', 'in', [...new Set(caseIds)])
        .execute(),
    );
    return new Map(rows.flatMap((r) => (r.patient_id ? [[r.case_id, r.patient_id] as const] : [])));
  }

  /** Ids of a patient's cases, newest call first (at most `limit`). */
  async caseIdsOfPatient(
    ctx: Pick<RequestContext, 'tenant'>,
    patientId: string,
    limit: number,
  ): Promise<string[]> {
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      casesDb(trx)
        .selectFrom('cases')
        .select('case_id')
        .where('tenant', '=', ctx.tenant)
        .where('patient_id', '=', patientId)
        .orderBy('received_at', 'desc')
        .orderBy('case_id')
        .limit(limit)
        .execute(),
    );
    return rows.map((r) => r.case_id);
  }

  /**
   * Every event recorded about a case, in ledger order (hybrid clock, then node and seq): the case's
   * full record as it happened, for reading back. Not audited by itself: callers audit the view.
   */
  async history(ctx: Pick<RequestContext, 'tenant'>, caseId: string): Promise<CaseHistoryEvent[]> {
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['id', 'type', 'actor', 'node', 'hlc', 'payload'])
        .where('tenant', '=', ctx.tenant)
        .where('subject', '=', `case:${caseId}`)
        .orderBy('hlc')
        .orderBy('node')
        .orderBy('seq')
        .execute(),
    );
    return rows.map((r) => ({
      eventId: r.id,
      type: r.type,
      actor: r.actor,
      node: r.node,
      atMs: Number(r.hlc.slice(0, 15)),
      payload: JSON.parse(r.payload) as Record<string, unknown>,
    }));
  }

  /** Cases of a patient across all the provider's sites, newest call first (at most `limit`). */
  async rowsOfPatient(
    ctx: Pick<RequestContext, 'tenant'>,
    patientId: string,
    limit: number,
  ): Promise<CasesTable[]> {
    return this.store.withTenant(ctx.tenant, (trx) =>
      casesDb(trx)
        .selectFrom('cases')
        .selectAll()
        .where('tenant', '=', ctx.tenant)
        .where('patient_id', '=', patientId)
        .orderBy('received_at', 'desc')
        .orderBy('case_id')
        .limit(limit)
        .execute(),
    );
  }

  /** Cases a clinician holds (claimed or in consultation), for releasing them when they sign out. */
  async heldBy(tenant: string, userId: string): Promise<CasesTable[]> {
    return this.store.withTenant(tenant, (trx) =>
      casesDb(trx)
        .selectFrom('cases')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('claimed_by', '=', userId)
        .where('status', 'in', ['claimed', 'in_consultation'])
        .execute(),
    );
  }

  /**
   * The consultation records of a case, oldest first, as stored (the `cases` row keeps only the
   * NEWS2 total; the full record lives in the case's ledger events). Not audited by itself: callers
   * audit the view it is part of.
   */
  async consultations(ctx: Pick<RequestContext, 'tenant'>, caseId: string): Promise<StoredConsultation[]> {
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['id', 'hlc', 'v', 'payload'])
        .where('tenant', '=', ctx.tenant)
        .where('subject', '=', `case:${caseId}`)
        .where('type', '=', 'case.consultation_recorded')
        .orderBy('hlc')
        .orderBy('node')
        .orderBy('seq')
        .execute(),
    );
    return rows.map((r) => ({
      eventId: r.id,
      v: Number(r.v),
      recordedAtMs: Number(r.hlc.slice(0, 15)),
      record: JSON.parse(r.payload) as z.infer<typeof consultationRecorded.schema>,
    }));
  }

  /** Whether the patient is in the provider's index, and whether their record says they have died. */
  private patientOnFile(tenant: string, patientId: string): Promise<{ deceased: boolean } | null> {
    return this.store.withTenant(tenant, (trx) => patientOnFile(trx, tenant, patientId));
  }

  private async expectVersion(trx: Tx, tenant: string, caseId: string, version: number): Promise<void> {
    if ((await caseVersion(trx, tenant, caseId)) !== version) throw new StaleCase();
  }
}

const LIFECYCLE_TYPES = new Set([
  'case.call_answered',
  'case.call_abandoned',
  'case.triage_started',
  'case.disposition_reached',
  'case.disposition_withdrawn',
  'case.ambulance_requested',
  'case.referred',
  'case.queued_for_clinician',
  'case.claimed',
  'case.released',
  'case.transferred',
  'case.callback_attempted',
  'case.escalated',
  'case.welfare_check_recorded',
  'case.escalation_cleared',
  'case.consultation_started',
  'case.outcome_recorded',
  'case.follow_up_arranged',
  'case.closed',
  'case.call_ended',
]);

function isLifecycle(type: string): boolean {
  return LIFECYCLE_TYPES.has(type);
}
