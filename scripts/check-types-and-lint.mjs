#!/usr/bin/env node
// Type-checks every tsconfig and lints the repository in one process, building each TypeScript
// program once. `tsc -p` for each tsconfig and then `eslint .` built the same programs twice: the
// lint's type-aware rules (no floating promises, exhaustive switches) need the type checker, and
// ESLint's project service made its own. Here ESLint is handed the programs the type-check built
// (typescript-eslint's `parserOptions.programs`), so the checker's work is done once.
//
// The checks are the same as `npm run typecheck` and `npm run lint`: the same tsconfigs, the same
// eslint.config.js (only where it finds its programs is overridden). Prints tsc's and ESLint's own
// reports, and writes one line per check (`ok|failed <name>`) to the file named by --results, so
// that `npm test` counts each check as it did when they ran as separate commands.
// Exit status: 0 when every check passed.
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ESLint } from 'eslint';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

/**
 * The order matters to ESLint: a file is linted with the first program that holds it, so each
 * package comes before the root tsconfig, as ESLint's project service would choose the nearest
 * tsconfig. (The root one holds bench/, scripts/ and vitest.config.ts, and reaches into packages
 * only through imports.)
 */
const TSCONFIGS = [
  ['type-check core', 'packages/core/tsconfig.json'],
  ['type-check server', 'packages/server/tsconfig.json'],
  ['type-check web', 'packages/web/tsconfig.json'],
  ['type-check bench', 'tsconfig.json'],
];

const results = [];
const resultsFile = process.argv.includes('--results')
  ? process.argv[process.argv.indexOf('--results') + 1]
  : null;

const formatHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => root,
  getNewLine: () => '\n',
};

async function timed(name, work) {
  const started = Date.now();
  const ok = await work();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`== ${name}: ${ok ? 'passed' : 'FAILED'} (${seconds} s)`);
  results.push(`${ok ? 'ok' : 'failed'} ${name}`);
  return ok;
}

/** One program per tsconfig, type-checked as `tsc -p` would (the same options, noEmit). */
const programs = [];
for (const [name, configPath] of TSCONFIGS) {
  await timed(name, () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(
      configPath,
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(ts.formatDiagnostic(d, formatHost));
        },
      },
    );
    if (!parsed) throw new Error(`could not read ${configPath}`);
    const program = ts.createProgram({
      rootNames: parsed.fileNames,
      options: parsed.options,
      projectReferences: parsed.projectReferences,
      configFileParsingDiagnostics: parsed.errors,
    });
    programs.push(program);
    const diagnostics = ts.getPreEmitDiagnostics(program);
    if (diagnostics.length > 0) {
      process.stdout.write(ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost));
      console.log(`${configPath}: ${diagnostics.length} error(s)`);
    }
    return diagnostics.length === 0;
  });
}

// Lint, with type information from the programs above instead of the project service.
const eslint = new ESLint({
  cwd: root,
  overrideConfig: {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parserOptions: { projectService: false, programs } },
  },
});
await timed('lint', async () => {
  const lintResults = await eslint.lintFiles(['.']);
  const report = await (await eslint.loadFormatter('stylish')).format(lintResults);
  if (report) process.stdout.write(report);
  return lintResults.every((r) => r.errorCount === 0 && r.fatalErrorCount === 0);
});

if (resultsFile) writeFileSync(resultsFile, results.join('\n') + '\n');
process.exitCode = results.every((r) => r.startsWith('ok ')) ? 0 : 1;
