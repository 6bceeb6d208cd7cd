import type { SyncTransport } from './engine.ts';
import { handlePull, handlePush, type SyncNode } from './handlers.ts';
import {
  SyncRefusedError,
  type PullRequest,
  type PullResponse,
  type PushRequest,
  type PushResponse,
} from './protocol.ts';

/** One request on its way to the peer. */
export type SyncCall = { kind: 'pull'; request: PullRequest } | { kind: 'push'; request: PushRequest };

export type SyncReply<C extends SyncCall> = C extends { kind: 'pull' } ? PullResponse : PushResponse;

/**
 * Delivers a call to the peer and returns its answer (JSON-copied both ways). Throws the peer's
 * SyncRefusedError, or any error the peer's handler raised.
 */
export type Deliver = <C extends SyncCall>(call: C) => Promise<SyncReply<C>>;

/**
 * The fault-injection point: every call passes through it. The default just delivers. A network
 * simulation wraps `deliver` to drop (throw without or after delivering: a lost request or a lost
 * answer), delay (await its scheduler first), duplicate (deliver twice), reorder (hold a call back
 * and deliver it after later ones) or partition (throw while the link is cut).
 */
export type SyncInterceptor = <C extends SyncCall>(call: C, deliver: Deliver) => Promise<SyncReply<C>>;

/** Raised by a transport when the peer could not be reached (tests and simulated faults). */
export class SyncUnreachableError extends Error {
  constructor(message = 'the peer could not be reached') {
    super(message);
  }
}

/**
 * A transport that calls the peer's sync handlers in the same process. Requests and answers are
 * serialised through JSON so the two nodes share nothing by reference, as over a network; a refusal
 * crosses as its JSON form and is rebuilt on this side.
 */
export class MemoryTransport implements SyncTransport {
  private readonly target: () => SyncNode;

  constructor(
    /** The peer, or a function returning it (a simulation swaps in a restarted node). */
    target: SyncNode | (() => SyncNode),
    readonly options: { interceptor?: SyncInterceptor } = {},
  ) {
    this.target = typeof target === 'function' ? target : () => target;
  }

  pull(request: PullRequest): Promise<PullResponse> {
    return this.call({ kind: 'pull', request });
  }

  push(request: PushRequest): Promise<PushResponse> {
    return this.call({ kind: 'push', request });
  }

  private call<C extends SyncCall>(call: C): Promise<SyncReply<C>> {
    const deliver: Deliver = (c) => this.deliver(c);
    return this.options.interceptor ? this.options.interceptor(call, deliver) : deliver(call);
  }

  private async deliver<C extends SyncCall>(call: C): Promise<SyncReply<C>> {
    const body: unknown = JSON.parse(JSON.stringify(call.request));
    const node = this.target();
    let answer: unknown;
    try {
      answer = call.kind === 'pull' ? await handlePull(node, body) : await handlePush(node, body);
    } catch (error) {
      if (error instanceof SyncRefusedError)
        throw SyncRefusedError.fromJSON(JSON.parse(JSON.stringify(error)));
      throw error;
    }
    return JSON.parse(JSON.stringify(answer)) as SyncReply<C>;
  }
}
