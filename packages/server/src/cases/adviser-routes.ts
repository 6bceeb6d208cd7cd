import { CALL_END_REASONS, CASE_NOTE_MAX, ConflictError } from '@holdfast/core';
import { z } from 'zod';
import { actorOf } from '../http/context.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { OpenCalls } from './open-calls.ts';
import type { CaseService } from './service.ts';

const caseParams = z.strictObject({ caseId: z.string().uuid('must be a case id') });
// Limits are worded centrally (core plain-errors.ts): 'must be at most 300 characters (it has 301)'.
const text = (max: number) => z.string().trim().max(max);

/** What a correction of a confirmed disposition cannot undo by re-triage, in the adviser's words. */
const NOT_CORRECTABLE: Readonly<Record<string, string>> = {
  claimed: 'a clinician has the case now: ask them to re-triage it from their consultation',
  in_consultation: 'a clinician has the case now: ask them to re-triage it from their consultation',
  ambulance_requested:
    'the ambulance request has gone to the ambulance service: phone them to change or cancel it, then tell the shift manager',
  referral_pending:
    'the referral is on its way to the other service: contact them to change it, then tell the shift manager',
  closed: 'the case is closed: open a new call for the patient if they still need help',
};

/**
 * The adviser's side of a call beyond triage: their open calls, ending a call that reaches no
 * disposition, free-text notes, and correcting a confirmed disposition (a recorded re-triage).
 * The shift manager's list of calls open too long is here too: the same calls, seen from above.
 */
export function adviserRoutes(cases: CaseService, openCalls: OpenCalls): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/calls/mine',
      summary:
        'Your unfinished calls (opened by you, not yet confirmed or ended), oldest first, to resume any of them',
      access: { permission: 'cases.handle' },
      async handler({ ctx }) {
        return openCalls.mine(ctx);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/calls/open-too-long',
      summary:
        'Calls still with advisers and without activity for longer than the configured time (default 20 minutes), for the shift manager',
      access: { permission: 'reports.read' },
      async handler({ ctx }) {
        return openCalls.tooLong(ctx.tenant);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/end-call',
      summary:
        'End a call that reached no confirmed disposition, with the reason (caller hung up, wrong number, transferred elsewhere, other): nothing is acted on and no practice message is sent',
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: z
        .strictObject({
          reason: z.enum(CALL_END_REASONS),
          details: text(300).optional(),
        })
        .refine((b) => b.reason !== 'other' || (b.details ?? '') !== '', {
          path: ['details'],
          message: 'say why the call ended',
        }),
      async handler({ ctx, params, body, reply }) {
        await cases.command(ctx, params.caseId, {
          type: 'end_call',
          reason: body.reason,
          ...(body.details ? { details: body.details } : {}),
        });
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/notes',
      summary: `Add a free-text note to the case (at most ${CASE_NOTE_MAX} characters); part of its record, never changed afterwards`,
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: z.strictObject({ text: text(CASE_NOTE_MAX).min(1, 'write the note first') }),
      async handler({ ctx, params, body, reply }) {
        await cases.appendFacts(ctx, params.caseId, [
          {
            tenant: ctx.tenant,
            type: 'case.note_added',
            actor: actorOf(ctx),
            payload: { caseId: params.caseId, text: body.text },
          },
        ]);
        return reply.code(201).send({ added: true });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/disposition/correct',
      summary:
        'Correct a confirmed disposition while the case waits in the CAS queue: back to triage, recorded as a re-triage with the reason',
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: z.strictObject({ reason: text(300).min(1, 'say what was wrong') }),
      async handler({ ctx, params, body, reply }) {
        const row = await cases.get(ctx, params.caseId);
        const why = NOT_CORRECTABLE[row.status];
        if (why) throw new ConflictError(why);
        await cases.command(ctx, params.caseId, { type: 'retriage', userId: ctx.userId }, (r) => [
          {
            tenant: ctx.tenant,
            type: 'case.disposition_corrected',
            actor: actorOf(ctx),
            payload: { caseId: params.caseId, dxCode: r.dx_code ?? '', reason: body.reason },
          },
        ]);
        return reply.code(204).send();
      },
    }),
  ];
}
