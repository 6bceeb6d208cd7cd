import type { Logger } from 'pino';
import { LedgerIntegrityError } from '../ledger/ledger.ts';
import { verifyStore, type VerifyReport } from '../ledger/verify.ts';
import {
  checkProjections,
  describeProjectionCheck,
  type ProjectionCheckReport,
} from '../projections/check.ts';
import { ledgerCrypto } from './crypto.ts';
import type { HoldfastNode } from './node.ts';

export interface IntegrityReport {
  ok: boolean;
  chains: VerifyReport;
  projections: ProjectionCheckReport;
  /** One line per fault: the chain and seq (or seq range), or the projection, table, key and column. */
  problems: string[];
  checkedAt: string;
}

/**
 * Everything a node's security decisions rest on, checked against the ledger: every chain re-hashed
 * with its checkpoints, then every projection folded afresh and compared with the live tables.
 */
export async function checkNodeIntegrity(
  node: HoldfastNode,
  /** Threads that verify chains at once (config `verifyWorkers`; default the cores available). */
  verifyWorkers?: number,
): Promise<IntegrityReport> {
  const chains = await verifyStore(node.store, ledgerCrypto, { workers: verifyWorkers });
  const projections = await checkProjections(node.store, node.projections.projections, node.registry);
  const problems = chains.faults.map((f) => {
    const where = f.fromSeq < f.seq ? `in seq ${f.fromSeq}-${f.seq}` : `at seq ${f.seq}`;
    return `chain ${f.tenant} / ${f.node} is bad ${where}: ${f.problem}`;
  });
  if (!projections.ok) problems.push(describeProjectionCheck(projections));
  return {
    ok: problems.length === 0,
    chains,
    projections,
    problems,
    checkedAt: new Date(node.clock.nowMs()).toISOString(),
  };
}

/**
 * Above this many events the start-up check runs in the background instead of before listening:
 * it takes about as long as a rebuild (100,000 events: 28 s on the shared 2-core machine under
 * load), and an urgent-care node must come back quickly. Until it finishes the node does serve, but
 * authorisation never reads the projection tables (`accounts/checked.ts`) and the node re-checks its
 * own unsealed events before signing (`Ledger.checkUnsealedTail`); a fault then halts the ledger.
 */
export const STARTUP_CHECK_MAX_EVENTS = 200_000;

/**
 * Start-up: a node whose chains or projections do not check out refuses to serve (its next
 * checkpoint would seal the tampering). A large store is checked in the background by `monitor`.
 */
export async function startupIntegrityCheck(
  node: HoldfastNode,
  logger: Pick<Logger, 'info' | 'warn' | 'error'>,
  monitor: IntegrityMonitor,
): Promise<void> {
  const { n } = await node.store.db
    .selectFrom('ledger_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  if (Number(n) > STARTUP_CHECK_MAX_EVENTS) {
    logger.warn(
      { events: Number(n) },
      'large store: the integrity check runs in the background; the ledger halts if it fails',
    );
    void monitor.runOnce();
    return;
  }
  await refuseToStartIfTampered(node, logger, monitor.verifyWorkers);
}

/** Runs both checks and throws, naming every fault, if any fails. */
export async function refuseToStartIfTampered(
  node: HoldfastNode,
  logger: Pick<Logger, 'info' | 'error'>,
  verifyWorkers?: number,
): Promise<IntegrityReport> {
  const report = await checkNodeIntegrity(node, verifyWorkers);
  if (!report.ok) {
    logger.error({ problems: report.problems }, 'INTEGRITY CHECK FAILED: refusing to start');
    throw new LedgerIntegrityError(
      `refusing to start: the store does not match its ledger:\n  ${report.problems.join('\n  ')}\nrun holdfast verify --projections; restore from a backup or rebuild projections once the cause is known`,
    );
  }
  logger.info(
    { events: report.chains.eventsChecked, projectionCheckMs: report.projections.durationMs },
    'integrity check passed',
  );
  return report;
}

/**
 * The periodic check while serving. A fault is logged at error level, kept for `/health`, and halts
 * the ledger: the node stops appending and signing, because a checkpoint now would seal tampered
 * history with its key. Only a restart (after the operator repaired or restored the store) clears it.
 */
export class IntegrityMonitor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<IntegrityReport | null> | null = null;
  private stopped = false;
  last: IntegrityReport | null = null;

  constructor(
    private readonly node: HoldfastNode,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
    private readonly intervalMs: number,
    readonly verifyWorkers?: number,
  ) {}

  /**
   * Checks every `intervalMs`, but never sooner than 20 times the last check's duration after it
   * ended: a check is a full fold of the ledger (about as long as `holdfast rebuild`: 100,000 events
   * took 28 s on the shared 2-core machine under load), so on a large store it stays under 5 % of
   * one core instead of running back to back.
   */
  start(): void {
    this.stopped = false;
    this.schedule(this.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const started = performance.now();
      void this.runOnce().then(() =>
        this.schedule(Math.max(this.intervalMs, 20 * (performance.now() - started))),
      );
    }, delayMs);
    this.timer.unref();
  }

  /** One check; a check still running is joined rather than started twice. */
  runOnce(): Promise<IntegrityReport | null> {
    this.running ??= this.check().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async check(): Promise<IntegrityReport | null> {
    try {
      const report = await checkNodeIntegrity(this.node, this.verifyWorkers);
      this.last = report;
      if (report.ok) {
        this.logger.info(
          {
            events: report.chains.eventsChecked,
            projectionCheckMs: report.projections.durationMs,
          },
          'integrity check passed',
        );
      } else {
        const reason = `integrity check failed: ${report.problems.join('; ')}`;
        this.logger.error(
          { problems: report.problems },
          'INTEGRITY CHECK FAILED: the store was tampered with',
        );
        this.node.ledger.halt(reason);
      }
      return report;
    } catch (error) {
      this.logger.error({ err: error }, 'integrity check could not run');
      return null;
    }
  }
}
