import { fileURLToPath } from 'node:url';

const CLI_SOURCE = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/**
 * The node arguments that start `holdfast` with `args`: the suite's bundle of the CLI when the global
 * setup made one (the same sources, built once per run by esbuild; a process starts in about a third
 * of the time, and the suite starts hundreds), otherwise the TypeScript sources through tsx.
 */
export function holdfastArgs(...args: string[]): string[] {
  const bundle = process.env.HOLDFAST_CLI_BUNDLE;
  return bundle ? [bundle, ...args] : ['--import', 'tsx', CLI_SOURCE, ...args];
}
