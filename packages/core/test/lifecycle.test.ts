import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError, InvariantViolation } from '../src/errors.ts';
import { EventRegistry } from '../src/ledger/registry.ts';
import {
  CASE_LIFECYCLE_EVENT_TYPES,
  CALL_END_REASONS,
  CASE_STATUSES,
  CALLBACK_OUTCOMES,
  CONSULTATION_OUTCOMES,
  CaseTransitionError,
  WELFARE_CHECK_OUTCOMES,
  DISPOSITION_KINDS,
  caseCommandSchema,
  decide,
  evolve,
  initialCaseState,
  replayCase,
  type CaseCommand,
  type CaseEvent,
  type CaseState,
  type CaseStatus,
  type CaseTransitionCode,
  type DispositionKind,
} from '../src/cases/lifecycle.ts';

const CASE = '0195e8a4-7c2d-7641-834d-a5418083a300';
const ALICE = '0195e8a4-7c2d-7641-834d-a5418083a301';
const BOB = '0195e8a4-7c2d-7641-834d-a5418083a302';
const CAROL = '0195e8a4-7c2d-7641-834d-a5418083a303';
const CLINICIANS = [ALICE, BOB, CAROL] as const;

const registry = new EventRegistry().register(...CASE_LIFECYCLE_EVENT_TYPES);

/** Runs commands from a fresh case, failing the test on any refusal; returns state and all events. */
function run(...commands: CaseCommand[]): { state: CaseState; events: CaseEvent[] } {
  let state = initialCaseState(CASE);
  const events: CaseEvent[] = [];
  for (const c of commands) {
    const out = decide(state, c);
    for (const e of out) state = evolve(state, e);
    events.push(...out);
  }
  return { state, events };
}

function refusal(state: CaseState, command: CaseCommand): CaseTransitionError {
  try {
    decide(state, command);
  } catch (e) {
    expect(e).toBeInstanceOf(CaseTransitionError);
    return e as CaseTransitionError;
  }
  throw new Error(`expected ${command.type} to be refused from ${state.status}`);
}

const answer: CaseCommand = { type: 'answer_call' };
const triage: CaseCommand = { type: 'start_triage' };
const disposition = (kind: DispositionKind): CaseCommand => ({ type: 'reach_disposition', kind });
const queue: CaseCommand = { type: 'queue_for_clinician' };
const claim = (clinicianId: string): CaseCommand => ({ type: 'claim', clinicianId });
const consult = (clinicianId: string): CaseCommand => ({ type: 'start_consultation', clinicianId });
const welfareCheck = (
  clinicianId: string,
  outcome: (typeof WELFARE_CHECK_OUTCOMES)[number],
): CaseCommand => ({
  type: 'record_welfare_check',
  clinicianId,
  checkedBy: 'next_of_kin',
  checkedAt: '2026-11-29T03:10:00.000Z',
  outcome,
});
const callback = (clinicianId: string, outcome: (typeof CALLBACK_OUTCOMES)[number]): CaseCommand => ({
  type: 'record_callback_attempt',
  clinicianId,
  outcome,
});

const toQueue = [answer, triage, disposition('speak_to_primary_care'), queue];

// ---- example tests, one or more per rule ----------------------------------------------------------------

describe('case lifecycle: calls', () => {
  it('a new case is a call received; answering, triage and a disposition follow in order', () => {
    expect(initialCaseState(CASE).status).toBe('call_received');
    const { state, events } = run(answer, triage, {
      type: 'reach_disposition',
      kind: 'contact_primary_care',
      dxCode: 'Dx06',
      timeframeMinutes: 360,
    });
    expect(state.status).toBe('disposition_reached');
    expect(state.disposition).toBe('contact_primary_care');
    expect(events).toEqual([
      { type: 'case.call_answered', payload: { caseId: CASE } },
      { type: 'case.triage_started', payload: { caseId: CASE } },
      {
        type: 'case.disposition_reached',
        payload: { caseId: CASE, kind: 'contact_primary_care', dxCode: 'Dx06', timeframeMinutes: 360 },
      },
    ]);
  });

  it('a call can be abandoned only before it is answered, and abandoned is closed', () => {
    const abandoned = run({ type: 'abandon_call' }).state;
    expect(abandoned.status).toBe('abandoned');
    expect(refusal(abandoned, answer).code).toBe('case_closed');
    const answered = run(answer).state;
    expect(refusal(answered, { type: 'abandon_call' })).toMatchObject({
      code: 'illegal_transition',
      from: 'answered',
      command: 'abandon_call',
    });
    expect(refusal(run(answer, triage).state, { type: 'abandon_call' }).code).toBe('illegal_transition');
  });

  it('triage cannot start before the call is answered, nor a disposition before triage', () => {
    expect(refusal(initialCaseState(CASE), triage).code).toBe('illegal_transition');
    expect(refusal(run(answer).state, disposition('self_care')).code).toBe('illegal_transition');
  });
});

