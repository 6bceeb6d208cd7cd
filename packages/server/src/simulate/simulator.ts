import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  CALLBACK_OUTCOMES,
  CONSULTATION_OUTCOMES,
  DISPOSITION_KINDS,
  hasPermission,
  isUrgentNews2Band,
  NON_URGENT_OUTCOMES,
  type CallbackOutcome,
  type Clock,
  type ConsultationOutcome,
  type DispositionKind,
  type News2Observations,
} from '@holdfast/core';
import { walk, type WalkResult } from '@holdfast/core/triage/engine';
import { packDispositionMix, simulateAnswers } from '@holdfast/core/triage/simulation';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../triage/packs.ts';
import {
  ApiError,
  ApiSession,
  FileTotpSecrets,
  MemoryTotpSecrets,
  type Account,
  type RequestObserver,
  type TotpSecrets,
} from './api-client.ts';
import { MAX_DURATION_MS } from './duration.ts';

export { MAX_DURATION_MS, parseDuration } from './duration.ts';

/**
 * `holdfast simulate`: drives a node's real HTTP API the way a small urgent-care service would, so a
 * demo node has a live queue. A health adviser takes calls arriving at random (a Poisson process),
 * picks each call's pathway by the pack's weights and answers its questions with `simulateAnswers`
 * (branches by the content's `simWeight`s, so the disposition mix is the pack's); a clinician works
 * the CAS queue: claims the case at its head when more than a backlog is waiting, calls back (some
 * call-backs fail; two failures escalate), consults with observations (NEWS2) and records an
 * outcome (the OOH mix: telephone advice, treatment-centre appointment, home visit, some referrals
 * and upgrades).
 *
 * Everything random comes from a seeded generator (mulberry32): call n's pathway, answers and caller
 * depend only on the seed and n, and each clinician episode only on the seed and its number, so a
 * run can be repeated with its seed. Which queued case an episode finds depends on timing.
 * The simulator's own wall clock only paces the run; TOTP codes follow the server's clock
 * (`clock`, the wall clock by default). Bounded: it stops at the duration, at `untilCount` calls,
 * on the abort signal, or after repeated failures.
 */

// ---------------------------------------------------------------------------------------------
// Seeded randomness and small parsers.

