import { storedChainHead } from '../ledger/rows.ts';
import type { StoredEvent } from '@holdfast/core';
import pg from 'pg';
import { COMMIT_CHANNEL, parseCommitNotice, type CommittedChain } from '../ledger/commit-notice.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { NoticeChannel } from '../auth/sessions.ts';

export interface FanInLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Events handed to the listeners at a time when catching up a chain. */
const PAGE = 1000;

/**
 * The other hub processes' commits, heard in this one. Each hub process over a shared PostgreSQL
 * database LISTENs for commit notices on a connection of its own (`commit-notice.ts`), reads the
 * named events from the store and tells its ledger's commit listeners of them exactly as of its own
 * commits: the caches kept "until a commit changes them", the clinicians' live streams, the outbox
 * worker and everything else that subscribes stay true whichever process committed.
 *
 * It keeps the highest seq it has heard of every chain, so a notice is read once, and when the
 * connection drops it reconnects by itself and catches up every chain from what it had heard (what
 * it missed meanwhile is told as if it had just committed: every cache forgets it).
 */
export class CommitFanIn {
  private client: pg.Client | null = null;
  /** `tenant \0 node` → highest seq told to the listeners. */
  private readonly heard = new Map<string, number>();
  private work: Promise<void> = Promise.resolve();
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  /** Connections made (the first and every reconnect): tests and /metrics watch it. */
  connects = 0;

  constructor(
    private readonly ledger: Ledger,
    /** The database to listen on; a function when it can move (the primary after a failover). */
    private readonly connectionString: string | (() => string),
    private readonly options: {
      logger?: FanInLogger;
      reconnectMs?: number;
      /** Other notices heard on the same connection (the session notices: auth/sessions.ts). */
      channels?: readonly NoticeChannel[];
    } = {},
  ) {}

  private get channels(): readonly NoticeChannel[] {
    return this.options.channels ?? [];
  }

  /** Listens from now on; resolves once the first connection listens. */
  async start(): Promise<void> {
    // What this process commits itself (appends, imports, and what it fans in) is heard already.
    this.unsubscribe = this.ledger.subscribe((_tenants, events) => {
      for (const e of events) this.hear(e.tenant, e.node, e.seq);
    });
    await this.connect(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const c of this.channels) c.listening(false);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = null;
    await this.work.catch(() => undefined);
    await client?.end().catch(() => undefined);
  }

  get listening(): boolean {
    return this.client !== null;
  }

  /** For tests: drops the connection as a network fault or a server restart would. */
  async dropConnection(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await client.end().catch(() => undefined);
  }

  private hear(tenant: string, node: string, seq: number): void {
    const key = `${tenant}\u0000${node}`;
    if ((this.heard.get(key) ?? 0) < seq) this.heard.set(key, seq);
  }

  private async connect(catchUp: boolean): Promise<void> {
    const client = new pg.Client({
      connectionString:
        typeof this.connectionString === 'string' ? this.connectionString : this.connectionString(),
      application_name: `holdfast fan-in ${this.ledger.node}`.slice(0, 63),
    });
    client.on('notification', (n) => {
      if (this.client !== client) return;
      for (const c of this.channels) if (n.channel === c.channel) c.heard(n.payload);
      if (n.channel !== COMMIT_CHANNEL) return;
      const notice = parseCommitNotice(n.payload);
      if (!notice || notice.origin === this.ledger.origin) return;
      this.enqueue(() => this.catchUp(notice.chains));
    });
    const dropped = () => {
      if (this.client !== client) return;
      this.client = null;
      for (const c of this.channels) c.listening(false);
      if (!this.stopped) {
        this.options.logger?.warn({}, 'commit notices: connection lost; reconnecting');
        this.scheduleReconnect();
      }
    };
    client.on('error', dropped);
    client.on('end', dropped);
    try {
      await client.connect();
      await client.query(
        [COMMIT_CHANNEL, ...this.channels.map((c) => c.channel)].map((c) => `listen ${c}`).join('; '),
      );
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.connects++;
    for (const c of this.channels) c.listening(true);
    // Listening now: anything committed from here on is noticed. What committed before is read from
    // the store: on the first connection only to know where every chain stands (the projections have
    // it already), after a reconnect as news (notices were missed).
    if (catchUp) this.enqueue(() => this.catchUp(null));
    else
      this.enqueue(async () => {
        for (const c of await this.positionsNow()) this.hear(c.tenant, c.node, c.toSeq);
      });
    await this.work;
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.stopped) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect(true).then(
        () => this.options.logger?.info({}, 'commit notices: listening again; caught up'),
        () => this.scheduleReconnect(),
      );
    }, this.options.reconnectMs ?? 1000);
    this.reconnectTimer.unref();
  }

  private enqueue(fn: () => Promise<void>): void {
    this.work = this.work.then(fn).catch((error: unknown) => {
      this.options.logger?.warn(
        { err: error },
        'commit notices: reading what another process committed failed',
      );
      // What was not read is read at the next reconnect: make one.
      void this.client?.end().catch(() => undefined);
    });
  }

  /**
   * The highest seq of every chain in the store, read per chain from the (tenant, node, seq) index
   * (a grouped scan would read every event of a large store). Chains exist only for registered
   * nodes, so the key registry lists them.
   */
  private async positionsNow(): Promise<CommittedChain[]> {
    const db = this.ledger.store.db;
    const registered = await db
      .withTables<{ node_keys: { tenant: string; node: string } }>()
      .selectFrom('node_keys')
      .select(['tenant', 'node'])
      .execute();
    const chains: CommittedChain[] = [];
    for (const { tenant, node } of registered) {
      const last = await storedChainHead(db, tenant, node);
      if (last > 0) chains.push({ tenant, node, fromSeq: 1, toSeq: last });
    }
    return chains;
  }

  /** Reads each chain's events past what was heard, up to the noticed seq, and tells the listeners. */
  private async catchUp(chains: CommittedChain[] | null): Promise<void> {
    const wanted = chains ?? (await this.positionsNow());
    for (const c of wanted) {
      for (;;) {
        const from = (this.heard.get(`${c.tenant}\u0000${c.node}`) ?? 0) + 1;
        if (from > c.toSeq) break;
        const events = await this.ledger.readChain(
          c.tenant,
          c.node,
          from,
          Math.min(c.toSeq, from + PAGE - 1),
        );
        if (events.length === 0) break;
        this.tell(c.tenant, events);
      }
    }
  }

  private tell(tenant: string, events: readonly StoredEvent[]): void {
    for (const e of events) {
      this.ledger.hlc.observe(e.hlc);
      this.hear(e.tenant, e.node, e.seq);
    }
    this.ledger.notifyCommitted([tenant], events);
  }
}
