import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './postgres.ts';

/** Starts one throwaway PostgreSQL for the whole run; each test file creates its own databases on it. */
export default async function setup(project: TestProject): Promise<() => void> {
  const pg = await startTestPostgres();
  project.provide('pgAdminUrl', pg.adminUrl);
  return () => pg.stop();
}
