import { startAuthentication, startRegistration } from '@simplewebauthn/browser';
import {
  Alert,
  Anchor,
  Button,
  Code,
  Container,
  List,
  Paper,
  PasswordInput,
  Stack,
  Text,
  TextInput,
} from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { FormAlert } from '../components/FormAlert.tsx';
import { PageTitle } from '../components/PageTitle.tsx';
import { api, ApiError, setCsrfToken } from '../lib/api.ts';
import { useFormProblems } from '../lib/forms.ts';
import { useSession } from '../lib/session.tsx';

type Next =
  'change_password' | 'enrolment_code' | 'enrol_totp' | 'totp' | 'enrol_passkey' | 'passkey' | 'done';

interface TotpEnrolment {
  secret: string;
  otpauthUri: string;
  qrSvg: string;
}

/**
 * Sign-in: the password, then the second factor the server asks for — enrolling an authenticator
 * app (QR code shown once) or a passkey at the first sign-in, using them afterwards.
 */
export function SignIn() {
  const session = useSession();
  const [step, setStep] = useState<Next | 'password'>('password');
  const [recoveryCodes, setRecoveryCodes] = useState<{ codes: string[]; csrf: string } | null>(null);

  const finish = async (csrfToken: string) => {
    await session.signedIn(csrfToken);
  };

  return (
    <Container size={520} py="xl">
      <Paper withBorder p="lg" radius="md">
        {recoveryCodes ? (
          <RecoveryCodes codes={recoveryCodes.codes} onDone={() => void finish(recoveryCodes.csrf)} />
        ) : step === 'password' ? (
          <PasswordStep
            notice={session.endedReason}
            onNext={(next) => {
              setStep(next);
            }}
          />
        ) : step === 'change_password' ? (
          <OneFieldStep
            heading="Choose your own password"
            intro="Your administrator set a temporary password. Choose your own now: at least 8 characters, not a common or breached password, not your name or your provider's name."
            label="New password"
            secret
            field="newPassword"
            url="/api/v1/auth/password/temporary"
            onNext={setStep}
          />
        ) : step === 'enrolment_code' ? (
          <OneFieldStep
            heading="Enter your enrolment code"
            intro="Your second factor was reset. Enter the one-time enrolment code your administrator gave you (or one of your old recovery codes) before setting up a new one."
            label="Enrolment code"
            field="enrolmentCode"
            url="/api/v1/auth/enrolment-code"
            onNext={setStep}
          />
        ) : step === 'enrol_totp' ? (
          <EnrolTotp onEnrolled={(codes, csrf) => setRecoveryCodes({ codes, csrf })} />
        ) : step === 'totp' ? (
          <VerifyTotp onDone={finish} />
        ) : step === 'enrol_passkey' ? (
          <PasskeyStep mode="register" onDone={finish} />
        ) : step === 'passkey' ? (
          <PasskeyStep mode="authenticate" onDone={finish} />
        ) : (
          <Text>Signing in…</Text>
        )}
      </Paper>
    </Container>
  );
}

/** Where the browser remembers the provider typed at the last successful password step. */
export const PROVIDER_STORAGE_KEY = 'holdfast.sign-in.provider';

function rememberedProvider(): string {
  try {
    return localStorage.getItem(PROVIDER_STORAGE_KEY) ?? '';
  } catch {
    return '';
  }
}

function rememberProvider(provider: string): void {
  try {
    if (provider) localStorage.setItem(PROVIDER_STORAGE_KEY, provider);
    else localStorage.removeItem(PROVIDER_STORAGE_KEY);
  } catch {
    // Storage refused (a private window): the field is simply not filled in next time.
  }
}

/**
 * The password step. User names are unique per provider: on a server that hosts several providers
 * the same name may belong to staff of two, so the provider is asked for (optional: a name held by
 * one provider needs none, and `name@provider` names it too). The browser remembers it.
 */
