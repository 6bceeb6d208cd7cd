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
export async function checkNodeIntegrity(node: HoldfastNode): Promise<IntegrityReport> {
  const chains = await verifyStore(node.store, ledgerCrypto);
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
 * Start-up: a node whose chains or projections do not check out refuses to serve (its users would
 * be authorised from tampered state and its next checkpoint would seal the tampering).
 */
export async function refuseToStartIfTampered(
  node: HoldfastNode,
  logger: Pick<Logger, 'info' | 'error'>,
): Promise<IntegrityReport> {
  const report = await checkNodeIntegrity(node);
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
  last: IntegrityReport | null = null;

  constructor(
    private readonly node: HoldfastNode,
    private readonly logger: Pick<Logger, 'info' | 'error'>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
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
      const report = await checkNodeIntegrity(this.node);
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
