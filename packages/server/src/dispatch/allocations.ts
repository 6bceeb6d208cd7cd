/**
 * Which allocations stand, worked out from the set of allocation rows and the decisions alike on
 * every node (pure: no store, no clock).
 *
 * Each allocation names what its node knew: the visit's allocation (`visitBasedOn`) and the car's
 * latest allocation (`vehicleBasedOn`). A node that sees everything never makes two allocations on
 * the same predecessor, so two allocations sharing one are a fork: nodes that could not see each
 * other allocated the same visit to two cars, or the same car to two visits. Each allocation that
 * forks from an earlier one (ledger order: hlc, node, seq) is one reconciliation item,
 * `rec-<its event id>`, of kind `double_allocation`. Until decided, the earlier allocation stands and
 * the later one is held (its visit shows the conflict and, for a car sent twice, is not counted as
 * covered: never "none" silently); a decision keeps one allocation of the item and withdraws the others.
 * The same car sent to the same visit twice is no conflict.
 */
export interface AllocationRow {
  allocationId: string;
  eventId: string;
  hlc: string;
  node: string;
  seq: number;
  visitId: string;
  vehicleId: string;
  visitBasedOn: string | null;
  vehicleBasedOn: string | null;
  atMs: number;
}

export interface AllocationItem {
  itemId: string;
  colliding: AllocationRow;
  /** The earlier allocations it forks from. */
  kept: AllocationRow[];
  /** visit: one visit to two cars; vehicle: one car to two visits. */
  forks: ('visit' | 'vehicle')[];
  decision: { keepAllocationId: string; reason: string; actor: string; hlc: string; eventId: string } | null;
}

export interface AllocationState {
  items: AllocationItem[];
  /** Allocations that do not stand (held while undecided, or withdrawn by a decision). */
  withdrawn: Set<string>;
  /** Per visit, the allocation that stands now (the last in ledger order not withdrawn). */
  current: Map<string, AllocationRow>;
  /** Per visit, the open item ids about it. */
  openItemsByVisit: Map<string, string[]>;
}

export function ledgerOrder(
  a: Pick<AllocationRow, 'hlc' | 'node' | 'seq'>,
  b: Pick<AllocationRow, 'hlc' | 'node' | 'seq'>,
): number {
  return a.hlc < b.hlc ? -1 : a.hlc > b.hlc ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : a.seq - b.seq;
}

export function allocationState(
  rows: readonly AllocationRow[],
  decisions: ReadonlyMap<string, NonNullable<AllocationItem['decision']>>,
): AllocationState {
  const sorted = [...rows].sort(ledgerOrder);
  const byKey = new Map<string, AllocationRow[]>();
  const items = new Map<string, AllocationItem>();
  const fork = (
    kind: 'visit' | 'vehicle',
    key: string,
    row: AllocationRow,
    differs: (o: AllocationRow) => boolean,
  ) => {
    const earlier = byKey.get(key) ?? [];
    const against = earlier.filter(differs);
    if (against.length > 0) {
      const itemId = `rec-${row.eventId}`;
      const item = items.get(itemId) ?? {
        itemId,
        colliding: row,
        kept: [],
        forks: [],
        decision: decisions.get(itemId) ?? null,
      };
      for (const k of against) if (!item.kept.includes(k)) item.kept.push(k);
      if (!item.forks.includes(kind)) item.forks.push(kind);
      items.set(itemId, item);
    }
    byKey.set(key, [...earlier, row]);
  };
  for (const row of sorted) {
    fork(
      'visit',
      `visit|${row.visitId}|${row.visitBasedOn ?? ''}`,
      row,
      (o) => o.vehicleId !== row.vehicleId,
    );
    fork(
      'vehicle',
      `vehicle|${row.vehicleId}|${row.vehicleBasedOn ?? ''}`,
      row,
      (o) => o.visitId !== row.visitId,
    );
  }
  const withdrawn = new Set<string>();
  const openItemsByVisit = new Map<string, string[]>();
  for (const item of items.values()) {
    item.kept.sort(ledgerOrder);
    const all = [item.colliding, ...item.kept];
    const keep =
      item.decision && all.some((a) => a.allocationId === item.decision!.keepAllocationId)
        ? item.decision.keepAllocationId
        : null;
    if (!keep) {
      withdrawn.add(item.colliding.allocationId);
      for (const a of all)
        openItemsByVisit.set(a.visitId, [...(openItemsByVisit.get(a.visitId) ?? []), item.itemId]);
    } else for (const a of all) if (a.allocationId !== keep) withdrawn.add(a.allocationId);
  }
  const current = new Map<string, AllocationRow>();
  for (const row of sorted) if (!withdrawn.has(row.allocationId)) current.set(row.visitId, row);
  return {
    items: [...items.values()].sort((a, b) => ledgerOrder(a.colliding, b.colliding)),
    withdrawn,
    current,
    openItemsByVisit,
  };
}
