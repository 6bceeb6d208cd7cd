import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { AccountsService } from '../accounts/service.ts';
import { SessionStore } from '../auth/sessions.ts';
import { initNode, storeOptionsFor } from '../node/node.ts';
import { verifyStore } from '../ledger/verify.ts';
import { ledgerCrypto } from '../node/crypto.ts';
import { Store } from '../store/store.ts';
import { runSimulation, type SimulationSummary } from '../simulate/simulator.ts';
import { issueEnrolmentToken, joinHub } from '../sync/enrolment.ts';
import { chainHeads, countStore, deleteCaseOpened, sameChains, type StoreRef } from './count.ts';
import { freePort, startTestPostgres, type TestPostgres } from './postgres.ts';
import { killRunningCommands, NodeProcess, runHoldfast, sleep, tailOf, type Env } from './processes.ts';

/**
 * `holdfast drill supplier-loss`: the 2022 outage rehearsed on one machine. A hub on PostgreSQL and
 * two sites on SQLite run as real processes on loopback; simulated calls go to both sites; the hub
 * is backed up, then SIGKILLed and its data deleted (database dropped, data directory removed);
 * the sites keep taking calls; a new hub is restored from the last backup plus the sites, and
 * everything reconnects. Then every acknowledged case is looked for on every node.
 *
 * Acknowledged: a 2xx answer from a site to a case creation (the simulator records the case id only
 * then). Lost: an acknowledged case whose `case.opened` event is missing from any of the three
 * nodes at the end. Duplicate: a case opened twice, or an event id stored twice, on any node.
 */

export interface DrillOptions {
  quick: boolean;
  /** Keep the work directory (logs, stores, backup) for inspection. */
  keep?: boolean;
  /** Test-only: delete one acknowledged case from a site before the final count (must fail the drill). */
  injectLoss?: boolean;
  log: (line: string) => void;
}

export interface DrillReport {
  drill: 'supplier-loss';
  acked: number;
  lost: number;
  duplicates: number;
  reconciliation_items: number | null;
  time_to_function_ms: number | null;
  restore_events_per_s: number | null;
  verified: boolean;
  /** Figures beyond the required ones. */
  detail: {
    quick: boolean;
    ackedPerSite: Record<string, number>;
    ackedWhileHubDown: Record<string, number>;
    restoreMs: number | null;
    restoredEvents: number | null;
    toppedUpEvents: number | null;
    convergeMs: number | null;
    converged: boolean;
    projectionsAgree: boolean;
    eventsPerNode: Record<string, number>;
    verifyOk: Record<string, boolean>;
    lostCaseIds: string[];
    /** With the test-only --inject-loss: the count before the fault was injected. */
    beforeInjectedLoss: { lost: number; duplicates: number } | null;
    problems: string[];
    totalMs: number;
    workDir: string | null;
  };
}

const TENANT = 'drill-provider';

/** The part of `holdfast restore --json`'s report the drill uses. */
interface RestoreFigures {
  events?: number;
  totalMs?: number;
  eventsPerSecond?: number;
  toppedUp?: { events: number }[];
}

interface Phases {
  /** Seconds of calls with the hub up, before the backup. */
  before: number;
  /** Seconds of calls with the hub gone, before the restore starts (calls go on during it). */
  down: number;
  /** Seconds of calls after the restored hub serves. */
  after: number;
  callsPerHourPerSite: number;
  convergeTimeoutMs: number;
}

/** Sync rounds run every second: this long without a new event anywhere means it has stopped. */
const STALL_MS = 20_000;

const QUICK: Phases = {
  before: 6,
  down: 5,
  after: 4,
  callsPerHourPerSite: 1_800,
  convergeTimeoutMs: 240_000,
};
const FULL: Phases = {
  before: 60,
  down: 60,
  after: 30,
  callsPerHourPerSite: 3_600,
  convergeTimeoutMs: 900_000,
};

