import { TooManyRequestsError } from '@holdfast/core';

/**
 * Fair use of one node: how many requests one session and one user may have in flight at once,
 * and how many live streams (server-sent events) one session, one user and the whole node may hold
 * open. A user who floods the node gets 429 with Retry-After naming the limit at once, before any
 * work is done for the request, so everyone else's requests keep their time.
 */
export interface FairUseLimits {
  requestsPerSession: number;
  requestsPerUser: number;
  streamsPerSession: number;
  streamsPerUser: number;
  streamsPerNode: number;
}

export const DEFAULT_FAIR_USE: FairUseLimits = {
  // A browser opens at most six connections to one origin; a screen loads a handful of things at once.
  requestsPerSession: 12,
  // Someone signed in on two or three screens.
  requestsPerUser: 24,
  // The queue keeps one stream open per tab.
  streamsPerSession: 4,
  streamsPerUser: 8,
  streamsPerNode: 1000,
};

export class FairUse {
  private readonly requests = new Map<string, number>();
  private readonly streams = new Map<string, number>();
  private streamsOnNode = 0;
  /** Requests and streams refused so far (for tests and metrics). */
  refused = 0;

  constructor(readonly limits: FairUseLimits = DEFAULT_FAIR_USE) {}

  get openStreams(): number {
    return this.streamsOnNode;
  }

  /** Takes a request slot for the session and the user, or throws 429. Call the answer once, when done. */
  enterRequest(sessionId: string, userId: string): () => void {
    const keys: [string, number, string][] = [
      [`s:${sessionId}`, this.limits.requestsPerSession, 'requests in flight for one session'],
      [`u:${userId}`, this.limits.requestsPerUser, 'requests in flight for one user'],
    ];
    return this.enter(this.requests, keys, false);
  }

  /** Takes a stream slot for the session, the user and the node, or throws 429. */
  enterStream(sessionId: string, userId: string): () => void {
    if (this.streamsOnNode >= this.limits.streamsPerNode) {
      this.refused++;
      throw new TooManyRequestsError(
        `this node has ${this.limits.streamsPerNode} live streams open, its limit (streams per node): try again shortly`,
        5,
      );
    }
    const keys: [string, number, string][] = [
      [`s:${sessionId}`, this.limits.streamsPerSession, 'live streams for one session'],
      [`u:${userId}`, this.limits.streamsPerUser, 'live streams for one user'],
    ];
    return this.enter(this.streams, keys, true);
  }

  private enter(map: Map<string, number>, keys: [string, number, string][], stream: boolean): () => void {
    for (const [key, limit, what] of keys) {
      if ((map.get(key) ?? 0) >= limit) {
        this.refused++;
        throw new TooManyRequestsError(
          `too many ${what}: at most ${limit} at once; wait for some to finish`,
          stream ? 5 : 1,
        );
      }
    }
    for (const [key] of keys) map.set(key, (map.get(key) ?? 0) + 1);
    if (stream) this.streamsOnNode++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (stream) this.streamsOnNode--;
      for (const [key] of keys) {
        const left = (map.get(key) ?? 1) - 1;
        if (left <= 0) map.delete(key);
        else map.set(key, left);
      }
    };
  }
}
