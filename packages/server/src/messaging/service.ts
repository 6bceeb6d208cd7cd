import {
  ConflictError,
  FINISHED_MESSAGE_STATES,
  NotFoundError,
  ValidationError,
  type Clock,
  type Endpoint,
  type MessageKind,
  type MessageState,
  type MessageStatus,
} from '@holdfast/core';
import type { Resource } from '@medplum/fhirtypes';
import { accessEvent } from '../audit/auditor.ts';
import { outgoingIssues } from '../fhir/validate.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { Store, Tx } from '../store/store.ts';
import { endpointOf, messagingDb, readEndpoints, statusOf } from './projection.ts';

/** What a caller asks the outbox to send. */
export interface OutgoingMessage {
  /** The idempotency key: also the Bundle's MessageHeader.id (or document Bundle id). */
  messageId: string;
  kind: MessageKind;
  endpointId: string;
  caseId: string | null;
  siteId: string | null;
  /** The Bundle, already built and validated by the caller's mapping. */
  bundle: Record<string, unknown>;
  summary: string;
  /** How long delivery and acceptance may take before the message fails and a person is alerted. */
  failAfterMs: number;
}

export interface MessageFilters {
  state?: readonly MessageState[];
  caseId?: string;
  kind?: MessageKind;
  /** Only messages past their deadline or failed: the shift manager's list. */
  needsAttention?: boolean;
  limit?: number;
}

export interface MessageView extends MessageStatus {
  destination: string;
  /** Whether a person must act now (failed, or not accepted within the endpoint's window). */
  overdue: boolean;
}

/**
 * The outbox: messages to other systems are ledger facts; this service queues them (as drafts a
 * caller appends with its own facts, so a disposition and its message commit together), lists them
 * and lets a shift manager retry or cancel one with a reason. Delivery is the worker's (delivery.ts).
 */
