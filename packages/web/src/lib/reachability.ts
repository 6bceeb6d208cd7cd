import { useSyncExternalStore } from 'react';
import { currentReachability, onReachabilityChange, type Reachability } from './api.ts';

/**
 * The server's reachability as the last request found it (see `reportRequestOutcome` in api.ts),
 * for screens that must say "not answering" the moment any request fails.
 */
export function useReachability(): Reachability {
  return useSyncExternalStore(onReachabilityChange, currentReachability);
}

/** "just now", "40 s ago", "2 min ago", "1 h 5 min ago": how old something read from the server is. */
export function ageWords(sinceMs: number, nowMs: number): string {
  const seconds = Math.max(0, Math.round((nowMs - sinceMs) / 1000));
  if (seconds < 10) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min ago`;
}

/** What the server's silence is, in words: nothing answered, or it answered with a failure. */
export function unavailableWords(r: Reachability): string {
  return r.lastFailureStatus === 0 || r.lastFailureStatus === null
    ? 'the server is not answering'
    : `the server is failing (error ${r.lastFailureStatus})`;
}

export function capitalised(words: string): string {
  return words.charAt(0).toUpperCase() + words.slice(1);
}
