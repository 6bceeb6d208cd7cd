import { z } from 'zod';
import { InvariantViolation } from '../errors.ts';
import { defineEventType } from '../ledger/registry.ts';
import {
  CASE_LIFECYCLE_EVENT_TYPES,
  CLAIMED_STATUSES,
  evolve,
  TERMINAL_STATUSES,
  type CaseEvent,
  type CaseState,
  type ConsultationOutcome,
} from './lifecycle.ts';

/**
 * Reconciliation: when nodes were apart, two of them can act on one case in ways that cannot both
 * stand (two clinicians claim it; one site closes it while another carries on; two outcomes for one
 * consultation). After the merge every node folds the case's events in the same ledger order
 * (hlc, node, seq), so every node sees the same collision at the same event and raises the same
 * item. Nothing is decided by "last writer wins": the case stays as the first event in ledger order
 * left it, the colliding event (and the rest of its branch) is held out of the state, and a person
 * resolves the item with a recorded decision (`reconciliation.resolved`) that the fold applies.
 *
 * The fold is pure and depends only on the case's own events, so a refold of the case after a
 * late arrival rebuilds its items exactly: one item per collision, with an id derived from the
 * colliding event (`rec-<event id>`).
 */

export const RECONCILIATION_KINDS = [
  /** A second clinician claimed a case someone already held. */
  'double_claim',
  /** The case was closed (or abandoned) on one node and changed on another. */
  'changed_after_close',
  /** Two nodes recorded an outcome for the same consultation. */
  'two_outcomes',
  /** Any other change that cannot follow the case's state (two ambulance requests, say). */
  'conflicting_change',
] as const;
export type ReconciliationKind = (typeof RECONCILIATION_KINDS)[number];

const id = z.string().uuid();

export const reconciliationDecisionSchema = z.discriminatedUnion('action', [
  /** double_claim: this clinician (one of the claimants) holds the case. */
  z.strictObject({ action: z.literal('keep_claim'), clinicianId: id }),
  /** double_claim: nobody holds it; back to the queue for whoever is free. */
  z.strictObject({ action: z.literal('release_to_queue') }),
  /** changed_after_close: the case stays closed; the later changes stay on record, unapplied. */
  z.strictObject({ action: z.literal('keep_closed') }),
  /** changed_after_close: the case is reopened into the clinical queue (or to triage without a disposition). */
  z.strictObject({ action: z.literal('reopen_to_queue') }),
  /** two_outcomes: this outcome (one of the two outcome events) stands. */
  z.strictObject({ action: z.literal('keep_outcome'), outcomeEventId: id }),
  /** conflicting_change: the case stays as it is; the held change stays on record, unapplied. */
  z.strictObject({ action: z.literal('keep_current') }),
]);
export type ReconciliationDecision = z.infer<typeof reconciliationDecisionSchema>;
export type ReconciliationAction = ReconciliationDecision['action'];

/** Which decisions answer which kind of item. */
export const DECISIONS_BY_KIND: Record<ReconciliationKind, readonly ReconciliationAction[]> = {
  double_claim: ['keep_claim', 'release_to_queue'],
  changed_after_close: ['keep_closed', 'reopen_to_queue'],
  two_outcomes: ['keep_outcome'],
  conflicting_change: ['keep_current'],
};

export const RECONCILIATION_ITEM_ID = /^rec-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A person's decision on a reconciliation item. Subject: the case, so it folds with the case's events. */
export const reconciliationResolved = defineEventType({
  type: 'reconciliation.resolved',
  v: 1,
  schema: z.strictObject({
    itemId: z.string().regex(RECONCILIATION_ITEM_ID, 'must be a reconciliation item id (rec-…)'),
    caseId: id,
    decision: reconciliationDecisionSchema,
    reason: z.string().trim().min(1).max(2000),
  }),
  subjectOf: (p) => `case:${p.caseId}`,
});
export const RECONCILIATION_EVENT_TYPES = [reconciliationResolved];
export type ReconciliationResolvedPayload = z.infer<typeof reconciliationResolved.schema>;

/** What the fold needs of an envelope. */
export interface FoldableEvent {
  id: string;
  node: string;
  seq: number;
  actor: string;
  hlc: string;
  type: string;
  payload: Record<string, unknown>;
}

export interface HeldEvent {
  id: string;
  node: string;
  type: string;
  payload: Record<string, unknown>;
}

export interface OutcomeRef {
  eventId: string;
  node: string;
  clinicianId: string;
  outcome: ConsultationOutcome;
}

export interface ReconciliationResolution {
  eventId: string;
  actor: string;
  hlc: string;
  decision: ReconciliationDecision;
  reason: string;
}

