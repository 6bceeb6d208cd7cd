import { sql } from 'kysely';
import { foldsTypes, type ProjectedEvent, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

/** The audit trail as a queryable table, folded from audit.* events (the ledger stays the record). */
export interface AuditLogTable {
  tenant: string;
  hlc: string;
  node: string;
  seq: number;
  type: string;
  user_id: string | null;
  roles: string;
  site_ids: string;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string | null;
  reason: string | null;
  break_glass: number;
  detail: string;
}

export type AuditTables = { audit_log: AuditLogTable };

export function auditDb(db: Db | Tx) {
  return db.withTables<AuditTables>();
}

/**
 * Account events an auditor must see: who changed whose account, how, and why. Only safe fields go
 * into the row: never a password hash, TOTP secret, recovery or enrolment code hash.
 */
export const ACCOUNT_EVENTS = new Set([
  'user.created',
  'user.roles_changed',
  'user.password_set',
  'user.disabled',
  'user.enabled',
  'user.mfa_reset',
  'user.totp_enrolled',
  'user.passkey_registered',
  'user.recovery_code_used',
]);

function accountRow(
  base: Pick<AuditLogTable, 'tenant' | 'hlc' | 'node' | 'seq' | 'type'>,
  actor: string,
  p: Record<string, unknown>,
): AuditLogTable {
  const detail: Record<string, unknown> = { actor };
  for (const field of ['username', 'roles', 'siteIds', 'mustChange', 'label'] as const)
    if (p[field] !== undefined) detail[field] = p[field];
  return {
    ...base,
    // The one who acted (a user, or an operator's command: then no user id); the account is the record.
    user_id: actor.startsWith('user:') ? actor.slice(5) : null,
    // The actor's roles are not in the event; the account's new roles are in `detail`.
    roles: '[]',
    site_ids: '[]',
    action: `account.${base.type.slice('user.'.length)}`,
    resource_type: 'user',
    resource_id: typeof p.userId === 'string' ? p.userId : null,
    outcome: 'success',
    reason: typeof p.reason === 'string' ? p.reason : null,
    break_glass: 0,
    detail: JSON.stringify(detail),
  };
}

/**
 * The audit row of an event this projection folds (null for an `audit.` type it does not know). It
 * depends only on that one event.
 */
function auditRowOf(e: ProjectedEvent): AuditLogTable | null {
  const p = e.payload as Record<string, unknown>;
  const base = { tenant: e.tenant, hlc: e.hlc, node: e.node, seq: e.seq, type: e.type };
  if (ACCOUNT_EVENTS.has(e.type)) return accountRow(base, e.actor, p);
  switch (e.type) {
    case 'audit.sign_in':
      return {
        ...base,
        user_id: (p.userId as string | undefined) ?? null,
        roles: '[]',
        site_ids: '[]',
        action: `sign_in.${String(p.step)}`,
        resource_type: null,
        resource_id: null,
        outcome: String(p.outcome),
        reason: null,
        break_glass: 0,
        detail: JSON.stringify({ address: p.address }),
      };
    case 'audit.denied':
      return {
        ...base,
        user_id: String(p.userId),
        roles: JSON.stringify(p.roles),
        site_ids: JSON.stringify(p.siteIds),
        action: 'denied',
        resource_type: null,
        resource_id: null,
        outcome: 'denied',
        reason: null,
        break_glass: 0,
        detail: JSON.stringify({ permission: p.permission, route: p.route }),
      };
    case 'audit.access':
      return {
        ...base,
        user_id: String(p.userId),
        roles: JSON.stringify(p.roles),
        site_ids: JSON.stringify(p.siteIds),
        action: String(p.action),
        resource_type: String(p.resourceType),
        resource_id: (p.resourceId as string | undefined) ?? null,
        outcome: 'success',
        reason: (p.reason as string | undefined) ?? null,
        break_glass: p.breakGlass ? 1 : 0,
        detail: JSON.stringify({ fields: p.fields }),
      };
    case 'audit.downtime_pack':
      // A new event type (no earlier rows to refold), so the projection's version stays.
      return {
        ...base,
        user_id: (p.userId as string | undefined) ?? null,
        roles: JSON.stringify(p.roles ?? []),
        site_ids: JSON.stringify(p.siteIds),
        action: 'downtime_pack',
        resource_type: 'case',
        resource_id: null,
        outcome: 'success',
        reason: null,
        break_glass: 0,
        detail: JSON.stringify({ trigger: p.trigger, operator: p.operator, caseIds: p.caseIds }),
      };
    case 'audit.export':
      // A new event type, like the downtime pack's: the projection's version stays.
      return {
        ...base,
        user_id: String(p.userId),
        roles: JSON.stringify(p.roles),
        site_ids: JSON.stringify(p.siteIds),
        action: `export.${String(p.format)}`,
        resource_type: null,
        resource_id: null,
        outcome: 'success',
        reason: null,
        break_glass: 0,
        detail: JSON.stringify({ rows: p.rows, filters: p.filters }),
      };
    default:
      return null;
  }
}

/** Rows a commit of appends writes together, a chunk a statement (well inside both stores' limits on parameters). */
const AUDIT_ROWS_A_STATEMENT = 500;

async function insertAuditRows(trx: Tx, rows: AuditLogTable[]): Promise<void> {
  await auditDb(trx)
    .insertInto('audit_log')
    .values(rows)
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Audit events have no subject: each row depends only on its own event, so arrival order does not matter. */
const folds = foldsTypes('audit.', ...ACCOUNT_EVENTS);

export const auditProjection: Projection = {
  name: 'audit_log',
  // 2: account events (user created, roles changed, second factor or password reset, disabled) are rows.
  version: 2,
  tables: ['audit_log'],
  folds,
  async create(trx) {
    await sql`create table audit_log (
      tenant text not null,
      hlc text not null,
      node text not null,
      seq bigint not null,
      type text not null,
      user_id text,
      roles text not null,
      site_ids text not null,
      action text not null,
      resource_type text,
      resource_id text,
      outcome text,
      reason text,
      break_glass integer not null,
      detail text not null,
      primary key (tenant, node, seq)
    )`.execute(trx);
    await sql`create index audit_log_time on audit_log (tenant, hlc)`.execute(trx);
    await sql`create index audit_log_user on audit_log (tenant, user_id, hlc)`.execute(trx);
    await sql`create index audit_log_resource on audit_log (tenant, resource_id, hlc)`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const row = auditRowOf(e);
    if (row) await insertAuditRows(trx, [row]);
  },
  // Each row depends only on its own event and nothing reads audit_log while a commit is written,
  // so a commit's audit rows go in together at its end: one statement instead of one an event.
  async applyBatch(trx, events) {
    // The engine hands over only the types this projection folds.
    const rows = events.flatMap((e) => auditRowOf(e) ?? []);
    for (let i = 0; i < rows.length; i += AUDIT_ROWS_A_STATEMENT)
      await insertAuditRows(trx, rows.slice(i, i + AUDIT_ROWS_A_STATEMENT));
  },
  async resetSubject(trx, tenant, subject) {
    // Sign-in events carry a subject only so that per-user history can be refolded; rows are keyed
    // by event, so refolding deletes and re-inserts the same rows.
    if (!subject.startsWith('audit-user:')) return;
    await auditDb(trx)
      .deleteFrom('audit_log')
      .where('tenant', '=', tenant)
      .where('user_id', '=', subject.slice(11))
      .where('type', '=', 'audit.sign_in')
      .execute();
  },
};
