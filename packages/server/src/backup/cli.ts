import type { Command } from 'commander';
import pc from 'picocolors';
import type { Progress } from '../cli/progress.ts';
import { loadConfig, type HoldfastConfig } from '../config.ts';
import type { HoldfastNode } from '../node/node.ts';
import type { RestoreReport } from './restore.ts';

/** What the backup commands run, loaded when one runs (not by every `holdfast` command: see cli.ts). */
async function backupModules() {
  const [
    { createProgress },
    { runBackup },
    { resolveKeySource },
    { restoreBackup },
    { topUpFromPeer },
    { verifyBackup },
  ] = await Promise.all([
    import('../cli/progress.ts'),
    import('./backup.ts'),
    import('./keys.ts'),
    import('./restore.ts'),
    import('./top-up.ts'),
    import('./verify-backup.ts'),
  ]);
  return { createProgress, runBackup, resolveKeySource, restoreBackup, topUpFromPeer, verifyBackup };
}

interface KeyOptions {
  passphraseFile?: string;
  keyFile?: string;
}

const KEY_HELP = {
  passphraseFile:
    'file holding the passphrase that wraps the backup data key (or set HOLDFAST_BACKUP_PASSPHRASE)',
  keyFile: 'file holding a 32-byte key that wraps the backup data key (raw, hex or base64)',
};

/**
 * `holdfast backup --to DIR`, `holdfast backup verify DIR` and `holdfast restore --from DIR`.
 * Secrets come from files or the environment, never from an argument.
 */
export function registerBackupCommands(
  program: Command,
  deps: {
    withNode<T>(fn: (node: HoldfastNode, cfg: HoldfastConfig) => Promise<T>): Promise<T>;
  },
): void {
  const backup = program
    .command('backup')
    .description(
      "back up this node's ledger and identity: incremental, encrypted, signed; never overwrites a file (`backup verify DIR` checks one)",
    )
    .option('--to <dir>', 'backup directory (created if absent; earlier backups in it are kept)')
    .option('--passphrase-file <file>', KEY_HELP.passphraseFile)
    .option('--key-file <file>', KEY_HELP.keyFile)
    .action(async (opts: KeyOptions & { to?: string }) => {
      if (!opts.to) throw new Error('give the backup directory with --to DIR');
      const { createProgress, resolveKeySource, runBackup } = await backupModules();
      const key = resolveKeySource(opts);
      await deps.withNode(async (node, cfg) => {
        const progress = createProgress('backing up');
        const r = await runBackup(node, {
          dir: opts.to!,
          key,
          dataDir: cfg.dataDir,
          onProgress: (d, t) => progress.update(d, t),
          log: (line) => process.stderr.write(`${pc.yellow(line)}\n`),
        });
        progress.stop();
        console.log(
          `backup ${r.file} written${r.basedOn ? ` (after manifest ${r.basedOn})` : ' (the first in this directory)'}: ` +
            `${r.newEvents} new events checked and stored, ${r.totalEvents} in all; ` +
            `${r.newChunks} new chunks (${r.newBytes} bytes), ${r.reusedChunks} reused; ` +
            `${r.checkpointsChecked.own + r.checkpointsChecked.witnessed} new checkpoint signatures checked; ${(r.ms / 1000).toFixed(1)} s`,
        );
      });
    });

  backup
    .command('verify')
    .description(
      'check a backup: manifest signatures and links, every chunk, every event hash and link, every checkpoint',
    )
    .argument('<dir>', 'backup directory')
    .option('--passphrase-file <file>', KEY_HELP.passphraseFile)
    .option('--key-file <file>', KEY_HELP.keyFile)
    .option(
      '--all',
      'walk every manifest in full (default: the newest sound one; the older list a prefix of it)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, opts: KeyOptions & { all?: boolean; json?: boolean }) => {
      const { createProgress, resolveKeySource, verifyBackup } = await backupModules();
      const progress = createProgress('verifying backup');
      // `backup` has the same key options: whichever of the two commander gave them to counts.
      const key = resolveKeySource({ ...backup.opts<KeyOptions>(), ...opts });
      const report = await verifyBackup(dir, key, {
        all: opts.all,
        onProgress: (d, t) => progress.update(d, t),
      });
      progress.stop();
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else {
        for (const m of report.manifests) {
          const what = m.walked
            ? `${m.walk!.events} events in ${m.walk!.chains.length} chains, ${m.walk!.checkpoints.own} own and ${m.walk!.checkpoints.witnessed} witnessed checkpoints verified`
            : `${m.events ?? '?'} events`;
          const status = m.problems.length === 0 ? pc.green('ok') : pc.red(`BAD: ${m.problems[0]}`);
          console.log(`${m.file} (${m.createdAt ?? 'unreadable'}): ${what}: ${status}`);
          for (const p of m.problems.slice(1)) console.log(`    also: ${p}`);
        }
        console.log(`${report.chunksChecked} distinct chunks decrypted and matched to their addresses`);
        console.log(
          report.ok
            ? pc.green(`backup verified: manifest ${report.restorable} restores`)
            : pc.red(
                `PROBLEMS: first: ${report.firstProblem}; ${report.restorable ? `manifest ${report.restorable} still restores` : 'no manifest restores'}`,
              ),
        );
      }
      process.exitCode = report.ok ? 0 : 1;
    });

  program
    .command('restore')
    .description(
      'rebuild a node from a backup into an empty data directory (and database): verifies every chain and checkpoint, rebuilds projections, tops up from live peers',
    )
    .requiredOption('--from <dir>', 'backup directory')
    .option('--peer <url...>', 'live peers to sync from afterwards (URL, or node-id=URL)')
    .option('--store <kind>', 'sqlite or postgres (default: from config)')
    .option('--database-url <url>', 'PostgreSQL URL for --store postgres (or HOLDFAST_DATABASE_URL)')
    .option('--passphrase-file <file>', KEY_HELP.passphraseFile)
    .option('--key-file <file>', KEY_HELP.keyFile)
    .option('--json', 'print the report as JSON')
    .action(
      async (
        opts: KeyOptions & {
          from: string;
          peer?: string[];
          store?: string;
          databaseUrl?: string;
          json?: boolean;
        },
      ) => {
        const global = program.opts<{ config?: string; dataDir?: string }>();
        const overrides: Partial<HoldfastConfig> = {};
        if (global.dataDir) overrides.dataDir = global.dataDir;
        if (opts.store) overrides.store = opts.store as HoldfastConfig['store'];
        if (opts.databaseUrl) overrides.databaseUrl = opts.databaseUrl;
        const cfg = loadConfig({ file: global.config, overrides });
        const { createProgress, resolveKeySource, restoreBackup, topUpFromPeer } = await backupModules();
        const key = resolveKeySource(opts);
        let progress: Progress | null = null;
        let phase = '';
        const report = await restoreBackup({
          from: opts.from,
          key,
          target: cfg,
          peers: opts.peer ?? [],
          topUp: topUpFromPeer,
          log: (line) => process.stderr.write(`${pc.yellow(line)}\n`),
          onProgress: (p, d, t) => {
            if (p !== phase) {
              progress?.stop();
              progress = createProgress(p);
              phase = p;
            }
            progress!.update(d, t);
          },
        });
        (progress as Progress | null)?.stop();
        if (opts.json) console.log(JSON.stringify(report, null, 2));
        else printRestore(report, cfg);
      },
    );
}

