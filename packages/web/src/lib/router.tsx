import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent, type ReactNode } from 'react';

/**
 * A small client-side router over the History API: the app has a handful of screens, each with a
 * plain URL, so a dependency is not worth it. The server answers index.html for these paths.
 */
const CHANGE = 'holdfast:navigate';

/**
 * A screen holding unfinished work (a call in progress) asks before the app leaves it: `confirm`
 * says whether to leave (it may ask the user). Checked for links and in-app navigation, and for
 * the browser's Back and Forward; closing or reloading the tab is the screen's own `beforeunload`.
 * Replacing navigations (sign-in and sign-out redirects) are never held up.
 */
let leaveGuard: { path: string; confirm: () => boolean } | null = null;

export function setLeaveGuard(guard: { path: string; confirm: () => boolean } | null): void {
  leaveGuard = guard;
}

function mayLeave(to: string): boolean {
  if (!leaveGuard || leaveGuard.path === new URL(to, location.href).pathname) return true;
  return leaveGuard.confirm();
}

// Registered when the module loads, before any screen's listener: Back on a guarded screen is
// asked about first; declined, the screen's address is put back and nobody else hears of it.
window.addEventListener('popstate', (event) => {
  if (!leaveGuard || location.pathname === leaveGuard.path) return;
  const stay = leaveGuard.path;
  if (leaveGuard.confirm()) return;
  history.pushState(null, '', stay);
  event.stopImmediatePropagation();
});

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === currentPath()) return;
  if (!options.replace && !mayLeave(to)) return;
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new Event(CHANGE));
}

function currentPath(): string {
  return location.pathname + location.search;
}

export function usePath(): { pathname: string; search: URLSearchParams } {
  const [path, setPath] = useState(currentPath);
  useEffect(() => {
    const update = () => setPath(currentPath());
    window.addEventListener('popstate', update);
    window.addEventListener(CHANGE, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(CHANGE, update);
    };
  }, []);
  const url = new URL(path, 'http://x');
  return { pathname: url.pathname, search: url.searchParams };
}

/** Matches `/cases/:caseId` against a path; null when it does not match. */
export function match(pattern: string, pathname: string): Record<string, string> | null {
  const p = pattern.split('/');
  const a = pathname.replace(/\/+$/, '').split('/');
  if (p.length !== a.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!;
    if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(a[i]!);
    else if (seg !== a[i]) return null;
  }
  return params;
}

export function Link({
  to,
  children,
  ...rest
}: { to: string; children: ReactNode } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}