export interface ReconciliationItem {
  itemId: string;
  caseId: string;
  kind: ReconciliationKind;
  status: 'open' | 'resolved';
  /** The event the case kept (first in ledger order), when there is one. */
  keptEventId: string | null;
  /** The event that could not follow the case's state. */
  collidingEventId: string;
  /** The node whose branch is held: its later events on the case that do not fit join this item. */
  heldNode: string;
  /** Events held out of the case's state, in ledger order (the colliding one first). */
  held: HeldEvent[];
  /** double_claim: the clinician holding the case when it collided, and the one who claimed it too. */
  claimants: string[];
  /** two_outcomes: the outcome that stands for now, then the held one. */
  outcomes: OutcomeRef[];
  detectedHlc: string;
  resolution: ReconciliationResolution | null;
  /**
   * Resolutions that came after the first in ledger order (two managers deciding at once on nodes
   * apart) or could no longer be applied: shown, never silently used.
   */
  otherResolutions: (ReconciliationResolution & { applied: false; why: string })[];
}

interface LastOutcome {
  ref: OutcomeRef;
  /** The case before this outcome's command, to apply the other outcome instead. */
  before: CaseState;
  /** The outcome's command: its events are consecutive on one node, by one actor. */
  group: { node: string; seq: number; actor: string };
  /** A lifecycle event outside that command was applied after it. */
  movedOn: boolean;
}

export interface ReconciliationFold {
  items: ReconciliationItem[];
  /** The consultation since the last consultation_started; kept after it ends until the next one. */
  consultation: { outcomes: OutcomeRef[]; last: LastOutcome | null } | null;
  /**
   * Per node, the last held event: the rest of its command (next seq, same node and actor) is held
   * with it, even when another node's events fall between them in ledger order.
   */
  heldTails: Record<string, { seq: number; actor: string; itemId: string }>;
  /** The events that made the current claim and the close, for `keptEventId`. */
  claimEventId: string | null;
  closeEventId: string | null;
  lastAppliedEventId: string | null;
}

export interface CaseFold {
  state: CaseState;
  recon: ReconciliationFold;
}

export function initialReconciliationFold(): ReconciliationFold {
  return {
    items: [],
    consultation: null,
    heldTails: {},
    claimEventId: null,
    closeEventId: null,
    lastAppliedEventId: null,
  };
}

export interface FoldStep {
  fold: CaseFold;
  /** The lifecycle events that changed the state in this step (the event itself, or held ones a decision applied). */
  appliedEvents: HeldEvent[];
  /** Items created or changed by this step. */
  changedItems: ReconciliationItem[];
}

const LIFECYCLE_TYPES = new Set(CASE_LIFECYCLE_EVENT_TYPES.map((d) => d.type));

/** Lifecycle events that only the clinician holding the case can cause. evolve checks release and transfer. */
const CLINICIAN_BOUND = new Set([
  'case.consultation_started',
  'case.callback_attempted',
  'case.outcome_recorded',
  'case.follow_up_arranged',
]);

/** The state after `e`, or null when `e` cannot follow `state`. */
export function tryEvolveCase(state: CaseState, e: { type: string; payload: Record<string, unknown> }) {
  if (
    CLINICIAN_BOUND.has(e.type) &&
    CLAIMED_STATUSES.includes(state.status) &&
    e.payload.clinicianId !== state.claimantId
  ) {
    return null;
  }
  try {
    return evolve(state, e as CaseEvent);
  } catch (error) {
    if (error instanceof InvariantViolation) return null;
    throw error;
  }
}

export function isOpenItem(item: ReconciliationItem): boolean {
  return item.status === 'open';
}

export function openReconciliationItems(fold: CaseFold): ReconciliationItem[] {
  return fold.recon.items.filter(isOpenItem);
}

/**
 * Folds one lifecycle event or `reconciliation.resolved` into the case. Never throws for an event
 * that does not fit: that becomes (or joins) a reconciliation item.
 */