/**
 * `holdfast top-up --peer URL`: what a restore does with each `--peer`, run later for a peer that was
 * down then (or any time): syncs this node with the peer, as itself, over signed HTTP.
 */
export function registerTopUpCommand(
  program: Command,
  deps: {
    withNode<T>(fn: (node: HoldfastNode, cfg: HoldfastConfig) => Promise<T>): Promise<T>;
  },
): void {
  program
    .command('top-up')
    .description(
      'sync this node once with live peers (URL, or node-id=URL): for a peer a restore had to skip',
    )
    .requiredOption('--peer <url...>', 'peers to sync with (URL, or node-id=URL)')
    .action(async (opts: { peer: string[] }) => {
      const { topUpFromPeer } = await backupModules();
      await deps.withNode(async (node) => {
        let failed = 0;
        for (const peer of opts.peer) {
          try {
            const r = await topUpFromPeer(node, peer);
            console.log(`from peer ${r.peer}: ${r.events} events`);
          } catch (error) {
            failed++;
            console.log(pc.yellow(`peer ${peer} SKIPPED: ${(error as Error).message}`));
          }
        }
        process.exitCode = failed > 0 ? 1 : 0;
      });
    });
}

function printRestore(r: RestoreReport, cfg: HoldfastConfig): void {
  for (const x of r.rejected) console.log(pc.yellow(`not used: ${x.file}: ${x.problem}`));
  for (const w of r.warnings) console.log(pc.yellow(`warning: ${w}`));
  console.log(
    `restored node ${pc.bold(r.node)} of tenant ${pc.bold(r.tenant)} into ${cfg.dataDir} on ${r.store}, from ${r.manifestFile} (${r.createdAt})` +
      (r.rejected.length > 0
        ? pc.yellow(` — the newest usable manifest; ${r.rejected.length} newer not used`)
        : ''),
  );
  console.log(
    `verified from the backup: ${r.events} events in ${r.chains.length} chains (${r.chains.map((c) => `${c.node} to seq ${c.lastSeq}`).join(', ')}); ` +
      `every hash, link and clock; ${r.checkpoints.own} own and ${r.checkpoints.witnessed} witnessed checkpoint signatures; ` +
      `${Math.round(r.backupEventsPerSecond)} events/s (load, verify and projections)`,
  );
  for (const t of r.toppedUp)
    console.log(
      `from peer ${t.peer}: ${t.events} events, each checked on import (hash, link, signature), in ${(t.ms / 1000).toFixed(1)} s (${Math.round(t.eventsPerSecond)} events/s)`,
    );
  for (const p of r.skippedPeers)
    console.log(
      pc.yellow(
        `peer ${p.peer} SKIPPED: ${p.problem}\n  the restore went on without it; when it answers, run: holdfast top-up --peer ${p.peer}`,
      ),
    );
  if (r.peerEvents > 0 || r.skippedPeers.length > 0)
    console.log(
      `now held: ${r.finalChains.map((c) => `${c.node} to seq ${c.lastSeq}`).join(', ')} (${r.events} events from the backup, ${r.peerEvents} from peers)`,
    );
  console.log(
    `time: ${(r.totalMs / 1000).toFixed(1)} s (load and verify ${(r.loadMs / 1000).toFixed(1)} s, projections ${(r.rebuildMs / 1000).toFixed(1)} s, peers ${(r.topUpMs / 1000).toFixed(1)} s), ${Math.round(r.eventsPerSecond)} events/s overall`,
  );
}