function PasswordStep({ onNext, notice }: { onNext: (next: Next) => void; notice: string | null }) {
  const [username, setUsername] = useState('');
  const [provider, setProvider] = useState(rememberedProvider);
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!username.trim()) return problems.setField('username', 'Enter your user name.');
    if (!password) return problems.setField('password', 'Enter your password.');
    const providerId = provider.trim().toLowerCase();
    if (providerId && !/^[a-z0-9][a-z0-9-]{1,62}$/.test(providerId))
      return problems.setField(
        'provider',
        'A provider is its short id: lower-case letters, digits and - (such as northshire-iuc).',
      );
    setBusy(true);
    try {
      const r = await api<{ next: Next; csrfToken: string }>('POST', '/api/v1/auth/sign-in', {
        username: username.trim(),
        password,
        ...(providerId ? { provider: providerId } : {}),
      });
      rememberProvider(providerId);
      setCsrfToken(r.csrfToken);
      onNext(r.next);
    } catch (error) {
      problems.fromError(error, ['username', 'password', 'provider']);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-labelledby="sign-in-heading">
      <PageTitle text="Sign in">
        <span id="sign-in-heading">Sign in to Holdfast</span>
      </PageTitle>
      {notice && (
        <Alert color="blue" variant="light" mb="md" role="status">
          {notice}
        </Alert>
      )}
      <FormAlert message={problems.form} title="Could not sign in" />
      <Stack>
        <TextInput
          label="User name"
          name="username"
          autoComplete="username"
          value={username}
          onChange={(e) => setUsername(e.currentTarget.value)}
          error={problems.field('username')}
          required
        />
        <TextInput
          label="Provider"
          name="provider"
          description="Only if your user name is used at more than one provider on this server (or type name@provider). Remembered on this computer."
          autoComplete="organization"
          value={provider}
          onChange={(e) => setProvider(e.currentTarget.value)}
          error={problems.field('provider')}
        />
        <PasswordInput
          label="Password"
          name="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.currentTarget.value)}
          error={problems.field('password')}
          required
        />
        <Button type="submit" loading={busy}>
          Sign in
        </Button>
      </Stack>
    </form>
  );
}

/** A sign-in step of one field whose answer names the next step (new password, enrolment code). */
function OneFieldStep(props: {
  heading: string;
  intro: string;
  label: string;
  field: string;
  url: string;
  secret?: boolean;
  onNext: (next: Next) => void;
}) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!value.trim()) return problems.setField(props.field, `Enter the ${props.label.toLowerCase()}.`);
    setBusy(true);
    try {
      const r = await api<{ next: Next }>('POST', props.url, {
        [props.field]: props.secret ? value : value.trim(),
      });
      props.onNext(r.next);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401)
        problems.setForm('The code is wrong. Check it with your administrator.');
      else problems.fromError(error, [props.field]);
    } finally {
      setBusy(false);
    }
  };
  const Input = props.secret ? PasswordInput : TextInput;
  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-labelledby="one-field-heading">
      <PageTitle text={props.heading}>
        <span id="one-field-heading">{props.heading}</span>
      </PageTitle>
      <Text mb="sm">{props.intro}</Text>
      <FormAlert message={problems.form} />
      <Stack>
        <Input
          label={props.label}
          value={value}
          onChange={(e) => setValue(e.currentTarget.value)}
          error={problems.field(props.field)}
          autoComplete={props.secret ? 'new-password' : 'one-time-code'}
          required
        />
        <Button type="submit" loading={busy}>
          Continue
        </Button>
      </Stack>
    </form>
  );
}

function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

function EnrolTotp({ onEnrolled }: { onEnrolled: (codes: string[], csrf: string) => void }) {
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();

  const start = async () => {
    problems.clear();
    setBusy(true);
    try {
      setEnrolment(await api<TotpEnrolment>('POST', '/api/v1/auth/totp/enrol'));
    } catch (error) {
      problems.fromError(error, []);
    } finally {
      setBusy(false);
    }
  };

  const confirm = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    if (!/^\d{6}$/.test(code.trim()))
      return problems.setField('code', 'Enter the 6-digit code your authenticator app shows now.');
    setBusy(true);
    try {
      const r = await api<{ recoveryCodes: string[]; csrfToken: string }>(
        'POST',
        '/api/v1/auth/totp/confirm',
        { code: code.trim() },
      );
      onEnrolled(r.recoveryCodes, r.csrfToken);
    } catch (error) {
      problems.fromError(error, ['code']);
    } finally {
      setBusy(false);
    }
  };

  if (!enrolment)
    return (
      <Stack>
        <PageTitle>Set up your authenticator app</PageTitle>
        <Text>
          Holdfast needs a second step at every sign-in. Use an authenticator app on a phone or computer you
          keep with you. The QR code is shown only once.
        </Text>
        <FormAlert message={problems.form} />
        <Button onClick={() => void start()} loading={busy}>
          Show my QR code
        </Button>
      </Stack>
    );

  return (
    <form onSubmit={(e) => void confirm(e)} noValidate>
      <PageTitle>Set up your authenticator app</PageTitle>
      <Stack>
        <Text>Scan this QR code with your authenticator app. It is shown only this once.</Text>
        <img
          src={svgDataUrl(enrolment.qrSvg)}
          alt="QR code to add Holdfast to your authenticator app"
          width={200}
          height={200}
        />
        <Text size="sm">
          Cannot scan it? Type this key into the app instead:{' '}
          <Code data-testid="totp-secret" aria-label="Authenticator key">
            {enrolment.secret}
          </Code>
        </Text>
        <FormAlert message={problems.form} />
        <TextInput
          label="6-digit code from your app"
          name="code"
          inputMode="numeric"
          autoComplete="one-time-code"
          maxLength={6}
          value={code}
          onChange={(e) => setCode(e.currentTarget.value)}
          error={problems.field('code')}
          required
        />
        <Button type="submit" loading={busy}>
          Confirm code
        </Button>
      </Stack>
    </form>
  );
}

