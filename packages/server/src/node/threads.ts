import { mkdtempSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread running one of the server's TypeScript modules. The server runs from
 * source through tsx, whose loader a worker does not inherit: a worker starts from worker-boot.mjs,
 * which registers it and then imports `module`. The restore's checking worker and verify's workers
 * both start here. The worker reads `workerData.data`.
 */
export function startWorker(module: URL, data: unknown): Worker {
  return new Worker(new URL('./worker-boot.mjs', import.meta.url), {
    workerData: { module: module.href, data },
  });
}

const bundles = new Map<string, Promise<string>>();
let bundleDir: string | null = null;

/**
 * As `startWorker`, but the worker runs `module` bundled with the TypeScript it imports into one
 * JavaScript file (esbuild, once per process, in an owner-only temporary directory removed at exit),
 * so it starts without tsx: a fraction of the time, which matters where a worker must join work
 * already under way. Packages stay outside the bundle, loaded from where this process loads them.
 */
export async function startBundledWorker(module: URL, data: unknown): Promise<Worker> {
  let file = bundles.get(module.href);
  if (!file) {
    file = bundle(module);
    bundles.set(module.href, file);
    file.catch(() => bundles.delete(module.href));
  }
  return new Worker(await file, { workerData: { data } });
}

async function bundle(module: URL): Promise<string> {
  if (!bundleDir) {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-workers-'));
    bundleDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const entry = fileURLToPath(module);
  const outfile = join(bundleDir, basename(entry).replace(/\.ts$/, '.mjs'));
  const require = createRequire(module);
  // Loaded here, not with this module: every command that opens a node imports this file, and only
  // the first bundled worker of a process needs esbuild.
  const { build } = await import('esbuild');
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
    plugins: [
      {
        name: 'packages-outside',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => {
            if (args.path.startsWith('@holdfast/')) return undefined;
            if (args.path.startsWith('node:') || builtinModules.includes(args.path))
              return { external: true };
            try {
              return { path: require.resolve(args.path), external: true };
            } catch {
              return undefined; // a package only importable as ESM: bundled
            }
          });
        },
      },
    ],
  });
  return outfile;
}