export function foldCaseEvent(fold: CaseFold, e: FoldableEvent): FoldStep {
  if (e.type === reconciliationResolved.type) return foldResolution(fold, e);
  // Not a lifecycle event (a fact type this fold does not know): it cannot move the case.
  if (!LIFECYCLE_TYPES.has(e.type)) return { fold, appliedEvents: [], changedItems: [] };
  const recon = cloneRecon(fold.recon);
  const held: HeldEvent = { id: e.id, node: e.node, type: e.type, payload: e.payload };
  const hold = (item: ReconciliationItem): FoldStep => {
    item.held.push(held);
    recon.heldTails[e.node] = { seq: e.seq, actor: e.actor, itemId: item.itemId };
    return { fold: { state: fold.state, recon }, appliedEvents: [], changedItems: [item] };
  };

  // The rest of a held command (an outcome's close, a claim's escalation…) is held with it.
  const tail = recon.heldTails[e.node];
  if (tail && tail.seq + 1 === e.seq && tail.actor === e.actor) {
    const item = recon.items.find((i) => i.itemId === tail.itemId);
    if (item && isOpenItem(item)) return hold(item);
  }
  delete recon.heldTails[e.node];

  const consultation = recon.consultation;
  const outcomeFromAnotherNode =
    e.type === 'case.outcome_recorded' &&
    consultation !== null &&
    consultation.outcomes.some((o) => o.node !== e.node);
  const next = outcomeFromAnotherNode ? null : tryEvolveCase(fold.state, e);

  if (next === null) {
    // A branch already held on this case keeps its later events with it: one collision, one item.
    const joined = recon.items.find((i) => isOpenItem(i) && i.heldNode === e.node);
    if (joined) return hold(joined);
    const item = newItem(fold, recon, e, outcomeFromAnotherNode);
    recon.items.push(item);
    return hold(item);
  }

  trackApplied(recon, fold.state, e);
  return { fold: { state: next, recon }, appliedEvents: [held], changedItems: [] };
}

function newItem(
  fold: CaseFold,
  recon: ReconciliationFold,
  e: FoldableEvent,
  twoOutcomes: boolean,
): ReconciliationItem {
  const state = fold.state;
  const base = {
    itemId: `rec-${e.id}`,
    caseId: state.caseId,
    status: 'open' as const,
    collidingEventId: e.id,
    heldNode: e.node,
    held: [],
    claimants: [] as string[],
    outcomes: [] as OutcomeRef[],
    detectedHlc: e.hlc,
    resolution: null,
    otherResolutions: [],
  };
  if (twoOutcomes) {
    const kept = recon.consultation!.outcomes.filter((o) => o.node !== e.node).at(-1)!;
    return {
      ...base,
      kind: 'two_outcomes',
      keptEventId: kept.eventId,
      outcomes: [kept, outcomeRef(e)],
    };
  }
  if (TERMINAL_STATUSES.includes(state.status)) {
    return { ...base, kind: 'changed_after_close', keptEventId: recon.closeEventId };
  }
  if (e.type === 'case.claimed' && state.claimantId !== null) {
    return {
      ...base,
      kind: 'double_claim',
      keptEventId: recon.claimEventId,
      claimants: [state.claimantId, String(e.payload.clinicianId)],
    };
  }
  return { ...base, kind: 'conflicting_change', keptEventId: recon.lastAppliedEventId };
}

function outcomeRef(e: { id: string; node: string; payload: Record<string, unknown> }): OutcomeRef {
  return {
    eventId: e.id,
    node: e.node,
    clinicianId: String(e.payload.clinicianId),
    outcome: e.payload.outcome as ConsultationOutcome,
  };
}

/** Bookkeeping for an applied lifecycle event (`before` is the state it was applied to). */
function trackApplied(recon: ReconciliationFold, before: CaseState, e: FoldableEvent): void {
  recon.lastAppliedEventId = e.id;
  if (e.type === 'case.claimed' || e.type === 'case.transferred') recon.claimEventId = e.id;
  if (e.type === 'case.closed' || e.type === 'case.call_abandoned') recon.closeEventId = e.id;
  if (e.type === 'case.consultation_started') {
    recon.consultation = { outcomes: [], last: null };
    return;
  }
  const c = recon.consultation;
  if (!c) return;
  if (e.type === 'case.outcome_recorded') {
    const ref = outcomeRef(e);
    c.outcomes.push(ref);
    c.last = { ref, before, group: { node: e.node, seq: e.seq, actor: e.actor }, movedOn: false };
    return;
  }
  const last = c.last;
  if (!last || last.movedOn) return;
  if (last.group.node === e.node && last.group.seq + 1 === e.seq && last.group.actor === e.actor) {
    last.group = { ...last.group, seq: e.seq };
  } else {
    last.movedOn = true;
  }
}

/**
 * Whether `decision` can be applied to the case now, and the state and events it leads to. The
 * service checks this before recording a decision; the fold applies it in ledger order, where a
 * change made meanwhile on another node can make it inapplicable (the item then stays open).
 */