describe('case lifecycle: acting on the disposition', () => {
  it('an ambulance disposition is requested with its category', () => {
    const { state, events } = run(answer, triage, disposition('ambulance'), {
      type: 'request_ambulance',
      category: 2,
    });
    expect(state.status).toBe('ambulance_requested');
    expect(events.at(-1)).toEqual({
      type: 'case.ambulance_requested',
      payload: { caseId: CASE, category: 2 },
    });
    expect(
      run(
        answer,
        triage,
        disposition('ambulance'),
        { type: 'request_ambulance', category: 2 },
        { type: 'close' },
      ).state.status,
    ).toBe('closed');
  });

  it('an ambulance is only requested for an ambulance disposition', () => {
    const s = run(answer, triage, disposition('self_care')).state;
    expect(refusal(s, { type: 'request_ambulance', category: 3 }).code).toBe('disposition_mismatch');
  });

  it('an ambulance or call-back disposition cannot be closed without acting on it', () => {
    for (const kind of ['ambulance', 'speak_to_primary_care'] as const) {
      const e = refusal(run(answer, triage, disposition(kind)).state, { type: 'close' });
      expect(e.code).toBe('disposition_not_acted_on');
    }
    for (const kind of [
      'self_care',
      'other',
      'ed_utc',
      'contact_primary_care',
      'dental',
      'pharmacy',
    ] as const) {
      expect(run(answer, triage, disposition(kind), { type: 'close' }).state.status).toBe('closed');
    }
  });

  it('an ambulance disposition can go to a clinician for validation before dispatch', () => {
    expect(run(answer, triage, disposition('ambulance'), queue).state.status).toBe('queued');
  });

  it('referral suits ED/UTC and primary care dispositions, not ambulance or self care', () => {
    for (const kind of [
      'ed_utc',
      'contact_primary_care',
      'speak_to_primary_care',
      'dental',
      'pharmacy',
      'other',
    ] as const) {
      expect(run(answer, triage, disposition(kind), { type: 'refer' }).state.status).toBe('referral_pending');
    }
    for (const kind of ['ambulance', 'self_care'] as const) {
      expect(refusal(run(answer, triage, disposition(kind)).state, { type: 'refer' }).code).toBe(
        'disposition_mismatch',
      );
    }
  });

  it('a pending referral can be closed or sent to a clinician', () => {
    const s = run(answer, triage, disposition('ed_utc'), { type: 'refer' }).state;
    expect(decide(s, { type: 'close' })[0]!.type).toBe('case.closed');
    expect(decide(s, queue)[0]!.type).toBe('case.queued_for_clinician');
  });
});

describe('case lifecycle: the clinician queue', () => {
  it('a queued case is claimed by one clinician', () => {
    const { state, events } = run(...toQueue, claim(ALICE));
    expect(state).toMatchObject({ status: 'claimed', claimantId: ALICE });
    expect(events.at(-1)).toEqual({ type: 'case.claimed', payload: { caseId: CASE, clinicianId: ALICE } });
  });

  it('a claimed case cannot be claimed again, and the error names who holds it', () => {
    const s = run(...toQueue, claim(ALICE)).state;
    const e = refusal(s, claim(BOB));
    expect(e).toMatchObject({ code: 'already_claimed', heldBy: ALICE, from: 'claimed', command: 'claim' });
    expect(e.message).toContain(ALICE);
    expect(refusal(s, claim(ALICE)).code).toBe('already_claimed');
    expect(refusal(run(...toQueue, claim(ALICE), consult(ALICE)).state, claim(BOB)).heldBy).toBe(ALICE);
  });

  it('a case not in the queue cannot be claimed', () => {
    expect(refusal(run(answer, triage).state, claim(ALICE)).code).toBe('illegal_transition');
    expect(refusal(run(answer, triage, disposition('ed_utc')).state, claim(ALICE)).code).toBe(
      'illegal_transition',
    );
  });

  it('only the claimer may release, record call-backs, consult, transfer or record outcomes', () => {
    const s = run(...toQueue, claim(ALICE)).state;
    const others: CaseCommand[] = [
      { type: 'release', clinicianId: BOB },
      callback(BOB, 'no_answer'),
      consult(BOB),
      { type: 'transfer', clinicianId: BOB, toClinicianId: CAROL },
    ];
    for (const c of others) {
      const e = refusal(s, c);
      expect(e).toMatchObject({ code: 'not_claimant', heldBy: ALICE });
      expect(e.message).toContain(ALICE);
    }
    const consulting = run(...toQueue, claim(ALICE), consult(ALICE)).state;
    expect(
      refusal(consulting, { type: 'record_outcome', clinicianId: BOB, outcome: 'advice_and_close' }),
    ).toMatchObject({
      code: 'not_claimant',
      heldBy: ALICE,
    });
  });

  it('release returns the case to the queue for anyone to claim', () => {
    const { state } = run(...toQueue, claim(ALICE), { type: 'release', clinicianId: ALICE }, claim(BOB));
    expect(state).toMatchObject({ status: 'claimed', claimantId: BOB });
    expect(
      run(...toQueue, claim(ALICE), consult(ALICE), { type: 'release', clinicianId: ALICE }).state,
    ).toMatchObject({
      status: 'queued',
      claimantId: null,
    });
  });

  it('release of an unclaimed case is refused', () => {
    expect(refusal(run(...toQueue).state, { type: 'release', clinicianId: ALICE }).code).toBe(
      'illegal_transition',
    );
  });

  it('transfer hands the claim to another clinician, not to oneself', () => {
    const { state, events } = run(...toQueue, claim(ALICE), {
      type: 'transfer',
      clinicianId: ALICE,
      toClinicianId: BOB,
    });
    expect(state).toMatchObject({ status: 'claimed', claimantId: BOB });
    expect(events.at(-1)!.payload).toEqual({ caseId: CASE, fromClinicianId: ALICE, toClinicianId: BOB });
    expect(refusal(state, { type: 'release', clinicianId: ALICE }).code).toBe('not_claimant');
    expect(refusal(state, { type: 'transfer', clinicianId: BOB, toClinicianId: BOB }).code).toBe(
      'transfer_to_self',
    );
  });
});

