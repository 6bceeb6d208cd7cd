import {
  ConflictError,
  DECISIONS_BY_KIND,
  NotFoundError,
  planDecision,
  reconciliationDecisionSchema,
  reconciliationResolved,
  ValidationError,
  type CaseFold,
  type CaseState,
  type ReconciliationDecision,
  type ReconciliationFold,
  type ReconciliationItem,
} from '@holdfast/core';
import { z } from 'zod';
import { accessEvent, type AccessFields, type Auditor } from '../audit/auditor.ts';
import { caseFoldRow, caseVersion } from '../cases/reads.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Store, Tx } from '../store/store.ts';
import { reconciliationDb, type ReconciliationItemsTable } from './projection.ts';

export interface ReconciliationFilters {
  status?: 'open' | 'resolved';
  siteId?: string;
}

/** Thrown by the compare-and-set when the case moved on between reading and recording the decision. */
class StaleCase extends Error {}

/** What a person sees of an item: never a patient detail, only the case, the events and the people. */
export function itemView(row: ReconciliationItemsTable) {
  const item = JSON.parse(row.item) as ReconciliationItem;
  return {
    itemId: item.itemId,
    caseId: item.caseId,
    siteId: row.site_id,
    kind: item.kind,
    status: item.status,
    detectedAt: new Date(Number(item.detectedHlc.slice(0, 15))).toISOString(),
    keptEventId: item.keptEventId,
    collidingEventId: item.collidingEventId,
    heldNode: item.heldNode,
    held: item.held.map((h) => ({ eventId: h.id, node: h.node, type: h.type })),
    claimants: item.claimants,
    outcomes: item.outcomes,
    decisions: DECISIONS_BY_KIND[item.kind],
    resolution: item.resolution,
    otherResolutions: item.otherResolutions,
  };
}
export type ReconciliationItemView = ReturnType<typeof itemView>;

/**
 * Items another module raises and owns (dispatch's double allocations): it keeps them in its own
 * tables and decides them with its own events; this service lists them beside the cases' items,
 * finds them by id and hands a decision to the module that owns the item.
 */
export interface ReconciliationSource {
  /** The decisions this module's items take (added to the route's body schema). */
  readonly decisionSchema: z.ZodType<{ action: string }>;
  list(ctx: RequestContext, filters: ReconciliationFilters): Promise<OwnedItemView[]>;
  get(ctx: RequestContext, itemId: string): Promise<OwnedItemView | null>;
  /** null when the item is not this module's; refuses (400/409) a decision that does not fit. */
  resolve(
    ctx: RequestContext,
    itemId: string,
    input: { decision: { action: string }; reason: string },
  ): Promise<OwnedItemView | null>;
}

/** An item of another module as listed: the same fields as a case's item, and its own beside them. */
export type OwnedItemView = Record<string, unknown> & {
  itemId: string;
  kind: string;
  status: 'open' | 'resolved';
  detectedAt: string;
  siteId: string | null;
};

/**
 * Reconciliation items (raised by the cases projection when events from nodes that were apart
 * collide, and by other modules through `addSource`) and the decisions that resolve them. A
 * decision is a ledger event, so every node applies it in the same place of the ledger order.
 */
