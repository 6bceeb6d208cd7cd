import {
  ConflictError,
  callerSchema,
  CALLBACK_OUTCOMES,
  CONSULTATION_OUTCOMES,
  news2ObservationsSchema,
  parseCallbackNumber,
  PREGNANCY_ANSWERS,
  TELEPHONY_CALL_ID,
  ValidationError,
  WELFARE_CHECK_OUTCOMES,
  WELFARE_CHECKERS,
} from '@holdfast/core';
import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { DraftStore } from './drafts.ts';
import type { CaseService } from './service.ts';
import type { CaseViews } from './views.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Store } from '../store/store.ts';
import { streamCaseEvents } from './live.ts';
import type { QueueService } from './queue.ts';
import type { TriageService } from './triage.ts';

/**
 * The optional Idempotency-Key header of a create command: the client's own name for this request
 * (a UUID is the usual choice), so a retry after a lost answer cannot record it twice.
 */
const idempotencyKeyHeader = z
  .string()
  .regex(/^[\x21-\x7e]{1,200}$/, 'must be 1 to 200 visible ASCII characters, e.g. a UUID')
  .optional();

function idempotencyKeyOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const parsed = idempotencyKeyHeader.safeParse(headers['idempotency-key']);
  if (!parsed.success)
    throw new ValidationError([
      { path: 'headers.idempotency-key', message: 'must be 1 to 200 visible ASCII characters, e.g. a UUID' },
    ]);
  return parsed.data;
}