export class MessagingService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
  ) {}

  /**
   * The `message.queued` draft for a message; append it in the same call as the facts it belongs to.
   * The Bundle is validated first (the R4 definitions through an independent validator, and our UK
   * Core rules): an invalid one is recorded with its issues and fails at once, so it is never sent and
   * the case and the shift manager's list show why, naming the fields.
   */
  queuedDraft(tenant: string, actor: string, message: OutgoingMessage): EventDraft {
    const now = this.clock.nowMs();
    const issues = outgoingIssues(message.bundle as unknown as Resource);
    return {
      tenant,
      type: 'message.queued',
      actor,
      payload: {
        messageId: message.messageId,
        kind: message.kind,
        endpointId: message.endpointId,
        caseId: message.caseId,
        siteId: message.siteId,
        originNode: this.ledger.node,
        queuedAtMs: now,
        failAtMs: now + message.failAfterMs,
        bundle: message.bundle,
        summary: message.summary,
        ...(issues.length > 0
          ? {
              invalid: issues
                .slice(0, 50)
                .map((i) => ({ path: i.path.slice(0, 300), message: i.message.slice(0, 500) })),
            }
          : {}),
      },
    };
  }

  /** Queues one message on its own (a caller with no other facts to record with it). */
  async queue(tenant: string, actor: string, message: OutgoingMessage): Promise<void> {
    await this.requireEndpoint(tenant, message.endpointId, message.kind);
    await this.ledger.append([this.queuedDraft(tenant, actor, message)]);
  }

  async requireEndpoint(tenant: string, endpointId: string, kind: MessageKind): Promise<Endpoint> {
    const endpoint = await this.endpoint(tenant, endpointId);
    if (!endpoint) throw new NotFoundError(`endpoint ${endpointId}`);
    if (!endpoint.kinds.includes(kind))
      throw new ValidationError([
        {
          path: 'endpointId',
          message: `${endpoint.name} does not receive ${kind.replace(/_/g, ' ')} messages`,
        },
      ]);
    return endpoint;
  }

  async endpoint(tenant: string, endpointId: string, trx?: Tx): Promise<Endpoint | null> {
    const read = (db: Tx) =>
      messagingDb(db)
        .selectFrom('message_endpoints')
        .select('endpoint')
        .where('tenant', '=', tenant)
        .where('endpoint_id', '=', endpointId)
        .executeTakeFirst();
    const row = trx ? await read(trx) : await this.store.withTenant(tenant, read);
    return row ? endpointOf(row) : null;
  }

  /** The endpoint for a kind of message: by ODS code (a GP practice), or the provider's only one. */
  async endpointFor(tenant: string, kind: MessageKind, odsCode?: string | null): Promise<Endpoint | null> {
    const all = await this.endpoints(tenant);
    if (odsCode) return all.find((e) => e.kinds.includes(kind) && e.odsCode === odsCode) ?? null;
    return onlyEndpointFor(all, kind);
  }

  async endpoints(tenant: string): Promise<Endpoint[]> {
    return this.store.withTenant(tenant, (trx) => readEndpoints(trx, tenant));
  }

  async setEndpoint(tenant: string, actor: string, endpoint: Endpoint): Promise<Endpoint> {
    await this.ledger.append([{ tenant, type: 'message.endpoint_set', actor, payload: endpoint }]);
    return endpoint;
  }

  /** `known`: the provider's endpoints when the caller has read them already. */
  async list(
    ctx: RequestContext,
    filters: MessageFilters,
    known?: readonly Endpoint[],
  ): Promise<MessageView[]> {
    const now = this.clock.nowMs();
    const rows = await this.store.withTenant(ctx.tenant, async (trx) => {
      let q = messagingDb(trx)
        .selectFrom('messages')
        .select(['status', 'endpoint_id'])
        .where('tenant', '=', ctx.tenant);
      if (filters.state && filters.state.length > 0) q = q.where('state', 'in', [...filters.state]);
      if (filters.caseId) q = q.where('case_id', '=', filters.caseId);
      if (filters.kind) q = q.where('kind', '=', filters.kind);
      // Every unanswered message may be overdue (past its deadline, or past its receiver's window,
      // which only the endpoint knows): the view decides, the query only leaves out the answered.
      if (filters.needsAttention) q = q.where('state', 'in', ['queued', 'sent', 'delivered', 'failed']);
      return q
        .orderBy('queued_at_ms', 'desc')
        .limit(filters.limit ?? 500)
        .execute();
    });
    const names = new Map((known ?? (await this.endpoints(ctx.tenant))).map((e) => [e.endpointId, e]));
    const views = rows.map((r) => this.view(statusOf(r), names.get(r.endpoint_id) ?? null, now));
    return filters.needsAttention ? views.filter((m) => m.overdue) : views;
  }

  /** How many messages need a person now (the dashboard's figure; the same rule as the list). */
  async needingAttentionCount(ctx: RequestContext): Promise<number> {
    return (await this.list(ctx, { needsAttention: true, limit: 1000 })).length;
  }

  async get(ctx: RequestContext, messageId: string): Promise<MessageView> {
    const row = await this.store.withTenant(ctx.tenant, (trx) =>
      messagingDb(trx)
        .selectFrom('messages')
        .select(['status', 'endpoint_id'])
        .where('tenant', '=', ctx.tenant)
        .where('message_id', '=', messageId)
        .executeTakeFirst(),
    );
    if (!row) throw new NotFoundError('message');
    return this.view(statusOf(row), await this.endpoint(ctx.tenant, row.endpoint_id), this.clock.nowMs());
  }

  /** A person sends a failed message again, with a new deadline. */
  async retry(ctx: RequestContext, messageId: string, reason: string): Promise<MessageView> {
    const status = (await this.get(ctx, messageId)) as MessageStatus;
    if (status.state !== 'failed')
      throw new ConflictError(`only a failed message can be retried; this one is ${status.state}`);
    if (status.invalid)
      throw new ConflictError(
        'this message is not valid FHIR and can never be sent as it is: act on the case by phone',
      );
    const now = this.clock.nowMs();
    const window = Math.max(60_000, status.failAtMs - status.queuedAtMs);
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'message.retried',
        actor: actorOf(ctx),
        payload: { messageId, atMs: now, failAtMs: now + window, reason },
      },
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        ...(status.caseId ? { resourceId: status.caseId } : {}),
        breakGlass: false,
        fields: ['message'],
      }),
    ]);
    return this.get(ctx, messageId);
  }

  /** A person stops a message the receiver has not answered (it is not sent again). */
  async cancel(ctx: RequestContext, messageId: string, reason: string): Promise<MessageView> {
    const status = (await this.get(ctx, messageId)) as MessageStatus;
    if (FINISHED_MESSAGE_STATES.includes(status.state))
      throw new ConflictError(`the message is ${status.state} already: it cannot be cancelled`);
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'message.cancelled',
        actor: actorOf(ctx),
        payload: { messageId, atMs: this.clock.nowMs(), reason },
      },
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        ...(status.caseId ? { resourceId: status.caseId } : {}),
        breakGlass: false,
        fields: ['message'],
      }),
    ]);
    return this.get(ctx, messageId);
  }

  private view(status: MessageStatus, endpoint: Endpoint | null, now: number): MessageView {
    const answered = FINISHED_MESSAGE_STATES.includes(status.state);
    const windowMs = (endpoint?.acceptWithinSeconds ?? 0) * 1000;
    return {
      ...status,
      destination: endpoint?.name ?? status.endpointId,
      overdue:
        status.state === 'failed' ||
        (!answered && (now >= status.failAtMs || (windowMs > 0 && now >= status.queuedAtMs + windowMs))),
    };
  }
}

/** The provider's one endpoint for a kind of message, or null when it has none or several. */
export function onlyEndpointFor(endpoints: readonly Endpoint[], kind: MessageKind): Endpoint | null {
  const fit = endpoints.filter((e) => e.kinds.includes(kind));
  return fit.length === 1 ? fit[0]! : null;
}

/** Where an endpoint receives, as a URI for MessageHeader.destination.endpoint (a mailbox has a URN). */
export function endpointAddress(endpoint: Endpoint): string {
  return endpoint.transport.type === 'http'
    ? endpoint.transport.url
    : `urn:holdfast:mailbox:${endpoint.transport.mailbox}`;
}