function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  return (
    <Stack>
      <PageTitle>Save your recovery codes</PageTitle>
      <Text>
        If you lose your authenticator app, each of these codes signs you in once. Keep them somewhere safe.
        They are shown only now.
      </Text>
      <List aria-label="Recovery codes" data-testid="recovery-codes" spacing={4}>
        {codes.map((c) => (
          <List.Item key={c}>
            <Code>{c}</Code>
          </List.Item>
        ))}
      </List>
      <Button onClick={onDone}>I have saved my recovery codes</Button>
    </Stack>
  );
}

function VerifyTotp({ onDone }: { onDone: (csrf: string) => Promise<void> }) {
  const [useRecovery, setUseRecovery] = useState(false);
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    const value = code.trim();
    const field = useRecovery ? 'recoveryCode' : 'code';
    if (!useRecovery && !/^\d{6}$/.test(value))
      return problems.setField(field, 'Enter the 6-digit code your authenticator app shows now.');
    if (useRecovery && value.length < 6) return problems.setField(field, 'Enter one of your recovery codes.');
    setBusy(true);
    try {
      const r = await api<{ csrfToken: string }>(
        'POST',
        '/api/v1/auth/totp/verify',
        useRecovery ? { recoveryCode: value } : { code: value },
      );
      await onDone(r.csrfToken);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401)
        problems.setField(field, 'The code is wrong or was used already. Try the current code.');
      else problems.fromError(error, [field]);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={(e) => void submit(e)} noValidate>
      <PageTitle>{useRecovery ? 'Enter a recovery code' : 'Enter your code'}</PageTitle>
      <Stack>
        <FormAlert message={problems.form} />
        {useRecovery ? (
          <TextInput
            key="recovery"
            label="Recovery code"
            name="recoveryCode"
            autoComplete="off"
            value={code}
            onChange={(e) => setCode(e.currentTarget.value)}
            error={problems.field('recoveryCode')}
            required
          />
        ) : (
          <TextInput
            key="code"
            label="6-digit code from your authenticator app"
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            maxLength={6}
            value={code}
            onChange={(e) => setCode(e.currentTarget.value)}
            error={problems.field('code')}
            required
            data-autofocus
          />
        )}
        <Button type="submit" loading={busy}>
          Verify code
        </Button>
        <Anchor
          component="button"
          type="button"
          onClick={() => {
            setUseRecovery(!useRecovery);
            setCode('');
            problems.clear();
          }}
        >
          {useRecovery ? 'Use my authenticator app instead' : 'Use a recovery code instead'}
        </Anchor>
      </Stack>
    </form>
  );
}

function PasskeyStep({
  mode,
  onDone,
}: {
  mode: 'register' | 'authenticate';
  onDone: (csrf: string) => Promise<void>;
}) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  const run = async () => {
    setProblem(null);
    setBusy(true);
    try {
      if (mode === 'register') {
        const optionsJSON = await api<Parameters<typeof startRegistration>[0]['optionsJSON']>(
          'POST',
          '/api/v1/auth/passkey/register/options',
        );
        const response = await startRegistration({ optionsJSON });
        const r = await api<{ csrfToken: string }>('POST', '/api/v1/auth/passkey/register/verify', {
          response,
          label: 'Passkey created at first sign-in',
        });
        await onDone(r.csrfToken);
      } else {
        const optionsJSON = await api<Parameters<typeof startAuthentication>[0]['optionsJSON']>(
          'POST',
          '/api/v1/auth/passkey/options',
        );
        const response = await startAuthentication({ optionsJSON });
        const r = await api<{ csrfToken: string }>('POST', '/api/v1/auth/passkey/verify', { response });
        await onDone(r.csrfToken);
      }
    } catch (error) {
      if (error instanceof ApiError) setProblem(error.plain());
      else
        setProblem(
          'The passkey step did not complete (it was cancelled or timed out). Try again, or ask an administrator for help.',
        );
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack>
      <PageTitle>{mode === 'register' ? 'Create a passkey' : 'Use your passkey'}</PageTitle>
      <Text>
        {mode === 'register'
          ? 'Your role signs in with a passkey: a key kept by this device or a security key. Create one now; you will use it at every sign-in.'
          : 'Confirm it is you with the passkey on this device or your security key.'}
      </Text>
      <FormAlert message={problem} title="Passkey problem" />
      <Button onClick={() => void run()} loading={busy}>
        {mode === 'register' ? 'Create a passkey' : 'Sign in with passkey'}
      </Button>
    </Stack>
  );
}
