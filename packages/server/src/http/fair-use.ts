import { TooManyRequestsError } from '@holdfast/core';

/**
 * Fair use of one node: how many requests one session and one user may have in flight at once,
 * and how many live streams (server-sent events) one session, one user and the whole node may hold
 * open. A user who floods the node gets 429 with Retry-After naming the limit at once, before any
 * work is done for the request, so everyone else's requests keep their time.
 *
 * The session's count is keyed by its token (a session has exactly one), so a request over it is
 * refused before the session is looked up in the store or its body is read: a flood of refused
 * requests costs the node almost nothing. While a token has requests in flight its user is known
 * from them, so the user's limit is applied that early too; otherwise it is applied as soon as the
 * session has been found (`confirm`). Those early refusals are answered after `refusalDelayMs`.
 */
export interface FairUseLimits {
  requestsPerSession: number;
  requestsPerUser: number;
  streamsPerSession: number;
  streamsPerUser: number;
  streamsPerNode: number;
  /**
   * Searches (routes that scan: patients, directory, audit) one user may have in flight, within
   * their requests: a user keeping many in flight would otherwise take most of the node's time.
   */
  searchesPerUser?: number;
  /**
   * How long a request refused before its session is looked up waits for its 429. A client that
   * sends again as soon as it is refused would otherwise turn cheap refusals into a loop that keeps
   * the node busy; held for this long, a refusal costs a timer. Bounded by the connection limit
   * (each refusal held is one open request).
   */
  refusalDelayMs?: number;
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
  // A search box sends one as the user types; a few may overlap.
  searchesPerUser: 4,
  // Below the Retry-After (1 s): a client that waits as told loses nothing.
  refusalDelayMs: 500,
};

/** Why a request was refused: the 429's detail and Retry-After. */
export interface FairUseRefusal {
  message: string;
  retryAfterSeconds: number;
}

/** A request's or stream's place, taken before the session is looked up. */
export interface FairUseTicket {
  /** Once the session is found: the user's place (and for a stream the node's), or throws 429. */
  confirm(userId: string): void;
  /** Gives every place back; calling it again does nothing. */
  release(): void;
}

interface TokenEntry {
  count: number;
  /** The user of the session, known once one of its requests in flight was confirmed. */
  userId: string | null;
}

interface Pool {
  tokens: Map<string, TokenEntry>;
  users: Map<string, number>;
  perSession: number;
  perUser: number;
  what: string;
  retryAfterSeconds: number;
}

export class FairUse {
  private readonly requests: Pool;
  private readonly streams: Pool;
  private streamsOnNode = 0;
  /** Searches in flight by user. */
  private readonly searches = new Map<string, number>();
  /** Requests and streams refused so far (for tests and metrics). */
  refused = 0;

  constructor(readonly limits: FairUseLimits = DEFAULT_FAIR_USE) {
    this.requests = {
      tokens: new Map(),
      users: new Map(),
      perSession: limits.requestsPerSession,
      perUser: limits.requestsPerUser,
      what: 'requests in flight',
      retryAfterSeconds: 1,
    };
    this.streams = {
      tokens: new Map(),
      users: new Map(),
      perSession: limits.streamsPerSession,
      perUser: limits.streamsPerUser,
      what: 'live streams',
      retryAfterSeconds: 5,
    };
  }

  get openStreams(): number {
    return this.streamsOnNode;
  }

  /**
   * Takes a place for the session token's request (or live stream) before anything is looked up,
   * or answers the refusal (no exception: a flood of refusals should cost as little as possible).
   * `tokenKey` is the token's hash, never the token itself.
   */
  admit(tokenKey: string, stream: boolean, search = false): FairUseTicket | FairUseRefusal {
    const pool = stream ? this.streams : this.requests;
    const searchLimit = this.limits.searchesPerUser ?? Infinity;
    const entry = pool.tokens.get(tokenKey);
    if (entry && entry.count >= pool.perSession)
      return this.refusal(pool, pool.what, 'one session', pool.perSession);
    if (entry?.userId && (pool.users.get(entry.userId) ?? 0) >= pool.perUser)
      return this.refusal(pool, pool.what, 'one user', pool.perUser);
    if (search && entry?.userId && (this.searches.get(entry.userId) ?? 0) >= searchLimit)
      return this.refusal(pool, 'searches in flight', 'one user', searchLimit);
    if (entry) entry.count++;
    else pool.tokens.set(tokenKey, { count: 1, userId: null });
    let userId: string | null = null;
    let onNode = false;
    let released = false;
    return {
      confirm: (user: string) => {
        if (released || userId !== null) return;
        const over =
          (pool.users.get(user) ?? 0) >= pool.perUser
            ? this.refusal(pool, pool.what, 'one user', pool.perUser)
            : search && (this.searches.get(user) ?? 0) >= searchLimit
              ? this.refusal(pool, 'searches in flight', 'one user', searchLimit)
              : null;
        if (over) throw new TooManyRequestsError(over.message, pool.retryAfterSeconds);
        if (stream && this.streamsOnNode >= this.limits.streamsPerNode) {
          this.refused++;
          throw new TooManyRequestsError(
            `this node has ${this.limits.streamsPerNode} live streams open, its limit (streams per node): try again shortly`,
            pool.retryAfterSeconds,
          );
        }
        userId = user;
        count(pool.users, user, 1);
        if (search) count(this.searches, user, 1);
        const own = pool.tokens.get(tokenKey);
        if (own) own.userId = user;
        if (stream) {
          this.streamsOnNode++;
          onNode = true;
        }
      },
      release: () => {
        if (released) return;
        released = true;
        const own = pool.tokens.get(tokenKey);
        if (own && --own.count <= 0) pool.tokens.delete(tokenKey);
        if (userId !== null) {
          count(pool.users, userId, -1);
          if (search) count(this.searches, userId, -1);
        }
        if (onNode) this.streamsOnNode--;
      },
    };
  }

  private refusal(pool: Pool, what: string, whose: string, limit: number): FairUseRefusal {
    this.refused++;
    return {
      message: `too many ${what} for ${whose}: at most ${limit} at once; wait for some to finish`,
      retryAfterSeconds: pool.retryAfterSeconds,
    };
  }
}

function count(map: Map<string, number>, key: string, by: 1 | -1): void {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
