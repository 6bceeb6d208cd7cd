import { DISK_FULL_MESSAGE, storeFailureOf, type StoreFailure } from '../store/failures.ts';

export interface WriteFailure extends StoreFailure {
  /** What /health and the logs say, in plain words. */
  problem: string;
  /** Appends failed in a row since the last one that committed. */
  failedAppends: number;
}

/**
 * Whether this node can append to its ledger, as the last appends showed. A node that cannot write
 * must say so (on /health), or a load balancer keeps sending it calls it cannot keep.
 *
 * An append refused by its own guard (the case moved on, a conflict) is not a failure of the node
 * and is never reported here. A failure is cleared by the next commit that succeeds.
 */
export class WriteHealth {
  private current: WriteFailure | null = null;

  get failure(): WriteFailure | null {
    return this.current;
  }

  appendFailed(error: unknown): void {
    const failure = storeFailureOf(error) ?? {
      kind: 'write_failed' as const,
      code: 'unknown',
      // Not a store error: its message could quote anything, so only its kind is reported.
      message: error instanceof Error ? `${error.name} (see the log)` : 'see the log',
    };
    this.current = {
      ...failure,
      problem:
        failure.kind === 'disk_full'
          ? DISK_FULL_MESSAGE
          : `the node cannot append to its ledger (${failure.code}: ${failure.message})`,
      failedAppends: (this.current?.failedAppends ?? 0) + 1,
    };
  }

  committed(): void {
    this.current = null;
  }
}
