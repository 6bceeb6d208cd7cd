import type { HoldfastNode } from '../node/node.ts';
import { loadEndorsedHubKey } from '../projections/node-keys.ts';
import { diagnoseSyncFailure, type SyncDiagnosis } from './diagnosis.ts';
import { SyncEngine, type SyncRoundResult } from './engine.ts';
import { HttpSyncTransport } from './http-transport.ts';
import { SyncStatusStore } from './status.ts';

/** Timers the runner uses; tests pass their own to step time by hand. */
export interface RunnerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: RunnerTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // The runner never keeps a process alive on its own.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface SyncRunnerOptions {
  /** Between rounds while the peer answers and nothing waits. */
  intervalMs: number;
  /** After a local commit, wait this long for more before syncing (one round carries them all). */
  debounceMs: number;
  /** First wait after a failure; doubled after each further failure up to `maxBackoffMs`. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /**
   * Every this many rounds (and the first), the pull also asks again for the last `auditLastEvents`
   * events of each chain and compares them with this node's copy: a hub whose store was edited
   * (an event changed or removed) is caught even where this node held the events already.
   */
  auditEveryRounds: number;
  auditLastEvents: number;
}

export const DEFAULT_RUNNER_OPTIONS: SyncRunnerOptions = {
  intervalMs: 5_000,
  debounceMs: 250,
  minBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  auditEveryRounds: 60,
  auditLastEvents: 5_000,
};

/**
 * The wait before the next attempt after `failures` consecutive failures: doubling from the
 * minimum, capped. Deterministic (no jitter): one site has one hub, so there is no herd to spread,
 * and tests can say exactly when the next attempt comes.
 */
export function backoffMs(
  failures: number,
  o: Pick<SyncRunnerOptions, 'minBackoffMs' | 'maxBackoffMs'>,
): number {
  if (failures <= 0) return 0;
  const exp = Math.min(failures - 1, 30);
  return Math.min(o.maxBackoffMs, o.minBackoffMs * 2 ** exp);
}

export interface RunnerPeer {
  tenant: string;
  /** The hub's node id. */
  node: string;
  url: string;
  /** This node's own id (a refusal about its own chain raises the history alarm); from the engine when absent. */
  self?: string;
}

export type RoundOutcome =
  { ok: true; result: SyncRoundResult } | { ok: false; error: Error; diagnosis: SyncDiagnosis };

/**
 * Runs sync rounds with the node's hub for as long as the node serves: a round, then a wait — the
 * interval while the hub answers, a growing back-off while it is away — and promptly (after a short
 * debounce) when this node commits events of its own. Nothing in the clinical path waits on it:
 * commits only schedule a round.
 */
export class SyncRunner {
  readonly options: SyncRunnerOptions;
  private timer: unknown = null;
  private timerDueAt = Infinity;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private unsubscribe: (() => void) | null = null;
  /** Consecutive failed rounds (0 while the hub answers). */
  failures = 0;
  /** What the hub said it held after the last successful round. */
  peerPositions: Map<string, number> | null = null;
  lastResult: SyncRoundResult | null = null;
  lastError: Error | null = null;
  /** What the last failure means and the way on; null after a good round. */
  lastDiagnosis: SyncDiagnosis | null = null;
  rounds = 0;

  constructor(
    private readonly engine: {
      node?: { ledger: { node: string } };
      syncOnce(options?: { audit?: boolean | { lastEvents: number } }): Promise<SyncRoundResult>;
    },
    private readonly status: SyncStatusStore,
    readonly peer: RunnerPeer,
    private readonly deps: {
      /** Hears of every commit of the node's ledger (`Ledger.subscribe`). */
      subscribe?: (fn: (tenants: ReadonlySet<string>) => void) => () => void;
      nowMs: () => number;
      timers?: RunnerTimers;
      onRound?: (outcome: RoundOutcome) => void;
    },
    options: Partial<SyncRunnerOptions> = {},
  ) {
    this.options = { ...DEFAULT_RUNNER_OPTIONS, ...options };
  }

  private get timers(): RunnerTimers {
    return this.deps.timers ?? realTimers;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe =
      this.deps.subscribe?.((tenants) => {
        if (tenants.has(this.peer.tenant)) this.soon();
      }) ?? null;
    this.schedule(0);
  }

  /** Stops scheduling and waits for a round in progress to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Resolves when no round is running (tests step the timers, then wait for the round). */
  async idle(): Promise<void> {
    await this.running;
  }