describe('case lifecycle: call-backs', () => {
  it('two failed call-back attempts escalate the case and prompt a welfare check', () => {
    const first = run(...toQueue, claim(ALICE), callback(ALICE, 'no_answer'));
    expect(first.state).toMatchObject({ failedCallbackAttempts: 1, escalated: false });
    const second = decide(first.state, callback(ALICE, 'voicemail'));
    expect(second).toEqual([
      {
        type: 'case.callback_attempted',
        payload: { caseId: CASE, clinicianId: ALICE, outcome: 'voicemail', attempt: 2, failedAttempts: 2 },
      },
      {
        type: 'case.escalated',
        payload: {
          caseId: CASE,
          reason: 'repeated_failed_callbacks',
          failedAttempts: 2,
          action: 'welfare_check',
        },
      },
    ]);
    const escalated = second.reduce(evolve, first.state);
    expect(escalated).toMatchObject({ escalated: true, failedCallbackAttempts: 2, status: 'claimed' });
    // a third failure does not escalate again
    const third = decide(escalated, callback(ALICE, 'wrong_number'));
    expect(third.map((e) => e.type)).toEqual(['case.callback_attempted']);
  });

  it('a wrong number counts as a failed attempt; an answered call does not', () => {
    const s = run(
      ...toQueue,
      claim(ALICE),
      callback(ALICE, 'answered'),
      callback(ALICE, 'wrong_number'),
    ).state;
    expect(s).toMatchObject({ callbackAttempts: 2, failedCallbackAttempts: 1, escalated: false });
    const t = run(
      ...toQueue,
      claim(ALICE),
      callback(ALICE, 'wrong_number'),
      callback(ALICE, 'no_answer'),
    ).state;
    expect(t.escalated).toBe(true);
  });

  it('failed attempts count across clinicians: the patient is no easier to reach', () => {
    const s = run(
      ...toQueue,
      claim(ALICE),
      callback(ALICE, 'no_answer'),
      { type: 'release', clinicianId: ALICE },
      claim(BOB),
      callback(BOB, 'no_answer'),
    ).state;
    expect(s).toMatchObject({ escalated: true, claimantId: BOB });
  });

  it('an answered call-back clears the escalation; two new failures raise it again', () => {
    const escalated = run(
      ...toQueue,
      claim(ALICE),
      callback(ALICE, 'no_answer'),
      callback(ALICE, 'no_answer'),
    );
    expect(escalated.state.escalated).toBe(true);
    const answered = decide(escalated.state, callback(ALICE, 'answered'));
    expect(answered.map((e) => e.type)).toEqual(['case.callback_attempted', 'case.escalation_cleared']);
    expect(answered[1]!.payload).toEqual({ caseId: CASE, reason: 'callback_answered' });
    const reached = answered.reduce(evolve, escalated.state);
    expect(reached).toMatchObject({ escalated: false, failedCallbackAttempts: 2, failedSinceReached: 0 });
    // One failure after the patient was reached is not two in a row.
    const once = decide(reached, callback(ALICE, 'no_answer'));
    expect(once.map((e) => e.type)).toEqual(['case.callback_attempted']);
    const twice = decide(once.reduce(evolve, reached), callback(ALICE, 'voicemail'));
    expect(twice.map((e) => e.type)).toEqual(['case.callback_attempted', 'case.escalated']);
  });

  it('a welfare check is recorded (who, when, outcome); it clears the escalation only when it reached the patient', () => {
    const escalated = run(
      ...toQueue,
      claim(ALICE),
      callback(ALICE, 'no_answer'),
      callback(ALICE, 'no_answer'),
    );
    const notReached = decide(escalated.state, welfareCheck(BOB, 'not_reached'));
    expect(notReached).toEqual([
      {
        type: 'case.welfare_check_recorded',
        payload: {
          caseId: CASE,
          recordedBy: BOB,
          checkedBy: 'next_of_kin',
          checkedAt: '2026-11-29T03:10:00.000Z',
          outcome: 'not_reached',
        },
      },
    ]);
    const still = notReached.reduce(evolve, escalated.state);
    expect(still.escalated).toBe(true);
    const reached = decide(still, welfareCheck(BOB, 'patient_reached'));
    expect(reached.map((e) => e.type)).toEqual(['case.welfare_check_recorded', 'case.escalation_cleared']);
    expect(reached.reduce(evolve, still)).toMatchObject({ escalated: false, status: 'claimed' });
    // Nothing to record on a case that is not escalated.
    expect(refusal(run(...toQueue, claim(ALICE)).state, welfareCheck(ALICE, 'patient_reached')).code).toBe(
      'illegal_transition',
    );
  });

  it('closing an escalated case clears its escalation in the same command', () => {
    const escalated = run(
      ...toQueue,
      claim(ALICE),
      callback(ALICE, 'no_answer'),
      callback(ALICE, 'no_answer'),
      consult(ALICE),
    );
    const closed = decide(escalated.state, {
      type: 'record_outcome',
      clinicianId: ALICE,
      outcome: 'advice_and_close',
    });
    expect(closed.map((e) => e.type)).toEqual([
      'case.outcome_recorded',
      'case.escalation_cleared',
      'case.closed',
    ]);
    expect(closed[1]!.payload).toEqual({ caseId: CASE, reason: 'case_closed' });
    expect(closed.reduce(evolve, escalated.state)).toMatchObject({ status: 'closed', escalated: false });
  });

  it('a state stored before failedSinceReached existed reads it as every failed call-back', () => {
    const { state } = run(...toQueue, claim(ALICE), callback(ALICE, 'no_answer'));
    const { failedSinceReached: _dropped, ...old } = state;
    expect(decide(old, callback(ALICE, 'no_answer')).map((e) => e.type)).toEqual([
      'case.callback_attempted',
      'case.escalated',
    ]);
  });

  it('call-backs are recorded only on a claimed case', () => {
    expect(refusal(run(...toQueue).state, callback(ALICE, 'no_answer')).code).toBe('illegal_transition');
  });
});

