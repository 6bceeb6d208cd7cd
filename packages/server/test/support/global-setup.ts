import type { TestProject } from 'vitest/node';
import { fileURLToPath } from 'node:url';
import { bundleForTests } from './bundle.ts';
import { startTestPostgres } from './postgres.ts';

/**
 * Starts one throwaway PostgreSQL for the whole run (each test file creates its own databases on
 * it), and bundles the `holdfast` CLI once, so the hundreds of `holdfast` processes the suite starts
 * load plain JavaScript (see cli-entry.ts; the workers inherit the variable).
 */
export default async function setup(project: TestProject): Promise<() => void> {
  process.env.HOLDFAST_CLI_BUNDLE ??= await bundleForTests(
    fileURLToPath(new URL('../../src/cli.ts', import.meta.url)),
  );
  const pg = await startTestPostgres();
  project.provide('pgAdminUrl', pg.adminUrl);
  return () => pg.stop();
}
