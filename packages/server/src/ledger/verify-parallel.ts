import type { Worker } from 'node:worker_threads';
import type { Checkpoint, LedgerCrypto } from '@holdfast/core';
import { startBundledWorker } from '../node/threads.ts';
import type { WorkerStoreSource } from '../store/store.ts';
import {
  bodyStats,
  checkRange,
  type ChainPosition,
  type RangeAnswer,
  type RangeReader,
  type RangeResult,
  type RangeTask,
} from './verify-range.ts';
import type { FromVerifyWorker, ToVerifyWorker } from './verify-worker.ts';

/**
 * verify over worker threads. A single thread is bound by reading rows and building their canonical
 * bodies (docs/BENCHMARKS.md, Ledger), so chains, and seq ranges of a long chain, are checked at once
 * by workers that each open the store themselves (verify-worker.ts). A range's worker starts from the
 * event just before it as the store holds it; this coordinator then joins the ranges in seq order:
 * each must start where the one before it ended (same seq, hash and clock) and the one before it must
 * have reached its last seq, so together they cover the chain without a gap. Where they do not, it
 * checks on from the last good position in its own thread: the report is the one a single pass gives.
 *
 * The calling thread checks ranges too (it would only wait otherwise), so `workers` threads in all
 * check at once, `workers - 1` of them worker threads. Workers are kept between checks (idle ones do
 * not keep the process alive); a check does not wait for one still starting: ranges go to whichever
 * thread is free first.
 */
export interface ChainInput {
  tenant: string;
  node: string;
  /** Highest seq the store held when verify began (0: no events). */
  top: number;
  keys: Map<string, string>;
  checkpoints: Checkpoint[];
  /** The node's own key (identity file) when the chain is its own. */
  selfKey: string | undefined;
}

/** Checks a chain in this thread after `start` (from its first event when null) up to seq `hi`. */
export type CheckHere = (chain: ChainInput, start: ChainPosition | null, hi: number) => Promise<RangeResult>;

export interface WorkerPlan {
  workers: number;
  source: WorkerStoreSource;
  /** PostgreSQL: the snapshot every worker reads (the coordinator's, exported). */
  snapshot: string | null;
}

/** The highest checkpoint seq at or below `seq` (0: none). */
export function lastCheckpointUpTo(checkpoints: readonly Checkpoint[], seq: number): number {
  let best = 0;
  for (const c of checkpoints) if (c.seq <= seq && c.seq > best) best = c.seq;
  return best;
}

/** Every chain's result, in the order given. */
export async function verifyInWorkers(
  plan: WorkerPlan & { rangeEvents: number },
  chains: readonly ChainInput[],
  crypto: LedgerCrypto,
  local: RangeReader,
  here: CheckHere,
  onRows: (rows: number) => void,
): Promise<RangeResult[]> {
  const tasks: RangeTask[] = [];
  const rangesOf = chains.map((chain) => {
    const ids: number[] = [];
    for (let lo = 1; lo <= chain.top; lo += plan.rangeEvents) {
      const hi = Math.min(lo + plan.rangeEvents - 1, chain.top);
      const last = hi === chain.top;
      ids.push(tasks.length);
      tasks.push({
        id: tasks.length,
        tenant: chain.tenant,
        node: chain.node,
        lo,
        hi,
        keys: [...chain.keys],
        // The last range also gets checkpoints beyond the chain's end, which it reports.
        checkpoints: chain.checkpoints.filter((c) => c.seq >= lo && (last || c.seq <= hi)),
        ...(chain.selfKey !== undefined ? { selfKey: chain.selfKey } : {}),
        matchedBefore: lastCheckpointUpTo(chain.checkpoints, lo - 1),
      });
    }
    return ids;
  });
  const answers = await runTasks(plan, tasks, (task) => checkRange(crypto, local, task, onRows), onRows);
  const results: RangeResult[] = [];
  for (const [i, chain] of chains.entries()) {
    const ranges = rangesOf[i]!.map((id) => ({ task: tasks[id]!, answer: answers.get(id) ?? null }));
    results.push(await joinRanges(chain, ranges, here));
  }
  return results;
}

/** One chain's ranges, joined in seq order into the result a single pass gives. */
async function joinRanges(
  chain: ChainInput,
  ranges: readonly { task: RangeTask; answer: RangeAnswer }[],
  here: CheckHere,
): Promise<RangeResult> {
  let events = 0;
  let checkpoints = 0;
  let sealed = 0;
  const withEarlier = (r: RangeResult): RangeResult => ({
    ...r,
    report: {
      ...r.report,
      eventsChecked: events + r.report.eventsChecked,
      checkpointsChecked: checkpoints + r.report.checkpointsChecked,
      sealedSeq: Math.max(sealed, r.report.sealedSeq),
    },
  });
  let end: ChainPosition | null = null;
  for (const [i, { task, answer }] of ranges.entries()) {
    // Each range must start exactly where the one before it ended; if not (the store changed between
    // reads), this thread checks on from there.
    if (!answer || (i > 0 && !samePosition(answer.start, end)))
      return withEarlier(await here(chain, end, chain.top));
    const { range } = answer;
    // A fault is the chain's first: every range before this one checked out and joined.
    if (range.stopped || i === ranges.length - 1) return withEarlier(range);
    events += range.report.eventsChecked;
    checkpoints += range.report.checkpointsChecked;
    sealed = Math.max(sealed, range.report.sealedSeq);
    end = range.end;
    // Rows missing at the end of a range: a single pass meets the next present event (or the chain's
    // end) right there, and so does this thread.
    if (range.report.lastSeq < task.hi) return withEarlier(await here(chain, end, chain.top));
  }
  // A chain with no events (only checkpoints, or a line in the head mark).
  return here(chain, null, chain.top);
}

