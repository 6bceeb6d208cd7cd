import { ROLE_LABELS, type Permission } from '@holdfast/core';
import { Box, Button, Group, Text, VisuallyHidden } from '@mantine/core';
import type { ReactNode } from 'react';
import { DIRECTORY_PERMISSIONS } from '../lib/directory.ts';
import { Link, usePath } from '../lib/router.tsx';
import { useSession, useUser } from '../lib/session.tsx';
import { ContinuityStatus } from './ContinuityStatus.tsx';
import { SessionTimeoutWarning } from './SessionTimeout.tsx';

interface NavItem {
  to: string;
  label: string;
  permission: Permission;
  also?: Permission;
}

/** Each role sees the screens its permissions allow; the server checks again on every request. */
const NAV: NavItem[] = [
  { to: '/calls/new', label: 'New call', permission: 'cases.handle' },
  { to: '/calls/mine', label: 'My open calls', permission: 'cases.handle' },
  { to: '/paper', label: 'From paper', permission: 'cases.handle' },
  { to: '/queue', label: 'CAS queue', permission: 'queue.read' },
  { to: '/dashboard', label: 'Dashboard', permission: 'reports.read', also: 'queue.read' },
  // Advisers may read a case's messages, but the list of all of them is the manager's screen.
  { to: '/messages', label: 'Messages', permission: 'messages.read', also: 'messages.manage' },
  { to: '/admin/users', label: 'Users', permission: 'users.manage' },
  { to: '/admin/sites', label: 'Sites', permission: 'sites.manage' },
  { to: '/admin/directory', label: 'Directory', permission: DIRECTORY_PERMISSIONS.edit },
  { to: '/reception', label: 'Reception', permission: 'reception.work' },
  { to: '/admin/centres', label: 'Diaries', permission: 'diaries.manage' },
  { to: '/dispatch', label: 'Dispatch', permission: 'visits.dispatch' },
  // The crew's phone page: drivers, and clinicians who crew a car.
  { to: '/crew', label: 'My car', permission: 'visits.crew' },
  { to: '/rota', label: 'Rota', permission: 'rota.read' },
  { to: '/audit', label: 'Audit trail', permission: 'audit.read' },
  { to: '/account', label: 'My account', permission: 'session.self' },
];

export function Layout({ children }: { children: ReactNode }) {
  const session = useSession();
  const user = useUser();
  const { pathname } = usePath();
  const items = NAV.filter((n) => session.can(n.permission) && (!n.also || session.can(n.also)));
  return (
    <>
      <a href="#main" className="skip-link">
        Skip to main content
      </a>
      <header className="app-header">
        <Group justify="space-between" px="md" py="xs" wrap="wrap" gap="xs">
          <Group gap="lg" wrap="wrap">
            <Text fw={700} size="lg" component="span">
              Holdfast
            </Text>
            <nav aria-label="Main">
              <Group gap={4} component="ul" className="nav-list" wrap="wrap">
                {items.map((item) => {
                  const current = pathname === item.to || pathname.startsWith(`${item.to}/`);
                  return (
                    <li key={item.to}>
                      <Link to={item.to} className="nav-link" aria-current={current ? 'page' : undefined}>
                        {item.label}
                      </Link>
                    </li>
                  );
                })}
              </Group>
            </nav>
          </Group>
          <Group gap="sm">
            <Text size="sm" component="span">
              <VisuallyHidden>Signed in as </VisuallyHidden>
              {user.displayName} ({user.roles.map((r) => ROLE_LABELS[r]).join(', ')})
            </Text>
            <Button size="compact-sm" variant="default" onClick={() => void session.signOut()}>
              Sign out
            </Button>
          </Group>
        </Group>
        <ContinuityStatus />
      </header>
      <Box component="main" id="main" p="md">
        {children}
      </Box>
      <SessionTimeoutWarning />
    </>
  );
}