describe('case lifecycle: consultation outcomes', () => {
  const consulting = [...toQueue, claim(ALICE), consult(ALICE)];
  const outcome = (o: (typeof CONSULTATION_OUTCOMES)[number], extra: object = {}): CaseCommand =>
    ({ type: 'record_outcome', clinicianId: ALICE, outcome: o, ...extra }) as CaseCommand;

  it.each([
    ['advice_and_close', 'closed', ['case.outcome_recorded', 'case.closed']],
    ['retriage', 'in_triage', ['case.outcome_recorded', 'case.triage_started']],
    ['refer', 'referral_pending', ['case.outcome_recorded', 'case.referred']],
    ['book_appointment', 'follow_up_arranged', ['case.outcome_recorded', 'case.follow_up_arranged']],
    ['home_visit', 'follow_up_arranged', ['case.outcome_recorded', 'case.follow_up_arranged']],
    ['prescribe', 'in_consultation', ['case.outcome_recorded']],
  ] as const)('%s leads to %s', (o, status, types) => {
    const { state, events } = run(...consulting, outcome(o));
    expect(state.status).toBe(status);
    expect(events.slice(-types.length).map((e) => e.type)).toEqual(types);
    expect(state.claimantId).toBe(status === 'in_consultation' ? ALICE : null);
    expect(state.outcomes).toEqual([o]);
  });

  it('an upgrade to an ambulance needs and carries a category', () => {
    expect(refusal(run(...consulting).state, outcome('upgrade_to_ambulance')).code).toBe('missing_detail');
    const { state, events } = run(...consulting, outcome('upgrade_to_ambulance', { ambulanceCategory: 2 }));
    expect(state.status).toBe('ambulance_requested');
    expect(events.at(-1)).toEqual({
      type: 'case.ambulance_requested',
      payload: { caseId: CASE, category: 2, byClinicianId: ALICE },
    });
  });

  it('re-triage clears the disposition', () => {
    const s = run(...consulting, outcome('retriage')).state;
    expect(s.disposition).toBeNull();
    expect(
      run(...consulting, outcome('retriage'), disposition('self_care'), { type: 'close' }).state.status,
    ).toBe('closed');
  });

  it('no outcome before the consultation starts or on a closed case', () => {
    expect(refusal(run(...toQueue, claim(ALICE)).state, outcome('advice_and_close')).code).toBe(
      'illegal_transition',
    );
    const closed = run(...consulting, outcome('advice_and_close')).state;
    const e = refusal(closed, outcome('prescribe'));
    expect(e).toMatchObject({ code: 'case_closed', from: 'closed', command: 'record_outcome' });
    expect(e).toBeInstanceOf(DomainError);
  });

  it('a consultation is not closed by a bare close: it needs an outcome', () => {
    expect(refusal(run(...consulting).state, { type: 'close' }).code).toBe('illegal_transition');
  });

  it('an arranged appointment or visit can be closed, or sent back to the queue', () => {
    const s = run(...consulting, outcome('home_visit')).state;
    expect(decide(s, { type: 'close' }).map((e) => e.type)).toEqual(['case.closed']);
    expect(decide(s, queue).map((e) => e.type)).toEqual(['case.queued_for_clinician']);
  });

  it('closed is terminal for every command', () => {
    const closed = run(answer, triage, disposition('self_care'), { type: 'close' }).state;
    for (const c of allCommandsFor(ALICE)) expect(refusal(closed, c).code).toBe('case_closed');
  });
});