function samePosition(a: ChainPosition | null, b: ChainPosition | null): boolean {
  return a !== null && b !== null && a.seq === b.seq && a.hash === b.hash && a.hlc === b.hlc;
}

/** A worker thread kept between checks. */
interface PoolWorker {
  /** Set once the worker is started. */
  worker: Worker | null;
  /** Settles once the worker has loaded its module. */
  booted: Promise<void>;
  isBooted: boolean;
  busy: boolean;
}

const pool = new Set<PoolWorker>();

/** For tests: ranges checked by worker threads since the process started. */
export const workerStats = { ranges: 0 };

function startPoolWorker(): PoolWorker {
  const entry: PoolWorker = { worker: null, booted: Promise.resolve(), isBooted: false, busy: false };
  entry.booted = startBundledWorker(new URL('./verify-worker.ts', import.meta.url), null).then(
    (worker) =>
      new Promise<void>((resolve, reject) => {
        entry.worker = worker;
        worker.on('error', () => undefined);
        worker.once('exit', () => pool.delete(entry));
        // An idle worker does not keep the process alive.
        worker.unref();
        const onMessage = (m: FromVerifyWorker) => {
          if (m.type !== 'booted') return;
          entry.isBooted = true;
          worker.off('message', onMessage);
          resolve();
        };
        worker.on('message', onMessage);
        worker.once('error', reject);
      }),
  );
  // A worker that never boots is dropped; checks go on without it.
  entry.booted.catch(() => pool.delete(entry));
  pool.add(entry);
  return entry;
}

/**
 * Starts worker threads ahead of a check (up to `threads - 1` in the pool) and settles once they
 * have loaded: a check never waits for a worker, so one started by the check itself may only join a
 * long one.
 */
export async function startVerifyWorkers(threads: number): Promise<void> {
  while (pool.size < threads - 1) startPoolWorker();
  await Promise.all([...pool].map((w) => w.booted.catch(() => undefined)));
}

/** Up to `n` idle workers of the pool, starting new ones as needed. */
function takeWorkers(n: number): PoolWorker[] {
  const taken = [...pool].filter((w) => !w.busy).slice(0, n);
  while (taken.length < n) taken.push(startPoolWorker());
  for (const w of taken) w.busy = true;
  return taken;
}

/**
 * Hands the tasks out, the next to whichever thread is free first: this one, and up to
 * `plan.workers - 1` worker threads.
 */
async function runTasks(
  plan: WorkerPlan,
  tasks: readonly RangeTask[],
  checkHere: (task: RangeTask) => Promise<RangeAnswer>,
  onRows: (rows: number) => void,
): Promise<Map<number, RangeAnswer>> {
  const answers = new Map<number, RangeAnswer>();
  const queue = [...tasks];
  /** No more ranges for the workers: all are handed out, or this thread failed. */
  let finished = false;
  const workers = takeWorkers(Math.min(plan.workers - 1, Math.max(0, tasks.length - 1)));
  let wake: (() => void) | null = null;
  const settled = () => {
    wake?.();
    wake = null;
  };

  /** One worker's part: open the store once booted (if ranges are left), take ranges until none are. */
  const drive = (entry: PoolWorker): Promise<void> =>
    entry.booted.then(
      () =>
        new Promise<void>((resolve) => {
          const worker = entry.worker!;
          if (finished || queue.length === 0) return resolve();
          worker.ref();
          let inFlight: RangeTask | null = null;
          const send = (m: ToVerifyWorker) => worker.postMessage(m);
          const done = () => {
            worker.off('message', onMessage);
            worker.off('exit', onExit);
            worker.unref();
            resolve();
          };
          const next = () => {
            inFlight = finished ? null : (queue.shift() ?? null);
            send(inFlight ? { type: 'task', task: inFlight } : { type: 'close' });
          };
          // A worker that fails is not used again; its range, if any, is checked by this thread.
          const fail = () => {
            if (inFlight) queue.unshift(inFlight);
            inFlight = null;
            pool.delete(entry);
            void worker.terminate();
            done();
            settled();
          };
          const onExit = () => fail();
          const onMessage = (m: FromVerifyWorker) => {
            switch (m.type) {
              case 'ready':
                return next();
              case 'rows':
                return onRows(m.rows);
              case 'result':
                workerStats.ranges++;
                // The worker counted its rows in its own copy of the module: add them here.
                bodyStats.rebuilt += m.answer?.range.rebuilt ?? 0;
                answers.set(m.id, m.answer);
                inFlight = null;
                settled();
                return next();
              case 'closed':
                return done();
              case 'error':
                return fail();
              case 'booted':
                return;
            }
          };
          worker.on('message', onMessage);
          worker.once('exit', onExit);
          send({ type: 'open', source: plan.source, snapshot: plan.snapshot });
        }),
      () => {
        pool.delete(entry);
      },
    );

  const driven = workers.map(drive);
  try {
    // This thread takes ranges too, yielding between them so the workers' messages are handled.
    for (let task = queue.shift(); task; task = queue.shift()) {
      answers.set(task.id, await checkHere(task));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    // Ranges still with workers, or handed back by one that failed.
    while (answers.size < tasks.length) {
      const task = queue.shift();
      if (task) answers.set(task.id, await checkHere(task));
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    finished = true;
    settled();
    // Workers that have not booted are left to boot for the next check; the others close their store.
    await Promise.all(driven.map((d, i) => (workers[i]!.isBooted ? d : undefined)));
    for (const w of workers) w.busy = false;
  }
  return answers;
}
