import { mayDeliver, retryDelayMs, type Clock, type Endpoint, type MessageStatus } from '@holdfast/core';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { Store, Tx } from '../store/store.ts';
import { messagingDb, readEndpoints, statusOf } from './projection.ts';
import { classifyResponse, type DeliveryOutcome, type HttpTransport } from './transport-http.ts';
import type { AnswerDestination, MailboxAnswer, MailboxTransport } from './transport-mailbox.ts';

export interface DeliveryOptions {
  /** How long a lease lasts; renewed at each attempt. */
  leaseMs: number;
  /** Another node takes over a message only this long after its lease lapsed (or it was queued). */
  takeOverAfterMs: number;
  /** Longest wait between attempts. */
  retryCapMs: number;
  /** Messages sent at once. */
  concurrency: number;
  /** How often the worker looks for due messages while nothing wakes it. */
  pollMs: number;
}

export const DEFAULT_DELIVERY_OPTIONS: DeliveryOptions = {
  leaseMs: 30_000,
  takeOverAfterMs: 300_000,
  retryCapMs: 30_000,
  concurrency: 16,
  pollMs: 1_000,
};

export interface DeliveryTransports {
  http: HttpTransport;
  /** Present when the node has a mailbox root configured (`messagingMailboxRoot`). */
  mailbox?: MailboxTransport | null;
}

/** Where the worker says what it could not read (never patient data: file names are message ids). */
export interface DeliveryLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

/** What the worker did with the files it found in mailboxes' in/ folders, since it started. */
export interface MailboxCounts {
  /** Answers that added facts to the ledger. */
  recorded: number;
  /** Answers whose facts the ledger held already (a repeat report, a pass that stopped half-way). */
  alreadyRecorded: number;
  /** Moved to in/unmatched/: not about a message this node sent. */
  unmatched: number;
  /** Moved to in/bad/: not readable as the format says. */
  bad: number;
}

/** Thrown inside the lease's compare-and-set when another node got there first. */
class LeaseLost extends Error {}

/** Thrown inside an answer's guard when the facts it brings are in the ledger already. */
class AlreadyRecorded extends Error {}

/**
 * The delivery worker: one per node. It sends the tenant's due messages that this node may deliver
 * (its own, or another node's whose lease has lapsed), each under a lease recorded in the ledger, and
 * records what the receiver said. It runs with the hub gone: a site delivers its own messages
 * directly, because everything it needs (the message, the endpoint) is in its own ledger.
 *
 * After a restart it resumes from the ledger: a message sent before a crash but not recorded as
 * delivered is sent again under the same id, which the receiver drops if it had it.
 */
