/**
 * Password rules after NIST SP 800-63B / OWASP ASVS: 8 to 128 characters, no composition rules,
 * no forced rotation, and refused if it is a commonly used password or trivially derived from the
 * account name.
 */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

/** Passwords that appear at the top of every breach corpus, and their obvious variants. */
const COMMON = new Set(
  `password password1 password12 password123 password1234 passw0rd p@ssword p@ssw0rd 12345678 123456789
  1234567890 12345678910 123123123 11111111 00000000 87654321 qwertyui qwertyuiop qwerty123 qwerty1234
  1q2w3e4r 1q2w3e4r5t 1qaz2wsx zaq12wsx asdfghjk asdfghjkl zxcvbnm1 iloveyou iloveyou1 sunshine
  sunshine1 princess football football1 baseball welcome1 welcome123 letmein1 letmein123 trustno1
  dragon123 monkey123 shadow123 master123 superman batman123 starwars whatever abc12345 abcd1234
  abcdefgh aa123456 admin123 administrator changeme changeme1 default1 secret123 computer internet
  michael1 jennifer charlie1 jordan23 liverpool chelsea1 arsenal1 manchester summer2024 summer2025
  summer2026 winter2024 winter2025 winter2026 spring2026 autumn2026 january1 password! passw0rd!
  nhs12345 nhspassword hospital doctor123 nurse123 welcome2nhs holdfast holdfast1 holdfast123
  northshire 111111111 999999999 123454321 qazwsxedc 1qazxsw2 q1w2e3r4 q1w2e3r4t5 mustang1
  access14 hello123 freedom1 ginger123 pokemon1 cookie12 killer12 soccer12 hockey12 hunter12
  thomas12 robert12 daniel12 matthew1 jessica1 ashley12 bailey12 buster12 pepper12 maggie12
  loveme12 lovely12 flower12 angel123 family12 jesus123 blessed1 tigger12 minecraft fortnite
  letmeinplease opensesame mypassword mypassword1 yourpassword thisisapassword`
    .split(/\s+/)
    .filter(Boolean),
);

export interface PasswordProblem {
  path: 'password';
  message: string;
}

export interface PasswordContext {
  username?: string;
  displayName?: string;
  /** The provider's own name (each word of four letters or more is refused too). */
  providerName?: string;
  /**
   * Whether a folded (NFKC, lower-case) password is in a breached-password corpus. The server ships
   * the corpus as a file and passes its lookup here; core stays free of I/O.
   */
  breached?: (folded: string) => boolean;
}

/** The names a password must not be, with or without digits appended. */
function namesOf(context: PasswordContext): string[] {
  const [local, domain] = (context.username ?? '').split('@');
  const provider = (context.providerName ?? '').toLowerCase();
  const words = [
    local,
    domain,
    ...(local ?? '').split(/[._-]+/),
    context.displayName,
    provider,
    provider.replace(/[^\p{L}\p{N}]+/gu, ''),
    ...provider.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length >= 4),
  ];
  return words.filter((n): n is string => !!n && n.length >= 3).map((n) => n.toLowerCase());
}

export function passwordProblem(password: string, context: PasswordContext = {}): PasswordProblem | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN)
    return { path: 'password', message: `must be at least ${PASSWORD_MIN} characters` };
  if (length > PASSWORD_MAX)
    return { path: 'password', message: `must be at most ${PASSWORD_MAX} characters` };
  const folded = password.normalize('NFKC').toLowerCase();
  // A common password with digits or symbols tacked on is as guessable as the password itself.
  const stem = folded.replace(/[\d!?.*#$@_-]+$/u, '');
  const common = (w: string) => COMMON.has(w) || (context.breached?.(w) ?? false);
  if (common(folded) || (stem.length >= 4 && common(stem)))
    return {
      path: 'password',
      message: 'is in a list of breached or commonly used passwords; choose a longer phrase',
    };
  if (/^(.)\1+$/u.test(folded))
    return { path: 'password', message: 'is one character repeated; choose a longer phrase' };
  if ('01234567890123456789'.includes(folded) || 'abcdefghijklmnopqrstuvwxyz'.includes(folded)) {
    return { path: 'password', message: 'is a simple sequence; choose a longer phrase' };
  }
  const names = namesOf(context);
  if (names.some((n) => folded === n || stem === n || folded.replace(/\d+$/, '') === n)) {
    return {
      path: 'password',
      message: "must not be your user name, your name or your provider's name (even with digits added)",
    };
  }
  return null;
}
