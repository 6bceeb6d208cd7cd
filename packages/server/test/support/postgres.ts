// The throwaway PostgreSQL lives in src (the drill starts one too); tests and benches import it from here.
export {
  findPostgresBinDir,
  freePort,
  INSTALL_HINT,
  startTestPostgres,
  type TestPostgres,
} from '../../src/drill/postgres.ts';