export class DeliveryWorker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private wakeAgain = false;
  private stopped = true;
  private unsubscribe: (() => void) | null = null;
  private readonly startedAtMs: number;
  readonly options: DeliveryOptions;
  readonly mailboxCounts: MailboxCounts = { recorded: 0, alreadyRecorded: 0, unmatched: 0, bad: 0 };

  constructor(
    private readonly deps: {
      store: Store;
      ledger: Ledger;
      clock: Clock;
      tenant: string;
      logger?: DeliveryLogger;
    },
    private readonly transports: DeliveryTransports,
    options: Partial<DeliveryOptions> = {},
  ) {
    this.options = { ...DEFAULT_DELIVERY_OPTIONS, ...options };
    this.startedAtMs = deps.clock.nowMs();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // A commit may have queued a message: look at once rather than at the next poll.
    this.unsubscribe = this.deps.ledger.subscribe((tenants) => {
      if (tenants.has(this.deps.tenant)) this.wake();
    });
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => 0);
  }

  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeAgain = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.runOnce().catch(() => 0);
      void this.running.then((sent) => {
        this.running = null;
        const again = this.wakeAgain || sent > 0;
        this.wakeAgain = false;
        this.schedule(again ? 0 : this.options.pollMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  /**
   * One pass: marks messages past their deadline failed, sends what is due, then reads what came
   * back into the mailboxes. Resolves with the number of attempts made (tests drive the worker with
   * this and an injected clock).
   */
  async runOnce(): Promise<number> {
    const now = this.deps.clock.nowMs();
    await this.failOverdue(now);
    const due = await this.dueMessages(now);
    let attempts = 0;
    const queue = [...due];
    const workers = Array.from({ length: Math.min(this.options.concurrency, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (await this.attempt(next.status, next.endpoint)) attempts++;
      }
    });
    await Promise.all(workers);
    await this.readMailboxes();
    return attempts;
  }

  private mayTake(status: MessageStatus, now: number): boolean {
    // A node that has just started has not heard from the others yet: it takes over nothing until
    // it has been up as long as the take-over margin (their newer facts arrive by sync meanwhile).
    if (status.originNode !== this.deps.ledger.node && now < this.startedAtMs + this.options.takeOverAfterMs)
      return false;
    return mayDeliver(status, this.deps.ledger.node, now, { takeOverAfterMs: this.options.takeOverAfterMs });
  }

  private async dueMessages(now: number) {
    const { tenant } = this.deps;
    const rows = await this.deps.store.withTenant(tenant, (trx) =>
      messagingDb(trx)
        .selectFrom('messages')
        // Not the Bundle: most due rows on a hub are other nodes' and are not sent from here.
        .select(['status', 'endpoint_id'])
        .where('tenant', '=', tenant)
        .where('state', 'in', ['queued', 'sent'])
        .where('next_attempt_at_ms', '<=', now)
        .orderBy('queued_at_ms')
        .limit(500)
        .execute(),
    );
    if (rows.length === 0) return [];
    // One read of the provider's endpoints for the whole pass, not one per message.
    const endpoints = new Map(
      (await this.deps.store.withTenant(this.deps.tenant, (trx) => readEndpoints(trx, this.deps.tenant))).map(
        (e) => [e.endpointId, e],
      ),
    );
    const due: { status: MessageStatus; endpoint: Endpoint | null }[] = [];
    for (const row of rows) {
      const status = statusOf(row);
      if (!this.mayTake(status, now)) continue;
      due.push({ status, endpoint: endpoints.get(row.endpoint_id) ?? null });
    }
    return due;
  }

  /** Takes (or renews) the lease by compare-and-set, sends once, records what happened. */
  private async attempt(status: MessageStatus, endpoint: Endpoint | null): Promise<boolean> {
    const { ledger, clock, tenant } = this.deps;
    const node = ledger.node;
    const actor = `node:${node}`;
    const now = clock.nowMs();
    const messageId = status.messageId;
    // Read with the lease's compare-and-set: the Bundle of a message this node now holds.
    let bundle = '';
    try {
      await ledger.append(
        [
          {
            tenant,
            type: 'message.leased',
            actor,
            payload: { messageId, node, untilMs: now + this.options.leaseMs },
          },
        ],
        {
          guard: async (trx) => {
            const row = await messagingDb(trx)
              .selectFrom('messages')
              .select(['status', 'bundle'])
              .where('tenant', '=', tenant)
              .where('message_id', '=', messageId)
              .executeTakeFirst();
            if (!row || !this.mayTake(statusOf(row), now)) throw new LeaseLost();
            bundle = row.bundle;
          },
        },
      );
    } catch (error) {
      if (error instanceof LeaseLost) return false;
      throw error;
    }
    const attempt = status.attempts + 1;
    let outcome: DeliveryOutcome;
    if (!endpoint)
      outcome = { kind: 'retry', problem: `endpoint ${status.endpointId} is not configured on this node` };
    else if (endpoint.transport.type === 'http')
      outcome = await this.transports.http.deliver(
        { url: endpoint.transport.url, clientCertificate: endpoint.transport.clientCertificate },
        messageId,
        bundle,
      );
    else if (this.transports.mailbox)
      outcome = await this.transports.mailbox.place(
        endpoint.transport.mailbox,
        { messageId, kind: status.kind, from: `${tenant}/${node}` },
        bundle,
        now,
      );
    else
      outcome = {
        kind: 'retry',
        problem: 'mailbox delivery is not configured on this node (messagingMailboxRoot)',
      };
    const at = clock.nowMs();
    const drafts: EventDraft[] = [];
    const fact = (type: string, payload: Record<string, unknown>) =>
      drafts.push({ tenant, type, actor, payload: { messageId, ...payload } });
    if (outcome.kind === 'retry') {
      fact('message.attempt_failed', {
        node,
        attempt,
        problem: outcome.problem,
        nextAttemptAtMs: at + retryDelayMs(attempt, this.options.retryCapMs),
      });
    } else if (outcome.kind === 'sent') {
      // Placed, not yet acknowledged: the report comes back through the mailbox (readMailboxes).
      fact('message.sent', {
        node,
        attempt,
        atMs: at,
        awaitAcknowledgementUntilMs: outcome.awaitUntilMs,
        note: outcome.note,
      });
    } else {
      fact('message.sent', { node, attempt, atMs: at });
      if (outcome.acknowledgement)
        fact('message.delivered', { node, atMs: at, acknowledgement: outcome.acknowledgement });
      if (outcome.kind === 'accepted') fact('message.accepted', { atMs: at, reference: outcome.reference });
      if (outcome.kind === 'rejected') fact('message.rejected', { atMs: at, reason: outcome.reason });
    }
    await ledger.append(drafts);
    return true;
  }

  /**
   * Reads the in/ folders of the mailboxes this tenant's endpoints use, records what each answer
   * says (once: facts already in the ledger are not appended again), then moves the files out of
   * in/. A file that cannot be read goes to in/bad/, one about no message of ours to in/unmatched/;
   * neither stops the pass.
   */
  private async readMailboxes(): Promise<void> {
    const transport = this.transports.mailbox;
    if (!transport) return;
    const { store, tenant, logger } = this.deps;
    const endpoints = await store.withTenant(tenant, (trx) => readEndpoints(trx, tenant));
    const mailboxes = new Set(
      endpoints.flatMap((e) => (e.transport.type === 'mailbox' ? [e.transport.mailbox] : [])),
    );
    for (const mailbox of mailboxes) {
      let answers: MailboxAnswer[];
      try {
        answers = await transport.readAnswers(mailbox);
      } catch (error) {
        logger?.warn(
          { mailbox, code: (error as NodeJS.ErrnoException).code },
          'mailbox in/ folder unreadable',
        );
        continue;
      }
      for (const answer of answers) {
        try {
          const to = await this.recordAnswer(mailbox, answer);
          if (to === null) continue; // left for a later pass
          await transport.settle(mailbox, answer, to);
          if (to === 'bad') {
            this.mailboxCounts.bad++;
            logger?.warn(
              { mailbox, file: answer.file, problem: answer.type === 'bad' ? answer.problem : null },
              'mailbox file not readable: moved to in/bad/',
            );
          } else if (to === 'unmatched') {
            this.mailboxCounts.unmatched++;
            logger?.warn(
              { mailbox, file: answer.file },
              'mailbox file about no message of ours: moved to in/unmatched/',
            );
          }
        } catch (error) {
          logger?.warn(
            { mailbox, file: answer.file, code: (error as NodeJS.ErrnoException).code },
            'mailbox answer not recorded; tried again next pass',
          );
        }
      }
    }
  }

  /** Records one answer's facts; says where its files go (null: leave them for the next pass). */
  private async recordAnswer(mailbox: string, answer: MailboxAnswer): Promise<AnswerDestination | null> {
    if (answer.type === 'bad') return 'bad';
    if (answer.type === 'unmatched') return 'unmatched';
    const { ledger, tenant, clock } = this.deps;
    const messageId = answer.messageId;
    const readStatus = async (trx: Tx) => {
      const row = await messagingDb(trx)
        .selectFrom('messages')
        .select('status')
        .where('tenant', '=', tenant)
        .where('message_id', '=', messageId)
        .executeTakeFirst();
      return row ? statusOf(row) : null;
    };
    const status = await this.deps.store.withTenant(tenant, readStatus);
    // Only the node that delivers (or delivered) a message records what came back for it, as with
    // HTTP, where the node that sent a request records its answer.
    if (!status || !(await this.deliversHere(status))) return 'unmatched';
    const now = clock.nowMs();
    const drafts = this.answerFacts(status, mailbox, answer, now);
    if (drafts.length === 0) {
      this.mailboxCounts.alreadyRecorded++;
      return 'done';
    }
    try {
      await ledger.append(drafts, {
        guard: async (trx) => {
          // Re-read inside the commit: another pass (or a report and its response together) may
          // have recorded these facts since.
          const fresh = await readStatus(trx);
          if (!fresh || this.answerFacts(fresh, mailbox, answer, now).length !== drafts.length)
            throw new AlreadyRecorded();
        },
      });
    } catch (error) {
      if (error instanceof AlreadyRecorded) return null;
      throw error;
    }
    this.mailboxCounts.recorded++;
    return 'done';
  }

  /** The facts an answer adds to what the ledger already says of the message (none: nothing new). */
  private answerFacts(
    status: MessageStatus,
    mailbox: string,
    answer: MailboxAnswer,
    now: number,
  ): EventDraft[] {
    if (answer.type !== 'report' && answer.type !== 'response') return [];
    const { tenant, ledger } = this.deps;
    const node = ledger.node;
    const actor = `node:${node}`;
    const messageId = status.messageId;
    const answered = status.state === 'accepted' || status.state === 'rejected';
    const drafts: EventDraft[] = [];
    const fact = (type: string, payload: Record<string, unknown>) =>
      drafts.push({ tenant, type, actor, payload: { messageId, ...payload } });
    const delivered = (acknowledgement: string) => {
      if (status.deliveredAtMs === null && !answered)
        fact('message.delivered', { node, atMs: now, acknowledgement });
    };
    if (answer.type === 'report') {
      if (answer.status === 'success') delivered(`mailbox ${mailbox}: delivery report`);
      else if (!answered)
        fact('message.rejected', {
          atMs: now,
          reason: `mailbox ${mailbox} could not deliver it: ${answer.reason ?? 'no reason given'}`,
        });
      return drafts;
    }
    const outcome = classifyResponse(answer.bundle, messageId, `mailbox ${mailbox}: response message`);
    if (outcome.kind === 'retry') {
      // The receiver asks for it again (transient-error): said on the message; the deadline still
      // stands, and a person can retry it.
      if (!answered && status.lastProblem !== outcome.problem)
        fact('message.attempt_failed', {
          node,
          attempt: Math.max(1, status.attempts),
          problem: outcome.problem,
          nextAttemptAtMs: now + retryDelayMs(Math.max(1, status.attempts), this.options.retryCapMs),
        });
      return drafts;
    }
    if (outcome.kind === 'sent') return drafts;
    // A response means the message arrived, whether or not its report came first.
    delivered(outcome.acknowledgement ?? `mailbox ${mailbox}: response message`);
    if (answered) return drafts;
    if (outcome.kind === 'accepted') fact('message.accepted', { atMs: now, reference: outcome.reference });
    if (outcome.kind === 'rejected') fact('message.rejected', { atMs: now, reason: outcome.reason });
    return drafts;
  }

  /** Whether this node holds or held the message's lease (it sent it from here), or originated it. */
  private async deliversHere(status: MessageStatus): Promise<boolean> {
    const node = this.deps.ledger.node;
    if (status.lease?.node === node || status.originNode === node) return true;
    const sent = await this.deps.store.withTenant(this.deps.tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select('seq')
        .where('tenant', '=', this.deps.tenant)
        .where('node', '=', node)
        .where('subject', '=', `message:${status.messageId}`)
        .where('type', '=', 'message.sent')
        .limit(1)
        .executeTakeFirst(),
    );
    return sent !== undefined;
  }

  /** Messages past their deadline, not answered: failed, so that a person is told. */
  private async failOverdue(now: number): Promise<void> {
    const { tenant, ledger } = this.deps;
    const rows = await this.deps.store.withTenant(tenant, (trx) =>
      messagingDb(trx)
        .selectFrom('messages')
        .select('status')
        .where('tenant', '=', tenant)
        .where('state', 'in', ['queued', 'sent', 'delivered'])
        .where('fail_at_ms', '<=', now)
        .limit(500)
        .execute(),
    );
    const drafts: EventDraft[] = [];
    for (const row of rows) {
      const status = statusOf(row);
      // The node delivering it says so (or its origin, when nobody holds it).
      const mine = status.lease ? status.lease.node === ledger.node : status.originNode === ledger.node;
      if (!mine) continue;
      drafts.push({
        tenant,
        type: 'message.failed',
        actor: `node:${ledger.node}`,
        payload: {
          messageId: status.messageId,
          atMs: now,
          reason:
            status.state === 'delivered'
              ? 'delivered, but the receiver did not accept it in time'
              : `not delivered in time${status.lastProblem ? ` (last problem: ${status.lastProblem})` : ''}`,
        },
      });
    }
    if (drafts.length > 0) await ledger.append(drafts);
  }
}
