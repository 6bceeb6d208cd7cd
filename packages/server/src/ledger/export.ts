import { fromStored } from '@holdfast/core';
import type { Ledger } from './ledger.ts';
import { checkpointLine, eventLine } from './ndjson.ts';

export interface ExportOptions {
  /** Only these nodes' chains; every chain of the tenant by default. */
  nodes?: readonly string[];
  /** Export only events after these seqs (per node). */
  afterSeq?: ReadonlyMap<string, number>;
  /** Roughly how many events per batch; a batch always ends at a signed checkpoint. */
  maxEvents?: number;
}

/**
 * Exports a tenant's chains as NDJSON batches. Each batch is one node's contiguous run of events
 * ending at a checkpoint signed by that node, followed by every checkpoint (own and witnessed) in the
 * run, so the receiver can authenticate each batch on its own, in any order. This node's own chain
 * is checkpointed first so nothing it holds is withheld; other nodes' unsealed tails wait for their
 * next checkpoint.
 */
export async function* exportBatches(
  ledger: Ledger,
  tenant: string,
  options: ExportOptions = {},
): AsyncGenerator<string[]> {
  const maxEvents = options.maxEvents ?? 1000;
  await ledger.checkpointNow(tenant);
  const heads = await ledger.chainHeads(tenant);
  const nodes = (options.nodes ?? [...heads.keys()]).slice().sort();
  for (const node of nodes) {
    let start = (options.afterSeq?.get(node) ?? 0) + 1;
    const own = (await ledger.checkpoints(tenant, node, start))
      .filter((c) => c.signer === node)
      .map((c) => c.seq);
    while (own.length > 0) {
      const limit = start + maxEvents - 1;
      const within = own.filter((s) => s <= limit);
      const end = within.length > 0 ? within[within.length - 1]! : own[0]!;
      const events = await ledger.readChain(tenant, node, start, end);
      const checkpoints = await ledger.checkpoints(tenant, node, start, end);
      yield [...events.map((e) => eventLine(fromStored(e))), ...checkpoints.map(checkpointLine)];
      start = end + 1;
      while (own.length > 0 && own[0]! < start) own.shift();
    }
  }
}