export async function runSupplierLossDrill(options: DrillOptions): Promise<DrillReport> {
  const started = performance.now();
  const phases = options.quick ? QUICK : FULL;
  const log = (line: string) =>
    options.log(`${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`);
  const work = mkdtempSync(join(tmpdir(), 'holdfast-drill-'));
  const problems: string[] = [];
  const processes: NodeProcess[] = [];
  let postgres: TestPostgres | null = null;
  const stopAll = async () => {
    await Promise.all(processes.map((p) => p.stop().catch(() => undefined)));
  };
  // Interrupted (Ctrl-C, or a test's timeout): leave no node or PostgreSQL running behind.
  const interrupted = (signal: NodeJS.Signals) => {
    for (const p of processes) p.killNow();
    killRunningCommands();
    try {
      postgres?.stop();
    } finally {
      if (!options.keep) rmSync(work, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    // ---- PostgreSQL for the hub, the hub, two sites ----------------------------------------------
    log('starting PostgreSQL');
    postgres = await startTestPostgres();
    const hubDbUrl = await createDatabase(postgres.adminUrl, 'hub');
    const [hubPort, portA, portB] = [await freePort(), await freePort(), await freePort()];
    const hubUrl = `http://127.0.0.1:${hubPort}`;
    const dirs = {
      hub: join(work, 'hub'),
      a: join(work, 'site-a'),
      b: join(work, 'site-b'),
      restored: join(work, 'hub-restored'),
      backup: join(work, 'backup'),
      logs: join(work, 'logs'),
    };
    mkdirSync(dirs.logs, { recursive: true });
    const passphrase = randomBytes(18).toString('base64url');
    const common: Env = {
      HOLDFAST_LOG_LEVEL: 'warn',
      HOLDFAST_SYNC_INTERVAL_SECONDS: '1',
      HOLDFAST_SYNC_MAX_BACKOFF_SECONDS: '2',
      HOLDFAST_CHECKPOINT_INTERVAL_SECONDS: '2',
      HOLDFAST_BACKUP_PASSPHRASE: passphrase,
    };
    const hubEnv = (dataDir: string, url: string): Env => ({
      ...common,
      HOLDFAST_DATA_DIR: dataDir,
      HOLDFAST_STORE: 'postgres',
      HOLDFAST_DATABASE_URL: url,
    });
    const siteEnv = (dataDir: string): Env => ({
      ...common,
      HOLDFAST_DATA_DIR: dataDir,
      HOLDFAST_STORE: 'sqlite',
    });

    log('creating the hub, the provider, its two sites and a call handler and clinician for each');
    const password = `drill-${randomBytes(12).toString('base64url')}`;
    const hubNode = await initNode(
      { store: 'postgres', databaseUrl: hubDbUrl, dataDir: dirs.hub, checkpointEvery: 100 },
      { tenant: TENANT, node: 'hub', role: 'hub' },
    );
    const tokens: string[] = [];
    try {
      const accounts = new AccountsService(
        hubNode.store,
        hubNode.ledger,
        new SessionStore(hubNode.store, hubNode.clock),
        hubNode.providerKeys,
      );
      await accounts.createTenant(TENANT, 'Drill IUC', 'system:drill');
      const siteA = await accounts.createSite(TENANT, 'Drill call centre A', 'system:drill');
      const siteB = await accounts.createSite(TENANT, 'Drill call centre B', 'system:drill');
      // Four password hashes (argon2id, deliberately slow): in parallel, they overlap.
      await Promise.all(
        (
          [
            ['a', siteA],
            ['b', siteB],
          ] as const
        ).flatMap(([suffix, site]) =>
          (['health_adviser', 'clinician'] as const).map((role) =>
            accounts.create(
              TENANT,
              {
                username: `${role === 'clinician' ? 'clinician' : 'adviser'}-${suffix}@drill`,
                displayName: `${role === 'clinician' ? 'Clinician' : 'Adviser'} ${suffix}`,
                roles: [role],
                siteIds: [site],
                password,
              },
              'system:drill',
            ),
          ),
        ),
      );
      for (let i = 0; i < 2; i++)
        tokens.push(
          (
            await issueEnrolmentToken(hubNode.store, hubNode.clock, {
              tenant: TENANT,
              createdBy: 'system:drill',
            })
          ).token,
        );
    } finally {
      await hubNode.close();
    }
    let hub = NodeProcess.serve('hub', hubPort, hubEnv(dirs.hub, hubDbUrl), join(dirs.logs, 'hub.log'));
    processes.push(hub);
    await hub.waitHealthy(60_000);

    log('sites A and B join the hub with one-time enrolment tokens');
    await Promise.all(
      (
        [
          ['site-a', dirs.a, tokens[0]!],
          ['site-b', dirs.b, tokens[1]!],
        ] as const
      ).map(async ([name, dir, token]) => {
        const joined = await joinHub(
          { store: 'sqlite', dataDir: dir, checkpointEvery: 100 },
          { node: name, hubUrl, token },
        );
        await joined.node.close();
        if (joined.firstSync instanceof Error)
          throw new Error(`${name}'s first sync failed: ${joined.firstSync.message}`);
      }),
    );
    const siteA = NodeProcess.serve('site-a', portA, siteEnv(dirs.a), join(dirs.logs, 'site-a.log'));
    const siteB = NodeProcess.serve('site-b', portB, siteEnv(dirs.b), join(dirs.logs, 'site-b.log'));
    processes.push(siteA, siteB);
    await Promise.all([siteA.waitHealthy(60_000), siteB.waitHealthy(60_000)]);

    // ---- calls at both sites, through every phase --------------------------------------------------
    const stopCalls = new AbortController();
    let hubLostAt: number | null = null;
    let firstCaseAfterLoss: number | null = null;
    let hubBackAt: number | null = null;
    const whileDown: Record<string, number> = { 'site-a': 0, 'site-b': 0 };
    const simulate = (site: NodeProcess, suffix: string, seed: number): Promise<SimulationSummary> =>
      runSimulation({
        url: site.url,
        adviser: { username: `adviser-${suffix}@drill`, password },
        clinician: { username: `clinician-${suffix}@drill`, password },
        callsPerHour: phases.callsPerHourPerSite,
        durationMs: 3_600_000,
        seed,
        maxCallsInFlight: 2,
        signal: stopCalls.signal,
        observe: (sample) => {
          if (sample.method !== 'POST' || sample.route !== '/api/v1/calls' || sample.status >= 300) return;
          const now = performance.now();
          if (hubLostAt !== null && hubBackAt === null) {
            whileDown[site.name] = (whileDown[site.name] ?? 0) + 1;
            firstCaseAfterLoss ??= now;
          }
        },
        progress: () => undefined,
      });
    log(`calls start at both sites (${phases.callsPerHourPerSite} an hour each)`);
    const sims = Promise.all([simulate(siteA, 'a', 1001), simulate(siteB, 'b', 2002)]);
    // A simulator that fails to start (sign-in, pathways) rejects at once: fail the drill then.
    const early = await Promise.race([
      sims.then(() => 'ended' as const),
      sleep(phases.before * 1000).then(() => 'running' as const),
    ]);
    if (early === 'ended') problems.push('the simulators stopped before the hub was lost');

    // ---- backup, then the supplier is lost -----------------------------------------------------------
    log('backing up the hub (holdfast backup --to DIR)');
    const backup = await runHoldfast(
      ['backup', '--to', dirs.backup],
      hubEnv(dirs.hub, hubDbUrl),
      join(dirs.logs, 'backup.log'),
    );
    if (backup.code !== 0) throw new Error(`holdfast backup failed:\n${backup.stderr || backup.stdout}`);
    log(`backup written in ${(backup.ms / 1000).toFixed(1)} s`);

    log('SIGKILL the hub, drop its database, delete its data directory');
    hubLostAt = performance.now();
    await hub.kill();
    await dropDatabase(postgres.adminUrl, 'hub');
    rmSync(dirs.hub, { recursive: true, force: true });
    await sleep(phases.down * 1000);
    if (firstCaseAfterLoss === null) problems.push('no case was saved at any site after the hub was lost');

    // ---- restore a new hub from the backup plus the sites -------------------------------------------
    const restoredDbUrl = await createDatabase(postgres.adminUrl, 'hub_restored');
    log('restoring a new hub: holdfast restore --from DIR --peer site-a=URL --peer site-b=URL');
    const restore = await runHoldfast(
      [
        '--data-dir',
        dirs.restored,
        'restore',
        '--from',
        dirs.backup,
        '--peer',
        `site-a=${siteA.url}`,
        '--peer',
        `site-b=${siteB.url}`,
        '--store',
        'postgres',
        '--database-url',
        restoredDbUrl,
        '--json',
      ],
      hubEnv(dirs.restored, restoredDbUrl),
      join(dirs.logs, 'restore.log'),
    );
    let restoreReport = null as RestoreFigures | null;
    if (restore.code !== 0)
      problems.push(
        `holdfast restore failed (exit ${restore.code}): ${lastLines(restore.stderr || restore.stdout)}`,
      );
    else {
      try {
        restoreReport = JSON.parse(restore.stdout.slice(restore.stdout.indexOf('{'))) as RestoreFigures;
      } catch {
        problems.push('holdfast restore --json printed no JSON report');
      }
    }
    if (restore.code === 0) {
      hub = NodeProcess.serve(
        'hub-restored',
        hubPort,
        hubEnv(dirs.restored, restoredDbUrl),
        join(dirs.logs, 'hub-restored.log'),
      );
      processes.push(hub);
      await hub.waitHealthy(60_000);
      hubBackAt = performance.now();
      log('the restored hub serves on the old address; the sites reconnect');
      await sleep(phases.after * 1000);
    }

    // ---- stop the calls; wait until all three nodes hold the same chains -------------------------------
    stopCalls.abort();
    const summaries = await sims;
    const acked = summaries.flatMap((s) => s.caseIds);
    for (const s of summaries)
      if (s.stoppedBy === 'errors')
        problems.push(`the simulator at ${s.url} stopped on errors: ${s.errors.slice(-2).join('; ')}`);
    log(
      `calls stopped: ${acked.length} cases acknowledged (${summaries.map((s) => s.caseIds.length).join(' + ')})`,
    );

    const refs: Record<string, StoreRef> = {
      hub: { kind: 'postgres', url: restoredDbUrl },
      'site-a': { kind: 'sqlite', file: join(dirs.a, 'holdfast.sqlite') },
      'site-b': { kind: 'sqlite', file: join(dirs.b, 'holdfast.sqlite') },
    };
    let converged = false;
    let convergeMs: number | null = null;
    if (restore.code === 0) {
      // Wait while sync is making progress (a loaded machine is slow, not wrong); give up when no
      // node has gained an event for STALL_MS, or at the cap.
      const waitFrom = performance.now();
      let lastTotal = -1;
      let lastProgressAt = waitFrom;
      while (performance.now() - waitFrom < phases.convergeTimeoutMs) {
        const heads = await Promise.all(Object.values(refs).map((r) => chainHeads(r, TENANT)));
        if (heads.every((h) => sameChains(h, heads[0]!))) {
          converged = true;
          convergeMs = performance.now() - waitFrom;
          break;
        }
        const total = heads.reduce((sum, h) => sum + [...h.values()].reduce((n, [c]) => n + c, 0), 0);
        if (total !== lastTotal) {
          lastTotal = total;
          lastProgressAt = performance.now();
        } else if (performance.now() - lastProgressAt > STALL_MS) break;
        await sleep(500);
      }
      if (!converged)
        problems.push(
          `the nodes did not converge (${Math.round((performance.now() - waitFrom) / 1000)} s; no progress for ${STALL_MS / 1000} s, or the cap of ${phases.convergeTimeoutMs / 1000} s)`,
        );
      else
        log(
          `all three nodes hold the same chains (${(convergeMs! / 1000).toFixed(1)} s after the calls stopped)`,
        );
    }
    await stopAll();

    // ---- verify each node, then count -----------------------------------------------------------------
    // The checks of `holdfast verify` (every hash, link and checkpoint signature), run in this
    // process over each stopped node's store: three more CLI start-ups would cost the quick drill.
    const verifyOk: Record<string, boolean> = {};
    const storeConfigs: Record<string, Parameters<typeof storeOptionsFor>[0]> = {
      hub: { store: 'postgres', databaseUrl: restoredDbUrl, dataDir: dirs.restored },
      'site-a': { store: 'sqlite', dataDir: dirs.a },
      'site-b': { store: 'sqlite', dataDir: dirs.b },
    };
    await Promise.all(
      Object.entries(storeConfigs).map(async ([name, cfg]) => {
        if (name === 'hub' && restore.code !== 0) {
          verifyOk[name] = false;
          return;
        }
        const store = await Store.open(storeOptionsFor(cfg));
        try {
          const report = await verifyStore(store, ledgerCrypto, { tenant: TENANT });
          verifyOk[name] = report.ok && report.eventsChecked > 0;
          if (!verifyOk[name])
            problems.push(
              `verification failed on ${name}: ${
                report.faults
                  .map((f) => JSON.stringify(f))
                  .join('; ')
                  .slice(0, 300) || 'no events'
              }`,
            );
        } finally {
          await store.close();
        }
      }),
    );
    const count = async () => {
      const counts = Object.fromEntries(
        await Promise.all(
          Object.entries(refs).map(
            async ([name, ref]) =>
              [name, restore.code === 0 || name !== 'hub' ? await countStore(ref, TENANT) : null] as const,
          ),
        ),
      );
      const lostCaseIds = new Set<string>();
      let duplicates = 0;
      for (const c of Object.values(counts)) {
        if (!c) {
          // No restored hub: nothing acknowledged can be shown to be on it.
          for (const id of acked) lostCaseIds.add(id);
          continue;
        }
        const held = new Set(c.openedCaseIds);
        for (const id of acked) if (!held.has(id)) lostCaseIds.add(id);
        duplicates += c.openedCaseIds.length - held.size + c.duplicateEventIds;
      }
      return { counts, lostCaseIds, duplicates };
    };
    let { counts, lostCaseIds, duplicates } = await count();
    // Same events must mean the same read models: a projection that folds differently on one node
    // would show staff a different caseload there.
    const digests = new Set(Object.values(counts).flatMap((c) => (c ? [c.projectionDigest] : [])));
    const projectionsAgree = digests.size === 1;
    if (!projectionsAgree)
      problems.push('the projections (cases, reconciliation items) differ between the nodes');
    let beforeInjectedLoss: DrillReport['detail']['beforeInjectedLoss'] = null;
    if (options.injectLoss && acked.length > 0) {
      beforeInjectedLoss = { lost: lostCaseIds.size, duplicates };
      // The count runs again, unchanged, over stores with one acknowledged case taken away.
      const removed = await deleteCaseOpened(refs['site-a']!, TENANT, acked[0]!);
      log(`TEST FAULT: deleted ${removed} acknowledged case.opened event from site-a; counting again`);
      ({ counts, lostCaseIds, duplicates } = await count());
    }
    const verified =
      restore.code === 0 && converged && projectionsAgree && Object.values(verifyOk).every(Boolean);
    const hubCount = counts.hub;
    const report: DrillReport = {
      drill: 'supplier-loss',
      acked: acked.length,
      lost: lostCaseIds.size,
      duplicates,
      reconciliation_items: hubCount?.reconciliationItems ?? null,
      time_to_function_ms:
        hubLostAt !== null && firstCaseAfterLoss !== null ? Math.round(firstCaseAfterLoss - hubLostAt) : null,
      // Every event the restore put into the new hub (from the backup and topped up from the
      // sites), per second of the whole restore: load, verification, projections and top-up.
      restore_events_per_s:
        restoreReport?.events !== undefined && restoreReport.totalMs
          ? Math.round(
              ((restoreReport.events + (restoreReport.toppedUp ?? []).reduce((n, t) => n + t.events, 0)) *
                1000) /
                restoreReport.totalMs,
            )
          : null,
      verified,
      detail: {
        quick: options.quick,
        ackedPerSite: { 'site-a': summaries[0]!.caseIds.length, 'site-b': summaries[1]!.caseIds.length },
        ackedWhileHubDown: whileDown,
        restoreMs: restoreReport?.totalMs ?? null,
        restoredEvents: restoreReport?.events ?? null,
        toppedUpEvents: restoreReport?.toppedUp
          ? restoreReport.toppedUp.reduce((s, t) => s + t.events, 0)
          : null,
        convergeMs: convergeMs === null ? null : Math.round(convergeMs),
        converged,
        projectionsAgree,
        eventsPerNode: Object.fromEntries(Object.entries(counts).map(([n, c]) => [n, c?.events ?? 0])),
        verifyOk,
        lostCaseIds: [...lostCaseIds].slice(0, 20),
        beforeInjectedLoss,
        problems,
        totalMs: 0,
        workDir: options.keep ? work : null,
      },
    };
    for (const [name, n] of Object.entries(whileDown))
      if (n === 0) problems.push(`${name} saved no case while the hub was gone`);
    report.detail.totalMs = Math.round(performance.now() - started);
    return report;
  } catch (error) {
    const logs = ['hub', 'hub-restored', 'site-a', 'site-b']
      .map((n) => `--- ${n}.log\n${tailOf(join(work, 'logs', `${n}.log`), 10)}`)
      .join('\n');
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await stopAll();
    postgres?.stop();
    if (!options.keep) rmSync(work, { recursive: true, force: true });
  }
}

/** Exit status of a drill: failed if anything acknowledged was lost, anything doubled, or verification failed. */
export function drillPassed(r: DrillReport): boolean {
  return r.lost === 0 && r.duplicates === 0 && r.verified && r.detail.problems.length === 0;
}

export function formatDrill(r: DrillReport): string {
  const d = r.detail;
  const s = (ms: number | null) => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);
  return [
    `supplier-loss drill${d.quick ? ' (quick)' : ''}: ${drillPassed(r) ? 'PASSED' : 'FAILED'} in ${s(d.totalMs)}`,
    `  cases acknowledged by the sites: ${r.acked} (site-a ${d.ackedPerSite['site-a']}, site-b ${d.ackedPerSite['site-b']}); while the hub was gone: site-a ${d.ackedWhileHubDown['site-a']}, site-b ${d.ackedWhileHubDown['site-b']}`,
    `  time from hub loss to the next case saved at a site: ${r.time_to_function_ms === null ? 'n/a' : `${r.time_to_function_ms} ms`}`,
    `  lost: ${r.lost}${d.lostCaseIds.length ? ` (e.g. ${d.lostCaseIds.slice(0, 3).join(', ')})` : ''}; duplicates: ${r.duplicates}; reconciliation items: ${r.reconciliation_items ?? 'n/a (no reconciliation table)'}`,
    `  restore: ${d.restoredEvents ?? 'n/a'} events from the backup, ${d.toppedUpEvents ?? 'n/a'} topped up from the sites, in ${s(d.restoreMs)} (${r.restore_events_per_s ?? 'n/a'} events/s)`,
    `  converged: ${d.converged ? `yes, ${s(d.convergeMs)} after the calls stopped` : 'NO'}; events per node: ${Object.entries(
      d.eventsPerNode,
    )
      .map(([n, e]) => `${n} ${e}`)
      .join(', ')}`,
    `  verification (every chain, link and checkpoint signature on each node; the same projections on each; restore's own checks): ${r.verified ? 'ok' : 'FAILED'} (projections ${d.projectionsAgree ? 'agree' : 'DIFFER'}; ${Object.entries(
      d.verifyOk,
    )
      .map(([n, ok]) => `${n} ${ok ? 'ok' : 'BAD'}`)
      .join(', ')})`,
    ...(d.beforeInjectedLoss
      ? [
          `  TEST FAULT INJECTED: before it, lost ${d.beforeInjectedLoss.lost} and duplicates ${d.beforeInjectedLoss.duplicates}; the figures above are counted after it`,
        ]
      : []),
    ...d.problems.map((p) => `  problem: ${p}`),
    ...(d.workDir ? [`  work directory kept: ${d.workDir}`] : []),
  ].join('\n');
}

function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`create database ${name}`);
  } finally {
    await c.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`drop database if exists ${name} with (force)`);
  } finally {
    await c.end();
  }
}
