import { ROLE_LABELS } from '@holdfast/core';
import { startRegistration } from '@simplewebauthn/browser';
import { Button, Group, List, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../components/FormAlert.tsx';
import { PageTitle } from '../components/PageTitle.tsx';
import { api, ApiError } from '../lib/api.ts';
import { useFormProblems } from '../lib/forms.ts';
import { withReauthentication } from '../lib/reauth.ts';
import { useUser } from '../lib/session.tsx';

/** Who is signed in, and adding a passkey (after confirming the password and a current code). */
export function Account() {
  const user = useUser();
  return (
    <Stack maw={640}>
      <PageTitle>My account</PageTitle>
      <Text>
        Signed in as <strong>{user.displayName}</strong> ({user.username}).
      </Text>
      <List aria-label="Your roles">
        {user.roles.map((r) => (
          <List.Item key={r}>{ROLE_LABELS[r]}</List.Item>
        ))}
      </List>
      <ChangePassword />
      <AddPasskey />
    </Stack>
  );
}

function AddPasskey() {
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setDone(null);
    if (!password) return problems.setField('password', 'Enter your password.');
    if (!/^\d{6}$/.test(code.trim()))
      return problems.setField('code', 'Enter the 6-digit code your authenticator app shows now.');
    setBusy(true);
    try {
      // Changing a second factor needs both factors again (re-authentication counts for five minutes).
      await api('POST', '/api/v1/auth/reauthenticate', { password, code: code.trim() });
      const optionsJSON = await api<Parameters<typeof startRegistration>[0]['optionsJSON']>(
        'POST',
        '/api/v1/me/passkeys/options',
      );
      const response = await startRegistration({ optionsJSON });
      await api('POST', '/api/v1/me/passkeys', { response, label: 'Added from My account' });
      setDone('Passkey added. You can use it at your next sign-in.');
      setPassword('');
      setCode('');
    } catch (error) {
      if (error instanceof ApiError && error.status === 401)
        problems.setForm('The password or code is wrong. Try again with the current code.');
      else if (error instanceof ApiError) problems.fromError(error, ['password', 'code']);
      else problems.setForm('The passkey was not created (it was cancelled or timed out). Try again.');
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
      aria-labelledby="add-passkey-heading"
      noValidate
    >
      <Title order={2} size="h3" id="add-passkey-heading" mb="xs">
        Add a passkey
      </Title>
      <Text size="sm" mb="xs">
        A passkey (this device or a security key) is the stronger second factor. Confirm it is you first.
      </Text>
      <FormAlert message={problems.form} />
      {done && (
        <Text role="status" fw={700} mb="xs">
          {done}
        </Text>
      )}
      <Stack>
        <PasswordInput
          label="Your password"
          value={password}
          onChange={(e) => setPassword(e.currentTarget.value)}
          error={problems.field('password')}
          autoComplete="current-password"
        />
        <TextInput
          label="Current 6-digit code"
          inputMode="numeric"
          maxLength={6}
          value={code}
          onChange={(e) => setCode(e.currentTarget.value)}
          error={problems.field('code')}
          autoComplete="one-time-code"
        />
        <Group>
          <Button type="submit" loading={busy}>
            Add a passkey
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

/**
 * Change your password: the current one, and the second factor again (a 6-digit code; users who
 * sign in with a passkey leave it empty and confirm with their passkey when asked).
 */
function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setDone(null);
    if (!current) return problems.setField('currentPassword', 'Enter your current password.');
    if (!next) return problems.setField('newPassword', 'Enter the new password.');
    setBusy(true);
    try {
      if (code.trim())
        await api('POST', '/api/v1/auth/reauthenticate', { password: current, code: code.trim() });
      await withReauthentication(() =>
        api('POST', '/api/v1/me/password', { currentPassword: current, newPassword: next }),
      );
      setDone('Password changed. Use the new one at your next sign-in.');
      setCurrent('');
      setNext('');
      setCode('');
    } catch (error) {
      if (error instanceof ApiError && error.status === 401)
        problems.setForm('The current password or code is wrong. Try again.');
      else if (error instanceof ApiError && error.code === 'reauthentication_required')
        problems.setField('code', 'Enter the 6-digit code your authenticator app shows now.');
      else problems.fromError(error, ['currentPassword', 'newPassword', 'code']);
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
      aria-labelledby="change-password-heading"
      noValidate
    >
      <Title order={2} size="h3" id="change-password-heading" mb="xs">
        Change your password
      </Title>
      <FormAlert message={problems.form} />
      {done && (
        <Text role="status" fw={700} mb="xs">
          {done}
        </Text>
      )}
      <Stack>
        <PasswordInput
          label="Current password"
          value={current}
          onChange={(e) => setCurrent(e.currentTarget.value)}
          error={problems.field('currentPassword')}
          autoComplete="current-password"
        />
        <PasswordInput
          label="New password"
          description="At least 8 characters; not a common or breached password, your name or your provider's name."
          value={next}
          onChange={(e) => setNext(e.currentTarget.value)}
          error={problems.field('newPassword')}
          autoComplete="new-password"
        />
        <TextInput
          label="Current 6-digit code (leave empty if you use a passkey)"
          inputMode="numeric"
          maxLength={6}
          value={code}
          onChange={(e) => setCode(e.currentTarget.value)}
          error={problems.field('code')}
          autoComplete="one-time-code"
        />
        <Group>
          <Button type="submit" loading={busy}>
            Change password
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}
