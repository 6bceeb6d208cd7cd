/**
 * A case's short reference: what staff read out, write on paper (the downtime pack) and type back in
 * to find the case. The first eight hex digits of the case id (case ids are random UUIDs, so these are
 * random too), upper case in two groups of four: "3F2A-9C1B". Stable, derived, nothing stored.
 * Among a pack's at most 2,000 open cases two share one with a chance of about 1 in 2,000; the pack
 * prints the patient and call-back number beside it, so a clash is seen, not silently mixed up.
 */
export function caseReference(caseId: string): string {
  const hex = caseId.replace(/-/g, '').slice(0, 8).toUpperCase();
  return `${hex.slice(0, 4)}-${hex.slice(4, 8)}`;
}

/**
 * What a reference typed back in names: a whole case id, or the eight hex digits of a short
 * reference however it was written (either case, with a dash, a space or neither); null when it is
 * neither.
 */
export function parseCaseReference(written: string): { caseId: string } | { prefix: string } | null {
  const s = written.trim().toLowerCase();
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s)) return { caseId: s };
  const m = /^([0-9a-f]{4})[\s-]?([0-9a-f]{4})$/.exec(s);
  return m ? { prefix: `${m[1]}${m[2]}` } : null;
}
