import { useEffect, useRef, useState } from 'react';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

/**
 * Follows the server-sent case events (GET /api/v1/queue/stream?follow=true). The browser's
 * EventSource reconnects by itself and sends Last-Event-ID, so nothing is missed across a drop;
 * `onReconnect` lets the screen re-read everything once after a drop anyway.
 */
export function useCaseEvents(
  onEvent: (event: { caseId: string | null; type: string }) => void,
  onReconnect: () => void,
  /** Messages to other systems changed (queued, accepted, failed…): the stream's `outbox` events. */
  onOutboxEvent?: (event: { type: string }) => void,
): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const handlers = useRef({ onEvent, onReconnect, onOutboxEvent });
  handlers.current = { onEvent, onReconnect, onOutboxEvent };
  useEffect(() => {
    const source = new EventSource('/api/v1/queue/stream?follow=true', { withCredentials: true });
    let dropped = false;
    source.addEventListener('open', () => {
      setState('live');
      if (dropped) handlers.current.onReconnect();
      dropped = false;
    });
    source.addEventListener('error', () => {
      dropped = true;
      setState('reconnecting');
    });
    source.addEventListener('case', (message) => {
      try {
        handlers.current.onEvent(
          JSON.parse((message as MessageEvent<string>).data) as { caseId: string | null; type: string },
        );
      } catch {
        // A message this screen cannot read: the periodic full read catches up.
      }
    });
    source.addEventListener('outbox', (message) => {
      try {
        handlers.current.onOutboxEvent?.(
          JSON.parse((message as MessageEvent<string>).data) as { type: string },
        );
      } catch {
        // As above: the next full read catches up.
      }
    });
    return () => source.close();
  }, []);
  return state;
}

/** Re-renders every `ms` with the current time (for countdowns). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}
