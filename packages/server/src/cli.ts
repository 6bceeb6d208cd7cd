import { createReadStream, createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import pc from 'picocolors';
// Core's error classes and role list from their own modules: the package's index loads every
// event schema and the phone-number metadata, which `--help` and most commands' parsing never need.
import { DomainError, ImportRefusedError, ValidationError } from '@holdfast/core/errors';
import { ROLES, type Role } from '@holdfast/core/accounts/roles';
import { ConfigError, loadConfig, type HoldfastConfig } from './config.ts';
import type { NumberedLine } from './ledger/ndjson.ts';
import type { HoldfastNode, OpenNodeOptions } from './node/node.ts';
import type { AccountsService } from './accounts/service.ts';
import type { DemoAccounts } from './demo.ts';
import { DEMO_PROVIDER_NAME, DEMO_TENANT } from './demo-names.ts';
import { DEFAULT_TOKEN_TTL_MINUTES, MAX_TOKEN_TTL_MINUTES } from './sync/enrolment-limits.ts';
import { registerBackupCommands, registerTopUpCommand } from './backup/cli.ts';
import { registerReceiverCommands } from './receiver/cli.ts';
import { parseDuration } from './simulate/duration.ts';

// Each command loads what it needs when it runs (the `await import` in its action), so
// `holdfast --help`, `holdfast receiver` or `holdfast users add` do not load the HTTP server, the
// PDF writer and the FHIR validator first. Tests start hundreds of these processes.

/**
 * `holdfast`: the operator's command line. Every command takes --config and --data-dir; every
 * value can also come from the config file or HOLDFAST_* environment variables.
 */
const program = new Command('holdfast')
  .description('Holdfast: urgent-care case management that keeps working when its hub is lost')
  .option(
    '-c, --config <file>',
    'config file (default: ./holdfast.config.json if present, or HOLDFAST_CONFIG)',
  )
  .option('-d, --data-dir <dir>', 'data directory: node identity, key and SQLite store (default ./data)')
  .showHelpAfterError();

function config(): HoldfastConfig {
  const opts = program.opts<{ config?: string; dataDir?: string }>();
  return loadConfig({ file: opts.config, overrides: opts.dataDir ? { dataDir: opts.dataDir } : {} });
}

const DEFAULT_TENANT = DEMO_TENANT;
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function identifier(what: string) {
  return (value: string): string => {
    if (!ID_PATTERN.test(value))
      throw new InvalidArgumentError(
        `${what} must be 1-128 letters, digits or . _ : - (starting with a letter or digit)`,
      );
    return value;
  };
}

/**
 * How a command uses the node. A node's chain has one writer: a command that writes takes the
 * node's writer lock and, while `holdfast serve` holds it, is refused with `whileServing` (how to do
 * the same through the running node). A command that only reads runs beside the server on what it
 * has committed.
 */
interface NodeUse {
  /** "holdfast users add": shown to anyone refused while this command holds the node. */
  purpose: string;
  access?: 'write' | 'read-if-busy';
  whileServing?: string;
}

const USERS_WHILE_SERVING =
  'While it runs, do this through it: as a provider admin in the web app (Users), or POST /api/v1/admin/users (…/disable, …/reset-mfa, …/reset-password).';

/** How each command that opens the node uses it, by command path. Absent: a writer with no hint. */
const NODE_USES: Record<string, Omit<NodeUse, 'purpose'>> = {
  verify: { access: 'read-if-busy' },
  'ledger export': { access: 'read-if-busy' },
  'nodes list': { access: 'read-if-busy' },
  backup: { access: 'read-if-busy' },
  rebuild: {
    whileServing: 'Stop the server first: a rebuild replaces every projection the server is reading from.',
  },
  'downtime-pack': {
    whileServing:
      'While it runs, take the pack from it: the "Downtime pack" button on every page of the web app, or GET /api/v1/downtime-pack.pdf; set downtimePackDir and it also writes one every few minutes.',
  },
  'ledger import': {
    whileServing:
      'Stop the server to import a file; a site joined to a hub needs no import (the server syncs by itself).',
  },
  'nodes enrol-token': {
    whileServing:
      'While it runs, issue the token through it: as a provider admin, POST /api/v1/nodes/enrolment-tokens.',
  },
  'nodes register': { whileServing: 'Stop the server first, then register the key.' },
  'users add': { whileServing: USERS_WHILE_SERVING },
  'providers add': { whileServing: 'Stop the server first, then add the provider.' },
  'providers rotate-key': {
    whileServing:
      'Stop the server first: a running server keeps the provider keys it read at start, and would seal under the old key.',
  },
  'providers fetch-keys': { whileServing: 'Stop the server first, then fetch the keys.' },
  'providers register-node': { whileServing: 'Restart the server instead: it does this at every start.' },
  // The postcode table is not the ledger, but a full import holds the store's writer for a minute:
  // beside a server it would stall every save, so it takes the node's writer lock like the rest.
  'postcodes import': {
    whileServing:
      'Stop the server to import a full postcode file; while it runs, a regional file (up to 8 MiB) can be sent as a provider admin to POST /api/v1/admin/postcodes/import.',
  },
  'users disable': { whileServing: USERS_WHILE_SERVING },
  'users reset-mfa': { whileServing: USERS_WHILE_SERVING },
  'users reset-password': { whileServing: USERS_WHILE_SERVING },
};

/** The node use of the command now running, set before its action (see the preAction hook). */
let currentUse: NodeUse = { purpose: 'a holdfast command' };

async function withNode<T>(
  fn: (node: HoldfastNode, cfg: HoldfastConfig) => Promise<T>,
  open: Pick<OpenNodeOptions, 'ownChains'> = {},
  use: NodeUse = currentUse,
): Promise<T> {
  const cfg = config();
  const [{ createProgress }, { openNode }, { NodeBusyError }] = await Promise.all([
    import('./cli/progress.ts'),
    import('./node/node.ts'),
    import('./node/writer-lock.ts'),
  ]);
  const progress = createProgress('rebuilding projections');
  let node: HoldfastNode;
  try {
    node = await openNode(cfg, {
      ...open,
      onRebuildProgress: (d, t) => progress.update(d, t),
      purpose: use.purpose,
      access: use.access ?? 'write',
    });
  } catch (error) {
    if (error instanceof NodeBusyError && use.whileServing)
      throw new NodeBusyError(error.dataDir, error.holder, use.whileServing);
    throw error;
  } finally {
    progress.stop();
  }
  if (node.access === 'read')
    process.stderr.write(
      pc.yellow(
        `the node is being served by another process: reading what it has committed (its newest events are sealed by it within ${cfg.checkpointIntervalSeconds} s)\n`,
      ),
    );
  try {
    return await fn(node, cfg);
  } finally {
    await node.close();
  }
}

program
  .command('init')
  .description(
    'create this node: its Ed25519 key pair (private key file mode 0600), its store, and its first event',
  )
  .option('--tenant <id>', 'the provider this node belongs to', identifier('--tenant'), DEFAULT_TENANT)
  .option('--node <id>', "this node's id, unique within the provider", identifier('--node'), 'node-1')
  .addOption(
    new Option('--role <role>', 'hub, site, or single (one node doing both)')
      .choices(['hub', 'site', 'single'])
      .default('single'),
  )
  .option('--hub <url>', "a site: its hub's URL (with --token)")
  .option('--token <token>', 'a site: the one-time enrolment token a provider admin issued on the hub')
  .option(
    '--demo',
    'a hub or single node: also create the demo provider (one user per role; password printed once)',
  )
  .action(
    async (opts: {
      tenant: string;
      node: string;
      role: 'hub' | 'site' | 'single';
      hub?: string;
      token?: string;
      demo?: boolean;
    }) => {
      const cfg = config();
      // A site without --hub is set up by hand (`holdfast nodes register` on both sides).
      if (opts.hub || opts.token) {
        if (opts.role !== 'site' || !opts.hub || !opts.token)
          throw new InvalidArgumentError(
            'a site joins its hub: give --role site --hub <url> --token <token>',
          );
        if (opts.demo)
          throw new InvalidArgumentError('--demo is for the hub: a site gets the provider from it');
        const tenantGiven = program.commands.find((c) => c.name() === 'init')?.getOptionValueSource('tenant');
        const { joinHub } = await import('./sync/enrolment.ts');
        const joined = await joinHub(cfg, {
          node: opts.node,
          hubUrl: opts.hub,
          token: opts.token,
          ...(tenantGiven === 'cli' ? { tenant: opts.tenant } : {}),
        });
        await joined.node.close();
        console.log(
          `initialised site ${pc.bold(opts.node)} of provider ${pc.bold(joined.answer.tenant)} in ${cfg.dataDir} on ${cfg.store}; hub ${joined.answer.hub.node} at ${opts.hub} (its key pinned)`,
        );
        if (joined.firstSync instanceof Error)
          console.log(
            pc.yellow(`first sync failed (\`holdfast serve\` keeps trying): ${joined.firstSync.message}`),
          );
        else console.log(`first sync: ${joined.firstSync.pulled} events from the hub`);
        console.log(`public key: ${joined.node.identity.publicKey}`);
        return;
      }
      if (opts.demo && opts.tenant !== DEMO_TENANT)
        throw new InvalidArgumentError(`--demo creates the demo provider ${DEMO_TENANT}: leave out --tenant`);
      const [{ initNode }, { seedDemoProvider }] = await Promise.all([
        import('./node/node.ts'),
        import('./demo.ts'),
      ]);
      const node = await initNode(
        cfg,
        { tenant: opts.tenant, node: opts.node, role: opts.role },
        { purpose: 'holdfast init' },
      );
      const demo = opts.demo ? await seedDemoProvider(node) : null;
      await node.close();
      console.log(
        `initialised node ${pc.bold(opts.node)} (${opts.role}) for tenant ${pc.bold(opts.tenant)} in ${cfg.dataDir} on ${cfg.store}`,
      );
      console.log(`public key: ${node.identity.publicKey}`);
      if (demo) {
        console.log(
          `demo provider ${DEMO_PROVIDER_NAME}: every user's password, shown once: ${demo.password}`,
        );
        for (const u of demo.users) console.log(`  ${u.username.padEnd(28)} ${u.role}`);
      }
    },
  );

program
  .command('serve')
  .description('run the node: HTTP API with /health and /metrics')
  .option('--port <port>', 'port to listen on (overrides config)', (v) => parsePort(v))
  .option('--host <host>', 'address to listen on (overrides config)')
  .action(async (opts: { port?: number; host?: string }) => {
    const cfg = {
      ...config(),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
      ...(opts.host ? { host: opts.host } : {}),
    };
    const { serve } = await import('./serve.ts');
    await serve(cfg);
  });

program
  .command('start')
  .description(
    'initialise a single node with the demo provider on first run, then serve (what `npm start` runs)',
  )
  .option('--port <port>', 'port to listen on (overrides config)', (v) => parsePort(v))
  .option(
    '--simulate <calls-per-hour>',
    'also run the call simulator in the background against this node, so the demo has a live queue (needs the demo password: first start, or HOLDFAST_DEMO_PASSWORD)',
    (v) => positiveInt('--simulate', v),
  )
  .option(
    '--receivers',
    'also run a demo ambulance service and GP practice (not ours: see `holdfast receiver`) on the next two ports, and point the provider at them',
  )
  .action(async (opts: { port?: number; simulate?: number; receivers?: boolean }) => {
    const cfg = { ...config(), ...(opts.port !== undefined ? { port: opts.port } : {}) };
    const [{ identityExists, initNode }, { seedDemoProvider }, { serve }] = await Promise.all([
      import('./node/node.ts'),
      import('./demo.ts'),
      import('./serve.ts'),
    ]);
    let demo: DemoAccounts | null = null;
    if (!identityExists(cfg.dataDir)) {
      const node = await initNode(
        cfg,
        { tenant: DEMO_TENANT, node: 'node-1', role: 'single' },
        { purpose: 'holdfast start' },
      );
      demo = await seedDemoProvider(node);
      await node.close();
      console.log(
        `first start: created node node-1 and the demo provider ${DEMO_PROVIDER_NAME} in ${cfg.dataDir}`,
      );
    }
    if (opts.receivers) {
      const { ensureDemoEndpoints, startDemoReceivers } = await import('./receiver/demo.ts');
      await ensureDemoEndpoints(cfg, DEMO_TENANT);
      await startDemoReceivers(cfg);
    }
    await serve(cfg, (url) => {
      if (!demo) {
        console.log('Sign in with an account of this provider (create one with `npx holdfast users add`).');
        return;
      }
      console.log(
        `\nDemo provider ${DEMO_PROVIDER_NAME}: one user per role, all with the password ${pc.bold(demo.password)}`,
      );
      for (const u of demo.users) console.log(`  ${u.username.padEnd(28)} ${u.role}`);
      console.log(`Open ${url} in a browser and sign in; each user enrols a second factor at first sign-in`);
      console.log(
        '(an authenticator app, or a passkey for the provider admin). This password is shown only now.',
      );
    });
    if (opts.simulate) {
      const password = demo?.password ?? process.env.HOLDFAST_DEMO_PASSWORD;
      if (!password) {
        console.error(
          '--simulate needs the demo password: it is known at the first start, or set HOLDFAST_DEMO_PASSWORD',
        );
        return;
      }
      const url = `http://127.0.0.1:${cfg.port}`;
      const { runSimulation } = await import('./simulate/simulator.ts');
      console.log(
        `simulator: ${opts.simulate} calls an hour against ${url} (as health-adviser@northshire and clinician@northshire)`,
      );
      // In the background: the node keeps serving whatever the simulator does; its errors are logged, not fatal.
      void runSimulation({
        url,
        adviser: { username: 'health-adviser@northshire', password },
        clinician: { username: 'clinician@northshire', password },
        stateFile: join(cfg.dataDir, 'simulator.json'),
        callsPerHour: opts.simulate,
        durationMs: 24 * 3600_000,
        seed: Date.now() % 2_147_483_647,
        progress: () => undefined,
      }).catch((error: unknown) => console.error(`simulator stopped: ${(error as Error).message}`));
    }
  });

program
  .command('verify')
  .description(
    're-hash every chain, check every checkpoint signature, and name the first bad event of each chain',
  )
  .option('--tenant <id>', 'only this tenant', identifier('--tenant'))
  .option(
    '--projections',
    'also fold the whole ledger afresh and compare every projection table with it, naming the first difference',
  )
  .option('--json', 'print the report as JSON')
  .action(async (opts: { tenant?: string; json?: boolean; projections?: boolean }) => {
    const [{ createProgress }, { verifyStore }, { ledgerCrypto }, { ownChainsOf }, check] = await Promise.all(
      [
        import('./cli/progress.ts'),
        import('./ledger/verify.ts'),
        import('./node/crypto.ts'),
        import('./ledger/own-chains.ts'),
        import('./projections/check.ts'),
      ],
    );
    const { checkProjections, describeProjectionCheck } = check;
    await withNode(
      async (node, cfg) => {
        const progress = createProgress('verifying');
        // The node's own chains are held against its identity file and head mark (what the store
        // cannot change); every chain's unsealed tail against the checkpoint bound.
        const report = await verifyStore(node.store, ledgerCrypto, {
          tenant: opts.tenant,
          own: ownChainsOf(node.identity, node.headMark),
          maxUnsealed: cfg.checkpointEvery - 1,
          onProgress: (d, t) => progress.update(d, t),
          workers: cfg.verifyWorkers,
        });
        progress.stop();
        if (node.headMarkProblem) {
          report.ok = false;
          console.error(pc.red(`head mark: ${node.headMarkProblem}`));
        }
        const projections = opts.projections
          ? await checkProjections(node.store, node.projections.projections, node.registry)
          : null;
        const ok = report.ok && (projections?.ok ?? true);
        if (opts.json) {
          console.log(JSON.stringify(projections ? { ...report, ok, projections } : report, null, 2));
        } else {
          for (const c of report.chains) {
            const where =
              c.fault && c.fault.fromSeq < c.fault.seq
                ? `in seq ${c.fault.fromSeq}-${c.fault.seq}`
                : `at seq ${c.fault?.seq}`;
            const status = c.fault ? pc.red(`BAD ${where}: ${c.fault.problem}`) : pc.green('ok');
            const tail =
              !c.fault && c.sealedSeq < c.lastSeq
                ? ` (seq ${c.sealedSeq + 1}-${c.lastSeq} not yet sealed by a checkpoint${
                    c.node === node.identity.node && node.headMark?.exists
                      ? "; matches this node's head mark"
                      : ''
                  })`
                : '';
            console.log(
              `${c.tenant} / ${c.node}: ${c.eventsChecked} events, ${c.checkpointsChecked} checkpoint signatures: ${status}${tail}`,
            );
          }
          if (projections) {
            const line = `projections: ${describeProjectionCheck(projections)}`;
            console.log(projections.ok ? pc.green(line) : pc.red(`BAD ${line}`));
          }
          console.log(
            report.ok
              ? pc.green(
                  `verified: ${report.eventsChecked} events, ${report.checkpointsChecked} checkpoint signatures, no faults`,
                )
              : pc.red(
                  report.faults.length > 0
                    ? `FAILED: ${report.faults.length} chain(s) with a bad event`
                    : "FAILED: this node's head mark cannot be trusted",
                ),
          );
          if (projections && !projections.ok)
            console.log(pc.red('FAILED: a projection does not match the ledger'));
        }
        process.exitCode = ok ? 0 : 1;
      },
      { ownChains: 'report' },
    );
  });

program
  .command('rebuild')
  .description('drop every projection and fold the whole ledger into them again')
  .action(async () => {
    const { createProgress } = await import('./cli/progress.ts');
    await withNode(async (node) => {
      const progress = createProgress('rebuilding');
      const n = await node.projections.rebuild(undefined, (d, t) => progress.update(d, t));
      progress.stop();
      console.log(`rebuilt ${node.projections.projections.length} projections from ${n} events`);
    });
  });

program
  .command('downtime-pack')
  .description(
    'write the downtime pack PDF: open cases and call-backs due in deadline order, key contacts, blank call and triage forms (holds patient data: audited)',
  )
  .option('-o, --out <file>', 'where to write it (default: downtime-pack-<time>.pdf here)')
  .option('--site <ids...>', "only these sites' cases (default: every site of the provider)")
  .action(async (opts: { out?: string; site?: string[] }) => {
    const [{ DowntimePackService }, { packFileName }, { AccountsService }, { SessionStore }] =
      await Promise.all([
        import('./downtime/service.ts'),
        import('./downtime/writer.ts'),
        import('./accounts/service.ts'),
        import('./auth/sessions.ts'),
      ]);
    await withNode(async (node, cfg) => {
      const packs = new DowntimePackService(node.store, node.ledger, node.clock, {
        contacts: cfg.downtimeContacts ?? [],
      });
      if (opts.site) {
        const known = new Set(
          (
            await new AccountsService(
              node.store,
              node.ledger,
              new SessionStore(node.store, node.clock),
              node.providerKeys,
            ).sites(node.identity.tenant)
          ).map((s) => s.siteId),
        );
        const unknown = opts.site.filter((s) => !known.has(s));
        if (unknown.length > 0)
          throw new InvalidArgumentError(
            `--site: ${unknown.join(', ')} not a site of provider ${node.identity.tenant}; known: ${[...known].join(', ')}`,
          );
      }
      const operator = userInfo().username;
      const { pdf, data } = await packs.forNode(
        node.identity.tenant,
        { trigger: 'command', actor: `cli:${operator}@${node.identity.node}`, operator },
        opts.site,
      );
      const out = opts.out ?? packFileName(data.generatedAtMs);
      // Patient data: readable by its owner only.
      writeFileSync(out, pdf, { mode: 0o600 });
      console.log(
        `wrote ${out}: ${data.callbacks.length} call-backs due, ${data.withAdvisers.length} calls with advisers, ${data.otherOpen.length} other open cases, ${data.sites.length} site(s)`,
      );
    });
  });

const ledger = program.command('ledger').description('move ledger events between nodes as NDJSON');

ledger
  .command('export')
  .description("write a tenant's events as NDJSON batches, each ending at a signed checkpoint")
  .option('--tenant <id>', "tenant to export (default: this node's)", identifier('--tenant'))
  .option('--node <ids...>', "only these nodes' chains")
  .option('--after <node=seq...>', 'only events after these seqs, e.g. --after site-a=1200')
  .option('--batch-size <n>', 'events per batch (approximate)', (v) => positiveInt('--batch-size', v), 1000)
  .option('-o, --out <file>', 'output file (default: standard output)')
  .action(
    async (opts: { tenant?: string; node?: string[]; after?: string[]; batchSize: number; out?: string }) => {
      const [{ exportBatches }, { OWNER_FILE_MODE }] = await Promise.all([
        import('./ledger/export.ts'),
        import('./node/file-modes.ts'),
      ]);
      await withNode(async (node) => {
        const tenant = opts.tenant ?? node.identity.tenant;
        const afterSeq = new Map<string, number>();
        for (const a of opts.after ?? []) {
          const m = /^([^=]+)=(\d+)$/.exec(a);
          if (!m) throw new InvalidArgumentError(`--after must look like node=seq, got ${JSON.stringify(a)}`);
          afterSeq.set(m[1]!, Number(m[2]));
        }
        const out = opts.out
          ? createWriteStream(opts.out, { flags: 'wx', mode: OWNER_FILE_MODE })
          : process.stdout;
        let events = 0;
        for await (const batch of exportBatches(node.ledger, tenant, {
          nodes: opts.node,
          afterSeq,
          maxEvents: opts.batchSize,
        })) {
          const text = batch.join('\n') + '\n';
          if (!out.write(text)) await new Promise<void>((r) => out.once('drain', () => r()));
          events += batch.filter((l) => l.startsWith('{"kind":"event"')).length;
        }
        if (opts.out)
          await new Promise<void>((resolve, reject) =>
            (out as ReturnType<typeof createWriteStream>).end((e?: Error | null) =>
              e ? reject(e) : resolve(),
            ),
          );
        process.stderr.write(`exported ${events} events of tenant ${tenant}\n`);
      });
    },
  );

ledger
  .command('import')
  .description(
    "import another node's events from NDJSON (a file, or - for standard input); each batch is checked and stored atomically",
  )
  .argument('<file>', 'NDJSON file written by `holdfast ledger export`, or - for standard input')
  .option('--tenant <id>', "tenant to import into (default: this node's)", identifier('--tenant'))
  .option(
    '--batch-size <n>',
    'lines per atomic batch (approximate: batches end at a checkpoint)',
    (v) => positiveInt('--batch-size', v),
    1000,
  )
  .action(async (file: string, opts: { tenant?: string; batchSize: number }) => {
    if (file !== '-' && !existsSync(file)) throw new InvalidArgumentError(`${file} does not exist`);
    const { importBatch } = await import('./ledger/import.ts');
    await withNode(async (node) => {
      const tenant = opts.tenant ?? node.identity.tenant;
      const input = file === '-' ? process.stdin : createReadStream(file);
      const lines = createInterface({ input, crlfDelay: Infinity });
      let batch: NumberedLine[] = [];
      let lineNo = 0;
      let previousKind = '';
      const totals = { inserted: 0, alreadyHeld: 0, checkpointsAdded: 0, batches: 0 };
      const flush = async () => {
        if (batch.length === 0) return;
        const r = await importBatch(node.ledger, tenant, batch);
        totals.inserted += r.inserted;
        totals.alreadyHeld += r.alreadyHeld;
        totals.checkpointsAdded += r.checkpointsAdded;
        totals.batches++;
        process.stderr.write(
          `batch ${totals.batches} (to line ${lineNo}): ${r.inserted} new, ${r.alreadyHeld} already held\n`,
        );
        batch = [];
      };
      for await (const text of lines) {
        lineNo++;
        if (text.trim() === '') continue;
        const kind = text.startsWith('{"kind":"checkpoint"') ? 'checkpoint' : 'event';
        // Batches close where an exported batch ends: after its checkpoints, before the next events.
        if (batch.length >= opts.batchSize && previousKind === 'checkpoint' && kind === 'event')
          await flush();
        batch.push({ lineNo, text });
        previousKind = kind;
      }
      await flush();
      console.log(
        `imported ${totals.inserted} new events (${totals.alreadyHeld} already held, ${totals.checkpointsAdded} checkpoints) in ${totals.batches} batches`,
      );
    });
  });

const nodes = program.command('nodes').description("the registry of the tenant's node keys");

nodes
  .command('list')
  .description('list registered nodes and their public keys')
  .option('--tenant <id>', "tenant (default: this node's)", identifier('--tenant'))
  .action(async (opts: { tenant?: string }) => {
    const { loadNodeKeys } = await import('./projections/node-keys.ts');
    await withNode(async (node) => {
      const keys = await loadNodeKeys(node.store.db, opts.tenant ?? node.identity.tenant);
      for (const [id, key] of keys) console.log(`${id}\t${key}`);
    });
  });

nodes
  .command('enrol-token')
  .description(
    'issue a one-time enrolment token for a new site of this provider (run on the hub; shown once)',
  )
  .option(
    '--expires-in <minutes>',
    `minutes until it expires (at most ${MAX_TOKEN_TTL_MINUTES})`,
    (v) => positiveInt('--expires-in', v),
    DEFAULT_TOKEN_TTL_MINUTES,
  )
  .action(async (opts: { expiresIn: number }) => {
    if (opts.expiresIn > MAX_TOKEN_TTL_MINUTES)
      throw new InvalidArgumentError(`--expires-in must be at most ${MAX_TOKEN_TTL_MINUTES} minutes`);
    const { issueEnrolmentToken } = await import('./sync/enrolment.ts');
    await withNode(async (node) => {
      if (node.identity.role === 'site')
        throw new InvalidArgumentError("this node is a site: issue enrolment tokens on the provider's hub");
      const issued = await issueEnrolmentToken(node.store, node.clock, {
        tenant: node.identity.tenant,
        createdBy: `cli:${userInfo().username}@${node.identity.node}`,
        expiresInMinutes: opts.expiresIn,
      });
      console.log(issued.token);
      process.stderr.write(
        `one-time token for provider ${node.identity.tenant}, expires ${issued.expiresAt}; on the new site run:\n  holdfast init --role site --node <site id> --hub <this hub's URL> --token <token>\n`,
      );
    });
  });

nodes
  .command('register')
  .description("vouch for another node's public key, so its events can be imported")
  .requiredOption('--node <id>', "the other node's id", identifier('--node'))
  .requiredOption('--public-key <key>', 'its public key, as printed by its `holdfast init`')
  .addOption(new Option('--role <role>', 'its role').choices(['hub', 'site', 'single']).default('site'))
  .action(async (opts: { node: string; publicKey: string; role: 'hub' | 'site' | 'single' }) => {
    await withNode(async (node) => {
      await node.ledger.append([
        {
          tenant: node.identity.tenant,
          type: 'node.registered',
          actor: `node:${node.identity.node}`,
          payload: { node: opts.node, publicKey: opts.publicKey, role: opts.role },
        },
      ]);
      await node.ledger.checkpointNow(node.identity.tenant);
      console.log(`registered node ${opts.node} for tenant ${node.identity.tenant}`);
    });
  });

nodes
  .command('repin-hub')
  .description(
    "after this site's hub changed its key (sync status hub_key_changed): pin the hub's new key, confirmed with the hub's operator out of band",
  )
  .requiredOption(
    '--public-key <key>',
    "the hub's new public key, as `holdfast nodes list` prints it on the hub",
  )
  .option('--node <id>', "the hub's node id, if it changed (default: the pinned one)", identifier('--node'))
  .option('--url <url>', "the hub's URL, if it changed (default: the pinned one)")
  .option('--confirm', "I confirmed this key with the hub's operator by phone or in person")
  .action(async (opts: { publicKey: string; node?: string; url?: string; confirm?: boolean }) => {
    await withNode(async (node, cfg) => {
      const pinned = node.identity.hub;
      if (!opts.confirm) {
        process.stderr.write(
          `${pc.yellow('nothing changed.')} This site pins hub ${pinned?.node ?? '(none)'} with key ${pinned?.publicKey ?? '(none)'}.
` +
            `A changed hub key means the hub was re-initialised, or something else answers in its place. Read the new key
` +
            `back to the hub's operator by phone or in person (not over the network in question), then run this again with --confirm.
`,
        );
        process.exitCode = 1;
        return;
      }
      const { repinHub } = await import('./sync/enrolment.ts');
      const r = await repinHub(node, cfg.dataDir, {
        node: opts.node,
        publicKey: opts.publicKey,
        url: opts.url,
      });
      if (!r.changed) {
        console.log(`hub ${r.after.node} at ${r.after.url} is pinned with this key already: nothing changed`);
        return;
      }
      console.log(
        `re-pinned the hub: ${r.before?.node} ${r.before?.publicKey} at ${r.before?.url} -> ${r.after.node} ${r.after.publicKey} at ${r.after.url}; restart \`holdfast serve\` to sync with it`,
      );
    });
  });

nodes
  .command('clear-sync-alarm')
  .description(
    "clear this node's lasting sync alarm (history_refused) once it has been dealt with; the reason is kept",
  )
  .requiredOption('--reason <text>', 'what was done about it (kept with the alarm)')
  .option('--kind <kind>', 'the alarm to clear', 'history_refused')
  .action(async (opts: { reason: string; kind: string }) => {
    if (opts.reason.trim().length < 5)
      throw new InvalidArgumentError('--reason must say what was done (at least 5 characters)');
    const { SyncStatusStore } = await import('./sync/status.ts');
    await withNode(async (node) => {
      const cleared = await new SyncStatusStore(node.store, node.clock).clearAlarm(
        node.identity.tenant,
        opts.kind,
        `cli:${userInfo().username}@${node.identity.node}`,
        opts.reason.trim().slice(0, 500),
      );
      if (cleared === 0) {
        console.log(`no ${opts.kind} alarm is raised on this node: nothing changed`);
        return;
      }
      console.log(
        `cleared the ${opts.kind} alarm; it is raised again if the hub refuses this node's history at a later round`,
      );
    });
  });

const postcodes = program
  .command('postcodes')
  .description('the node’s postcode table (postcodes to places, for the Directory of Services)');

postcodes
  .command('import')
  .description(
    'import postcodes from a CSV in the ONS Postcode Directory layout (pcds, lat, long): streamed, all or nothing',
  )
  .argument('<file>', 'the CSV file (the full ONSPD has about 2.7 million rows)')
  .action(async (file: string) => {
    const [{ PostcodeStore }, { DirectoryFileError }] = await Promise.all([
      import('./directory/postcodes.ts'),
      import('@holdfast/core/directory/files'),
    ]);
    await withNode(async (node) => {
      const store = new PostcodeStore(node.store);
      try {
        const result = await store.import(createReadStream(file));
        console.log(
          `imported ${result.imported.toLocaleString('en-GB')} postcodes of ${result.rows.toLocaleString('en-GB')} rows in ${(result.ms / 1000).toFixed(1)} s (${result.withoutPlace.toLocaleString('en-GB')} without a place skipped); the table holds ${(await store.count()).toLocaleString('en-GB')}`,
        );
      } catch (error) {
        if (!(error instanceof DirectoryFileError)) throw error;
        for (const p of error.problems) console.error(`line ${p.line}, ${p.field}: ${p.message}`);
        throw new Error('the postcode file was refused: nothing was imported');
      }
    });
  });

const formulary = program
  .command('formulary')
  .description('the formulary prescribers choose from (a directory of JSON files: docs/FORMULARY.md)');

formulary
  .command('check')
  .description(
    'check a formulary directory (schema, duplicate codes, dose bands, interactions, controlled drugs); reads files only',
  )
  .argument('[dir]', 'the formulary directory (default: the sample formulary)')
  .action(async (dir: string | undefined) => {
    const { loadFormularyDir, SAMPLE_FORMULARY_DIR } = await import('./prescribing/formulary-files.ts');
    const result = await loadFormularyDir(dir ?? SAMPLE_FORMULARY_DIR);
    if (!result.ok) {
      for (const p of result.problems)
        console.error(
          `${p.file || '(formulary)'}${p.field ? `: ${p.field}` : ''}${p.code ? ` [${p.code}]` : ''}: ${p.message}`,
        );
      throw new Error(`the formulary in ${result.dir} has ${result.problems.length} problem(s)`);
    }
    const f = result.formulary;
    const controlled = f.medicines.filter((m) => m.controlledSchedule !== null).length;
    console.log(
      `${f.title} (${f.id} ${f.version}): ${f.medicines.length} medicines (${controlled} controlled) in ${result.files.length} files, no problems${f.notClinicallyValidated && !/not clinically validated/i.test(f.title) ? ' — not clinically validated' : ''}`,
    );
  });

const providers = program
  .command('providers')
  .description('the providers this node serves (a hosted node may serve several)');

providers
  .command('add')
  .description(
    "add a provider: its own chain (begun with this node's key) and its own key for account secrets; prints nothing secret",
  )
  .argument('<id>', 'provider id: lower-case letters, digits and -; user names of the provider end in @<id>')
  .requiredOption('--name <name>', "the provider's name")
  .action(async (id: string, opts: { name: string }) => {
    const { addProvider } = await import('./accounts/providers.ts');
    await withAccounts(async (accounts, node, actor) => {
      await addProvider(node, accounts, { tenant: id, name: opts.name, actor });
      console.log(
        `added provider ${id} (${opts.name.trim()}); add its first admin with: holdfast users add --provider ${id} --roles provider_admin …`,
      );
    });
  });

providers
  .command('rotate-key')
  .description(
    "a new key for the provider's account secrets (password hashes, TOTP secrets): new account events are sealed under it, older ones stay readable (keys kept by id); then give each site the new keys with `holdfast providers fetch-keys`",
  )
  .requiredOption('--provider <id>', 'the provider whose key to rotate', identifier('--provider'))
  .action(async (opts: { provider: string }) => {
    await withAccounts(async (accounts, node) => {
      const { rotateProviderKey } = await import('./accounts/providers.ts');
      const { keyId, keyIds } = await rotateProviderKey(node, accounts, opts.provider);
      console.log(
        `provider ${opts.provider}: new current key ${keyId} (keys held: ${keyIds.join(', ')}); ` +
          'each site takes it with: holdfast providers fetch-keys --token <a new enrolment token for the site>',
      );
    });
  });

providers
  .command('fetch-keys')
  .description(
    "on a site: take the provider's current keys from the hub (after a rotation there), by the enrolment path with a new one-time token",
  )
  .requiredOption(
    '--token <token>',
    'a one-time enrolment token issued on the hub (holdfast nodes enrol-token)',
  )
  .action(async (opts: { token: string }) => {
    await withNode(async (node) => {
      const { fetchProviderKeys } = await import('./sync/provider-keys.ts');
      const { current, keyIds } = await fetchProviderKeys(node, opts.token.trim());
      console.log(
        `provider ${node.identity.tenant}: current key ${current} (keys held: ${keyIds.join(', ')})`,
      );
    });
  });

providers
  .command('register-node')
  .description(
    "register this node's key in the chains of providers made before `providers add` (done at every start too), so that verify is clean",
  )
  .action(async () => {
    await withNode(async (node) => {
      const { registerInOldProviders } = await import('./accounts/providers.ts');
      const done = await registerInOldProviders(node);
      console.log(
        done.length > 0
          ? `registered ${node.identity.node} in: ${done.join(', ')}`
          : 'nothing to do: this node is registered in every chain it writes',
      );
    });
  });

const users = program.command('users').description("this provider's staff accounts");

async function withAccounts<T>(
  fn: (accounts: AccountsService, node: HoldfastNode, actor: string) => Promise<T>,
): Promise<T> {
  const [{ AccountsService }, { SessionStore }] = await Promise.all([
    import('./accounts/service.ts'),
    import('./auth/sessions.ts'),
  ]);
  return withNode((node) =>
    fn(
      new AccountsService(
        node.store,
        node.ledger,
        new SessionStore(node.store, node.clock),
        node.providerKeys,
      ),
      node,
      `cli:${userInfo().username}@${node.identity.node}`,
    ),
  );
}

async function userByName(accounts: AccountsService, tenant: string, username: string) {
  const user = await accounts.findForSignIn(username);
  if (!user || user.tenant !== tenant)
    throw new InvalidArgumentError(`no user ${username} in provider ${tenant}`);
  return user;
}

users
  .command('add')
  .description(
    'create a user with a one-time initial password (printed once); they enrol a second factor at first sign-in',
  )
  .requiredOption('--username <name>', 'sign-in name, e.g. j.smith@northshire')
  .requiredOption('--name <display>', 'name shown to colleagues')
  .requiredOption('--roles <roles>', `comma-separated: ${ROLES.join(', ')}`, (v) => parseRoles(v))
  .option('--sites <ids>', 'comma-separated site ids (default: every site of the provider)')
  .option('--reason <text>', 'why: required for a clinical role (recorded, and shown to the administrators)')
  .option('--provider <id>', "the user's provider (default: this node's own)", identifier('--provider'))
  .action(
    async (opts: {
      username: string;
      name: string;
      roles: Role[];
      sites?: string;
      reason?: string;
      provider?: string;
    }) => {
      await withAccounts(async (accounts, node, actor) => {
        const tenant = opts.provider ?? node.identity.tenant;
        if (!(await accounts.providerExists(tenant)))
          throw new InvalidArgumentError(`no provider ${tenant} on this node (see holdfast providers add)`);
        const siteIds = opts.sites
          ? opts.sites.split(',').map((s) => s.trim())
          : (await accounts.sites(tenant)).map((s) => s.siteId);
        const password = `${randomBytes(12).toString('base64url')}`;
        const user = await accounts.create(
          tenant,
          {
            username: opts.username,
            displayName: opts.name,
            roles: opts.roles,
            siteIds,
            password,
            ...(opts.reason ? { reason: opts.reason } : {}),
            requireClinicalReason: true,
          },
          actor,
        );
        console.log(`created ${user.username} (${user.roles.join(', ')}) in ${tenant}`);
        console.log(`initial password, shown once: ${password}`);
      });
    },
  );

users
  .command('disable')
  .description('disable a user; their sessions end at once')
  .requiredOption('--username <name>', 'the user')
  .requiredOption('--reason <text>', 'why (recorded in the ledger)')
  .action(async (opts: { username: string; reason: string }) => {
    await withAccounts(async (accounts, node, actor) => {
      const user = await userByName(accounts, node.identity.tenant, opts.username);
      await accounts.disable({ tenant: node.identity.tenant, actor }, user.userId, opts.reason);
      console.log(`disabled ${user.username}`);
    });
  });

users
  .command('reset-mfa')
  .description("remove a user's second factors so they enrol again at next sign-in (needs a reason; audited)")
  .requiredOption('--username <name>', 'the user')
  .requiredOption('--reason <text>', 'why (recorded in the ledger)')
  .action(async (opts: { username: string; reason: string }) => {
    if (opts.reason.trim().length < 3)
      throw new InvalidArgumentError('--reason must say why (at least 3 characters)');
    await withAccounts(async (accounts, node, actor) => {
      const user = await userByName(accounts, node.identity.tenant, opts.username);
      const { enrolmentCode } = await accounts.resetMfa(
        { tenant: node.identity.tenant, actor },
        user.userId,
        opts.reason.trim(),
      );
      console.log(`second factors of ${user.username} removed; their sessions ended`);
      console.log(`one-time enrolment code, shown once: ${enrolmentCode}`);
      console.log(
        'hand it over out of band (in person or by phone, not by e-mail): they give it, or an old recovery code, before enrolling a new factor',
      );
    });
  });

users
  .command('reset-password')
  .description(
    'set a one-time temporary password (printed once) that the user must change at next sign-in; their sessions end',
  )
  .requiredOption('--username <name>', 'the user')
  .action(async (opts: { username: string }) => {
    await withAccounts(async (accounts, node, actor) => {
      const user = await userByName(accounts, node.identity.tenant, opts.username);
      const { password } = await accounts.resetPassword({ tenant: node.identity.tenant, actor }, user.userId);
      console.log(`password of ${user.username} reset; their sessions ended`);
      console.log(`temporary password, shown once: ${password}`);
      console.log('they must choose their own at next sign-in');
    });
  });

program
  .command('simulate')
  .description(
    "drive a node's real HTTP API with simulated calls, triage and clinician work (a live queue for demos)",
  )
  .option('--url <url>', 'the node to drive (default: http://localhost:<config port>)')
  .option(
    '--calls-per-hour <n>',
    'mean rate of calls (they arrive at random)',
    (v) => positiveNumber('--calls-per-hour', v),
    120,
  )
  .addOption(
    new Option('--duration <time>', 'how long to run, e.g. 90s, 30m, 2h (at most 24h)')
      .argParser((v) => duration(v))
      .default(3_600_000, '1h'),
  )
  .option('--until-count <n>', 'stop after this many calls', (v) => positiveInt('--until-count', v))
  .option(
    '--seed <n>',
    'seed of the random choices; the same seed gives the same calls (default: random, printed)',
    (v) => seedValue(v),
  )
  .option('--adviser-username <name>', 'the health adviser who takes the calls', 'health-adviser@northshire')
  .option('--clinician-username <name>', 'the clinician who works the queue', 'clinician@northshire')
  .option(
    '--password <password>',
    "both users' password (default: HOLDFAST_DEMO_PASSWORD, as printed by `npm start`)",
  )
  .option('--clinician-password <password>', "the clinician's password, when it differs")
  .option(
    '--backlog <n>',
    'cases the clinician leaves waiting (default: about 5 minutes of arrivals, 3 to 20)',
    (v) => wholeNumber('--backlog', v),
  )
  .option('--allow-remote', 'allow a --url that is not a loopback address (the calls it makes are fake)')
  .action(
    async (opts: {
      url?: string;
      callsPerHour: number;
      duration: number;
      untilCount?: number;
      seed?: number;
      adviserUsername: string;
      clinicianUsername: string;
      password?: string;
      clinicianPassword?: string;
      backlog?: number;
      allowRemote?: boolean;
    }) => {
      const cfg = config();
      const password = opts.password ?? process.env.HOLDFAST_DEMO_PASSWORD;
      if (!password)
        throw new InvalidArgumentError(
          'give the password with --password or HOLDFAST_DEMO_PASSWORD (the demo password is printed by the first `npm start`)',
        );
      let url: URL;
      try {
        url = new URL(opts.url ?? `http://localhost:${cfg.port}`);
      } catch {
        throw new InvalidArgumentError(`--url must be a URL such as http://localhost:8080, got ${opts.url}`);
      }
      const seed = opts.seed ?? randomBytes(4).readUInt32BE(0);
      const { formatSummary, runSimulation } = await import('./simulate/simulator.ts');
      const controller = new AbortController();
      const interrupt = () => {
        process.stderr.write('stopping: finishing the calls in hand (Ctrl-C again to quit at once)\n');
        controller.abort();
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', interrupt);
      process.once('SIGTERM', () => controller.abort());
      const summary = await runSimulation({
        url: url.href,
        adviser: { username: opts.adviserUsername, password },
        clinician: { username: opts.clinicianUsername, password: opts.clinicianPassword ?? password },
        stateFile: join(cfg.dataDir, 'simulator.json'),
        callsPerHour: opts.callsPerHour,
        durationMs: opts.duration,
        untilCount: opts.untilCount,
        seed,
        backlog: opts.backlog,
        allowRemote: opts.allowRemote,
        signal: controller.signal,
        progress: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
      });
      process.off('SIGINT', interrupt);
      console.log(formatSummary(summary));
      process.exitCode = summary.stoppedBy === 'errors' || summary.calls.triaged === 0 ? 1 : 0;
    },
  );

const drill = program
  .command('drill')
  .description('rehearse a disaster on this machine and report the figures');

drill
  .command('supplier-loss')
  .description(
    'a hub (PostgreSQL) and two sites (SQLite) as real processes on loopback; calls at both sites; the hub is backed up, killed and its data deleted; the sites carry on; a new hub is restored from the backup plus the sites; then every acknowledged case is looked for on every node. Last line: one JSON object',
  )
  .option('--quick', 'short phases (under two minutes): what CI runs')
  .option('--keep', 'keep the work directory (stores, backup, logs) and print where it is')
  // Test-only: proves the count can fail (deletes one acknowledged case from a site before counting).
  .addOption(new Option('--inject-loss').hideHelp())
  .action(async (opts: { quick?: boolean; keep?: boolean; injectLoss?: boolean }) => {
    const { drillPassed, formatDrill, runSupplierLossDrill } = await import('./drill/supplier-loss.ts');
    const report = await runSupplierLossDrill({
      quick: !!opts.quick,
      keep: opts.keep,
      injectLoss: opts.injectLoss,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    console.log(formatDrill(report));
    const { detail, ...figures } = report;
    console.log(
      JSON.stringify({
        ...figures,
        problems: detail.problems.length,
        ...(detail.beforeInjectedLoss ? { before_injected_loss: detail.beforeInjectedLoss } : {}),
      }),
    );
    process.exitCode = drillPassed(report) ? 0 : 1;
  });

function parseRoles(value: string): Role[] {
  const roles = value.split(',').map((r) => r.trim().replace(/-/g, '_'));
  const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (bad.length > 0 || roles.length === 0)
    throw new InvalidArgumentError(`unknown role(s) ${bad.join(', ')}; allowed: ${ROLES.join(', ')}`);
  return roles as Role[];
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new InvalidArgumentError('--port must be a whole number from 0 to 65535');
  return n;
}

function positiveInt(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError(`${flag} must be a whole number of at least 1`);
  return Number(value);
}

function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > 1_000_000)
    throw new InvalidArgumentError(`${flag} must be a number more than 0 and at most 1000000`);
  return n;
}

function wholeNumber(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${flag} must be a whole number`);
  return Number(value);
}

function seedValue(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 0xffffffff)
    throw new InvalidArgumentError('--seed must be a whole number from 0 to 4294967295');
  return Number(value);
}

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new InvalidArgumentError(`--duration: ${(error as Error).message}`);
  }
}

registerBackupCommands(program, { withNode });
registerTopUpCommand(program, { withNode });
registerReceiverCommands(program);

program.hook('preAction', (_root, action) => {
  const path: string[] = [];
  for (let c: Command | null = action; c && c !== program; c = c.parent) path.unshift(c.name());
  const key = path.join(' ');
  currentUse = { purpose: `holdfast ${key}`, ...NODE_USES[key] };
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(pc.red(error.message));
    process.exit(2);
  }
  if (error instanceof DomainError || error instanceof InvalidArgumentError) {
    console.error(pc.red(`holdfast: ${error.message}`));
    // A summary alone does not say what to fix: list every field problem (at most 50).
    const issues =
      error instanceof ValidationError || error instanceof ImportRefusedError ? error.issues : [];
    for (const issue of issues.slice(0, 50)) console.error(`  ${issue.path}: ${issue.message}`);
    process.exit(error instanceof InvalidArgumentError ? 2 : 1);
  }
  if (error instanceof Error) {
    console.error(pc.red(`holdfast: ${error.message}`));
    process.exit(1);
  }
  throw error;
}
