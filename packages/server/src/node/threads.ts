import { mkdtempSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
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
export async function startBundledWorker(
  module: URL,
  data: unknown,
  /**
   * A function the worker needs from a module chosen at run time (the node's event registry):
   * bundled with `module` (one copy of everything they share), which must export
   * `run(made: unknown)`; the worker calls `run(name())` at start.
   */
  withExport?: { module: URL; name: string },
): Promise<Worker> {
  const key = withExport ? `${module.href} ${withExport.module.href}#${withExport.name}` : module.href;
  let file = bundles.get(key);
  if (!file) {
    file = bundle(module, withExport);
    bundles.set(key, file);
    file.catch(() => bundles.delete(key));
  }
  return new Worker(await file, { workerData: { data } });
}

async function bundle(module: URL, withExport?: { module: URL; name: string }): Promise<string> {
  if (!bundleDir) {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-workers-'));
    bundleDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const entry = fileURLToPath(module);
  const outfile = join(bundleDir, `${bundles.size}-${basename(entry).replace(/\.ts$/, '.mjs')}`);
  const require = createRequire(module);
  const from = withExport ? fileURLToPath(withExport.module) : '';
  if (withExport && !/^[A-Za-z_$][\w$]*$/.test(withExport.name))
    throw new Error(`not an export name: ${withExport.name}`);
  // Loaded here, not with this module: every command that opens a node imports this file, and only
  // the first bundled worker of a process needs esbuild.
  const { build } = await import('esbuild');
  await build({
    ...(withExport
      ? {
          stdin: {
            contents: `import { run } from ${JSON.stringify(entry)};\nimport { ${withExport.name} as made } from ${JSON.stringify(from)};\nrun(made());\n`,
            resolveDir: dirname(entry),
            sourcefile: `${basename(entry)}-entry.ts`,
            loader: 'ts' as const,
          },
        }
      : { entryPoints: [entry] }),
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