  /** A local commit: sync after the debounce, unless a round is due sooner or running (then again after it). */
  soon(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    // While the hub is away a commit does not cut the back-off short: it would only fail again.
    if (this.failures > 0) return;
    this.schedule(this.options.debounceMs);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const due = this.deps.nowMs() + delayMs;
    if (this.timer !== null) {
      if (this.timerDueAt <= due) return;
      this.timers.clearTimeout(this.timer);
    }
    this.timerDueAt = due;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.timerDueAt = Infinity;
      void this.runRound();
    }, delayMs);
  }

  /** One round now (also what the timer runs); resolves when it has ended, whatever its outcome. */
  runRound(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.round().finally(() => {
      this.running = null;
      if (this.stopped) return;
      if (this.again && this.failures === 0) {
        this.again = false;
        this.schedule(0);
      } else {
        this.again = false;
        this.schedule(this.failures > 0 ? backoffMs(this.failures, this.options) : this.options.intervalMs);
      }
    });
    return this.running;
  }

  private async round(): Promise<void> {
    this.rounds++;
    const { tenant, node, url } = this.peer;
    try {
      const audit = (this.rounds - 1) % this.options.auditEveryRounds === 0;
      const result = await this.engine.syncOnce(
        audit ? { audit: { lastEvents: this.options.auditLastEvents } } : {},
      );
      this.failures = 0;
      this.lastError = null;
      this.lastDiagnosis = null;
      this.lastResult = result;
      this.peerPositions = new Map(Object.entries(result.peerPositions));
      await this.status.recordSuccess(tenant, node, 'outbound', url);
      // Something was left over (a round's request cap, or keys learnt late) and the round moved
      // events: go again at once. Without progress the next round waits for the interval.
      if ((result.unsentEvents > 0 || result.unreceivedEvents > 0) && result.pulled + result.pushed > 0)
        this.again = true;
      this.deps.onRound?.({ ok: true, result });
    } catch (error) {
      this.failures++;
      this.lastError = error as Error;
      const self = this.peer.self ?? this.engine.node?.ledger.node ?? '';
      const diagnosis = diagnoseSyncFailure(error, self, node);
      this.lastDiagnosis = diagnosis;
      await this.status
        .recordFailure(tenant, node, 'outbound', describe(error), url, diagnosis)
        .catch(() => undefined);
      // The hub will take none of this node's events: an alarm that outlasts this round, later good
      // rounds and restarts, until an operator clears it.
      if (diagnosis.problem === 'history_refused')
        await this.status
          .raiseAlarm(tenant, 'history_refused', diagnosis.message, diagnosis.advice)
          .catch(() => undefined);
      this.deps.onRound?.({ ok: false, error: error as Error, diagnosis });
    }
  }
}

/** A failure as the status shows it: what kind, and the message (nodes, seqs, reasons; no payloads). */
export function describe(error: unknown): string {
  const e = error as { name?: string; reason?: string; message?: string; code?: string };
  if (e.reason) return `refused (${e.reason}): ${e.message ?? ''}`;
  if (e.name === 'SyncHttpError') return `refused by the peer (${e.code ?? ''}): ${e.message ?? ''}`;
  return `unreachable: ${e.message ?? String(error)}`;
}

/**
 * The runner of a site: sync with the hub recorded at enrolment (node.json), over signed HTTP.
 * Null for a hub or a single node: they call nobody (sites call the hub).
 */
export function createHubRunner(
  node: HoldfastNode,
  settings: { intervalSeconds: number; maxBackoffSeconds: number },
  onRound?: (outcome: RoundOutcome) => void,
): SyncRunner | null {
  const hub = node.identity.hub;
  if (!hub) return null;
  const tenant = node.identity.tenant;
  const transport = new HttpSyncTransport({
    url: hub.url,
    peerNode: hub.node,
    peerPublicKey: hub.publicKey,
    signer: node.identity.signer,
    tenant,
    clock: node.clock,
    // Behind a load balancer another hub process of the provider may answer.
    endorsedPeerKey: (other) => loadEndorsedHubKey(node.store.db, tenant, hub.node, other),
  });
  return new SyncRunner(
    new SyncEngine(node, tenant, transport),
    new SyncStatusStore(node.store, node.clock),
    { tenant, node: hub.node, url: hub.url, self: node.identity.node },
    { subscribe: (fn) => node.ledger.subscribe(fn), nowMs: () => node.clock.nowMs(), onRound },
    {
      intervalMs: settings.intervalSeconds * 1000,
      maxBackoffMs: settings.maxBackoffSeconds * 1000,
      minBackoffMs: Math.min(1000, settings.maxBackoffSeconds * 1000),
    },
  );
}