describe('case lifecycle: evolve refuses events that do not fit', () => {
  it('throws InvariantViolation on an out-of-order or foreign event', () => {
    const s = initialCaseState(CASE);
    expect(() => evolve(s, { type: 'case.closed', payload: { caseId: CASE } })).toThrow(InvariantViolation);
    expect(() => evolve(s, { type: 'case.call_answered', payload: { caseId: ALICE } })).toThrow(
      InvariantViolation,
    );
    const claimed = run(...toQueue, claim(ALICE)).state;
    expect(() =>
      evolve(claimed, { type: 'case.claimed', payload: { caseId: CASE, clinicianId: BOB } }),
    ).toThrow(InvariantViolation);
    expect(() =>
      evolve(claimed, { type: 'case.released', payload: { caseId: CASE, clinicianId: BOB } }),
    ).toThrow(InvariantViolation);
    expect(() =>
      evolve(claimed, {
        type: 'case.escalated',
        payload: {
          caseId: CASE,
          reason: 'repeated_failed_callbacks',
          failedAttempts: 2,
          action: 'welfare_check',
        },
      }),
    ).toThrow(InvariantViolation);
  });
});

// ---- model-based test -----------------------------------------------------------------------------------

/** A few fixed instances of every command type, for exhaustive checks. */
function allCommandsFor(c: string): CaseCommand[] {
  const other = c === ALICE ? BOB : ALICE;
  return [
    answer,
    { type: 'abandon_call' },
    triage,
    ...DISPOSITION_KINDS.map(disposition),
    { type: 'withdraw_disposition' },
    { type: 'request_ambulance', category: 1 },
    { type: 'refer' },
    queue,
    claim(c),
    { type: 'release', clinicianId: c },
    { type: 'transfer', clinicianId: c, toClinicianId: other },
    ...CALLBACK_OUTCOMES.map((o) => callback(c, o)),
    ...WELFARE_CHECK_OUTCOMES.map((o) => welfareCheck(c, o)),
    consult(c),
    ...CONSULTATION_OUTCOMES.map((o): CaseCommand => ({
      type: 'record_outcome',
      clinicianId: c,
      outcome: o,
      ambulanceCategory: 1,
    })),
    { type: 'close' },
    { type: 'end_call', reason: 'caller_hung_up' },
    { type: 'end_call', reason: 'other' },
    { type: 'retriage', userId: c },
  ];
}

/**
 * The model: an independent, table-driven statement of the rules, kept deliberately different in
 * shape from decide/evolve so that one cannot simply repeat the other's mistake.
 */
interface Model {
  status: CaseStatus;
  claimant: string | null;
  disposition: DispositionKind | null;
  attempts: number;
  failed: number;
  /** Failed call-backs since the patient was last reached. */
  sinceReached: number;
  escalated: boolean;
  outcomes: string[];
}

type Expectation = { error: CaseTransitionCode } | { next: Model; events: CaseEvent['type'][] };

const NEEDS_CLAIMANT = new Set<CaseCommand['type']>([
  'release',
  'transfer',
  'record_callback_attempt',
  'start_consultation',
  'record_outcome',
]);

/** Statuses each command may start from (terminal states and claims are handled before this table). */
const FROM: Record<CaseCommand['type'], CaseStatus[]> = {
  answer_call: ['call_received'],
  abandon_call: ['call_received'],
  start_triage: ['answered'],
  reach_disposition: ['in_triage'],
  withdraw_disposition: ['disposition_reached'],
  request_ambulance: ['disposition_reached'],
  refer: ['disposition_reached'],
  queue_for_clinician: ['disposition_reached', 'referral_pending', 'follow_up_arranged'],
  claim: ['queued'],
  release: ['claimed', 'in_consultation'],
  transfer: ['claimed'],
  record_callback_attempt: ['claimed'],
  start_consultation: ['claimed'],
  record_outcome: ['in_consultation'],
  close: ['disposition_reached', 'ambulance_requested', 'referral_pending', 'follow_up_arranged'],
  // Anyone may record a welfare check on an open case (it is refused below when not escalated).
  record_welfare_check: CASE_STATUSES.filter((s) => s !== 'closed' && s !== 'abandoned'),
  end_call: ['answered', 'in_triage', 'disposition_reached'],
  retriage: ['queued'],
};

/** A close ends the escalation first (its own event), whichever command closes the case. */
function closing(m: Model, events: CaseEvent['type'][]): CaseEvent['type'][] {
  if (!m.escalated) return events;
  const at = events.indexOf('case.closed');
  return [...events.slice(0, at), 'case.escalation_cleared', ...events.slice(at)];
}

