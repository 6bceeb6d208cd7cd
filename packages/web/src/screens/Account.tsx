import { ROLE_LABELS } from '@holdfast/core';
import { startRegistration } from '@simplewebauthn/browser';
import { Button, Group, List, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent, type ReactNode } from 'react';
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
    <AccountForm
      id="add-passkey-heading"
      title="Add a passkey"
      intro="A passkey (this device or a security key) is the stronger second factor. Confirm it is you first."
      problems={problems}
      done={done}
      busy={busy}
      submitLabel="Add a passkey"
      onSubmit={submit}
    >
      <PasswordInput
        label="Your password"
        value={password}
        onChange={(e) => setPassword(e.currentTarget.value)}
        error={problems.field('password')}
        autoComplete="current-password"
      />
      <CodeInput
        label="Current 6-digit code"
        value={code}
        onChange={setCode}
        error={problems.field('code')}
      />
    </AccountForm>
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
    <AccountForm
      id="change-password-heading"
      title="Change your password"
      problems={problems}
      done={done}
      busy={busy}
      submitLabel="Change password"
      onSubmit={submit}
    >
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
      <CodeInput
        label="Current 6-digit code (leave empty if you use a passkey)"
        value={code}
        onChange={setCode}
        error={problems.field('code')}
      />
    </AccountForm>
  );
}

/** The frame both account forms share: a titled form with its problems, what was done, and its button. */
function AccountForm(props: {
  id: string;
  title: string;
  intro?: string;
  problems: ReturnType<typeof useFormProblems>;
  done: string | null;
  busy: boolean;
  submitLabel: string;
  onSubmit: (event: FormEvent) => Promise<void>;
  children: ReactNode;
}) {
  return (
    <Paper
      withBorder
      p="md"
      component="form"
      onSubmit={(e: FormEvent) => void props.onSubmit(e)}
      aria-labelledby={props.id}
      noValidate
    >
      <Title order={2} size="h3" id={props.id} mb="xs">
        {props.title}
      </Title>
      {props.intro && (
        <Text size="sm" mb="xs">
          {props.intro}
        </Text>
      )}
      <FormAlert message={props.problems.form} />
      {props.done && (
        <Text role="status" fw={700} mb="xs">
          {props.done}
        </Text>
      )}
      <Stack>
        {props.children}
        <Group>
          <Button type="submit" loading={props.busy}>
            {props.submitLabel}
          </Button>
        </Group>
      </Stack>
    </Paper>
  );
}

/** The authenticator app's current 6-digit code. */
function CodeInput(props: { label: string; value: string; onChange: (v: string) => void; error: ReactNode }) {
  return (
    <TextInput
      label={props.label}
      inputMode="numeric"
      maxLength={6}
      value={props.value}
      onChange={(e) => props.onChange(e.currentTarget.value)}
      error={props.error}
      autoComplete="one-time-code"
    />
  );
}
