import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/**
 * Bundles a TypeScript entry point (and our workspace code it imports) into plain ES modules, so
 * a test that starts it many times (the crash test SIGKILLs it 50 times per store) pays for loading
 * TypeScript once instead of at every start. Dependencies stay in node_modules. Each of our files
 * keeps its own `import.meta.url`, so paths it resolves relative to itself still work.
 */
export async function bundleForTests(entry: string): Promise<string> {
  // Inside the repository's node_modules, so the bundle finds the dependencies it leaves external.
  const cache = fileURLToPath(
    new URL('../../../../node_modules/.cache/holdfast-test-bundles/', import.meta.url),
  );
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(cache);
  // Gone when the process that made it ends (the run's main process, or a test file's worker).
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  await build({
    // One entry file, plus a chunk per module loaded by `await import` (what a command loads only
    // when it runs: see cli.ts), so each process loads what its command needs and no more.
    entryPoints: { entry },
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    plugins: [
      {
        name: 'holdfast-test-bundle',
        setup(b) {
          // Packages stay external; our workspace packages are bundled like relative imports.
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@holdfast/') ? undefined : { path: args.path, external: true },
          );
          b.onLoad({ filter: /\.ts$/ }, (args) => ({
            contents: readFileSync(args.path, 'utf8').replaceAll(
              'import.meta.url',
              JSON.stringify(pathToFileURL(args.path).href),
            ),
            loader: 'ts',
          }));
        },
      },
    ],
  });
  return join(dir, 'entry.mjs');
}