const caseParams = z.strictObject({ caseId: z.string().uuid('must be a case id') });
const note = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`);
/** A draft keeps what was typed as it was typed (spaces included): it is not the record. */
const draftText = (max: number) => z.string().max(max, `must be at most ${max} characters`).optional();

/**
 * The caller as a call handler enters them: the call-back number must be a UK number in use
 * (checked against the numbering plan, stored in the national format) and must have been read back
 * to the caller, who said it was right. Stored as `case.opened`'s caller plus a
 * `case.callback_number_confirmed` in the same append.
 */
const callerInput = callerSchema
  .extend({
    callbackNumber: z.string().transform((value, ctx) => {
      const r = parseCallbackNumber(value);
      if (!r.ok) {
        ctx.addIssue({ code: 'custom', message: r.message });
        return z.NEVER;
      }
      return r.national;
    }),
    callbackNumberReadBack: z.literal(true, {
      error:
        'must be confirmed: read the number back to the caller and tick this once they agree it is right',
    }),
  })
  .transform(({ callbackNumberReadBack, ...caller }) => ({ caller, callbackNumberReadBack }));

/** Calls, cases and the clinician's side of a case (claim, call-backs, consultation, outcome). */
export function caseRoutes(cases: CaseService, views: CaseViews, drafts: DraftStore): RouteSpec[] {
  return [
    authedRoute({
      method: 'POST',
      url: '/api/v1/calls',
      summary: 'A call arrives: open a case with the caller, where the patient is now and what is wrong',
      access: { permission: 'cases.handle' },
      body: z.strictObject({
        siteId: z.string().uuid('must be a site id'),
        receivedAt: z.iso
          .datetime({ message: 'must be an ISO 8601 UTC time, e.g. 2026-11-29T03:04:05Z' })
          .optional(),
        answered: z.boolean().default(true),
        /**
         * The telephony's id of the call, when the adviser's screen carries it (a screen-pop): ties
         * the case to the call's timings for national reporting (telephony/service.ts).
         */
        telephonyCallId: z
          .string()
          .regex(TELEPHONY_CALL_ID, 'must be the telephony’s call id: 1 to 64 letters, digits and . _ : @ -')
          .optional(),
        caller: callerInput,
        patientId: z.string().uuid('must be a patient id').optional(),
        /** Required (true) with a patientId whose record says they have died. */
        deceasedConfirmed: z.boolean().optional(),
        location: note(300).min(1, 'say where the patient is now'),
        presentingComplaint: note(300).min(1, 'say what the problem is'),
      }),
      async handler({ ctx, body, request, reply }) {
        const opened = await cases.openCall(
          ctx,
          { ...body, caller: body.caller.caller, callbackNumberReadBack: body.caller.callbackNumberReadBack },
          idempotencyKeyOf(request.headers),
        );
        // A retry answers 200 with the case its first attempt opened; nothing new was stored.
        return reply.code(opened.replayed ? 200 : 201).send({ caseId: opened.caseId });
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId',
      summary: 'A case: caller, patient, triage so far, disposition, queue state, consultation',
      access: { permission: 'cases.read' },
      params: caseParams,
      async handler({ ctx, params }) {
        return views.detail(ctx, params.caseId);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/patient',
      summary:
        "Identify the patient of a case; another patient than the case's only as a correction naming the one it replaces and why",
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: z.strictObject({
        patientId: z.string().uuid('must be a patient id'),
        /** To correct the case's patient: the patient it has now, and why. */
        replacing: z.string().uuid('must be a patient id').optional(),
        reason: z.string().trim().min(10).max(500).optional(),
        /** Required (true) for a patient whose record says they have died. */
        deceasedConfirmed: z.boolean().optional(),
      }),
      async handler({ ctx, params, body, reply }) {
        await views.identify(ctx, params.caseId, body);
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/claim',
      summary: 'Claim a queued case (exclusive: if someone has it, you are told who)',
      access: { permission: 'queue.work' },
      params: caseParams,
      async handler({ ctx, params }) {
        return views.commandThenDetail(ctx, params.caseId, { type: 'claim', clinicianId: ctx.userId });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/release',
      summary: 'Put a claimed case back in the queue',
      access: { permission: 'queue.work' },
      params: caseParams,
      async handler({ ctx, params, reply }) {
        await cases.command(ctx, params.caseId, { type: 'release', clinicianId: ctx.userId });
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/transfer',
      summary: 'Hand a claimed case to another clinician',
      access: { permission: 'queue.work' },
      params: caseParams,
      body: z.strictObject({ toClinicianId: z.string().uuid('must be a user id') }),
      async handler({ ctx, params, body, reply }) {
        await views.requireClinician(ctx, body.toClinicianId);
        await cases.command(ctx, params.caseId, {
          type: 'transfer',
          clinicianId: ctx.userId,
          toClinicianId: body.toClinicianId,
        });
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/callback-attempts',
      summary:
        'Record a call-back attempt; after two failed attempts the case is escalated for a welfare check',
      access: { permission: 'queue.work' },
      params: caseParams,
      body: z.strictObject({ outcome: z.enum(CALLBACK_OUTCOMES) }),
      async handler({ ctx, params, body }) {
        const events = await cases.command(ctx, params.caseId, {
          type: 'record_callback_attempt',
          clinicianId: ctx.userId,
          outcome: body.outcome,
        });
        const escalated = events.some((e) => e.type === 'case.escalated');
        return {
          escalated,
          ...(escalated
            ? {
                prompt:
                  'Two call-backs have failed: arrange a welfare check (call the next of kin, GP or police as your procedure says).',
              }
            : {}),
        };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/welfare-checks',
      summary:
        'Record a welfare check on an escalated case (who made it, when, what it found); reaching the patient clears the escalation',
      access: { permission: 'queue.work' },
      params: caseParams,
      body: z.strictObject({
        checkedBy: z.enum(WELFARE_CHECKERS),
        checkedAt: z.iso
          .datetime({ message: 'must be an ISO 8601 UTC time, e.g. 2026-11-29T03:04:05Z' })
          .optional(),
        outcome: z.enum(WELFARE_CHECK_OUTCOMES),
        details: note(1000).optional(),
      }),
      async handler({ ctx, params, body }) {
        return views.recordWelfareCheck(ctx, params.caseId, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/consultation',
      summary: 'Start the consultation on a case you hold',
      access: { permission: 'consultations.write' },
      params: caseParams,
      async handler({ ctx, params, reply }) {
        await cases.command(ctx, params.caseId, { type: 'start_consultation', clinicianId: ctx.userId });
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/consultation/record',
      summary:
        'Record history, examination, observations (NEWS2 is computed), assessment, plan and safety-netting',
      access: { permission: 'consultations.write' },
      params: caseParams,
      body: z.strictObject({
        history: note(10_000).optional(),
        examination: note(10_000).optional(),
        observations: news2ObservationsSchema.optional(),
        /** Pregnant or up to 6 weeks after giving birth: NEWS2 is not used then. */
        pregnancy: z.enum(PREGNANCY_ANSWERS).optional(),
        /** The patient's age as given at the call, for a patient who is not identified. */
        statedAgeYears: z.number().int().min(0).max(130).optional(),
        assessment: note(10_000).optional(),
        plan: note(10_000).optional(),
        safetyNetting: note(5000).optional(),
      }),
      async handler({ ctx, params, body }) {
        const saved = await views.recordConsultation(ctx, params.caseId, body);
        // Saved in the record: the draft it came from has served its purpose.
        await drafts.delete(ctx.tenant, ctx.userId, params.caseId);
        return saved;
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/consultation/draft',
      summary:
        'Your unsaved consultation notes on this case (kept on this server, not in the record), or null',
      access: { permission: 'consultations.write' },
      params: caseParams,
      async handler({ ctx, params }) {
        await cases.get(ctx, params.caseId);
        const found = await drafts.get(ctx.tenant, ctx.userId, params.caseId);
        return found ?? { draft: null, updatedAt: null };
      },
    }),
    authedRoute({
      method: 'PUT',
      url: '/api/v1/cases/:caseId/consultation/draft',
      summary:
        'Keep what you have typed into the consultation so far (while you hold the case): survives a reload or an idle sign-out; not part of the record until saved',
      access: { permission: 'consultations.write' },
      params: caseParams,
      body: z.strictObject({
        history: draftText(10_000),
        examination: draftText(10_000),
        assessment: draftText(10_000),
        plan: draftText(10_000),
        safetyNetting: draftText(5000),
        observations: z
          .record(
            z.string().regex(/^[A-Za-z0-9]{1,40}$/, 'must be an observation name'),
            z.string().max(40, 'must be at most 40 characters'),
          )
          .optional(),
      }),
      async handler({ ctx, params, body }) {
        const row = await cases.get(ctx, params.caseId);
        if (row.claimed_by !== ctx.userId)
          throw new ConflictError('you no longer hold this case: claim it again to carry on');
        if (body.observations && Object.keys(body.observations).length > 20)
          throw new ValidationError([{ path: 'body.observations', message: 'must have at most 20 fields' }]);
        const updatedAt = await drafts.put(ctx.tenant, ctx.userId, params.caseId, stripUndefined(body));
        return { updatedAt };
      },
    }),
    authedRoute({
      method: 'DELETE',
      url: '/api/v1/cases/:caseId/consultation/draft',
      summary: 'Throw away your unsaved consultation notes on this case',
      access: { permission: 'consultations.write' },
      params: caseParams,
      async handler({ ctx, params, reply }) {
        await cases.get(ctx, params.caseId);
        await drafts.delete(ctx.tenant, ctx.userId, params.caseId);
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/patients/:patientId/encounters',
      summary:
        "A patient's previous encounters (cases) across all the provider's sites, newest first; the record's access rule applies (own sites, or break-glass with X-Break-Glass-Reason); audited",
      access: { permission: 'cases.read' },
      params: z.strictObject({ patientId: z.string().uuid('must be a patient id') }),
      async handler({ ctx, params, request }) {
        const reason = request.headers['x-break-glass-reason'];
        return views.patientEncounters(
          ctx,
          params.patientId,
          typeof reason === 'string' ? reason.slice(0, 500) : undefined,
        );
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/outcome',
      summary:
        'The consultation outcome: advice and close, re-triage, upgrade to ambulance, refer, or book/visit/prescribe (recorded for later)',
      access: { permission: 'consultations.write' },
      params: caseParams,
      body: z
        .strictObject({
          outcome: z.enum(CONSULTATION_OUTCOMES),
          ambulanceCategory: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]).optional(),
          /** Why a non-urgent outcome is right although NEWS2 asked for an urgent response. */
          news2Reason: note(2000).min(1, 'say why this outcome is right for the patient').optional(),
          /** A home visit: within how many hours, and why (the visit is created for dispatch). */
          homeVisit: z
            .strictObject({
              withinHours: z
                .number('give the number of hours')
                .int('must be a whole number of hours')
                .min(1, 'must be at least 1 hour')
                .max(72, 'must be at most 72 hours'),
              reason: note(1000).min(1, 'say why the patient needs a visit'),
            })
            .optional(),
        })
        // The category of an upgrade is the clinician's choice, never a default.
        .refine((b) => b.outcome !== 'upgrade_to_ambulance' || b.ambulanceCategory !== undefined, {
          path: ['ambulanceCategory'],
          message: 'choose the ambulance category (1 to 4) for an upgrade to an ambulance',
        })
        // A home visit is dispatched by its deadline: the clinician says within how many hours, and why.
        .refine((b) => b.outcome !== 'home_visit' || b.homeVisit !== undefined, {
          path: ['homeVisit'],
          message: 'say within how many hours the visit is needed, and why',
        }),
      async handler({ ctx, params, body }) {
        return views.recordOutcome(ctx, params.caseId, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/close',
      summary: 'Close a case',
      access: { permission: 'consultations.write' },
      params: caseParams,
      async handler({ ctx, params, reply }) {
        await cases.command(ctx, params.caseId, { type: 'close' });
        return reply.code(204).send();
      },
    }),
  ];
}

const triageAnswerBody = z.strictObject({
  nodeId: z.string().min(1).max(100),
  value: z.union([z.string().max(64), z.array(z.string().max(64)).max(50), z.number().finite()]),
});

/** Triage on a case, the CAS queue, and its live stream. */
export function triageAndQueueRoutes(
  triage: TriageService,
  queue: QueueService,
  store: Store,
  ledger: Ledger,
): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/triage/pathways',
      summary: 'Pathways of the loaded protocol pack; sample content says it is not clinically validated',
      access: { permission: 'cases.handle' },
      async handler() {
        return { pathways: triage.pathways() };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/triage',
      summary: 'Start triage on a pathway: life-threatening questions first, then the pathway',
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: z.strictObject({ pathwayId: z.string().min(1).max(100) }),
      async handler({ ctx, params, body }) {
        return triage.start(ctx, params.caseId, body.pathwayId);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/triage',
      summary: 'Where triage stands: the question being asked (or the disposition) and the path so far',
      access: { permission: 'cases.read' },
      params: caseParams,
      async handler({ ctx, params }) {
        return (await triage.current(ctx, params.caseId)) ?? { status: 'not_started' };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/triage/answers',
      summary:
        'Answer the question being asked; a reached disposition is proposed, and acted on only when confirmed',
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: triageAnswerBody,
      async handler({ ctx, params, body }) {
        return triage.answer(ctx, params.caseId, body.nodeId, body.value, false);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/triage/changes',
      summary: 'Change an earlier answer: triage walks on from there; the history keeps the old answer',
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: triageAnswerBody,
      async handler({ ctx, params, body }) {
        return triage.answer(ctx, params.caseId, body.nodeId, body.value, true);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/disposition/confirm',
      summary:
        'Confirm the proposed disposition (the code shown): only now is it acted on — an ambulance requested from the ambulance service, the CAS queue, a referral, or advice and close',
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: z.strictObject({
        dxCode: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,39}$/, 'must be the disposition code shown (such as Dx05)'),
      }),
      async handler({ ctx, params, body }) {
        return triage.confirm(ctx, params.caseId, body.dxCode);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/queue',
      summary: 'The CAS queue by deadline then clinical priority, each case on time, at risk or breached',
      access: { permission: 'queue.read' },
      query: z.strictObject({
        siteId: z.string().uuid('must be a site id').optional(),
        skillSet: z.string().max(40).optional(),
        mine: z.enum(['true', 'false']).optional(),
      }),
      async handler({ ctx, query }) {
        return queue.list(ctx, {
          siteId: query.siteId,
          skillSet: query.skillSet,
          mine: query.mine === 'true',
        });
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/queue/stream',
      summary:
        'Case changes as server-sent events (follow=true keeps the stream open); reconnect with Last-Event-ID to resume',
      access: { permission: 'queue.read' },
      stream: true,
      query: z.strictObject({ follow: z.enum(['true', 'false']).default('false') }),
      async handler({ ctx, request, reply, query }) {
        await streamCaseEvents(store, ledger, ctx, request, reply, query.follow === 'true');
      },
    }),
  ];
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
