import { useQueryClient } from '@tanstack/react-query';
import { hasPermission, type Permission, type Role } from '@holdfast/core';
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, ApiError, onSessionEnded, setCsrfToken } from './api.ts';
import { forgetKeptPack } from './downtime-pack.ts';

export interface SessionUser {
  userId: string;
  username: string;
  displayName: string;
  roles: Role[];
  siteIds: string[];
}

interface SessionResponse {
  user: SessionUser;
  csrfToken: string;
  idleExpiresAt: string;
  absoluteExpiresAt: string;
}

export interface SessionState {
  /** undefined while the first check runs; null when signed out. */
  user: SessionUser | null | undefined;
  /** Idle timeout of the server's session policy, learned from the session response. */
  idleTimeoutMs: number;
  /** Why the last session ended, when it ended by itself (shown on the sign-in screen). */
  endedReason: string | null;
  refresh(): Promise<void>;
  signedIn(csrfToken: string): Promise<void>;
  /** Signs out; `reason` is shown on the sign-in screen. */
  signOut(reason?: string): Promise<void>;
  can(permission: Permission): boolean;
}

const SessionContext = createContext<SessionState | null>(null);

/** Default of the server's session policy (30 minutes idle) until a session response says otherwise. */
const DEFAULT_IDLE_MS = 30 * 60_000;

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<SessionUser | null | undefined>(undefined);
  const [idleTimeoutMs, setIdleTimeoutMs] = useState(DEFAULT_IDLE_MS);
  const [endedReason, setEndedReason] = useState<string | null>(null);
  const queryClient = useQueryClient();
  // The kept downtime pack (patient data) goes with the session: from this browser's disk and memory.
  const forgetPack = useCallback(() => {
    queryClient.removeQueries({ queryKey: ['downtime-pack'] });
    return forgetKeptPack();
  }, [queryClient]);

  const refresh = useCallback(async () => {
    try {
      const requestedAt = Date.now();
      const s = await api<SessionResponse>('GET', '/api/v1/auth/session');
      setCsrfToken(s.csrfToken);
      const idle = Date.parse(s.idleExpiresAt) - requestedAt;
      // The server's clock may differ from ours: round to whole minutes, which is what policies use.
      if (idle > 60_000) setIdleTimeoutMs(Math.round(idle / 60_000) * 60_000);
      setUser(s.user);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        // No session (expired while the browser was closed): the pack kept for it goes too.
        void forgetPack();
        setCsrfToken(null);
        setUser(null);
      } else throw error;
    }
  }, [forgetPack]);

  useEffect(() => {
    refresh().catch(() => setUser(null));
    return onSessionEnded(() => {
      void forgetPack();
      setCsrfToken(null);
      setUser((previous) => {
        if (previous) setEndedReason('Your session ended. Sign in again to carry on.');
        return null;
      });
    });
  }, [refresh, forgetPack]);

  const signedIn = useCallback(
    async (csrfToken: string) => {
      setCsrfToken(csrfToken);
      setEndedReason(null);
      await refresh();
    },
    [refresh],
  );

  const signOut = useCallback(
    async (reason = 'You have signed out.') => {
      try {
        await api('POST', '/api/v1/auth/sign-out');
      } catch {
        // Signed out already (or the server is away): the screen signs out either way.
      }
      await forgetPack();
      setCsrfToken(null);
      setEndedReason(reason);
      setUser(null);
    },
    [forgetPack],
  );

  const value = useMemo<SessionState>(
    () => ({
      user,
      idleTimeoutMs,
      endedReason,
      refresh,
      signedIn,
      signOut,
      can: (permission) => !!user && hasPermission(user.roles, permission),
    }),
    [user, idleTimeoutMs, endedReason, refresh, signedIn, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

export function useUser(): SessionUser {
  const { user } = useSession();
  if (!user) throw new Error('useUser needs a signed-in user');
  return user;
}

/** Where each role starts after signing in. */
export function homeFor(user: SessionUser): string {
  const can = (p: Permission) => hasPermission(user.roles, p);
  if (can('queue.work')) return '/queue';
  if (can('cases.handle')) return '/calls/new';
  if (can('reports.read') && can('queue.read')) return '/dashboard';
  // The dispatcher works the board, not the CAS queue; a driver works from the phone page.
  if (can('visits.dispatch')) return '/dispatch';
  if (can('visits.crew')) return '/crew';
  if (can('users.manage')) return '/admin/users';
  if (can('audit.read')) return '/audit';
  if (can('queue.read')) return '/queue';
  return '/account';
}