export function planDecision(
  fold: CaseFold,
  item: ReconciliationItem,
  decision: ReconciliationDecision,
): { ok: true; state: CaseState; applied: HeldEvent[] } | { ok: false; why: string } {
  const state = fold.state;
  if (!DECISIONS_BY_KIND[item.kind].includes(decision.action)) {
    return {
      ok: false,
      why: `${decision.action} does not answer a ${item.kind} item: use ${DECISIONS_BY_KIND[item.kind].join(' or ')}`,
    };
  }
  const claimed = CLAIMED_STATUSES.includes(state.status);
  switch (decision.action) {
    case 'keep_claim':
      if (!item.claimants.includes(decision.clinicianId)) {
        return { ok: false, why: `clinician is not one of the claimants (${item.claimants.join(', ')})` };
      }
      // Keeping the claim that stood is always possible, even after the case moved on: it changes nothing.
      if (decision.clinicianId === state.claimantId || decision.clinicianId === item.claimants[0]) {
        return { ok: true, state, applied: [] };
      }
      if (!claimed) return { ok: false, why: `the case is ${state.status} now, no longer claimed` };
      return {
        ok: true,
        state: { ...state, status: 'claimed', claimantId: decision.clinicianId },
        applied: [],
      };
    case 'release_to_queue':
      if (!claimed) return { ok: false, why: `the case is ${state.status} now, no longer claimed` };
      return { ok: true, state: { ...state, status: 'queued', claimantId: null }, applied: [] };
    case 'keep_closed':
    case 'keep_current':
      return { ok: true, state, applied: [] };
    case 'reopen_to_queue':
      if (!TERMINAL_STATUSES.includes(state.status)) {
        return { ok: false, why: `the case is ${state.status} now, not closed` };
      }
      // A case abandoned before triage has no disposition to queue on: it goes back to be triaged.
      return {
        ok: true,
        state: { ...state, status: state.disposition === null ? 'answered' : 'queued', claimantId: null },
        applied: [],
      };
    case 'keep_outcome': {
      const [kept, other] = item.outcomes;
      if (decision.outcomeEventId === kept?.eventId) return { ok: true, state, applied: [] };
      if (decision.outcomeEventId !== other?.eventId) {
        return { ok: false, why: 'outcomeEventId is not one of the two outcomes' };
      }
      const last = fold.recon.consultation?.last;
      if (!kept || !last || last.ref.eventId !== kept.eventId || last.movedOn) {
        return { ok: false, why: 'the case has moved on since the outcome that stands' };
      }
      // The other outcome's command, as recorded on its node, replaces the standing one's.
      let s: CaseState | null = last.before;
      for (const h of item.held) {
        if (s === null) break;
        s = tryEvolveCase(s, h);
      }
      if (s === null) return { ok: false, why: 'the other outcome cannot follow the consultation' };
      return { ok: true, state: s, applied: item.held };
    }
  }
}

function foldResolution(fold: CaseFold, e: FoldableEvent): FoldStep {
  const p = e.payload as ReconciliationResolvedPayload;
  const recon = cloneRecon(fold.recon);
  const item = recon.items.find((i) => i.itemId === p.itemId);
  // A decision on an item this case never raised cannot come from a node that saw the item.
  if (!item) return { fold: { state: fold.state, recon }, appliedEvents: [], changedItems: [] };
  const resolution: ReconciliationResolution = {
    eventId: e.id,
    actor: e.actor,
    hlc: e.hlc,
    decision: p.decision,
    reason: p.reason,
  };
  if (!isOpenItem(item)) {
    item.otherResolutions.push({
      ...resolution,
      applied: false,
      why: 'the item was already resolved earlier in ledger order',
    });
    return { fold: { state: fold.state, recon }, appliedEvents: [], changedItems: [item] };
  }
  const plan = planDecision({ state: fold.state, recon }, item, p.decision);
  if (!plan.ok) {
    item.otherResolutions.push({ ...resolution, applied: false, why: plan.why });
    return { fold: { state: fold.state, recon }, appliedEvents: [], changedItems: [item] };
  }
  item.status = 'resolved';
  item.resolution = resolution;
  if (plan.state !== fold.state) {
    recon.lastAppliedEventId = e.id;
    if (plan.state.claimantId !== fold.state.claimantId) recon.claimEventId = e.id;
    if (TERMINAL_STATUSES.includes(fold.state.status) && !TERMINAL_STATUSES.includes(plan.state.status)) {
      recon.closeEventId = null;
    }
    if (plan.state.status !== 'in_consultation') recon.consultation = null;
  }
  return { fold: { state: plan.state, recon }, appliedEvents: plan.applied, changedItems: [item] };
}

function cloneRecon(r: ReconciliationFold): ReconciliationFold {
  // Plain JSON data (it is stored as JSON on the case row), so a JSON round trip is a deep copy.
  return JSON.parse(JSON.stringify(r)) as ReconciliationFold;
}