export class ReconciliationService {
  private readonly sources: ReconciliationSource[] = [];

  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly auditor: Auditor,
  ) {}

  /** Another module's items join the list and its decisions go to it (before the routes are built). */
  addSource(source: ReconciliationSource): void {
    this.sources.push(source);
  }

  /** The body schema of a decision: the cases' decisions and those of every source. */
  decisionSchema(): z.ZodType<ReconciliationDecision | { action: string }> {
    const schemas = this.sources.map((s) => s.decisionSchema);
    return schemas.length === 0
      ? reconciliationDecisionSchema
      : z.union([reconciliationDecisionSchema, ...schemas], {
          message: "must be a decision this kind of item takes (see the item's decisions)",
        });
  }

  /** The cases' items and every source's, oldest first (the list the shift manager reads). */
  async listAll(
    ctx: RequestContext,
    filters: ReconciliationFilters,
  ): Promise<(ReconciliationItemView | OwnedItemView)[]> {
    const own = await this.list(ctx, filters);
    if (this.sources.length === 0) return own;
    const others: OwnedItemView[] = [];
    for (const source of this.sources) others.push(...(await source.list(ctx, filters)));
    return [...own, ...others].sort((a, b) =>
      a.detectedAt < b.detectedAt ? -1 : a.detectedAt > b.detectedAt ? 1 : a.itemId < b.itemId ? -1 : 1,
    );
  }

  /** The cases' own items. */
  async list(ctx: RequestContext, filters: ReconciliationFilters): Promise<ReconciliationItemView[]> {
    const rows = await this.store.withTenant(ctx.tenant, (trx) => {
      let q = reconciliationDb(trx)
        .selectFrom('reconciliation_items')
        .selectAll()
        .where('tenant', '=', ctx.tenant)
        .where('status', '=', filters.status ?? 'open');
      if (filters.siteId) q = q.where('site_id', '=', filters.siteId);
      return q.orderBy('detected_hlc').orderBy('item_id').limit(1000).execute();
    });
    await this.auditor.access(ctx, {
      action: 'search',
      resourceType: 'case',
      breakGlass: false,
      fields: ['reconciliation'],
    });
    return rows.map(itemView);
  }

  /** An item of the cases or of any source. */
  async getAny(ctx: RequestContext, itemId: string): Promise<ReconciliationItemView | OwnedItemView> {
    for (const source of this.sources) {
      const owned = await source.get(ctx, itemId);
      if (owned) return owned;
    }
    return this.get(ctx, itemId);
  }

  async get(ctx: RequestContext, itemId: string): Promise<ReconciliationItemView> {
    const row = await this.store.withTenant(ctx.tenant, (trx) => this.readItem(trx, ctx.tenant, itemId));
    if (!row) throw new NotFoundError('reconciliation item');
    await this.auditor.access(ctx, itemRead(row.case_id));
    return itemView(row);
  }

  /**
   * Records a decision on an open item. Refused with 409 if the item is resolved already or the
   * case has moved on so that the decision no longer applies; 400 if the decision does not answer
   * this kind of item or names someone or something outside it.
   */
  async resolve(
    ctx: RequestContext,
    itemId: string,
    input: { decision: ReconciliationDecision | { action: string }; reason: string },
  ): Promise<ReconciliationItemView | OwnedItemView> {
    const isCases = await this.store.withTenant(ctx.tenant, (trx) => this.readItem(trx, ctx.tenant, itemId));
    if (!isCases) {
      for (const source of this.sources) {
        const owned = await source.resolve(ctx, itemId, input);
        if (owned) return owned;
      }
      throw new NotFoundError('reconciliation item');
    }
    if (!reconciliationDecisionSchema.safeParse(input.decision).success)
      throw new ValidationError([
        { path: 'body.decision.action', message: `does not answer a ${isCases.kind} item` },
      ]);
    return this.resolveCase(ctx, itemId, {
      decision: input.decision as ReconciliationDecision,
      reason: input.reason,
    });
  }

  private async resolveCase(
    ctx: RequestContext,
    itemId: string,
    input: { decision: ReconciliationDecision; reason: string },
  ): Promise<ReconciliationItemView> {
    for (let attempt = 0; ; attempt++) {
      const read = await this.store.withTenant(ctx.tenant, async (trx) => {
        const row = await this.readItem(trx, ctx.tenant, itemId);
        if (!row) return null;
        const caseRow = await caseFoldRow(trx, ctx.tenant, row.case_id);
        return caseRow ? { row, caseRow } : null;
      });
      if (!read) throw new NotFoundError('reconciliation item');
      const item = JSON.parse(read.row.item) as ReconciliationItem;
      if (item.status !== 'open') {
        throw new ConflictError('this item is resolved already: see its resolution');
      }
      checkDecisionFits(item, input.decision);
      const fold: CaseFold = {
        state: JSON.parse(read.caseRow.state) as CaseState,
        recon: JSON.parse(read.caseRow.reconciliation) as ReconciliationFold,
      };
      const plan = planDecision(fold, item, input.decision);
      if (!plan.ok) throw new ConflictError(`the decision cannot be applied: ${plan.why}`);
      try {
        await this.ledger.append(
          [
            {
              tenant: ctx.tenant,
              type: reconciliationResolved.type,
              actor: actorOf(ctx),
              payload: { itemId, caseId: item.caseId, decision: input.decision, reason: input.reason },
            },
            // The item is shown to the decider next: its read is recorded in the decision's commit.
            accessEvent(ctx, itemRead(read.row.case_id)),
          ],
          {
            guard: async (trx) => {
              const now = await caseVersion(trx, ctx.tenant, item.caseId);
              if (now !== Number(read.caseRow.version)) throw new StaleCase();
            },
          },
        );
        break;
      } catch (error) {
        if (error instanceof StaleCase && attempt === 0) continue;
        if (error instanceof StaleCase) {
          throw new ConflictError('the case changed while you were deciding: reload the item and try again');
        }
        throw error;
      }
    }
    const row = await this.store.withTenant(ctx.tenant, (trx) => this.readItem(trx, ctx.tenant, itemId));
    if (!row) throw new NotFoundError('reconciliation item');
    return itemView(row);
  }

  private readItem(trx: Tx, tenant: string, itemId: string) {
    return reconciliationDb(trx)
      .selectFrom('reconciliation_items')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('item_id', '=', itemId)
      .executeTakeFirst();
  }
}

function itemRead(caseId: string): AccessFields {
  return {
    action: 'read',
    resourceType: 'case',
    resourceId: caseId,
    breakGlass: false,
    fields: ['reconciliation'],
  };
}

/** Bad input (400, naming the field) as opposed to a state that moved on (409). */
function checkDecisionFits(item: ReconciliationItem, decision: ReconciliationDecision): void {
  const allowed = DECISIONS_BY_KIND[item.kind];
  if (!allowed.includes(decision.action)) {
    throw new ValidationError([
      {
        path: 'body.decision.action',
        message: `does not answer a ${item.kind} item: use ${allowed.join(' or ')}`,
      },
    ]);
  }
  if (decision.action === 'keep_claim' && !item.claimants.includes(decision.clinicianId)) {
    throw new ValidationError([
      { path: 'body.decision.clinicianId', message: 'must be one of the clinicians who claimed the case' },
    ]);
  }
  if (
    decision.action === 'keep_outcome' &&
    !item.outcomes.some((o) => o.eventId === decision.outcomeEventId)
  ) {
    throw new ValidationError([
      { path: 'body.decision.outcomeEventId', message: 'must be one of the two outcomes of this item' },
    ]);
  }
}
