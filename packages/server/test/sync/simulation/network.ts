import {
  SyncUnreachableError,
  type Deliver,
  type SyncCall,
  type SyncInterceptor,
} from '../../../src/sync/memory-transport.ts';

export interface FaultRates {
  /** The request is lost on its way: the peer never sees it. */
  dropRequest: number;
  /** The peer handles the request but the answer is lost: the caller sees an error. */
  dropAnswer: number;
  /** The request is delivered twice in a row. */
  duplicate: number;
  /** A copy of the request is kept and delivered again later, after newer traffic (a stale replay). */
  replayLater: number;
  /** At most this many scheduler turns of delay per delivery; concurrent rounds then interleave. */
  maxDelayTurns: number;
}

export const DEFAULT_FAULTS: FaultRates = {
  dropRequest: 0.08,
  dropAnswer: 0.08,
  duplicate: 0.08,
  replayLater: 0.1,
  maxDelayTurns: 3,
};

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A failure the network made up, as opposed to one a node raised. */
export class NetworkFault extends SyncUnreachableError {}

/**
 * The in-memory network around H4a's MemoryTransport: every sync call between two named nodes
 * passes through `link(from, to)`, which may cut it (partition), lose the request or the answer,
 * deliver it twice, delay it (so concurrent rounds interleave: reordering) or keep a copy that is
 * delivered again later, after newer calls (a stale, reordered duplicate).
 */
export class SimNetwork {
  private readonly cut = new Set<string>();
  private late: { from: string; to: string; replay: () => Promise<unknown> }[] = [];
  readonly stats = { calls: 0, dropped: 0, answersLost: 0, duplicated: 0, replayed: 0, refusedByCut: 0 };
  faults: FaultRates;

  constructor(
    private readonly random: () => number,
    faults: FaultRates = DEFAULT_FAULTS,
  ) {
    this.faults = faults;
  }

  partition(node: string): void {
    this.cut.add(node);
  }

  heal(node?: string): void {
    if (node === undefined) this.cut.clear();
    else this.cut.delete(node);
  }

  isCut(node: string): boolean {
    return this.cut.has(node);
  }

  /** No faults from now on (healing, then syncing to quiescence); stale copies are discarded. */
  calm(): void {
    this.faults = { dropRequest: 0, dropAnswer: 0, duplicate: 0, replayLater: 0, maxDelayTurns: 0 };
    this.late = [];
  }

  private reachable(from: string, to: string): boolean {
    return !this.cut.has(from) && !this.cut.has(to);
  }

  /** Delivers some of the stale copies kept earlier, if their link is up now; answers go nowhere. */
  async replaySome(): Promise<void> {
    const keep: typeof this.late = [];
    const now: typeof this.late = [];
    for (const l of this.late) (this.random() < 0.5 ? now : keep).push(l);
    this.late = keep;
    for (const l of now) {
      if (!this.reachable(l.from, l.to)) continue;
      this.stats.replayed++;
      await l.replay().catch(() => undefined);
    }
  }

  link(from: string, to: string): SyncInterceptor {
    const net = { faults: () => this.faults, random: this.random, stats: this.stats };
    const reachable = (f: string, t: string) => this.reachable(f, t);
    const keepLate = (replay: () => Promise<unknown>) => this.late.push({ from, to, replay });
    const replaySome = () => this.replaySome();
    return async <C extends SyncCall>(call: C, deliver: Deliver) => {
      net.stats.calls++;
      const f = net.faults();
      const delay = Math.floor(net.random() * (f.maxDelayTurns + 1));
      for (let i = 0; i < delay; i++) await turn();
      if (!reachable(from, to)) {
        net.stats.refusedByCut++;
        throw new NetworkFault(`${from} -> ${to} is partitioned`);
      }
      if (net.random() < f.replayLater) {
        keepLate(() => deliver(call));
      }
      await replaySome();
      if (net.random() < f.dropRequest) {
        net.stats.dropped++;
        throw new NetworkFault(`${from} -> ${to}: request lost`);
      }
      if (net.random() < f.duplicate) {
        net.stats.duplicated++;
        await deliver(call).catch(() => undefined);
      }
      const answer = await deliver(call);
      if (net.random() < f.dropAnswer) {
        net.stats.answersLost++;
        throw new NetworkFault(`${from} -> ${to}: answer lost`);
      }
      return answer;
    };
  }
}
