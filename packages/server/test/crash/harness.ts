import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { verifyStore } from '../../src/ledger/verify.ts';
import { bundleForTests } from '../support/bundle.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { openNode } from '../../src/node/node.ts';
import { testItemsProjection, testRegistry } from '../support/ledger-fixture.ts';

// Bundled once per test file: the crash test starts the appender a hundred times.
let appender: Promise<string> | null = null;
const appenderBundle = () =>
  (appender ??= bundleForTests(fileURLToPath(new URL('./appender.ts', import.meta.url))));

export interface CrashCycleResult {
  acked: number;
  present: number;
  missing: { seq: number; hash: string }[];
  verified: boolean;
  problem?: string;
}

/** Starts the appender, lets it acknowledge for a random while, SIGKILLs it, and returns what it acknowledged. */
export async function runAppenderUntilKilled(
  args: string[],
  killAfterMs: number,
): Promise<Map<number, string>> {
  const bundle = await appenderBundle();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked = new Map<number, string>();
    let buffer = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready' && !timer) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        const m = /^ack (\d+) ([0-9a-f]{64})$/.exec(line);
        if (m) acked.set(Number(m[1]), m[2]!);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`appender exited by itself (code ${code}): ${stderr.slice(-2000)}`));
    });
  });
}

/** After a kill: every acknowledged event is present with its hash, and the ledger verifies. */
export async function checkAfterCrash(
  config: { store: 'sqlite' | 'postgres'; dataDir: string; databaseUrl?: string },
  acked: Map<number, string>,
): Promise<CrashCycleResult> {
  const node = await openNode(
    { ...config, checkpointEvery: 25 },
    { registry: testRegistry(), projections: [testItemsProjection] },
  );
  try {
    const events = await node.ledger.readChain('crash', node.identity.node, 1);
    const stored = new Map(events.map((e) => [e.seq, e.hash]));
    const missing = [...acked]
      .filter(([seq, hash]) => stored.get(seq) !== hash)
      .map(([seq, hash]) => ({ seq, hash }));
    const report = await verifyStore(node.store, ledgerCrypto);
    return {
      acked: acked.size,
      present: acked.size - missing.length,
      missing,
      verified: report.ok,
      problem: report.faults[0]
        ? `${report.faults[0].node} seq ${report.faults[0].seq}: ${report.faults[0].problem}`
        : undefined,
    };
  } finally {
    await node.close();
  }
}

export function appenderArgs(config: {
  store: 'sqlite' | 'postgres';
  dataDir: string;
  databaseUrl?: string;
}): string[] {
  return [config.store, config.dataDir, ...(config.databaseUrl ? [config.databaseUrl] : [])];
}