/** mulberry32: a tiny, fast, seeded generator of numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for item `index` of stream `stream`, mixed from the run's seed (so streams do not overlap). */
export function deriveSeed(seed: number, stream: number, index: number): number {
  let h = (seed ^ Math.imul(stream + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Exponential inter-arrival time (ms) of a Poisson process with `perHour` events an hour. */
function exponentialMs(random: () => number, perHour: number): number {
  return (-Math.log(1 - random()) / perHour) * 3_600_000;
}

function pickWeighted<T>(random: () => number, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((sum, [, w]) => sum + w, 0);
  let pick = random() * total;
  for (const [item, weight] of items) if ((pick -= weight) < 0) return item;
  return items[items.length - 1]![0];
}

const between = (random: () => number, lo: number, hi: number): number =>
  lo + Math.floor(random() * (hi - lo + 1));

export function isLoopbackUrl(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

// ---------------------------------------------------------------------------------------------
// Options and summary.

export interface SimulatorOptions {
  /** The node's base URL, e.g. http://localhost:8080. */
  url: string;
  adviser: Account;
  clinician: Account;
  /** Where TOTP secrets are kept between runs (mode 0600); memory only when absent. */
  stateFile?: string;
  callsPerHour: number;
  /** Wall time the run may take; it stops taking calls then and finishes what is in hand. */
  durationMs: number;
  /** Stop after this many calls (then the clinician works the queue down to the backlog). */
  untilCount?: number;
  seed: number;
  /**
   * Queued cases the clinician leaves waiting: they claim only when more than this many wait.
   * Default: about 5 minutes of queue arrivals (at least 3, at most 20).
   */
  backlog?: number;
  /** Calls being triaged at once at most (a busy call centre has several advisers). Default 4. */
  maxCallsInFlight?: number;
  /** The server's clock, for TOTP codes. Default: the wall clock. */
  clock?: Clock;
  /** The protocol pack the node runs (default: the shipped sample pack). */
  protocolsDir?: string;
  /** A URL that is not loopback is refused unless this is set: the calls it makes are fake. */
  allowRemote?: boolean;
  signal?: AbortSignal;
  /** Progress lines (the CLI sends them to stderr). */
  progress?: (line: string) => void;
  observe?: RequestObserver;
}

export type StopReason = 'duration' | 'count' | 'signal' | 'errors';

export interface SimulationSummary {
  url: string;
  seed: number;
  callsPerHour: number;
  elapsedMs: number;
  stoppedBy: StopReason;
  accounts: { username: string; enrolled: boolean }[];
  calls: { opened: number; triaged: number; failed: number; answers: number };
  dispositions: Record<DispositionKind, number>;
  /** The pack's expected share of each kind (pathways by weight, answers by simWeight). */
  expected: Record<DispositionKind, number>;
  pathways: Record<string, number>;
  /** Cases that went to the CAS queue (speak to / contact primary care). */
  queued: number;
  clinician: {
    queueChecks: number;
    claimed: number;
    claimConflicts: number;
    callbacks: Record<CallbackOutcome, number>;
    escalated: number;
    released: number;
    consulted: number;
    outcomes: Record<ConsultationOutcome, number>;
    failed: number;
  };
  queueAtEnd: { waiting: number; held: number } | null;
  /** Every case opened, in call order. */
  caseIds: string[];
  /** Cases the clinician consulted. */
  consultedCaseIds: string[];
  errors: string[];
}

const zeroed = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

// ---------------------------------------------------------------------------------------------
// Synthetic callers.

const GIVEN = [
  'Alex',
  'Sam',
  'Jo',
  'Chris',
  'Pat',
  'Robin',
  'Morgan',
  'Jamie',
  'Taylor',
  'Charlie',
  'Ash',
  'Rowan',
];
const FAMILY = [
  'Ashdown',
  'Birch',
  'Carver',
  'Dale',
  'Elmsworth',
  'Fenwick',
  'Garside',
  'Holt',
  'Ingram',
  'Jessop',
];
const LOCATIONS: readonly (readonly [string, number])[] = [
  ['Home address', 70],
  ["A relative's home", 8],
  ['Care home', 6],
  ['Workplace', 5],
  ['Hotel', 3],
  ['Student accommodation', 3],
  ['In a car, parked safely', 2],
  ['Public place, with a friend', 3],
];
const RELATIONSHIPS: readonly (readonly [string, number])[] = [
  ['self', 68],
  ['relative', 12],
  ['carer', 7],
  ['friend', 5],
  ['parent', 5],
  ['professional', 3],
];
const CHILD_PATHWAY = /child|infant|baby/;

interface CallPlan {
  pathwayId: string;
  answers: ReturnType<typeof simulateAnswers>;
  body: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Clinician's choices.

function observationsFor(random: () => number): News2Observations {
  const unwell = random() < 0.2;
  const oxygen = unwell && random() < 0.1;
  return {
    respirationRate: unwell ? between(random, 17, 26) : between(random, 12, 20),
    spo2: unwell ? between(random, 90, 96) : between(random, 95, 100),
    airOrOxygen: oxygen ? 'oxygen' : 'air',
    systolicBp: unwell ? between(random, 92, 128) : between(random, 106, 152),
    pulse: unwell ? between(random, 88, 128) : between(random, 56, 98),
    consciousness: unwell && random() < 0.1 ? 'new_confusion' : 'alert',
    temperature: (unwell ? between(random, 372, 395) : between(random, 361, 377)) / 10,
  };
}

function failedCallback(random: () => number): CallbackOutcome {
  return pickWeighted<CallbackOutcome>(random, [
    ['no_answer', 6],
    ['voicemail', 3],
    ['wrong_number', 1],
  ]);
}

/** The OOH mix (about 40% telephone advice, 50% treatment centre, 10% home visit), plus a few referrals and upgrades. */
function finalOutcome(random: () => number, news2Band: string | null): ConsultationOutcome {
  if (news2Band === 'high' && random() < 0.5) return 'upgrade_to_ambulance';
  return pickWeighted<ConsultationOutcome>(random, [
    ['advice_and_close', 40],
    ['book_appointment', 44],
    ['home_visit', 10],
    ['refer', 4],
    ['upgrade_to_ambulance', 2],
  ]);
}

// ---------------------------------------------------------------------------------------------
// The run.

interface QueueEntry {
  caseId: string;
  status: string;
  claimedBy: string | null;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Consecutive failed calls (or episodes) after which the run stops. */
const MAX_CONSECUTIVE_FAILURES = 5;

export async function runSimulation(options: SimulatorOptions): Promise<SimulationSummary> {
  const baseUrl = new URL(options.url);
  if (!isLoopbackUrl(baseUrl) && !options.allowRemote)
    throw new Error(
      `${baseUrl.origin} is not a loopback address: the simulator writes fake calls into the node's ledger for good; ` +
        'pass --allow-remote if that node is a demo node',
    );
  if (!(options.callsPerHour > 0)) throw new Error('calls per hour must be more than 0');
  if (!(options.durationMs > 0) || options.durationMs > MAX_DURATION_MS)
    throw new Error('the duration must be more than 0 and at most 24 h');
  const log = options.progress ?? (() => undefined);
  const started = performance.now();
  const deadline = started + options.durationMs;
  const timeLeft = (): number => deadline - performance.now();

  const loaded = await requireProtocolPack(options.protocolsDir ?? SAMPLE_PACK_DIR);
  const mix = packDispositionMix(loaded.pack);
  const expected = zeroed(DISPOSITION_KINDS);
  for (const kind of DISPOSITION_KINDS) expected[kind] = mix.byKind[kind];
  const queueShare = expected.speak_to_primary_care + expected.contact_primary_care;

  const secrets: TotpSecrets = options.stateFile
    ? new FileTotpSecrets(options.stateFile)
    : new MemoryTotpSecrets();
  const agent =
    baseUrl.protocol === 'https:'
      ? new HttpsAgent({ keepAlive: true, maxSockets: 16 })
      : new HttpAgent({ keepAlive: true, maxSockets: 16 });
  const sessionOptions = { clock: options.clock, secrets, agent, observe: options.observe, log };
  const adviser = new ApiSession(baseUrl, options.adviser, sessionOptions);
  const clinician = new ApiSession(baseUrl, options.clinician, sessionOptions);

  const summary: SimulationSummary = {
    url: baseUrl.origin,
    seed: options.seed,
    callsPerHour: options.callsPerHour,
    elapsedMs: 0,
    stoppedBy: 'duration',
    accounts: [],
    calls: { opened: 0, triaged: 0, failed: 0, answers: 0 },
    dispositions: zeroed(DISPOSITION_KINDS),
    expected,
    pathways: {},
    queued: 0,
    clinician: {
      queueChecks: 0,
      claimed: 0,
      claimConflicts: 0,
      callbacks: zeroed(CALLBACK_OUTCOMES),
      escalated: 0,
      released: 0,
      consulted: 0,
      outcomes: zeroed(CONSULTATION_OUTCOMES),
      failed: 0,
    },
    queueAtEnd: null,
    caseIds: [],
    consultedCaseIds: [],
    errors: [],
  };
  const failure = (what: string, error: unknown): void => {
    const text = `${what}: ${error instanceof Error ? error.message : String(error)}`;
    if (summary.errors.length < 20) summary.errors.push(text);
    log(`error: ${text}`);
  };

  try {
    // Sign in both (enrolling the authenticator at first use) and check what they may do.
    const adviserUser = await adviser.signIn();
    const clinicianUser = await clinician.signIn();
    summary.accounts = [
      { username: adviserUser.username, enrolled: adviser.enrolled },
      { username: clinicianUser.username, enrolled: clinician.enrolled },
    ];
    if (!hasPermission(adviserUser.roles, 'cases.handle'))
      throw new Error(`${adviserUser.username} cannot take calls (roles: ${adviserUser.roles.join(', ')})`);
    if (
      !hasPermission(clinicianUser.roles, 'queue.work') ||
      !hasPermission(clinicianUser.roles, 'consultations.write')
    )
      throw new Error(
        `${clinicianUser.username} cannot work the queue (roles: ${clinicianUser.roles.join(', ')})`,
      );
    const sites = [...adviserUser.siteIds].sort();
    if (sites.length === 0) throw new Error(`${adviserUser.username} belongs to no site`);

    // The pathways the node offers that this pack also has, at the same version.
    const offered = (
      await adviser.call<{ pathways: { pathwayId: string; pathwayVersion: string }[] }>(
        'GET',
        '/api/v1/triage/pathways',
      )
    ).json.pathways;
    const weights = new Map(loaded.pack.manifest.pathways.map((p) => [p.id, p.simWeight ?? 1]));
    const pathways: (readonly [string, number])[] = [];
    for (const p of offered) {
      const local = loaded.protocols.get(p.pathwayId);
      if (local && local.content.pathwayVersion === p.pathwayVersion)
        pathways.push([p.pathwayId, weights.get(p.pathwayId) ?? 1]);
    }
    if (pathways.length === 0)
      throw new Error(
        `the node offers none of the pathways of ${loaded.dir} at the same version (the simulator walks that pack)`,
      );
    if (pathways.length < offered.length)
      log(
        `note: ${offered.length - pathways.length} pathway(s) of the node are not in the local pack and are skipped`,
      );

    const queuePerHour = options.callsPerHour * queueShare;
    const backlog = options.backlog ?? Math.min(20, Math.max(3, Math.round((queuePerHour * 5) / 60)));
    // The clinician looks at the queue a little more often than cases arrive in it, so it hovers
    // around the backlog instead of growing without bound.
    const checksPerHour = Math.max(1, queuePerHour * 1.2);
    const maxInFlight = options.maxCallsInFlight ?? 4;
    // One line per call and per clinician episode at demo rates; a status line every 10 s above.
    const verbose = options.callsPerHour <= 3_600;
    const detail = verbose ? log : (): void => undefined;
    log(
      `simulating ${options.callsPerHour} calls/hour for ${formatDuration(options.durationMs)}` +
        `${options.untilCount ? ` or ${options.untilCount} calls` : ''} against ${baseUrl.origin}, seed ${options.seed}; ` +
        `${pathways.length} pathways; the clinician leaves ${backlog} case(s) waiting`,
    );

    const planCall = (n: number): CallPlan => {
      const random = mulberry32(deriveSeed(options.seed, 1, n));
      const pathwayId = pickWeighted(random, pathways);
      const protocol = loaded.protocols.get(pathwayId)!;
      const answers = simulateAnswers(protocol, random);
      const result = walk(protocol, answers);
      if (result.status !== 'disposition')
        throw new Error(`${pathwayId}: the simulated walk ends on a question`);
      const child = CHILD_PATHWAY.test(pathwayId);
      const relationship = child
        ? random() < 0.9
          ? 'parent'
          : 'carer'
        : pickWeighted(random, RELATIONSHIPS);
      const body = {
        siteId: sites[Math.floor(random() * sites.length)]!,
        caller: {
          name: `${GIVEN[Math.floor(random() * GIVEN.length)]} ${FAMILY[Math.floor(random() * FAMILY.length)]}`,
          relationship,
          // Ofcom's range for drama: never a real number.
          callbackNumberReadBack: true,
          callbackNumber: `0113 496 0${String(Math.floor(random() * 1000)).padStart(3, '0')}`,
        },
        location: pickWeighted(random, LOCATIONS),
        presentingComplaint: protocol.content.presentingComplaint,
      };
      return { pathwayId, answers, body };
    };

    // --- the adviser: one call, opened and triaged to its disposition.
    const takeCall = async (n: number): Promise<void> => {
      const plan = planCall(n);
      const opened = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', plan.body);
      const caseId = opened.json.caseId;
      summary.calls.opened++;
      summary.caseIds.push(caseId);
      let last = (
        await adviser.call<WalkResult>('POST', `/api/v1/cases/${caseId}/triage`, {
          pathwayId: plan.pathwayId,
        })
      ).json;
      for (const a of plan.answers) {
        if (last.status !== 'question' || last.node.id !== a.nodeId)
          throw new Error(
            `case ${caseId}: the node's triage went another way than the local pack (${plan.pathwayId} at ${a.nodeId})`,
          );
        last = (await adviser.call<WalkResult>('POST', `/api/v1/cases/${caseId}/triage/answers`, a)).json;
        summary.calls.answers++;
      }
      if (last.status !== 'disposition')
        throw new Error(`case ${caseId}: triage did not end at a disposition`);
      // The adviser confirms the proposed disposition; only then is it acted on.
      await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
        dxCode: last.disposition.dxCode,
      });
      const kind = last.disposition.kind as DispositionKind;
      summary.calls.triaged++;
      summary.dispositions[kind] = (summary.dispositions[kind] ?? 0) + 1;
      summary.pathways[plan.pathwayId] = (summary.pathways[plan.pathwayId] ?? 0) + 1;
      const toQueue = kind === 'speak_to_primary_care' || kind === 'contact_primary_care';
      if (toQueue) summary.queued++;
      detail(
        `call ${n + 1}: ${plan.pathwayId}, ${plan.answers.length} answers → ${last.disposition.dxCode} ` +
          `${kind}${toQueue ? ' (queued)' : ''} [${caseId.slice(0, 8)}]`,
      );
    };

    // --- the clinician: look at the queue; if enough wait, claim the head and see it through.
    let episodes = 0;
    const readQueue = async (): Promise<QueueEntry[]> => {
      summary.clinician.queueChecks++;
      return (await clinician.call<{ cases: QueueEntry[] }>('GET', '/api/v1/queue')).json.cases;
    };
    /** True when a case was claimed (worked, whatever its end). */
    const clinicianTurn = async (): Promise<boolean> => {
      const cases = await readQueue();
      const waiting = cases.filter((c) => c.status === 'queued' && !c.claimedBy);
      summary.queueAtEnd = { waiting: waiting.length, held: cases.length - waiting.length };
      if (waiting.length <= backlog) return false;
      const head = waiting[0]!;
      const random = mulberry32(deriveSeed(options.seed, 2, episodes++));
      const claim = await clinician.call(
        'POST',
        `/api/v1/cases/${head.caseId}/claim`,
        undefined,
        (s) => s === 200 || s === 409,
      );
      if (claim.status === 409) {
        summary.clinician.claimConflicts++;
        return false;
      }
      summary.clinician.claimed++;
      await workCase(head.caseId, claim.json as { failedCallbackAttempts?: number }, random);
      return true;
    };
    const workCase = async (
      caseId: string,
      claimed: { failedCallbackAttempts?: number },
      random: () => number,
    ): Promise<void> => {
      const short = caseId.slice(0, 8);
      const steps: string[] = [];
      // Call-backs: most are answered at the first try; two failures escalate (welfare check).
      let answered = false;
      const alreadyFailed = Number(claimed.failedCallbackAttempts ?? 0);
      for (let attempt = 0; attempt < 3 && !answered; attempt++) {
        const chance = attempt === 0 ? (alreadyFailed > 0 ? 0.6 : 0.8) : attempt === 1 ? 0.6 : 0.5;
        const outcome: CallbackOutcome = random() < chance ? 'answered' : failedCallback(random);
        const r = await clinician.call<{ escalated: boolean }>(
          'POST',
          `/api/v1/cases/${caseId}/callback-attempts`,
          {
            outcome,
          },
        );
        summary.clinician.callbacks[outcome]++;
        steps.push(outcome);
        if (r.json.escalated) {
          summary.clinician.escalated++;
          steps.push('escalated');
        }
        answered = outcome === 'answered';
      }
      if (!answered) {
        // Not reached: back to the queue for someone to try again after the welfare check.
        await clinician.call('POST', `/api/v1/cases/${caseId}/release`);
        summary.clinician.released++;
        detail(`clinician: ${short} ${steps.join(', ')} → released to the queue`);
        return;
      }
      await clinician.call('POST', `/api/v1/cases/${caseId}/consultation`);
      const observations = observationsFor(random);
      const recorded = await clinician.call<{ news2?: { total: number | null; band: string | null } }>(
        'POST',
        `/api/v1/cases/${caseId}/consultation/record`,
        {
          history: 'Simulated consultation: history taken by telephone.',
          observations,
          assessment: 'Simulated assessment.',
          plan: 'Simulated plan.',
          safetyNetting: 'Call back or call 999 if things get worse.',
        },
      );
      summary.clinician.consulted++;
      summary.consultedCaseIds.push(caseId);
      const news2 = recorded.json.news2 ?? null;
      if (random() < 0.12) {
        await clinician.call('POST', `/api/v1/cases/${caseId}/outcome`, { outcome: 'prescribe' });
        summary.clinician.outcomes.prescribe++;
        steps.push('prescribe');
      }
      const drawn = finalOutcome(random, news2?.band ?? null);
      // Simulated callers are never identified, and a home visit needs the patient's address (the
      // server refuses it): the simulated clinician closes with advice instead.
      const outcome: ConsultationOutcome = drawn === 'home_visit' ? 'advice_and_close' : drawn;
      await clinician.call('POST', `/api/v1/cases/${caseId}/outcome`, {
        outcome,
        ...(outcome === 'upgrade_to_ambulance' ? { ambulanceCategory: news2?.band === 'high' ? 2 : 3 } : {}),
        // A raised NEWS2 with an outcome that is not urgent must say why (the server refuses it otherwise).
        ...(isUrgentNews2Band(news2?.band) && NON_URGENT_OUTCOMES.includes(outcome)
          ? { news2Reason: 'Simulated: clinical judgement after a telephone assessment.' }
          : {}),
      });
      summary.clinician.outcomes[outcome]++;
      detail(
        `clinician: ${short} ${steps.join(', ')}, NEWS2 ${news2 ? `${news2.total ?? 'partial'} (${news2.band ?? 'unknown'})` : '-'} → ${outcome}`,
      );
    };

    // --- the schedule. `halt` wakes every wait when the run stops, whatever stops it.
    const arrivals = mulberry32(deriveSeed(options.seed, 3, 0));
    const checks = mulberry32(deriveSeed(options.seed, 4, 0));
    const abort = options.signal;
    const halt = new AbortController();
    const run: { stopping: boolean; reason: StopReason; callsDone: boolean } = {
      stopping: false,
      reason: 'duration',
      callsDone: false,
    };
    const stop = (reason: StopReason): void => {
      if (run.stopping) return;
      run.stopping = true;
      run.reason = reason;
      halt.abort();
    };
    const stopOnAbort = (): void => stop('signal');
    abort?.addEventListener('abort', stopOnAbort, { once: true });
    if (abort?.aborted) stop('signal');
    const status = setInterval(
      () => {
        const g = dispositionGroups(summary.dispositions);
        log(
          `${formatDuration(performance.now() - started)}: ${summary.calls.triaged} calls triaged ` +
            `(${g.ambulance} ambulance, ${g.ed_utc} ED, ${g.primary_care} primary care, ${g.self_care} self-care), ` +
            `${summary.clinician.consulted} consulted, queue ${summary.queueAtEnd ? `${summary.queueAtEnd.waiting} waiting` : '?'}`,
        );
      },
      verbose ? 300_000 : 10_000,
    );
    status.unref();

    let consecutiveCallFailures = 0;
    const inFlight = new Set<Promise<void>>();
    const callLoop = async (): Promise<void> => {
      let due = performance.now();
      for (let n = 0; !run.stopping; n++) {
        if (options.untilCount !== undefined && n >= options.untilCount) {
          stop('count');
          break;
        }
        due += exponentialMs(arrivals, options.callsPerHour);
        if (due > deadline) {
          await sleep(timeLeft(), halt.signal);
          stop('duration');
          break;
        }
        await sleep(due - performance.now(), halt.signal);
        if (run.stopping) break;
        while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
        const call: Promise<void> = takeCall(n)
          .then(
            () => {
              consecutiveCallFailures = 0;
            },
            (error: unknown) => {
              summary.calls.failed++;
              failure(`call ${n + 1}`, error);
              if (++consecutiveCallFailures >= MAX_CONSECUTIVE_FAILURES) stop('errors');
            },
          )
          .finally(() => inFlight.delete(call));
        inFlight.add(call);
      }
      await Promise.all(inFlight);
    };

    let consecutiveEpisodeFailures = 0;
    const turn = async (): Promise<boolean> => {
      try {
        const worked = await clinicianTurn();
        consecutiveEpisodeFailures = 0;
        return worked;
      } catch (error) {
        summary.clinician.failed++;
        failure('clinician', error);
        if (++consecutiveEpisodeFailures >= MAX_CONSECUTIVE_FAILURES) stop('errors');
        return false;
      }
    };
    const clinicianLoop = async (): Promise<void> => {
      while (!run.callsDone && !run.stopping) {
        await sleep(Math.min(exponentialMs(checks, checksPerHour), timeLeft()), halt.signal);
        if (run.callsDone || run.stopping) break;
        await turn();
      }
    };
    await Promise.all([
      callLoop().finally(() => {
        run.callsDone = true;
        halt.abort();
      }),
      clinicianLoop(),
    ]);
    clearInterval(status);
    // After a counted run, the clinician works the queue down to the backlog (a demo keeps a live
    // queue; a test sees cases consulted), still within the time limit.
    if (run.reason === 'count') {
      const maxEpisodes = summary.calls.opened * 2 + 10;
      for (let i = 0; i < maxEpisodes && timeLeft() > 0 && !abort?.aborted; i++) {
        const worked = await turn();
        if (consecutiveEpisodeFailures >= MAX_CONSECUTIVE_FAILURES) {
          run.reason = 'errors';
          break;
        }
        if (!worked && consecutiveEpisodeFailures === 0) break;
      }
    }
    abort?.removeEventListener('abort', stopOnAbort);
    try {
      const cases = await readQueue();
      const waiting = cases.filter((c) => c.status === 'queued' && !c.claimedBy).length;
      summary.queueAtEnd = { waiting, held: cases.length - waiting };
    } catch (error) {
      failure('final queue check', error);
    }
    summary.stoppedBy = run.reason;
  } finally {
    summary.elapsedMs = performance.now() - started;
    adviser.close();
    clinician.close();
    agent.destroy();
  }
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Report.

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', rest || (!h && !m) ? `${rest}s` : ''].join('');
}

const pct = (n: number, total: number): string => (total > 0 ? `${((n / total) * 100).toFixed(1)}%` : '-');

/** Dispositions grouped as the national figures are: ambulance, ED, primary care, self-care, other. */
export type DispositionGroup = 'ambulance' | 'ed_utc' | 'primary_care' | 'self_care' | 'other';

export function dispositionGroups(counts: Record<DispositionKind, number>): Record<DispositionGroup, number> {
  return {
    ambulance: counts.ambulance,
    ed_utc: counts.ed_utc,
    primary_care: counts.speak_to_primary_care + counts.contact_primary_care,
    self_care: counts.self_care,
    other: counts.dental + counts.pharmacy + counts.other,
  };
}

export function formatSummary(s: SimulationSummary): string {
  const lines: string[] = [];
  const triaged = s.calls.triaged;
  lines.push(
    `Simulated ${s.calls.opened} calls in ${formatDuration(s.elapsedMs)} against ${s.url} ` +
      `(${s.callsPerHour} calls/hour, seed ${s.seed}; stopped: ${s.stoppedBy})`,
  );
  lines.push(
    `  triaged ${triaged}, ${s.calls.answers} answers (${triaged ? (s.calls.answers / triaged).toFixed(1) : '-'} a call), ${s.calls.failed} failed`,
  );
  lines.push('Disposition mix (this run / the pack by its weights):');
  const expectedGroups = dispositionGroups(s.expected);
  const groups = dispositionGroups(s.dispositions);
  const labels: Record<DispositionGroup, string> = {
    ambulance: 'ambulance',
    ed_utc: 'ED / UTC',
    primary_care: 'primary care',
    self_care: 'self-care',
    other: 'dental, pharmacy, other',
  };
  for (const group of Object.keys(groups) as DispositionGroup[]) {
    const n = groups[group];
    lines.push(
      `  ${labels[group].padEnd(24)} ${String(n).padStart(5)}  ${pct(n, triaged).padStart(6)}  / ${(expectedGroups[group] * 100).toFixed(1)}%`,
    );
  }
  lines.push(
    `  (primary care: ${s.dispositions.speak_to_primary_care} speak to, ${s.dispositions.contact_primary_care} contact; ${s.queued} went to the CAS queue)`,
  );
  const c = s.clinician;
  const failedCallbacks = c.callbacks.no_answer + c.callbacks.voicemail + c.callbacks.wrong_number;
  lines.push(
    `Clinician: ${c.claimed} claimed (${c.claimConflicts} already taken), call-backs ${c.callbacks.answered} answered / ` +
      `${failedCallbacks} failed, ${c.escalated} escalated, ${c.released} released, ${c.consulted} consulted`,
  );
  const outcomes = Object.entries(c.outcomes)
    .filter(([, n]) => n > 0)
    .map(([o, n]) => `${o} ${n}`)
    .join(', ');
  lines.push(`  outcomes: ${outcomes || 'none'}`);
  if (s.queueAtEnd)
    lines.push(`Queue at the end: ${s.queueAtEnd.waiting} waiting, ${s.queueAtEnd.held} with a clinician`);
  if (s.errors.length > 0)
    lines.push(
      `Errors (${s.errors.length}${s.errors.length >= 20 ? '+' : ''}):`,
      ...s.errors.map((e) => `  ${e}`),
    );
  return lines.join('\n');
}

export { ApiError };
