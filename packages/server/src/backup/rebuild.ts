import { sql } from 'kysely';
import type { HoldfastNode } from '../node/node.ts';

const PAGE = 5_000;

type Row = [
  string,
  string,
  number,
  string,
  string,
  string,
  number,
  string,
  string,
  string,
  string,
  string | null,
];

const COLUMNS = 'tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject';

/**
 * Rebuilds every projection of a freshly restored node from its ledger, with the same result as
 * `ProjectionEngine.rebuild` (drop and create each projection's tables, fold every event in ledger
 * order (tenant, hlc, node, seq) with its subject derived from its type and payload, record the
 * projection versions), made for tens of millions of events: given the event types the ledger holds
 * (`types`, which the restore's walk saw), only events of a type some projection folds (its
 * `folds`) are read, in ledger order, and each goes only to the projections that fold its type;
 * the store skips the rest inside its query. Without `types`, or when a projection folds every
 * type, every event is read. Progress is (events read, `events`) and ends at (`events`, `events`).
 * Returns the number of events read.
 */
export async function rebuildProjectionsFast(
  node: HoldfastNode,
  ledger: { types: readonly string[] | null; events: number },
  onProgress?: (done: number, total: number) => void,
): Promise<number> {
  const { types, events } = ledger;
  const { store } = node;
  const engine = node.projections;
  const projections = engine.projections;
  await store.transaction(async (trx) => {
    for (const p of projections) {
      for (const table of p.tables) await sql`drop table if exists ${sql.table(table)}`.execute(trx);
      await p.create(trx, store.dialect);
      await trx.deleteFrom('projection_state').where('name', '=', p.name).execute();
    }
  });
  await store.secureTables();
  const everyType = types === null || projections.some((p) => !p.folds);
  const folded = everyType ? null : types.filter((t) => projections.some((p) => p.folds!(t)));
  // Which projections fold each type, decided once per type instead of once per event.
  const byType = new Map<string, typeof projections>();
  const foldersOf = (type: string) => {
    let list = byType.get(type);
    if (!list) byType.set(type, (list = projections.filter((p) => !p.folds || p.folds(type))));
    return list;
  };
  let done = 0;
  onProgress?.(0, events);
  if (folded === null || folded.length > 0) {
    const typeFilter = folded === null ? sql`` : sql`type in (${sql.join(folded.map((t) => sql`${t}`))}) and`;
    const sqlite = store.sqliteHandle();
    const typeArgs = folded ?? [];
    const typeSql = folded === null ? '' : `type in (${folded.map(() => '?').join(', ')}) and`;
    const first = sqlite?.prepare(
      `select ${COLUMNS} from ledger_events where ${typeSql} 1 = 1 order by tenant, hlc, node, seq limit ?`,
    );
    const next = sqlite?.prepare(
      `select ${COLUMNS} from ledger_events where ${typeSql} (tenant, hlc, node, seq) > (?, ?, ?, ?) order by tenant, hlc, node, seq limit ?`,
    );
    let after: Row | null = null;
    for (;;) {
      let rows: Row[];
      if (first && next) {
        rows = (
          after
            ? next.raw(true).all(...typeArgs, after[0], after[4], after[1], after[2], PAGE)
            : first.raw(true).all(...typeArgs, PAGE)
        ) as Row[];
      } else {
        const a = after;
        const r = await sql<Record<string, unknown>>`select ${sql.raw(COLUMNS)} from ledger_events
          where ${typeFilter} ${a ? sql`(tenant, hlc, node, seq) > (${a[0]}, ${a[4]}, ${a[1]}, ${a[2]})` : sql`true`}
          order by tenant, hlc, node, seq limit ${PAGE}`.execute(store.db);
        rows = r.rows.map(
          (r) =>
            [
              r.tenant,
              r.node,
              Number(r.seq),
              r.id,
              r.hlc,
              r.type,
              Number(r.v),
              r.actor,
              r.payload,
              r.prev_hash,
              r.hash,
              r.subject,
            ] as Row,
        );
      }
      if (rows.length === 0) break;
      await store.transaction(async (trx) => {
        for (const r of rows) {
          const folders = foldersOf(r[5]);
          if (folders.length === 0) continue;
          const e = engine.projectStored(
            {
              tenant: r[0],
              node: r[1],
              seq: r[2],
              id: r[3],
              hlc: r[4],
              type: r[5],
              v: r[6],
              actor: r[7],
              payloadJson: r[8],
              prevHash: r[9],
              hash: r[10],
            },
            r[11],
          );
          for (const p of folders) await p.apply(trx, e);
        }
      });
      done += rows.length;
      after = rows[rows.length - 1]!;
      if (done < events) onProgress?.(done, events);
    }
  }
  onProgress?.(events, events);
  const now = new Date(node.clock.nowMs()).toISOString();
  await store.transaction(async (trx) => {
    for (const p of projections) {
      await trx.deleteFrom('projection_state').where('name', '=', p.name).execute();
      await trx
        .insertInto('projection_state')
        .values({ name: p.name, version: p.version, rebuilt_at: now })
        .execute();
    }
  });
  return done;
}