function expected(m: Model, c: CaseCommand): Expectation {
  if (m.status === 'closed' || m.status === 'abandoned' || m.status === 'call_ended')
    return { error: 'case_closed' };
  if (c.type === 'claim' && m.claimant !== null) return { error: 'already_claimed' };
  if (!FROM[c.type].includes(m.status)) return { error: 'illegal_transition' };
  if (NEEDS_CLAIMANT.has(c.type) && 'clinicianId' in c && c.clinicianId !== m.claimant) {
    return { error: 'not_claimant' };
  }
  const to = (status: CaseStatus, events: CaseEvent['type'][], patch: Partial<Model> = {}): Expectation => ({
    next: {
      ...m,
      status,
      claimant: status === 'claimed' || status === 'in_consultation' ? m.claimant : null,
      ...patch,
    },
    events,
  });
  switch (c.type) {
    case 'answer_call':
      return to('answered', ['case.call_answered']);
    case 'abandon_call':
      return to('abandoned', ['case.call_abandoned']);
    case 'start_triage':
      return to('in_triage', ['case.triage_started']);
    case 'reach_disposition':
      return to('disposition_reached', ['case.disposition_reached'], { disposition: c.kind });
    case 'withdraw_disposition':
      return to('in_triage', ['case.disposition_withdrawn'], { disposition: null });
    case 'request_ambulance':
      return m.disposition === 'ambulance'
        ? to('ambulance_requested', ['case.ambulance_requested'])
        : { error: 'disposition_mismatch' };
    case 'refer':
      return m.disposition === 'ambulance' || m.disposition === 'self_care'
        ? { error: 'disposition_mismatch' }
        : to('referral_pending', ['case.referred']);
    case 'queue_for_clinician':
      return to('queued', ['case.queued_for_clinician']);
    case 'claim':
      return to('claimed', ['case.claimed'], { claimant: c.clinicianId });
    case 'release':
      return to('queued', ['case.released']);
    case 'transfer':
      return c.toClinicianId === c.clinicianId
        ? { error: 'transfer_to_self' }
        : to('claimed', ['case.transferred'], { claimant: c.toClinicianId });
    case 'record_callback_attempt': {
      const reached = c.outcome === 'answered';
      const failed = m.failed + (reached ? 0 : 1);
      const sinceReached = reached ? 0 : m.sinceReached + 1;
      const escalates = !m.escalated && sinceReached === 2;
      const clears = reached && m.escalated;
      return to(
        'claimed',
        [
          'case.callback_attempted',
          ...(escalates ? ['case.escalated' as const] : []),
          ...(clears ? ['case.escalation_cleared' as const] : []),
        ],
        {
          attempts: m.attempts + 1,
          failed,
          sinceReached,
          escalated: (m.escalated || escalates) && !clears,
        },
      );
    }
    case 'record_welfare_check': {
      if (!m.escalated) return { error: 'illegal_transition' };
      const reached = c.outcome === 'patient_reached';
      return to(
        m.status,
        reached
          ? ['case.welfare_check_recorded', 'case.escalation_cleared']
          : ['case.welfare_check_recorded'],
        reached ? { sinceReached: 0, escalated: false } : {},
      );
    }
    case 'start_consultation':
      return to('in_consultation', ['case.consultation_started']);
    case 'record_outcome': {
      const outcomes = [...m.outcomes, c.outcome];
      const recorded = 'case.outcome_recorded' as const;
      switch (c.outcome) {
        case 'advice_and_close':
          return to('closed', closing(m, [recorded, 'case.closed']), { outcomes, escalated: false });
        case 'retriage':
          return to('in_triage', [recorded, 'case.triage_started'], { outcomes, disposition: null });
        case 'upgrade_to_ambulance':
          return c.ambulanceCategory === undefined
            ? { error: 'missing_detail' }
            : to('ambulance_requested', [recorded, 'case.ambulance_requested'], { outcomes });
        case 'refer':
          return to('referral_pending', [recorded, 'case.referred'], { outcomes });
        case 'book_appointment':
        case 'home_visit':
          return to('follow_up_arranged', [recorded, 'case.follow_up_arranged'], { outcomes });
        case 'prescribe':
          return to('in_consultation', [recorded], { outcomes });
      }
      break;
    }
    case 'close':
      return m.status === 'disposition_reached' &&
        (m.disposition === 'ambulance' || m.disposition === 'speak_to_primary_care')
        ? { error: 'disposition_not_acted_on' }
        : to('closed', closing(m, ['case.closed']), { escalated: false });
    case 'end_call':
      return c.reason === 'other' && !c.details
        ? { error: 'missing_detail' }
        : to('call_ended', ['case.call_ended'], { disposition: null });
    case 'retriage':
      return to('in_triage', ['case.triage_started'], { disposition: null });
  }
  throw new Error('unreachable');
}

interface Real {
  state: CaseState;
  log: CaseEvent[];
}

/**
 * A stand-in for "whoever holds the case now" in generated commands, resolved when the command runs,
 * so that random walks act as the claimant often enough to get deep into the consultation.
 */
const HOLDER = '00000000-0000-7000-8000-000000000000';

function resolveHolder(c: CaseCommand, m: Model): CaseCommand {
  const holder = m.claimant ?? ALICE;
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v === HOLDER ? holder : v])) as CaseCommand;
}

const freshModel = (): Model => ({
  status: 'call_received',
  claimant: null,
  disposition: null,
  attempts: 0,
  failed: 0,
  sinceReached: 0,
  escalated: false,
  outcomes: [],
});

