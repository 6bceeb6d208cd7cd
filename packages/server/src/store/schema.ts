import type { Generated } from 'kysely';

/**
 * Row types of the tables every node has. Projection tables are declared by their projections and
 * typed there. Every row carries its tenant.
 */
export interface LedgerEventsTable {
  /** Position in this store's ledger (arrival order on this node); used to resume reads. */
  pos: Generated<number>;
  tenant: string;
  node: string;
  seq: number;
  id: string;
  hlc: string;
  type: string;
  v: number;
  actor: string;
  /** Canonical (RFC 8785) JSON text of the payload, exactly as hashed. */
  payload: string;
  prev_hash: string;
  hash: string;
  /** The entity the event is about (not hashed: derived from the payload by its event type). */
  subject: string | null;
}

export interface CheckpointsTable {
  tenant: string;
  node: string;
  seq: number;
  hash: string;
  hlc: string;
  signer: string;
  signature: string;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: string;
}

export interface ProjectionStateTable {
  name: string;
  version: number;
  rebuilt_at: string;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  tenant: string;
  user_id: string;
  stage: 'password' | 'full';
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  absolute_expires_at: number;
  revoked_at: number | null;
  address: string;
  pending_totp_secret: string | null;
  webauthn_challenge: string | null;
  reauthenticated_at: number | null;
}

export interface TotpUsedTable {
  tenant: string;
  user_id: string;
  step: number;
}

export interface CoreDatabase {
  sessions: SessionsTable;
  totp_used: TotpUsedTable;
  ledger_events: LedgerEventsTable;
  checkpoints: CheckpointsTable;
  schema_migrations: SchemaMigrationsTable;
  projection_state: ProjectionStateTable;
}
