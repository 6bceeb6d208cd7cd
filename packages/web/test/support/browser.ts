/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { totpCode } from '../../../server/src/auth/totp.ts';
import { REPO_ROOT } from './server.ts';

/**
 * Browser side of the web tests: Debian's Chromium driven by playwright-core (never a downloaded
 * browser), screenshots as test artifacts, axe-core scans, Chromium's virtual WebAuthn authenticator
 * and TOTP codes computed from the secret the enrolment screen shows.
 */

export const CHROMIUM = process.env.HOLDFAST_CHROMIUM ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  // CI runs as root, where Chromium's sandbox cannot start.
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/**
 * Launches Chromium headless. Playwright gives every launch a fresh temporary user-data-dir of its
 * own (and removes it on close), so no profile state carries between runs.
 */
export async function launchChromium(): Promise<Browser> {
  try {
    return await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  } catch (error) {
    throw new Error(
      `could not start Chromium at ${CHROMIUM} (Debian: apt-get install -y chromium; or set HOLDFAST_CHROMIUM): ${(error as Error).message}`,
    );
  }
}

/**
 * A separate browser profile (cookies, storage) for one member of staff. `bypassCSP` only lets the
 * test inject axe-core as a script tag; the app itself runs under the server's CSP otherwise.
 */
export async function staffContext(
  browser: Browser,
  baseURL: string,
  options: {
    bypassCSP?: boolean;
    viewport?: { width: number; height: number };
    /** The browser's language (en-GB unless a test shows what a PC set to another does). */
    locale?: string;
  } = {},
): Promise<BrowserContext> {
  const context = await browser.newContext({
    baseURL,
    viewport: options.viewport ?? { width: 1280, height: 860 },
    locale: options.locale ?? 'en-GB',
    timezoneId: 'UTC',
    bypassCSP: options.bypassCSP ?? false,
    reducedMotion: 'reduce',
  });
  // Generous: CI machines run many test files at once, and a step can wait seconds for a CPU.
  context.setDefaultTimeout(30_000);
  // Functions passed to page.evaluate / addInitScript from code run by tsx carry esbuild's
  // keep-names helper (`__name(fn, "name")`); the page needs an identity stand-in for it.
  await context.addInitScript({ content: 'globalThis.__name ??= (fn) => fn;' });
  return context;
}

/** Numbered screenshots of one test under .test-results/screenshots/<test>/ (gitignored artifacts). */
export class Screenshots {
  readonly dir: string;
  private n = 0;

  constructor(test: string) {
    this.dir = join(REPO_ROOT, '.test-results/screenshots', test);
    // Only this run's pictures: a step that no longer happens must not leave an old one behind.
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  async take(page: Page, name: string): Promise<string> {
    this.n++;
    const file = join(this.dir, `${String(this.n).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  }
}

// ---------------------------------------------------------------------------------------------
// Accessibility.

const AXE_SOURCE = readFileSync(join(REPO_ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; html: string; failureSummary?: string }[];
}

/**
 * Runs axe-core (WCAG 2.0/2.1/2.2 A and AA rules, plus best practices) on the page as it is and
 * returns the serious and critical violations. The page's context must bypass CSP (see staffContext).
 */
export async function seriousAxeViolations(page: Page): Promise<AxeViolation[]> {
  const loaded = await page.evaluate(() => 'axe' in window);
  if (!loaded) await page.addScriptTag({ content: AXE_SOURCE });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<unknown> } })
      .axe;
    const result = (await axe.run(document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'],
      },
      resultTypes: ['violations'],
    })) as { violations: AxeViolation[] };
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({
        target: n.target,
        html: n.html.slice(0, 200),
        failureSummary: n.failureSummary,
      })),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A readable list of violations for an assertion message. */
export function describeViolations(screen: string, violations: readonly AxeViolation[]): string {
  return violations
    .map(
      (v) =>
        `${screen}: ${v.impact} ${v.id} (${v.help})\n` +
        v.nodes
          .map((n) => `    ${n.target.join(' ')}: ${n.html}\n      ${n.failureSummary ?? ''}`)
          .join('\n'),
    )
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Passkeys: Chromium's virtual authenticator over the DevTools protocol.

export interface VirtualAuthenticator {
  cdp: CDPSession;
  authenticatorId: string;
  /** Credentials the authenticator holds (one per registered passkey). */
  credentials(): Promise<{ credentialId: string; rpId: string; signCount: number }[]>;
  remove(): Promise<void>;
}

/**
 * A platform authenticator (internal transport, resident keys, user verification that always
 * succeeds) attached to this page: navigator.credentials.create/get are answered by it, with no
 * dialog. The page must be served from http://localhost (a secure context whose host is the RP ID).
 */
export async function addVirtualAuthenticator(page: Page): Promise<VirtualAuthenticator> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    cdp,
    authenticatorId,
    async credentials() {
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      return credentials.map((c) => ({
        credentialId: c.credentialId,
        rpId: c.rpId ?? '',
        signCount: c.signCount,
      }));
    },
    async remove() {
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId });
      await cdp.detach();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// TOTP.

/** Base32 secrets are shown in groups for people to type; the code generator wants them plain. */
export function normaliseSecret(shown: string): string {
  return shown.replace(/[\s-]/g, '').toUpperCase();
}

/**
 * A code for the authenticator secret that is valid now but not yet used: the server accepts one
 * step either side of its time and each step once, so successive sign-ins take successive steps.
 */
export class TotpDevice {
  private lastStep = -Infinity;

  constructor(readonly secret: string) {}

  code(): string {
    const nowStep = Math.floor(Date.now() / 30_000);
    // The current step, or the next one (within the server's window) when this one is used already.
    const step = Math.max(nowStep, this.lastStep + 1);
    if (step > nowStep + 1) throw new Error('every code of the current window is used: wait 30 s');
    this.lastStep = step;
    return totpCode(this.secret, step * 30_000);
  }
}
