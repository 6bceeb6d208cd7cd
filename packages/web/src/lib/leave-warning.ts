import { useEffect } from 'react';
import { setLeaveGuard } from './router.tsx';

/** What the adviser is asked before leaving an unfinished call (the browser words its own for a tab). */
export const LEAVE_CALL_QUESTION =
  'This call is not finished. Leave it? It stays in My open calls, where you can resume it or end it with a reason.';

/**
 * While `active`, leaving the screen at `path` is asked about: closing or reloading the tab (the
 * browser's own question, `beforeunload`), Back and Forward, and links inside the app.
 */
export function useLeaveWarning(active: boolean, path: string): void {
  useEffect(() => {
    if (!active) return;
    const onBeforeUnload = (event: BeforeUnloadEvent) => {
      event.preventDefault();
      // Older browsers ask only when returnValue is set.
      event.returnValue = '';
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    setLeaveGuard({ path, confirm: () => window.confirm(LEAVE_CALL_QUESTION) });
    return () => {
      window.removeEventListener('beforeunload', onBeforeUnload);
      setLeaveGuard(null);
    };
  }, [active, path]);
}
