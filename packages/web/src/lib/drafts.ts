import { useEffect, useRef, useState } from 'react';
import { api } from './api.ts';
import { londonTime } from './time.ts';

/** Keep the draft this long after the last key: often enough that a reload loses at most a word. */
const SAVE_AFTER_MS = 500;

interface Draft<N, O> {
  notes: N;
  observations: O;
}

/**
 * Keeps what the clinician types into a consultation as a draft on the server (per user and case,
 * not in the record and not in the browser: a shared PC keeps nothing after sign-out), and puts it
 * back when the screen opens again, after a reload or an idle sign-out. Returns a line saying whether
 * a draft was brought back and when the draft was last kept, for a status next to the form.
 */
export function useConsultationDraft<N extends object, O extends object>(
  caseId: string,
  current: Draft<N, O>,
  restore: (draft: Partial<N> & { observations?: Partial<O> }) => void,
): string | null {
  // Two lines: that a draft was brought back (kept in view until the screen closes, so a clinician
  // who typed before it arrived still sees that fields were filled from it), and the last keeping.
  const [restored, setRestored] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  // State, not a ref: when the draft arrives after the clinician has already typed (a slow network),
  // the save below must run then, not wait for the next key.
  const [loaded, setLoaded] = useState(false);
  const lastSent = useRef<string | null>(null);
  const url = `/api/v1/cases/${caseId}/consultation/draft`;

  useEffect(() => {
    let cancelled = false;
    setLoaded(false);
    void api<{ draft: (Partial<N> & { observations?: Partial<O> }) | null; updatedAt: string | null }>(
      'GET',
      url,
    )
      .then((r) => {
        if (cancelled) return;
        if (r.draft) {
          restore(r.draft);
          lastSent.current = JSON.stringify(r.draft);
          setRestored(
            `Unsaved notes from ${londonTime(r.updatedAt!)} brought back: save them to put them in the record.`,
          );
        }
      })
      .catch(() => undefined)
      .finally(() => {
        if (!cancelled) setLoaded(true);
      });
    return () => {
      cancelled = true;
    };
    // Loaded once per case: `restore` changes identity with every render.
  }, [url]);

  const body = JSON.stringify({ ...current.notes, observations: current.observations });
  useEffect(() => {
    if (!loaded || body === lastSent.current) return;
    const timer = setTimeout(() => {
      lastSent.current = body;
      api<{ updatedAt: string }>('PUT', url, JSON.parse(body) as unknown)
        .then((r) => setStatus(`Draft kept at ${londonTime(r.updatedAt)} (not yet saved in the record).`))
        .catch(() => setStatus('The draft could not be kept: save the consultation to be sure.'));
    }, SAVE_AFTER_MS);
    return () => clearTimeout(timer);
  }, [body, url, loaded]);

  return [restored, status].filter(Boolean).join(' ') || null;
}

/**
 * `current` with each field the clinician has not touched (still as on the `blank` form) taken from
 * `kept`: what was typed before the draft arrived is newer and is never overwritten.
 */
export function fillUntouched<T extends object>(current: T, blank: T, kept: Partial<T>): T {
  const filled = { ...current };
  for (const [key, value] of Object.entries(kept) as [keyof T, T[keyof T]][]) {
    if (value !== undefined && key in blank && filled[key] === blank[key]) filled[key] = value;
  }
  return filled;
}