/** What the runs reached, to prove the random walks go everywhere that matters. */
const coverage = { statuses: new Set<CaseStatus>(), errors: new Set<CaseTransitionCode>(), escalations: 0 };

function checkInvariants(s: CaseState): void {
  // claimed ⇔ a claimant is set
  expect(s.status === 'claimed' || s.status === 'in_consultation').toBe(s.claimantId !== null);
  // escalated exactly when two or more call-backs have failed since the patient was last reached,
  // until the case closes
  expect(s.escalated).toBe((s.failedSinceReached ?? 0) >= 2 && s.status !== 'closed');
  expect(s.failedCallbackAttempts).toBeLessThanOrEqual(s.callbackAttempts);
  expect(CASE_STATUSES).toContain(s.status);
  // a disposition is known from reaching one until re-triage
  expect(['call_received', 'answered', 'abandoned', 'in_triage', 'call_ended'].includes(s.status)).toBe(
    s.disposition === null,
  );
}

class LifecycleCommand implements fc.Command<Model, Real> {
  constructor(readonly generated: CaseCommand) {}
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const command = resolveHolder(this.generated, m);
    const before = r.state;
    const wasTerminal = before.status === 'closed' || before.status === 'abandoned';
    const want = expected(m, command);
    let events: CaseEvent[];
    try {
      events = decide(before, command);
    } catch (e) {
      if (!(e instanceof CaseTransitionError)) throw e;
      coverage.errors.add(e.code);
      expect('error' in want ? want.error : `no error (got ${e.code})`).toBe(e.code);
      expect(e.from).toBe(before.status);
      expect(e.command).toBe(command.type);
      if (e.code === 'already_claimed' || e.code === 'not_claimant') expect(e.heldBy).toBe(before.claimantId);
      return; // refused: nothing changes
    }
    if ('error' in want) throw new Error(`expected ${want.error}, but ${command.type} was accepted`);
    expect(events.map((e) => e.type)).toEqual(want.events);
    let state = before;
    for (const e of events) {
      // plain data that survives the ledger: JSON round-trips, and the registered schema accepts it
      expect(JSON.parse(JSON.stringify(e))).toEqual(e);
      expect(registry.parsePayload(e.type, 1, e.payload)).toEqual(e.payload);
      expect(registry.subjectOf(e.type, 1, e.payload)).toBe(`case:${before.caseId}`);
      state = evolve(state, e);
    }
    expect(wasTerminal).toBe(false); // closed is terminal: nothing was accepted after it
    r.state = state;
    r.log.push(...events);
    Object.assign(m, want.next);
    expect({
      status: state.status,
      claimant: state.claimantId,
      disposition: state.disposition,
      attempts: state.callbackAttempts,
      failed: state.failedCallbackAttempts,
      sinceReached: state.failedSinceReached,
      escalated: state.escalated,
      outcomes: state.outcomes,
    }).toEqual(m);
    checkInvariants(state);
    expect(replayCase(state.caseId, r.log)).toEqual(state);
    coverage.statuses.add(state.status);
    if (events.some((e) => e.type === 'case.escalated')) coverage.escalations++;
  }
  toString(): string {
    return JSON.stringify(this.generated).replaceAll(HOLDER, 'holder');
  }
}

/** Test-only: once a case has ended, the walk goes on with a new one, so no run is wasted. */
class NextCase implements fc.Command<Model, Real> {
  check(m: Readonly<Model>): boolean {
    return m.status === 'closed' || m.status === 'abandoned';
  }
  run(m: Model, r: Real): void {
    Object.assign(m, freshModel());
    r.state = initialCaseState(r.state.caseId === CASE ? OTHER_CASE : CASE);
    r.log = [];
  }
  toString(): string {
    return 'next case';
  }
}
const OTHER_CASE = '0195e8a4-7c2d-7641-834d-a5418083a3ff';

const clinician = fc.constantFrom(HOLDER, ...CLINICIANS);
const outcomeCommand: fc.Arbitrary<CaseCommand> = fc
  .tuple(
    clinician,
    fc.constantFrom(...CONSULTATION_OUTCOMES),
    fc.option(fc.constantFrom(1 as const, 3 as const), { freq: 2 }),
  )
  .map(([clinicianId, outcome, category]): CaseCommand =>
    category === null
      ? { type: 'record_outcome', clinicianId, outcome }
      : { type: 'record_outcome', clinicianId, outcome, ambulanceCategory: category },
  );
