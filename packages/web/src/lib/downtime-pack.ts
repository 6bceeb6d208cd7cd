import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { apiBlob, ApiError } from './api.ts';

/**
 * The downtime pack kept in this browser, so that it opens when the node cannot be reached — the
 * moment it is needed. The pack holds patient data, so:
 * - it is kept only for a signed-in user whose role may read it (the server decides: a 403 keeps
 *   nothing), under that user's id: another user signed in on the same browser never gets it;
 * - it is deleted at sign-out and when the session ends (a 401), and a pack older than
 *   `KEEP_AT_MOST_MS` is never shown and is deleted when read;
 * - it is in IndexedDB, which survives a reload and a closed tab: on a shared PC a pack stays on the
 *   disk until the next sign-out, session end or `KEEP_AT_MOST_MS`, readable by whoever can read this
 *   browser profile (docs/ARCHITECTURE.md "Downtime pack").
 */

/** Fetched again this often while the server answers (and at sign-in). */
export const PACK_REFRESH_MS = 5 * 60_000;
/**
 * The first fetch waits this long after the app starts: a pack is rendered on the server, and the
 * screen being opened (the sites, the case) must not wait behind it.
 */
export const FIRST_FETCH_AFTER_MS = 5_000;
/** A shift: older than this a pack is out of date enough to mislead, and is deleted. */
export const KEEP_AT_MOST_MS = 12 * 60 * 60_000;

const DB_NAME = 'holdfast-downtime';
const STORE = 'packs';
const KEY = 'latest';

export interface KeptPack {
  userId: string;
  /** When this browser received it (browser clock, ms). */
  keptAt: number;
  pdf: Blob;
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB could not be opened'));
  });
}

async function withStore<T>(
  mode: IDBTransactionMode,
  act: (store: IDBObjectStore) => IDBRequest<T>,
): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = act(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

/** The pack kept for `userId`, if one is kept and not too old. */
export async function readKeptPack(userId: string, nowMs = Date.now()): Promise<KeptPack | null> {
  const kept = (await withStore('readonly', (s) => s.get(KEY))) as KeptPack | undefined;
  if (!kept) return null;
  if (kept.userId !== userId || nowMs - kept.keptAt > KEEP_AT_MOST_MS) {
    await forgetKeptPack();
    return null;
  }
  return kept;
}

async function keepPack(pack: KeptPack): Promise<void> {
  await withStore('readwrite', (s) => s.put(pack, KEY));
}

/** Deletes the kept pack (sign-out, session end). Never fails: there may be nothing to delete. */
export async function forgetKeptPack(): Promise<void> {
  try {
    await withStore('readwrite', (s) => s.delete(KEY));
  } catch {
    // No IndexedDB (a private window may refuse it): nothing was kept either.
  }
}

/**
 * The pack kept for this user: read from the browser first, then fetched from the server
 * `FIRST_FETCH_AFTER_MS` after the app starts (sign-in, reload) and every `PACK_REFRESH_MS`; a
 * failed fetch keeps the copy there is. `enabled` is false for users whose role may not read the
 * pack, or on a server without the route.
 */
export function useKeptDowntimePack(userId: string, enabled: boolean) {
  const queryClient = useQueryClient();
  const queryKey = ['downtime-pack', userId];
  const [settled, setSettled] = useState(false);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(true), FIRST_FETCH_AFTER_MS);
    return () => clearTimeout(timer);
  }, []);
  const kept = useQuery({
    queryKey,
    queryFn: async (): Promise<KeptPack | null> => {
      try {
        const pdf = await apiBlob('/api/v1/downtime-pack.pdf');
        const pack = { userId, keptAt: Date.now(), pdf };
        await keepPack(pack);
        return pack;
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
          await forgetKeptPack();
          return null;
        }
        // The server is away: what this browser kept is the pack there is.
        const previous = queryClient.getQueryData<KeptPack | null>(queryKey);
        return previous ?? (await readKeptPack(userId).catch(() => null));
      }
    },
    enabled: enabled && settled,
    refetchInterval: PACK_REFRESH_MS,
    refetchIntervalInBackground: true,
    staleTime: PACK_REFRESH_MS,
    gcTime: Infinity,
    retry: false,
  });
  // Before the first fetch answers (or when it cannot): the copy kept across a reload.
  useEffect(() => {
    if (!enabled) return;
    let cancelled = false;
    void readKeptPack(userId)
      .then((pack) => {
        if (!cancelled && pack && !queryClient.getQueryData(queryKey))
          queryClient.setQueryData(queryKey, pack, { updatedAt: 0 });
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
    // Once per user: queryKey is derived from userId.
  }, [enabled, userId, queryClient]);
  return kept.data ?? null;
}
