import { useEffect, useRef, useState } from 'react';
import { flushSync } from 'react-dom';
import { api } from './api.ts';
import { londonTime } from './time.ts';

/** Keep the draft this long after the last key: often enough that a reload loses at most a word. */
const SAVE_AFTER_MS = 500;

/** Ask again this long after the draft could not be read (a network fault, a server restarting). */
const READ_AGAIN_MS = [1000, 2000, 5000];

interface Draft<N, O> {
  notes: N;
  observations: O;
}

/** A line saying which fields a draft brought back filled, and a line saying when it was last kept. */
export interface DraftState {
  restored: string | null;
  status: string | null;
}

/**
 * Keeps what the clinician types into a consultation as a draft on the server (per user and case,
 * not in the record and not in the browser: a shared PC keeps nothing after sign-out), and puts it
 * back when the screen opens again, after a reload or an idle sign-out. `restore` merges a draft into
 * the form and names the fields it filled (the screen itself shows the draft's words wherever the
 * clinician's differed). Returns a line naming those fields (kept in view until the screen closes,
 * so a clinician who typed before the draft arrived still sees them) and a line saying when the
 * draft was last kept.
 */
export function useConsultationDraft<N extends object, O extends object>(
  caseId: string,
  current: Draft<N, O>,
  restore: (draft: Partial<N> & { observations?: Partial<O> }) => string[],
): DraftState {
  const [restored, setRestored] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  // State, not a ref: when the draft arrives after the clinician has already typed (a slow network),
  // the save below must run then, not wait for the next key.
  const [loaded, setLoaded] = useState(false);
  const lastSent = useRef<string | null>(null);
  const url = `/api/v1/cases/${caseId}/consultation/draft`;

  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setLoaded(false);
    setRestored(null);
    setStatus(null);
    lastSent.current = null;
    const read = (attempt: number): void => {
      void api<{
        draft: (Partial<N> & { observations?: Partial<O> }) | null;
        updatedAt: string | null;
      }>('GET', url).then(
        (r) => {
          if (cancelled) return;
          setStatus(null);
          if (r.draft) {
            const draft = r.draft;
            let filled: string[] = [];
            // Drawn at once: a key pressed before React would otherwise draw the merged form would
            // be applied to the form as it was before the merge, and put it back.
            flushSync(() => {
              filled = restore(draft);
            });
            lastSent.current = JSON.stringify(draft);
            setRestored(restoredLine(londonTime(r.updatedAt!), filled));
          }
          setLoaded(true);
        },
        () => {
          if (cancelled) return;
          // Not known whether there is a draft: nothing is kept until there is an answer, or a
          // blank form would be kept over the unsaved notes the server still holds.
          setStatus(
            'Could not check for unsaved notes on this case: trying again. What you type is not kept as a draft until then.',
          );
          timer = setTimeout(
            () => read(attempt + 1),
            READ_AGAIN_MS[Math.min(attempt, READ_AGAIN_MS.length - 1)],
          );
        },
      );
    };
    read(0);
    return () => {
      cancelled = true;
      clearTimeout(timer);
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

  return { restored, status };
}

function restoredLine(at: string, filled: string[]): string {
  if (filled.length === 0)
    return `Unsaved notes from ${at} found: the form already held what they held, or you had typed there since.`;
  const fields = filled.length === 1 ? filled[0] : `${filled.slice(0, -1).join(', ')} and ${filled.at(-1)}`;
  return `Unsaved notes from ${at} brought back into ${fields}: save them to put them in the record.`;
}

/**
 * `current` with each field the clinician has not touched (still as on the `blank` form) taken from
 * `kept`: what was typed before the draft arrived is newer and is never overwritten. Says which
 * fields were filled, and which held something else already where the draft had words of its own
 * (never settled silently: the screen shows the draft's words beside what is kept).
 */
export function mergeDraft<T extends object>(
  current: T,
  blank: T,
  kept: Partial<T>,
): { merged: T; filled: (keyof T)[]; differing: (keyof T)[] } {
  const merged = { ...current };
  const filled: (keyof T)[] = [];
  const differing: (keyof T)[] = [];
  for (const [key, value] of Object.entries(kept) as [keyof T, T[keyof T]][]) {
    if (value === undefined || !Object.hasOwn(blank, key) || value === current[key]) continue;
    if (current[key] === blank[key]) {
      merged[key] = value;
      filled.push(key);
    } else if (value !== blank[key]) differing.push(key);
  }
  return { merged, filled, differing };
}
