import { noSitesWarning, ROLE_LABELS, ROLES, type Role } from '@holdfast/core';
import {
  Alert,
  Badge,
  Button,
  Checkbox,
  Group,
  Paper,
  PasswordInput,
  Stack,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { ClinicalGrants } from '../../components/ClinicalGrants.tsx';
import { FormAlert } from '../../components/FormAlert.tsx';
import { PageTitle } from '../../components/PageTitle.tsx';
import { api } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import { withReauthentication } from '../../lib/reauth.ts';
import type { Site } from '../../lib/types.ts';

interface AdminUser {
  userId: string;
  username: string;
  displayName: string;
  roles: Role[];
  siteIds: string[];
  disabled: boolean;
  secondFactors: { totp: boolean; passkeys: number; recoveryCodesLeft: number };
}

function useAdminSites() {
  return useQuery({
    queryKey: ['admin-sites'],
    queryFn: async () => (await api<{ sites: Omit<Site, 'mine'>[] }>('GET', '/api/v1/admin/sites')).sites,
  });
}

/** Provider admin: the provider's users, their roles and sites; create, change, disable, reset MFA. */
export function Users() {
  const users = useQuery({
    queryKey: ['admin-users'],
    queryFn: async () => (await api<{ users: AdminUser[] }>('GET', '/api/v1/admin/users')).users,
  });
  const sites = useAdminSites();
  const [editing, setEditing] = useState<string | null>(null);
  const siteNames = (ids: string[]) =>
    ids.map((id) => sites.data?.find((s) => s.siteId === id)?.name ?? 'unknown site').join(', ');
  return (
    <Stack maw={1200}>
      <PageTitle>Users</PageTitle>
      <ClinicalGrants source="admin" />
      <NewUser sites={sites.data ?? []} />
      <section aria-labelledby="users-heading">
        <Title order={2} size="h3" id="users-heading" mb="xs">
          Users of your provider
        </Title>
        {users.isError && <Text c="red.9">The users could not be read: {users.error.message}</Text>}
        <Table striped withTableBorder>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Name</Table.Th>
              <Table.Th scope="col">User name</Table.Th>
              <Table.Th scope="col">Roles</Table.Th>
              <Table.Th scope="col">Sites</Table.Th>
              <Table.Th scope="col">Second factor</Table.Th>
              <Table.Th scope="col">
                <span className="visually-hidden">Actions</span>
              </Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(users.data ?? []).map((u) => (
              <Table.Tr key={u.userId}>
                <Table.Th scope="row">
                  {u.displayName}
                  {u.disabled && (
                    <Badge ml="xs" color="#a51d1d">
                      Disabled
                    </Badge>
                  )}
                </Table.Th>
                <Table.Td>{u.username}</Table.Td>
                <Table.Td>{u.roles.map((r) => ROLE_LABELS[r]).join(', ')}</Table.Td>
                <Table.Td>{siteNames(u.siteIds)}</Table.Td>
                <Table.Td>
                  {u.secondFactors.passkeys > 0
                    ? `${u.secondFactors.passkeys} passkey${u.secondFactors.passkeys === 1 ? '' : 's'}`
                    : u.secondFactors.totp
                      ? `Authenticator app (${u.secondFactors.recoveryCodesLeft} recovery codes left)`
                      : 'Not enrolled yet'}
                </Table.Td>
                <Table.Td>
                  <Button
                    size="compact-sm"
                    variant="default"
                    onClick={() => setEditing(editing === u.userId ? null : u.userId)}
                    aria-expanded={editing === u.userId}
                    aria-label={`Change ${u.displayName}`}
                  >
                    Change
                  </Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        {editing && users.data?.find((u) => u.userId === editing) && (
          <EditUser
            key={editing}
            user={users.data.find((u) => u.userId === editing)!}
            sites={sites.data ?? []}
            onDone={() => setEditing(null)}
          />
        )}
      </section>
    </Stack>
  );
}

function RolesAndSites({
  roles,
  setRoles,
  siteIds,
  setSiteIds,
  sites,
  rolesError,
  sitesError,
}: {
  roles: Role[];
  setRoles: (r: Role[]) => void;
  siteIds: string[];
  setSiteIds: (s: string[]) => void;
  sites: Omit<Site, 'mine'>[];
  rolesError?: string;
  sitesError?: string;
}) {
  // Said while choosing, not only after saving: a user with no site sees no work at all.
  const warning = noSitesWarning(roles, siteIds);
  return (
    <Stack gap="xs">
      <Group align="flex-start" wrap="wrap" gap="xl">
        <Checkbox.Group
          label="Roles"
          value={roles}
          onChange={(v) => setRoles(v as Role[])}
          error={rolesError}
        >
          <Stack gap={4} mt={4}>
            {ROLES.map((r) => (
              <Checkbox key={r} value={r} label={ROLE_LABELS[r]} />
            ))}
          </Stack>
        </Checkbox.Group>
        <Checkbox.Group label="Sites" value={siteIds} onChange={setSiteIds} error={sitesError}>
          <Stack gap={4} mt={4}>
            {sites.map((s) => (
              <Checkbox key={s.siteId} value={s.siteId} label={s.name} />
            ))}
          </Stack>
        </Checkbox.Group>
      </Group>
      {warning && (
        <Alert color="orange" title="No sites" data-testid="no-sites-warning">
          {warning}
        </Alert>
      )}
    </Stack>
  );
}

function NewUser({ sites }: { sites: Omit<Site, 'mine'>[] }) {
  const queryClient = useQueryClient();
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [roles, setRoles] = useState<Role[]>([]);
  const [siteIds, setSiteIds] = useState<string[]>([]);
  const [reason, setReason] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setCreated(null);
    setBusy(true);
    try {
      const r = await withReauthentication(() =>
        api<{ user: AdminUser; warnings: string[] }>('POST', '/api/v1/admin/users', {
          username,
          displayName,
          password,
          roles,
          siteIds,
          ...(reason.trim() ? { reason: reason.trim() } : {}),
        }),
      );
      setCreated(
        [
          `Created ${r.user.displayName} (${r.user.username}). They set up a second factor at their first sign-in.`,
          ...r.warnings,
        ].join(' '),
      );
      setUsername('');
      setDisplayName('');
      setPassword('');
      setRoles([]);
      setSiteIds([]);
      setReason('');
      await queryClient.invalidateQueries({ queryKey: ['admin-users'] });
      await queryClient.invalidateQueries({ queryKey: ['admin-alerts'] });
    } catch (error) {
      problems.fromError(error, ['username', 'displayName', 'password', 'roles', 'siteIds', 'reason']);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Paper
      withBorder
      p="md"
      component="form"
      onSubmit={(e: FormEvent) => void submit(e)}
      aria-labelledby="new-user-heading"
      noValidate
    >
      <Title order={2} size="h3" id="new-user-heading" mb="xs">
        Add a user
      </Title>
      <FormAlert message={problems.form} />
      {created && (
        <Text role="status" fw={700} mb="xs">
          {created}
        </Text>
      )}
      <Stack maw={720}>
        <Group grow align="flex-start">
          <TextInput
            label="Full name"
            value={displayName}
            onChange={(e) => setDisplayName(e.currentTarget.value)}
            error={problems.field('displayName')}
            autoComplete="off"
          />
          <TextInput
            label="User name"
            description="Lower-case letters, digits and . _ @ -"
            value={username}
            onChange={(e) => setUsername(e.currentTarget.value)}
            error={problems.field('username')}
            autoComplete="off"
          />
        </Group>
        <PasswordInput
          label="Initial password"
          description="At least 8 characters; not a breached or common password, the user's name or the provider's name. Give it to the user in person."
          value={password}
          onChange={(e) => setPassword(e.currentTarget.value)}
          error={problems.field('password')}
          autoComplete="new-password"
        />
        <TextInput
          label="Reason"
          description="Needed for a clinical role: recorded, in the audit trail and shown to the other administrators."
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          error={problems.field('reason')}
          autoComplete="off"
        />
        <RolesAndSites
          roles={roles}
          setRoles={setRoles}
          siteIds={siteIds}
          setSiteIds={setSiteIds}
          sites={sites}
          rolesError={problems.field('roles')}
          sitesError={problems.field('siteIds')}
        />
        <Group>
          <Button type="submit" loading={busy}>
            Create user
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

function EditUser({
  user,
  sites,
  onDone,
}: {
  user: AdminUser;
  sites: Omit<Site, 'mine'>[];
  onDone: () => void;
}) {
  const queryClient = useQueryClient();
  const [roles, setRoles] = useState<Role[]>(user.roles);
  const [siteIds, setSiteIds] = useState<string[]>(user.siteIds);
  const [reason, setReason] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const [handOver, setHandOver] = useState<string | null>(null);
  const problems = useFormProblems();
  const reasonProblems = useFormProblems();
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['admin-users'] });
  const save = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    try {
      const r = await withReauthentication(() =>
        api<{ warnings: string[] }>('PUT', `/api/v1/admin/users/${user.userId}/roles`, {
          roles,
          siteIds,
          ...(reason.trim() ? { reason: reason.trim() } : {}),
        }),
      );
      setDone(['Roles and sites saved; they apply to the user’s next request.', ...r.warnings].join(' '));
      await refresh();
      await queryClient.invalidateQueries({ queryKey: ['admin-alerts'] });
    } catch (error) {
      problems.fromError(error, ['roles', 'siteIds', 'reason']);
    }
  };
  const withReason = async (what: 'disable' | 'enable' | 'reset-mfa' | 'reset-password', message: string) => {
    reasonProblems.clear();
    setHandOver(null);
    try {
      const r = await withReauthentication(() =>
        api<{ enrolmentCode?: string; password?: string } | undefined>(
          'POST',
          `/api/v1/admin/users/${user.userId}/${what}`,
          what === 'enable' || what === 'reset-password' ? undefined : { reason: reason.trim() },
        ),
      );
      setDone(message);
      // Shown once: the administrator hands it over in person or by phone.
      if (r?.enrolmentCode) setHandOver(`One-time enrolment code (shown once): ${r.enrolmentCode}`);
      if (r?.password) setHandOver(`Temporary password (shown once): ${r.password}`);
      await refresh();
    } catch (error) {
      reasonProblems.fromError(error, ['reason']);
    }
  };
  return (
    <Paper withBorder p="md" mt="md" aria-labelledby="edit-user-heading" component="section">
      <Title order={3} size="h4" id="edit-user-heading" mb="xs">
        Change {user.displayName}
      </Title>
      {done && (
        <Text role="status" fw={700} mb="xs">
          {done}
        </Text>
      )}
      {handOver && (
        <Alert color="blue" mb="xs" title="Hand this over in person or by phone, not by e-mail">
          <Text ff="monospace" fw={700}>
            {handOver}
          </Text>
        </Alert>
      )}
      <form onSubmit={(e) => void save(e)} noValidate aria-label={`Roles and sites of ${user.displayName}`}>
        <FormAlert message={problems.form} />
        <RolesAndSites
          roles={roles}
          setRoles={setRoles}
          siteIds={siteIds}
          setSiteIds={setSiteIds}
          sites={sites}
          rolesError={problems.field('roles')}
          sitesError={problems.field('siteIds')}
        />
        <Group mt="sm">
          <Button type="submit">Save roles and sites</Button>
          <Button variant="subtle" onClick={onDone}>
            Close
          </Button>
        </Group>
      </form>
      <Stack mt="md" maw={640}>
        <FormAlert message={reasonProblems.form} />
        <Textarea
          label="Reason (needed to give a clinical role, disable, or reset the second factor)"
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          error={reasonProblems.field('reason')}
          autosize
          minRows={1}
        />
        <Group>
          {user.disabled ? (
            <Button variant="default" onClick={() => void withReason('enable', 'The user is enabled again.')}>
              Enable user
            </Button>
          ) : (
            <Button
              color="#a51d1d"
              onClick={() =>
                void withReason('disable', 'The user is disabled and their sessions have ended.')
              }
            >
              Disable user
            </Button>
          )}
          <Button
            variant="default"
            onClick={() =>
              void withReason(
                'reset-mfa',
                'Second factor removed: the user enrols again at their next sign-in with the code below.',
              )
            }
          >
            Reset second factor
          </Button>
          <Button
            variant="default"
            onClick={() =>
              void withReason(
                'reset-password',
                'Password reset: the user signs in with the temporary password below and chooses their own.',
              )
            }
          >
            Reset password
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}