const commandArbitraries: fc.Arbitrary<CaseCommand>[] = [
  fc.constant(answer),
  fc.constant<CaseCommand>({ type: 'abandon_call' }),
  fc.constant(triage),
  fc.constantFrom(...DISPOSITION_KINDS).map(disposition),
  fc.constant<CaseCommand>({ type: 'withdraw_disposition' }),
  fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const).map((category): CaseCommand => ({
    type: 'request_ambulance',
    category,
  })),
  fc.constant<CaseCommand>({ type: 'refer' }),
  fc.constant(queue),
  clinician.map(claim),
  clinician.map((clinicianId): CaseCommand => ({ type: 'release', clinicianId })),
  fc.tuple(clinician, clinician).map(([clinicianId, toClinicianId]): CaseCommand => ({
    type: 'transfer',
    clinicianId,
    toClinicianId,
  })),
  fc.tuple(clinician, fc.constantFrom(...CALLBACK_OUTCOMES)).map(([c, o]) => callback(c, o)),
  fc.tuple(clinician, fc.constantFrom(...WELFARE_CHECK_OUTCOMES)).map(([c, o]) => welfareCheck(c, o)),
  clinician.map(consult),
  outcomeCommand,
  fc.constant<CaseCommand>({ type: 'close' }),
  fc.constantFrom(...CALL_END_REASONS).map((reason): CaseCommand => ({ type: 'end_call', reason })),
  fc.constant<CaseCommand>({ type: 'end_call', reason: 'other', details: 'caller asked to ring back later' }),
  clinician.map((userId): CaseCommand => ({ type: 'retriage', userId })),
];

describe('case lifecycle: model-based', () => {
  it('every random command sequence gives a legal next state or a typed error, matching the model', () => {
    // Clinician commands are listed more than once: fc.commands picks uniformly among the arbitraries,
    // and a walk needs many tries to act as the holder at the right moment.
    const weighted = [
      ...commandArbitraries,
      ...commandArbitraries.slice(7, 14),
      outcomeCommand,
      outcomeCommand,
    ];
    const modelCommands: fc.Arbitrary<fc.Command<Model, Real>>[] = [
      ...weighted.map((a) => a.map((c) => new LifecycleCommand(c))),
      fc.constant(new NextCase()),
    ];
    const allStatuses = CASE_STATUSES.filter((s) => s !== 'call_received').sort();
    const allErrors = [
      'case_closed',
      'illegal_transition',
      'already_claimed',
      'not_claimant',
      'disposition_not_acted_on',
      'disposition_mismatch',
      'transfer_to_self',
      'missing_detail',
    ].sort();
    const coveredAll = () =>
      coverage.statuses.size === allStatuses.length &&
      coverage.errors.size === allErrors.length &&
      coverage.escalations > 0;
    // Rounds of 1,000 walks until they have gone everywhere (at most 5). One round misses a refusal
    // now and then (about one run in ten: a walk must reach an unacted disposition and then try to
    // close); every walk of every round is checked against the model all the same.
    for (let round = 0; round < 5 && (round === 0 || !coveredAll()); round++) {
      fc.assert(
        fc.property(fc.commands(modelCommands, { maxCommands: 300, size: 'max' }), (cmds) => {
          fc.modelRun(
            () => ({ model: freshModel(), real: { state: initialCaseState(CASE), log: [] } }),
            cmds,
          );
        }),
        { numRuns: 1000 },
      );
    }
    // The walks must have gone everywhere, or the property proves little.
    expect([...coverage.statuses].sort()).toEqual(allStatuses);
    expect([...coverage.errors].sort()).toEqual(allErrors);
    expect(coverage.escalations).toBeGreaterThan(0);
  });

  it('every command from every reachable state either succeeds into a legal state or is a typed error', () => {
    // Breadth-first over the reachable states with the fixed command instances: a complete check
    // of the transition table (small, so exhaustive rather than random).
    const seen = new Map<string, CaseState>();
    const key = (s: CaseState) => JSON.stringify({ ...s, outcomes: s.outcomes.length > 0 });
    const frontier: CaseState[] = [initialCaseState(CASE)];
    while (frontier.length > 0) {
      const s = frontier.pop()!;
      if (seen.has(key(s)) || s.callbackAttempts > 3) continue;
      seen.set(key(s), s);
      for (const c of CLINICIANS.flatMap(allCommandsFor)) {
        let events: CaseEvent[];
        try {
          events = decide(s, c);
        } catch (e) {
          expect(e).toBeInstanceOf(CaseTransitionError);
          continue;
        }
        const next = events.reduce(evolve, s);
        checkInvariants(next);
        frontier.push(next);
      }
    }
    expect(new Set([...seen.values()].map((s) => s.status))).toEqual(new Set(CASE_STATUSES));
  });

  it('the command schema accepts what the model generates and refuses malformed commands', () => {
    fc.assert(
      fc.property(fc.oneof(...commandArbitraries), (c) => {
        expect(caseCommandSchema.parse(c)).toEqual(c);
      }),
    );
    expect(caseCommandSchema.safeParse({ type: 'claim', clinicianId: 'nobody' }).success).toBe(false);
    expect(caseCommandSchema.safeParse({ type: 'reach_disposition', kind: 'teleport' }).success).toBe(false);
    for (const dxCode of ['Dx05', 'Dx117', 'SAMPLE-AMB-C1']) {
      expect(caseCommandSchema.safeParse({ type: 'reach_disposition', kind: 'other', dxCode }).success).toBe(
        true,
      );
    }
    expect(
      caseCommandSchema.safeParse({ type: 'reach_disposition', kind: 'other', dxCode: 'Dx 05' }).success,
    ).toBe(false);
    expect(caseCommandSchema.safeParse({ type: 'close', extra: 1 }).success).toBe(false);
  });
});
